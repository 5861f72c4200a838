'use strict';

/**
 * Decodes one component of a form-encoded string (a key or a value).
 * A malformed escape (`%zz`, a lone `%`) is kept as it is rather than thrown.
 */
function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch (err) {
    if (err instanceof URIError) {
      return text;
    }
    throw err;
  }
}

/**
 * Encodes one component for a form-encoded string: spaces become `+`, everything
 * outside the unreserved set is percent-encoded.
 */
function encode(text) {
  return encodeURIComponent(String(text))
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

module.exports = { decode, encode };

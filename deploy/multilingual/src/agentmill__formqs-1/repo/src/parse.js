'use strict';

const { decode } = require('./codec');

/**
 * Parses a query string into an object. A key that appears more than once gets an
 * array of its values in order; a key without `=` gets the empty string. A leading
 * `?` is ignored, and so are empty pairs (`a=1&&b=2`).
 */
function parse(query) {
  const out = Object.create(null);
  let text = String(query);
  if (text.startsWith('?')) {
    text = text.slice(1);
  }
  for (const pair of text.split('&')) {
    if (pair === '') {
      continue;
    }
    const eq = pair.indexOf('=');
    const key = decode(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    if (!(key in out)) {
      out[key] = value;
    } else if (Array.isArray(out[key])) {
      out[key].push(value);
    } else {
      out[key] = [out[key], value];
    }
  }
  return out;
}

module.exports = { parse };

'use strict';

const { encode } = require('./codec');

/**
 * Builds a query string from an object: arrays repeat their key, `undefined`
 * values are left out, `null` becomes an empty value. Keys keep their order.
 */
function stringify(params) {
  const pairs = [];
  for (const [key, value] of Object.entries(params)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (v === undefined) {
        continue;
      }
      pairs.push(encode(key) + '=' + (v === null ? '' : encode(v)));
    }
  }
  return pairs.join('&');
}

module.exports = { stringify };

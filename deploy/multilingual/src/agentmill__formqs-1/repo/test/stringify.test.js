'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { stringify } = require('../src');

describe('stringify', () => {
  it('writes pairs in key order', () => {
    assert.equal(stringify({ b: 2, a: 'x' }), 'b=2&a=x');
  });

  it('repeats the key of an array', () => {
    assert.equal(stringify({ size: [9, 10] }), 'size=9&size=10');
  });

  it('writes spaces as plus signs', () => {
    assert.equal(stringify({ q: 'red shoes' }), 'q=red+shoes');
  });

  it('escapes a literal plus sign', () => {
    assert.equal(stringify({ expr: '1+1' }), 'expr=1%2B1');
  });

  it('leaves out undefined and empties null', () => {
    assert.equal(stringify({ a: undefined, b: null, c: 1 }), 'b=&c=1');
  });
});

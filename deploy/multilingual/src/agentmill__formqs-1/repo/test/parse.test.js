'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { parse } = require('../src');

describe('parse', () => {
  it('reads simple pairs', () => {
    assert.deepEqual({ ...parse('a=1&b=two') }, { a: '1', b: 'two' });
  });

  it('ignores a leading question mark', () => {
    assert.deepEqual({ ...parse('?a=1') }, { a: '1' });
  });

  it('collects repeated keys into an array', () => {
    assert.deepEqual({ ...parse('size=9&size=10&size=11') }, { size: ['9', '10', '11'] });
  });

  it('gives a key without equals sign an empty value', () => {
    assert.deepEqual({ ...parse('flag&a=1') }, { flag: '', a: '1' });
  });

  it('skips empty pairs', () => {
    assert.deepEqual({ ...parse('a=1&&b=2&') }, { a: '1', b: '2' });
  });

  it('decodes percent escapes', () => {
    assert.deepEqual({ ...parse('name=J%C3%BCrgen&path=%2Fhome') }, { name: 'Jürgen', path: '/home' });
  });

  it('decodes an escaped plus sign to a plus', () => {
    assert.deepEqual({ ...parse('expr=1%2B1') }, { expr: '1+1' });
  });

  it('keeps a malformed escape as it is', () => {
    assert.deepEqual({ ...parse('a=100%&b=%zz') }, { a: '100%', b: '%zz' });
  });
});

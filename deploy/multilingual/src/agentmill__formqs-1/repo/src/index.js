'use strict';

const { parse } = require('./parse');
const { stringify } = require('./stringify');
const { decode, encode } = require('./codec');

module.exports = { parse, stringify, decode, encode };

#!/usr/bin/env node
// `npm start`: build when needed, then run the gateway (migrations, seed, HTTP and workers).
'use strict';
require('./build-if-stale.js');
require('../dist/src/main.js');

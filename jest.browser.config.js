// `npm run test:browser`: the dashboard driven in a real Chromium (/usr/bin/chromium, Debian's
// package) by playwright-core, against gateways started by the tests. Same transforms and
// global setup as the server suite (jest.config.js), which does not match these files.
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/browser/**/*.browser-spec.ts'],
  testTimeout: 120000,
};

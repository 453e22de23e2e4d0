// Jest runs CommonJS; NestJS 12 packages are ESM-only, so they are compiled by babel on load.
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  // inside the checkout, so a fresh clone never reuses transforms of another tree
  cacheDirectory: '<rootDir>/node_modules/.cache/jest',
  testMatch: ['<rootDir>/test/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts'],
  transform: {
    // through the @nestjs/swagger plugin, as in the build, so /docs-json is production's
    '\\.(dto|entity)\\.ts$': '<rootDir>/test/swagger-dto.transformer.js',
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: { warnOnly: false } }],
    '^.+\\.m?js$': [
      'babel-jest',
      {
        babelrc: false,
        configFile: false,
        plugins: [
          require.resolve('./test/import-meta.babel.js'),
          require.resolve('@babel/plugin-transform-dynamic-import'),
          require.resolve('@babel/plugin-transform-modules-commonjs'),
        ],
      },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|uid)/)'],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  testTimeout: 60000,
  // a leaked socket must not hang CI for its whole time budget
  forceExit: true,
};

// Shared jest settings: TypeScript through @swc/jest (ts-jest cannot load TypeScript 7).
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2024' },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  testMatch: ['**/test/**/*.test.ts'],
  testTimeout: 30000,
};

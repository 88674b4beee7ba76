// Jest settings of the end-to-end tests: the shared preset, narrowed to this workspace's test files
// (they sit at its top, not in a test/ subfolder).
//
// @opentelemetry/otlp-exporter-base loads node:http lazily with a dynamic `import("http")` from its
// CommonJS build, which jest's CommonJS runtime refuses ("A dynamic import callback was invoked
// without --experimental-vm-modules"): the HTTP exporters would fail every export. Its files are
// therefore run through @swc/jest too, which turns that import() into a require().
const preset = require('../jest.preset.js');

/** @type {import('jest').Config} */
module.exports = {
  ...preset,
  testMatch: ['<rootDir>/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  transform: {
    ...preset.transform,
    '/@opentelemetry/otlp-exporter-base/.+\\.cjs$': [
      '@swc/jest',
      { jsc: { target: 'es2024' }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['^(?!.*/@opentelemetry/otlp-exporter-base/).*/node_modules/'],
};

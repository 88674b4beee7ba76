// Child-process tests on a shared CI machine: generous per-test time (they take a few seconds when idle).
module.exports = { ...require('../../jest.preset.js'), testTimeout: 90000 };

// The shop test starts three instrumented services: generous per-test time on a shared CI machine.
module.exports = { ...require('../../jest.preset.js'), testTimeout: 90000 };

// Headless Chromium against real receivers and the demo shop: generous per-test time on a shared machine.
module.exports = { ...require('../../jest.preset.js'), testTimeout: 120000 };

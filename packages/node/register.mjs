// `node --import @sonde/node/register app.mjs`: installs the OpenTelemetry ESM loader hooks
// (import-in-the-middle, intercepting only the modules an instrumentation hooks), then starts Sonde
// (dist/register.js, the same entry `--require` uses), and waits until the loader thread has
// acknowledged every hook so that the application's first import is already instrumented.
import { createRequire, register } from 'node:module';
import { createAddHookMessageChannel } from 'import-in-the-middle';

const require = createRequire(import.meta.url);
let waitForHooks;
try {
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, registerOptions);
  waitForHooks = waitForAllMessagesAcknowledged;
  globalThis.__sondeEsmHooks = true;
} catch (err) {
  process.stderr.write(
    `${JSON.stringify({ level: 40, time: Date.now(), name: '@sonde/node', msg: `sonde: ESM loader hooks not installed (${err?.message}); CommonJS modules are still instrumented` })}\n`,
  );
}
require('./dist/register.js');
if (waitForHooks) await waitForHooks();

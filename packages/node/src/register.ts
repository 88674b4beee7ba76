/**
 * `node --require @sonde/node/register app.js`: starts Sonde before the application's first require,
 * configured from the environment (OTEL_*, SONDE_*). For ESM applications use `--import`, which also
 * installs the ESM loader hooks (register.mjs) and then runs this same start.
 */
import { start } from './sdk';

start({ esmHooks: (globalThis as { __sondeEsmHooks?: boolean }).__sondeEsmHooks === true });

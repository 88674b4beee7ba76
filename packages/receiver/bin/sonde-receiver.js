#!/usr/bin/env node
// Entry point of the `sonde-receiver` command: runs the built CLI (npm run build first).

// V8 sizes the young generation from the machine's memory: on a machine with a few GiB or more its
// semi-spaces grow to 32 MiB each under load, and that memory stays resident (64 MiB of the
// receiver's RSS at 10,000 spans/s, for no gain in CPU: docs/benchmarks.md). The flag only takes
// effect at startup, so the process replaces itself (same pid, same stdio, process.execve) with one
// that has it, unless the node flags or NODE_OPTIONS already set it.
// SONDE_MAX_SEMI_SPACE_MB sets the size in MiB; 0 leaves V8's default.
const SEMI_SPACE_FLAG = '--max-semi-space-size';
const semiSpaceMiB = process.env.SONDE_MAX_SEMI_SPACE_MB ?? '8';
if (
  typeof process.execve === 'function' &&
  /^[0-9]+$/.test(semiSpaceMiB) &&
  semiSpaceMiB !== '0' &&
  !process.execArgv.some((a) => a.startsWith(SEMI_SPACE_FLAG)) &&
  !(process.env.NODE_OPTIONS ?? '').includes(SEMI_SPACE_FLAG)
) {
  process.execve(
    process.execPath,
    [process.execPath, `${SEMI_SPACE_FLAG}=${semiSpaceMiB}`, ...process.execArgv, __filename, ...process.argv.slice(2)],
    process.env,
  );
}

try {
  require.resolve('../dist/cli.js');
} catch {
  process.stderr.write('sonde-receiver: not built yet; run `npm run build` at the repository root first\n');
  process.exit(1);
}
require('../dist/cli.js');

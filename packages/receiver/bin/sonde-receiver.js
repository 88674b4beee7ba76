#!/usr/bin/env node
// Entry point of the `sonde-receiver` command: runs the built CLI (npm run build first).
try {
  require.resolve('../dist/cli.js');
} catch {
  process.stderr.write('sonde-receiver: not built yet; run `npm run build` at the repository root first\n');
  process.exit(1);
}
require('../dist/cli.js');

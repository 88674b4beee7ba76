/**
 * The size budget of the script-tag build: dist/sonde-web.min.js (everything: the OpenTelemetry web
 * SDK, the instrumentations, web-vitals, the redaction engine) at most 60 KiB gzipped. Built by
 * `npm run build` (turbo builds before it tests).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET = 60 * 1024;
const BUNDLE = path.join(__dirname, '../dist/sonde-web.min.js');

test('the script-tag build is at most 60 KiB gzipped', () => {
  const raw = fs.readFileSync(BUNDLE);
  const gzipped = gzipSync(raw, { level: 9 }).length;
  // Measured, for the record in the test output.
  process.stdout.write(`sonde-web.min.js: ${raw.length} bytes, ${gzipped} gzipped (budget ${BUDGET})\n`);
  expect(gzipped).toBeLessThanOrEqual(BUDGET);
  // It is the whole SDK, not an empty file that fits any budget.
  expect(gzipped).toBeGreaterThan(10 * 1024);
  expect(raw.toString()).toMatch(/^"use strict";var sonde=|^var sonde=/);
});

test('the ES module build keeps the OpenTelemetry packages as imports (the bundler of the app dedupes them)', () => {
  const esm = fs.readFileSync(path.join(__dirname, '../dist/index.mjs'), 'utf8');
  expect(esm).toMatch(/from "@opentelemetry\/sdk-trace"/);
  expect(esm).toMatch(/export \{/);
});

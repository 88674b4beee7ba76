/**
 * Lean against full trace decoding in the receiver (`node bench/lean-ab.ts [spans/request] [rounds]`):
 * four receivers, `debug.full_decode: true` and the default, each with redaction on (the default: the
 * intake then decodes in full in both, a check of the A/B's noise) and off (the default one decodes
 * lean), loaded in alternating slices by the same client, unpinned. Prints each one's spans/s and CPU
 * per span (every thread of the receiver counted).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareMaxThroughput } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';
import { type Server, startReceiver } from './proc.ts';

const spansPerRequest = Number(process.argv[2] ?? 100);
const rounds = Number(process.argv[3] ?? 6);
const work = mkdtempSync(join(tmpdir(), 'sonde-lean-ab-'));
const configs: [string, string][] = [
  ['full_decode, redaction on', 'debug:\n  full_decode: true\n'],
  ['default, redaction on (decoded in full too)', ''],
  ['full_decode, redaction off', 'debug:\n  full_decode: true\nredaction:\n  enabled: false\n'],
  ['default, redaction off (decoded lean)', 'redaction:\n  enabled: false\n'],
];
const payload = makePayload(await makeSpans(spansPerRequest * 8), spansPerRequest, 8);
const servers: Server[] = [];
try {
  for (const [i, [name, yaml]] of configs.entries()) {
    const file = join(work, `c${i}.yaml`);
    writeFileSync(file, yaml || 'log:\n  level: info\n');
    const s = await startReceiver({ dataDir: join(work, `d${i}`), args: ['--config', file] });
    servers.push({ ...s, name });
  }
  const results = await compareMaxThroughput(
    servers,
    payload,
    { connections: 10, warmupSec: 2, durationSec: rounds * 4, rounds },
    (l) => console.error(l),
  );
  const us = (r: (typeof results)[number]) => (r.serverCores / r.spansPerSec) * 1e6;
  for (const r of results)
    console.log(
      `${r.server}: ${Math.round(r.spansPerSec).toLocaleString('en-US')} spans/s, ${us(r).toFixed(2)} µs/span`,
    );
} finally {
  for (const s of servers) await s.stop();
  rmSync(work, { recursive: true, force: true });
}

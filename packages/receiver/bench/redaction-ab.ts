/**
 * Two builds' redaction cost side by side (`node bench/redaction-ab.ts OTHER_BIN [spans/request] [rounds]`):
 * four receivers, this build and the build at OTHER_BIN (another checkout's bin/sonde-receiver.js),
 * each with redaction off and on, loaded in alternating slices by the same client; prints each one's
 * throughput and CPU per span, and on/off for each build.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareMaxThroughput } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';
import { RECEIVER_BIN, type Server, startReceiver } from './proc.ts';

const other = process.argv[2];
if (!other) throw new Error('usage: node bench/redaction-ab.ts OTHER_BIN [spans/request] [rounds]');
const spansPerRequest = Number(process.argv[3] ?? 500);
const rounds = Number(process.argv[4] ?? 6);
const work = mkdtempSync(join(tmpdir(), 'sonde-redaction-ab-'));
const offConfig = join(work, 'off.yaml');
// Decoded in full as with redaction on, so that on/off is redaction's own cost (redaction-bench.ts).
writeFileSync(offConfig, 'redaction:\n  enabled: false\ndebug:\n  full_decode: true\n');
const payload = makePayload(await makeSpans(spansPerRequest * 8), spansPerRequest, 8);
const servers: Server[] = [];
try {
  for (const [name, bin] of [
    ['this', RECEIVER_BIN],
    ['other', other],
  ]) {
    for (const on of [false, true]) {
      const s = await startReceiver({
        bin,
        dataDir: join(work, `${name}-${on}`),
        args: on ? [] : ['--config', offConfig],
      });
      servers.push({ ...s, name: `${name} ${on ? 'on' : 'off'}` });
    }
  }
  const results = await compareMaxThroughput(
    servers,
    payload,
    { connections: 10, warmupSec: 2, durationSec: rounds * 2.5, rounds },
    (line) => console.error(line),
  );
  const us = (r: (typeof results)[number]) => (r.serverCores / r.spansPerSec) * 1e6;
  for (const r of results)
    console.log(
      `${r.server}: ${Math.round(r.spansPerSec).toLocaleString('en-US')} spans/s, ${us(r).toFixed(2)} µs/span`,
    );
  for (const k of [0, 2]) {
    const [off, on] = [results[k], results[k + 1]];
    console.log(
      `${servers[k].name.split(' ')[0]}: on/off ${(on.spansPerSec / off.spansPerSec).toFixed(3)}, by CPU per span ${(us(off) / us(on)).toFixed(3)}`,
    );
  }
} finally {
  for (const s of servers) await s.stop();
  rmSync(work, { recursive: true, force: true });
}

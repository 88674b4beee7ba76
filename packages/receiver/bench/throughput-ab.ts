/**
 * Several servers at maximum throughput in alternating slices (`node bench/throughput-ab.ts [--spans
 * 500] [--seconds 12] [--rounds 4] [--pin] VARIANT...`; VARIANTs as bench/variants.ts writes them), the
 * same client as the benchmark's ingest case (autocannon, 10 connections): spans/s, CPU per span of
 * every thread, and each against the first variant. With --pin every server runs on CPU 1 and this
 * process on CPU 0, as `npm run bench -- --pin`. What a receiver costs above its floors, and what a
 * part of it costs, turned off with a config file:
 *
 *   node bench/throughput-ab.ts --pin redact-sink receiver 'no-graph:args=--config no-graph.yaml'
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fmtInt } from './decode-bench.ts';
import { compareMaxThroughput } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';
import { enablePinning, type Server } from './proc.ts';
import { parseVariant } from './variants.ts';

const { values, positionals } = parseArgs({
  options: {
    spans: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '12' },
    rounds: { type: 'string', default: '4' },
    pin: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const spansPerRequest = Number(values.spans);
const variants = (positionals.length > 0 ? positionals : ['sink', 'receiver']).map(parseVariant);
if (values.pin && !enablePinning()) console.log('pinning: not available (taskset missing, or one CPU): unpinned');
const payload = makePayload(await makeSpans(spansPerRequest * 4), spansPerRequest, 4);
const dirs = variants.map(() => mkdtempSync(join(tmpdir(), 'sonde-bench-throughput-ab-')));
const servers: Server[] = [];
try {
  for (let i = 0; i < variants.length; i++) servers.push(await variants[i].start(dirs[i]));
  const results = await compareMaxThroughput(
    servers,
    payload,
    { connections: 10, warmupSec: 2, durationSec: Number(values.seconds), rounds: Number(values.rounds) },
    (line) => console.log(line),
  );
  const usPerSpan = results.map((r) => (r.serverCores / r.spansPerSec) * 1e6);
  console.log(`${spansPerRequest} spans/request; against ${variants[0].name}: spans/s, and CPU per span`);
  results.forEach((r, i) => {
    const problems = r.non2xx + r.errors + r.timeouts;
    console.log(
      `  ${variants[i].name.padEnd(14)} ${fmtInt(r.spansPerSec).padStart(10)} spans/s ${(r.spansPerSec / results[0].spansPerSec).toFixed(3)}×, ` +
        `${usPerSpan[i].toFixed(3)} µs CPU/span ${(usPerSpan[i] / usPerSpan[0]).toFixed(3)}× ` +
        `(server ${(r.serverCores * 100).toFixed(0)}% of a core, other processes ${(r.otherCores * 100).toFixed(0)}%)` +
        (problems > 0 ? `, ${problems} NON-2XX, ERRORS OR TIMEOUTS` : ''),
    );
  });
} finally {
  for (const server of servers) await server.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

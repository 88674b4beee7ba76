/**
 * The receiver's CPU per thread at the steady load (`node bench/steady-threads.ts [seconds]`): a fresh
 * receiver (defaults, the bench's data dir) sent 100 requests of 100 spans a second, as the steady case
 * of `npm run bench -- steady`; the CPU of each of its threads (utime + stime from
 * /proc/<pid>/task/<tid>/stat) over the measured window, in % of a core, and per request. Which thread
 * spends the steady-state CPU (intake, the trace store's writer and its write-ahead log's syncs, V8's
 * helpers), which the whole-process figure does not say. SONDE_BENCH_CONFIG=FILE: with `--config FILE`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { steady } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';
import { configArgs, startReceiver, threadCpu } from './proc.ts';

/** CPU seconds by thread name (the main thread as `main`, others as `<name>#<tid>`). */
function threads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [tid, t] of threadCpu(pid)) out.set(tid === pid ? 'main' : `${t.name}#${tid}`, t.cpu);
  return out;
}

const seconds = Number(process.argv[2] ?? 15);
const payload = makePayload(await makeSpans(400), 100, 4);
const dataDir = mkdtempSync(join(tmpdir(), 'sonde-bench-steady-threads-'));
// SONDE_TRACE_STORE / SONDE_LOG_STORE pass through (startReceiver turns both stores off otherwise, as
// the bench's steady case has them), so that `SONDE_TRACE_STORE=true` measures the `npm start` default.
const env: Record<string, string> = {};
for (const k of ['SONDE_TRACE_STORE', 'SONDE_LOG_STORE']) if (process.env[k]) env[k] = process.env[k] as string;
const server = await startReceiver({ dataDir, env, args: configArgs() });
try {
  await steady(server, payload, { requestsPerSec: 100, warmupSec: 5, durationSec: 1 });
  const before = threads(server.pid);
  const t0 = performance.now();
  const r = await steady(server, payload, { requestsPerSec: 100, warmupSec: 0, durationSec: seconds });
  const wall = (performance.now() - t0) / 1000;
  const after = threads(server.pid);
  const rows = [...after]
    .map(([name, cpu]) => [name.replace(/#\d+$/, ''), cpu - (before.get(name) ?? 0)] as const)
    .filter(([, d]) => d > 0);
  const byName = new Map<string, number>();
  for (const [name, d] of rows) byName.set(name, (byName.get(name) ?? 0) + d);
  const total = [...byName.values()].reduce((a, b) => a + b, 0);
  console.log(
    `${r.ok}/${r.sent} requests in ${wall.toFixed(1)} s; receiver ${((total / wall) * 100).toFixed(2)}% of a core; load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
  );
  for (const [name, d] of [...byName].sort((a, b) => b[1] - a[1])) {
    console.log(
      `  ${name.padEnd(16)} ${((d / wall) * 100).toFixed(2)}% of a core, ${((d * 1e6) / r.sent).toFixed(0)} µs/request`,
    );
  }
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

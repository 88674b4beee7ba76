/**
 * `workers: 0` against `workers: N` (`node bench/workers-ab.ts [N] [slice seconds] [rounds]`): two
 * receivers (defaults, stores off) take the same 500-span requests from `CONNECTIONS` keep-alive
 * connections in alternating slices; per slice, the spans accepted per second and the CPU of every
 * thread of the receiver (utime + stime from /proc/<pid>/task/<tid>/stat), as CPU per span (all
 * threads) and the main thread's share. The client runs in this process, on the same machine.
 * BASE_BIN=<another build's bin/sonde-receiver.js> compares two builds instead, both with N workers
 * (the first row is that build); SONDE_BENCH_CONFIG=FILE gives both `--config FILE`; CONNECTIONS
 * sets the number of connections.
 *
 * The summary splits the CPU by thread: the main thread, the intake workers (`WorkerThread`), V8's
 * helper threads (`V8Worker`: concurrent marking, parallel scavenges, background compilation) and
 * any other, and counts the main thread's major collections (`sonde_nodejs_gc_duration_seconds`,
 * kind major, from the receiver's admin /metrics): a main thread that allocates little can run one
 * every few tens of milliseconds, on its helper threads' CPU.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { metricSeries, postProtobuf, scrapeMetrics } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';
import {
  configArgs,
  freePort,
  type Server,
  startReceiver,
  THREAD_KINDS,
  type ThreadKind,
  threadCpuByKind,
} from './proc.ts';

const workers = Number(process.argv[2] ?? 2);
const sliceSec = Number(process.argv[3] ?? 5);
const rounds = Number(process.argv[4] ?? 4);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8);
const baseBin = process.env.BASE_BIN;
const SPANS = 500;

const payload = makePayload(await makeSpans(SPANS * 4), SPANS, 4);
const dirs: string[] = [];
const start = async (name: string, n: number, bin?: string) => {
  const dataDir = mkdtempSync(join(tmpdir(), `sonde-bench-workers-${n}-`));
  dirs.push(dataDir);
  const adminPort = await freePort();
  const env = { SONDE_WORKERS: String(n), SONDE_ADMIN_ADDR: `127.0.0.1:${adminPort}` };
  return { name, adminPort, server: await startReceiver({ dataDir, env, bin, args: configArgs() }) };
};
const receivers = baseBin
  ? [await start(`base workers=${workers}`, workers, baseBin), await start(`this workers=${workers}`, workers)]
  : [await start('workers=0', 0), await start(`workers=${workers}`, workers)];

/** CPU seconds of a receiver's threads so far: all, and by kind. */
function cpu(pid: number): Record<ThreadKind | 'all', number> {
  const r = receivers.find((x) => x.server.pid === pid);
  if (r && r.server.child.exitCode !== null) throw new Error(`${r.name} exited:\n${r.server.output()}`);
  return threadCpuByKind(pid);
}

/** The main thread's major collections so far. */
async function majorGcs(adminPort: number): Promise<number> {
  const series = metricSeries(await scrapeMetrics(adminPort), 'sonde_nodejs_gc_duration_seconds_count');
  return series.find((s) => s.labels.includes('kind="major"'))?.value ?? 0;
}

/** Sends for `seconds` from CONNECTIONS loops; the spans accepted. */
async function load(server: Server, seconds: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const until = performance.now() + seconds * 1000;
  let ok = 0;
  let i = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) {
        const status = await postProtobuf(
          server.port,
          agent,
          '/v1/traces',
          payload.bodies[i++ % payload.bodies.length],
        );
        if (status === 200) ok++;
      }
    }),
  );
  agent.destroy();
  return ok * SPANS;
}

const totals = new Map<
  string,
  { spans: number; seconds: number; cpu: number; majorGcs: number } & Record<ThreadKind, number>
>();
try {
  for (const r of receivers) await load(r.server, 3);
  for (let round = 0; round < rounds; round++) {
    for (const r of round % 2 === 0 ? receivers : [...receivers].reverse()) {
      const gcsBefore = await majorGcs(r.adminPort);
      const before = cpu(r.server.pid);
      const t0 = performance.now();
      const spans = await load(r.server, sliceSec);
      const seconds = (performance.now() - t0) / 1000;
      const after = cpu(r.server.pid);
      const gcs = (await majorGcs(r.adminPort)) - gcsBefore;
      const t = totals.get(r.name) ?? {
        spans: 0,
        seconds: 0,
        cpu: 0,
        majorGcs: 0,
        main: 0,
        workers: 0,
        v8: 0,
        other: 0,
      };
      t.spans += spans;
      t.seconds += seconds;
      t.cpu += after.all - before.all;
      t.majorGcs += gcs;
      for (const kind of THREAD_KINDS) t[kind] += after[kind] - before[kind];
      totals.set(r.name, t);
      console.log(
        `round ${round} ${r.name}: ${Math.round(spans / seconds)} spans/s, ` +
          `${(((after.all - before.all) / spans) * 1e6).toFixed(2)} µs CPU/span (main thread ${(((after.main - before.main) / spans) * 1e6).toFixed(2)}), ` +
          `${gcs} major collections on the main thread`,
      );
    }
  }
  const base = totals.get(receivers[0].name);
  for (const [name, t] of totals) {
    const rate = t.spans / t.seconds;
    const perSpan = (t.cpu / t.spans) * 1e6;
    console.log(
      `${name}: ${Math.round(rate)} spans/s, ${perSpan.toFixed(2)} µs CPU/span, main thread ${((t.main / t.spans) * 1e6).toFixed(2)} µs/span, ` +
        `${((t.cpu / t.seconds) * 100).toFixed(0)}% CPU` +
        (base && t !== base
          ? `; ×${(rate / (base.spans / base.seconds)).toFixed(2)} throughput, ×${(perSpan / ((base.cpu / base.spans) * 1e6)).toFixed(2)} CPU/span`
          : ''),
    );
    const us = (seconds: number) => ((seconds / t.spans) * 1e6).toFixed(2);
    console.log(
      `  by thread, µs/span: main ${us(t.main)}, intake workers ${us(t.workers)}, V8 helpers ${us(t.v8)}, other ${us(t.other)}; ` +
        `main thread's major collections ${(t.majorGcs / t.seconds).toFixed(1)}/s`,
    );
  }
  console.log(
    `load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
} finally {
  for (const r of receivers) await r.server.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/**
 * `npm run bench` (packages/receiver): OTLP/HTTP protobuf trace ingest by the receiver against a bare
 * node:http sink, on this machine, in one run. Prints progress, a Markdown summary, and writes
 * docs/benchmarks.md at the repository root. Needs the receiver built (the root `npm run bench` does it).
 *
 *   node bench/main.ts [--quick] [--no-profile] [--no-write] [--pin]
 *
 * --quick        short runs (smoke test of the bench itself; the figures are not worth keeping)
 * --no-profile   skip the extra receiver run under `node --cpu-prof` (its profile goes under /tmp)
 * --no-write     do not write docs/benchmarks.md
 * --pin          pin the servers to CPU 1 and the client to CPU 0 (taskset) after the decoder
 *                micro-benchmark; off by default (a Node process normally has its GC threads on other cores)
 * store          (a positional argument: `npm run bench -- store`) only the embedded trace store's section:
 *                intake with the store on vs off, then trace by id and searches over a data set of
 *                SONDE_BENCH_STORE_SPANS spans (default 10,000,000, in the full run too)
 * logs           (positional: `npm run bench -- logs`) only the embedded log store's section
 *                (log-store-bench.ts): log intake with the store off / on (each durability), then
 *                Loki API queries over SONDE_BENCH_LOG_RECORDS records (default 10,000,000), each
 *                against its target; prints the section for docs/benchmarks.md
 * steady         (positional: `npm run bench -- steady`) only the steady 10,000 spans/s case: the
 *                receiver (bench defaults: trace and log stores off, redaction on), then the bare sink,
 *                then the receiver again under `node --cpu-prof` unless --no-profile (profile under /tmp)
 * metrics        (positional: `npm run bench -- metrics`) only the in-process Prometheus stage
 * redaction      (positional: `npm run bench -- redaction`) only the redaction cost: intake with
 *                `redaction.enabled: false` vs the default (on), alternating slices (redaction-bench.ts)
 * lean           (positional: `npm run bench -- lean`) only lean decoding: two receivers with redaction
 *                off, `debug.full_decode: true` vs the default (lean), alternating slices (lean-bench.ts)
 * workers        (positional: `npm run bench -- workers`) only the intake workers: `workers: 0` vs
 *                `auto`, neither pinned (workers-bench.ts)
 * The environment variables SONDE_BENCH_QUICK=1, SONDE_BENCH_PROFILE=0, SONDE_BENCH_WRITE=0 and
 * SONDE_BENCH_PIN=1 do the same (handy from the root, where `npm run bench` takes no arguments).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type DecodeBenchResult, fmtInt, runDecodeBench } from './decode-bench.ts';
import { type LeanBenchRow, renderLeanSection, runLeanBench } from './lean-bench.ts';
import {
  compareMaxThroughput,
  describeMemory,
  type OutageSlice,
  outage,
  receiverMemory,
  type SteadyResult,
  type SteadySettings,
  steady,
  type ThroughputResult,
} from './load.ts';
import { renderLogSection, runLogIntake, runLogQueries } from './log-store-bench.ts';
import { describeMachine, machineLine } from './machine.ts';
import { runMetricsBench } from './metrics-bench.ts';
import { makePayload, makeSpans, type Payload } from './payloads.ts';
import { CpuWindow, enablePinning, freePort, killAll, type Server, startReceiver, startSink } from './proc.ts';
import { type ProfileSummary, summariseProfile } from './profile.ts';
import { type RedactionBenchRow, renderRedactionSection, runRedactionBench } from './redaction-bench.ts';
import { type Report, renderDoc, renderSummary, workersTable } from './report.ts';
import { renderStoreSection, runStoreBench, type StoreBenchResult } from './store-bench.ts';
import { runWorkersBench } from './workers-bench.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = join(HERE, '..', '..', '..');
const DOC = join(REPO_ROOT, 'docs', 'benchmarks.md');

const { values: flags, positionals } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.SONDE_BENCH_QUICK === '1' },
    'no-profile': { type: 'boolean', default: process.env.SONDE_BENCH_PROFILE === '0' },
    'no-write': { type: 'boolean', default: process.env.SONDE_BENCH_WRITE === '0' },
    pin: { type: 'boolean', default: process.env.SONDE_BENCH_PIN === '1' },
  },
  allowPositionals: true,
});
const quick = flags.quick === true;
const storeOnly = positionals.includes('store');
const logsOnly = positionals.includes('logs');
const redactionOnly = positionals.includes('redaction');
const leanOnly = positionals.includes('lean');
const workersOnly = positionals.includes('workers');
const steadyOnly = positionals.includes('steady');
const metricsOnly = positionals.includes('metrics');
const storeSpans = Number(process.env.SONDE_BENCH_STORE_SPANS ?? (quick ? 200_000 : 10_000_000));

const SETTINGS = {
  connections: 10,
  warmupSec: quick ? 1 : 2,
  durationSec: quick ? 4 : 10,
  rounds: quick ? 2 : 4,
  steadyRequestsPerSec: 100,
  steadyWarmupSec: quick ? 1 : 5,
  steadySec: quick ? 4 : 15,
  decodeRoundMs: quick ? 200 : 500,
  decodeRounds: quick ? 3 : 5,
  variants: 4,
};

/**
 * The redaction comparison measures a ratio of two close throughputs (its target: on ≥ 85% of off),
 * so it takes three times the samples, in three times the slices: with 4 slices of 2.5 s per receiver
 * the same build's ratio moved by ±0.05 between quiet runs.
 */
const REDACTION_SETTINGS = { ...SETTINGS, durationSec: SETTINGS.durationSec * 3, rounds: SETTINGS.rounds * 3 };
/**
 * Slices of the export outage case: the queue fills within the first one or two, and its target
 * compares the later half of the rest with the earlier half (report.ts). 16 slices of 3 s put the
 * settling described below in the earlier half, so that the later half is compared with where the
 * RSS settled. The two halves' peaks are about 24 s apart, so the target (within 10%) misses a leak
 * slower than about 1.2 MiB/s at this RSS; a longer run shows one (`bench/outage-ab.ts`). On
 * 2026-12-05, over 24 slices of 3 s unpinned (`node bench/outage-ab.ts 1 24`), the RSS peak rose
 * once, in the first slice after the queue filled (261 → 298 MiB with zstd), then stayed within
 * 298–301 MiB for 66 s; over 40 slices pinned (`PIN=1 node bench/outage-ab.ts 1 40`), it climbed
 * from 254 to 277 MiB in the first 21 s of refusals, then stayed within 274–278 MiB for 96 s.
 */
const OUTAGE_SLICES = 16;
/** Whatever happens, the bench ends by then (children killed). */
const WATCHDOG_MS = 8 * 60_000 + 20 * 60_000 + 15 * 60_000; // the stores' data sets take minutes to write

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s`;
const log = (line: string) => process.stdout.write(`[bench ${elapsed()}] ${line}\n`);

const watchdog = setTimeout(() => {
  process.stderr.write(
    `bench: still running after ${WATCHDOG_MS / 60_000} minutes; killing the servers and giving up\n`,
  );
  killAll();
  process.exit(2);
}, WATCHDOG_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/**
 * The steady case against a fresh receiver, with the receiver's own account of its memory right
 * after the window (its admin /metrics): where an RSS above the usual sits.
 */
async function steadyReceiver(
  dataDir: string,
  payload: Payload,
  settings: SteadySettings,
  nodeArgs: string[] = [],
): Promise<SteadyResult> {
  const adminPort = await freePort();
  return withServer(
    () => startReceiver({ dataDir, nodeArgs, env: { SONDE_ADMIN_ADDR: `127.0.0.1:${adminPort}` } }),
    async (server) => {
      const result = await steady(server, payload, settings);
      result.memory = await receiverMemory(adminPort);
      return result;
    },
  );
}

async function withServer<T>(start: () => Promise<Server>, run: (server: Server) => Promise<T>): Promise<T> {
  const server = await start();
  try {
    return await run(server);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- ${server.name} output ---\n${server.output()}`);
  } finally {
    await server.stop();
  }
}

const mib = (bytes: number) => bytes / 2 ** 20;

/** The commit the receiver was built from, and whether its sources had uncommitted changes. */
function revision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8' }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'packages/receiver/src').split('\n').filter(Boolean).length;
    return dirty > 0 ? `${commit} with uncommitted changes in ${dirty} files of packages/receiver/src` : commit;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function describeThroughput(r: ThroughputResult): string {
  const problems =
    r.non2xx + r.errors + r.timeouts > 0 ? `, NON-2XX ${r.non2xx} ERRORS ${r.errors} TIMEOUTS ${r.timeouts}` : '';
  return (
    `${r.server} ${r.spansPerRequest} spans/request: ${fmtInt(r.spansPerSec)} spans/s (${fmtInt(r.requestsPerSec)} req/s), ` +
    `server ${(r.serverCores * 100).toFixed(0)}% of a core, client ${(r.clientCores * 100).toFixed(0)}%, other processes ${(r.otherCores * 100).toFixed(0)}%, peak RSS ${mib(r.rssPeak).toFixed(0)} MiB, ` +
    `p50 ${r.latencyP50Ms} ms, p99 ${r.latencyP99Ms} ms${problems}`
  );
}

async function main(): Promise<void> {
  if (!existsSync(join(HERE, '..', 'dist', 'index.js'))) {
    throw new Error(
      'the receiver is not built: run `npm run bench` at the repository root (it builds first), or `npx turbo run build --filter=@sonde/receiver`',
    );
  }
  const machine = describeMachine();
  log(`machine: ${machineLine(machine)}`);
  if (quick) log('quick mode: short runs, figures not worth keeping');

  const spans = await makeSpans(500 * SETTINGS.variants);
  const payloads: Payload[] = [makePayload(spans, 100, SETTINGS.variants), makePayload(spans, 500, SETTINGS.variants)];
  const avgBytes = (p: Payload) => Math.round(p.bodies.reduce((n, b) => n + b.length, 0) / p.bodies.length);
  log(
    `payloads: ${spans.length} spans made with the OpenTelemetry SDK, serialized by ProtobufTraceSerializer: ` +
      payloads
        .map(
          (p) => `${p.bodies.length} × ${p.spansPerRequest}-span requests of ~${(avgBytes(p) / 1024).toFixed(0)} KiB`,
        )
        .join(', '),
  );

  if (logsOnly) {
    const work = mkdtempSync(join(tmpdir(), 'sonde-bench-log-store-'));
    try {
      const intake = await runLogIntake(work, SETTINGS, log);
      const queries = await runLogQueries(
        work,
        Number(process.env.SONDE_BENCH_LOG_RECORDS ?? (quick ? 100_000 : 10_000_000)),
        log,
      );
      process.stdout.write(`\n${renderLogSection(intake, queries, machineLine(machine))}\n`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    log(
      `done in ${((Date.now() - started) / 1000).toFixed(0)} s (docs/benchmarks.md not written: log store section only)`,
    );
    return;
  }

  if (workersOnly) {
    const work = mkdtempSync(join(tmpdir(), 'sonde-bench-workers-'));
    try {
      const result = await runWorkersBench(payloads[1], SETTINGS, work, log);
      if (result) process.stdout.write(`\n${workersTable(result)}\n`);
    } finally {
      killAll();
      rmSync(work, { recursive: true, force: true });
    }
    log(
      `done in ${((Date.now() - started) / 1000).toFixed(0)} s (docs/benchmarks.md not written: workers section only)`,
    );
    return;
  }

  if (redactionOnly || leanOnly) {
    if (flags.pin)
      log(enablePinning() ? 'pinning: servers on CPU 1, the client on CPU 0' : 'pinning: not possible here');
    const section = redactionOnly ? 'redaction' : 'lean';
    const work = mkdtempSync(join(tmpdir(), `sonde-bench-${section}-`));
    try {
      const rendered = redactionOnly
        ? renderRedactionSection(await runRedactionBench(payloads, REDACTION_SETTINGS, work, log))
        : renderLeanSection(await runLeanBench(payloads, REDACTION_SETTINGS, work, log));
      process.stdout.write(`\n${rendered}\n`);
    } finally {
      killAll();
      rmSync(work, { recursive: true, force: true });
    }
    log(
      `done in ${((Date.now() - started) / 1000).toFixed(0)} s (docs/benchmarks.md not written: ${section} section only)`,
    );
    return;
  }

  if (metricsOnly) {
    const metrics = await runMetricsBench(log, quick);
    log(`  ${JSON.stringify(metrics)}`);
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s (docs/benchmarks.md not written: metrics only)`);
    return;
  }

  if (steadyOnly) {
    const dataDir = mkdtempSync(join(tmpdir(), 'sonde-bench-data-'));
    const settings = {
      requestsPerSec: SETTINGS.steadyRequestsPerSec,
      warmupSec: SETTINGS.steadyWarmupSec,
      durationSec: SETTINGS.steadySec,
    };
    const describe = (name: string, r: SteadyResult) =>
      log(
        `  ${name}: ${fmtInt(r.achievedSpansPerSec)} spans/s (${r.ok}/${r.sent} 2xx), CPU ${(r.serverCores * 100).toFixed(2)}% of a core ` +
          `(other processes ${(r.otherCores * 100).toFixed(1)}%), RSS avg ${mib(r.rssAvg).toFixed(1)} MiB, ` +
          `peak ${mib(Math.max(r.rssPeak, r.hwm)).toFixed(1)} MiB (VmHWM)`,
      );
    try {
      // SONDE_BENCH_NODE_ARGS: node flags for the receiver (e.g. --max-semi-space-size=4), to compare.
      const nodeArgs = (process.env.SONDE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
      if (nodeArgs.length > 0) log(`  receiver node flags: ${nodeArgs.join(' ')}`);
      const receiver = await steadyReceiver(dataDir, payloads[0], settings, nodeArgs);
      describe('receiver', receiver);
      if (receiver.memory) log(`    ${describeMemory(receiver.memory)}`);
      const sink = await withServer(startSink, (server) => steady(server, payloads[0], settings));
      describe('sink', sink);
      log(
        `  receiver/sink: CPU ${(receiver.serverCores / sink.serverCores).toFixed(2)}×, ` +
          `peak RSS +${mib(Math.max(receiver.rssPeak, receiver.hwm) - Math.max(sink.rssPeak, sink.hwm)).toFixed(1)} MiB, ` +
          `average RSS +${mib(receiver.rssAvg - sink.rssAvg).toFixed(1)} MiB`,
      );
      if (!flags['no-profile']) {
        const profileDir = mkdtempSync(join(tmpdir(), 'sonde-bench-profile-'));
        log(`profile: receiver under node --cpu-prof at the steady rate (profile in ${profileDir})`);
        await withServer(
          () =>
            startReceiver({
              dataDir,
              nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-name=receiver.cpuprofile'],
            }),
          (server) => steady(server, payloads[0], settings),
        );
        const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
        if (file) {
          const profile = summariseProfile(join(profileDir, file));
          log(`  ${profile.file}: ${(profile.busyMs / 1000).toFixed(1)} s busy; top self time:`);
          for (const row of profile.top.slice(0, 25)) {
            log(`    ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.function}  (${row.where})`);
          }
          for (const row of profile.phases) log(`    phase ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.phase}`);
        }
      }
    } finally {
      killAll();
      rmSync(dataDir, { recursive: true, force: true });
    }
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s (docs/benchmarks.md not written: steady case only)`);
    return;
  }

  if (storeOnly) {
    const result = await runStoreBench(payloads[0], SETTINGS, { datasetSpans: storeSpans, log });
    process.stdout.write(`\n${renderStoreSection(result)}\n`);
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s (docs/benchmarks.md not written: store section only)`);
    return;
  }

  log('decoder micro-benchmark: receiver decodeTraceRequest vs protobufjs + mapping to the model');
  const decodeWindow = new CpuWindow(undefined);
  const decode: DecodeBenchResult = runDecodeBench(
    payloads,
    { roundMs: SETTINGS.decodeRoundMs, rounds: SETTINGS.decodeRounds },
    log,
  );
  const decodeCpu = decodeWindow.end();
  log(`  other processes used ${(decodeCpu.other * 100).toFixed(0)}% of a core meanwhile`);

  log('prometheus stage, in process: OTLP metrics ingest and /metrics scrapes at 10,000 and 100,000 series');
  const metrics = await runMetricsBench(log, quick);

  const pinned = flags.pin === true && enablePinning();
  if (flags.pin && !pinned)
    log('pinning: not possible here (needs 2 CPUs and taskset); servers and client float over all CPUs');
  else if (pinned) log('pinning: servers on CPU 1 only, this process (the client) on CPU 0 only');
  const dataDir = mkdtempSync(join(tmpdir(), 'sonde-bench-data-'));
  const throughput: ThroughputResult[] = [];
  let steadyResult: SteadyResult;
  let steadySink: SteadyResult;
  const steadyFloors: Report['steadyFloors'] = {};
  let profile: ProfileSummary | undefined;
  let fullPath: ThroughputResult[] = [];
  let outageSlices: OutageSlice[] = [];
  let workers: Report['workers'];
  let redaction: RedactionBenchRow[] | undefined;
  let lean: LeanBenchRow[] | undefined;
  try {
    for (const payload of payloads) {
      log(
        `max throughput, ${payload.spansPerRequest} spans/request: fresh sink and receiver, ${SETTINGS.connections} connections, ` +
          `${SETTINGS.warmupSec} s warm-up each, then ${SETTINGS.durationSec} s each in ${SETTINGS.rounds} alternating slices`,
      );
      // The floors come along: the sink that also decodes, and the one that decodes and redacts.
      const sinks = [await startSink(), await startSink('decode'), await startSink('redact')];
      try {
        const results = await withServer(
          () => startReceiver({ dataDir }),
          (receiver) => compareMaxThroughput([...sinks, receiver], payload, SETTINGS, log),
        );
        for (const r of results) {
          throughput.push(r);
          log(`  ${describeThroughput(r)}`);
        }
      } catch (err) {
        const outputs = sinks.map((sink) => `--- ${sink.name} output ---\n${sink.output()}`).join('\n');
        throw new Error(`${(err as Error).message}\n${outputs}`);
      } finally {
        for (const sink of sinks) await sink.stop();
      }
    }

    log(
      `steady: receiver at ${fmtInt(SETTINGS.steadyRequestsPerSec * 100)} spans/s in batches of 100 ` +
        `(${SETTINGS.steadyRequestsPerSec} req/s evenly spaced), ${SETTINGS.steadyWarmupSec} s warm-up + ${SETTINGS.steadySec} s, fresh process`,
    );
    steadyResult = await steadyReceiver(dataDir, payloads[0], {
      requestsPerSec: SETTINGS.steadyRequestsPerSec,
      warmupSec: SETTINGS.steadyWarmupSec,
      durationSec: SETTINGS.steadySec,
    });
    log(
      `  ${fmtInt(steadyResult.achievedSpansPerSec)} spans/s achieved (${steadyResult.ok}/${steadyResult.sent} requests 2xx), receiver CPU ` +
        `${(steadyResult.serverCores * 100).toFixed(2)}% of a core (other processes ${(steadyResult.otherCores * 100).toFixed(1)}%), RSS avg ${mib(steadyResult.rssAvg).toFixed(1)} MiB, ` +
        `peak ${mib(Math.max(steadyResult.rssPeak, steadyResult.hwm)).toFixed(1)} MiB (VmHWM)`,
    );
    if (steadyResult.memory) log(`    ${describeMemory(steadyResult.memory)}`);

    log('steady (reference): the bare sink at the same rate, same client, fresh process');
    steadySink = await withServer(startSink, (server) =>
      steady(server, payloads[0], {
        requestsPerSec: SETTINGS.steadyRequestsPerSec,
        warmupSec: SETTINGS.steadyWarmupSec,
        durationSec: SETTINGS.steadySec,
      }),
    );
    log(
      `  sink: ${(steadySink.serverCores * 100).toFixed(2)}% of a core (other processes ${(steadySink.otherCores * 100).toFixed(1)}%), RSS avg ${mib(steadySink.rssAvg).toFixed(1)} MiB, ` +
        `peak ${mib(Math.max(steadySink.rssPeak, steadySink.hwm)).toFixed(1)} MiB (VmHWM)`,
    );

    log(
      'steady (floors): the sink that also decodes, then the one that decodes and redacts, same rate, fresh processes',
    );
    for (const work of ['decode', 'redact'] as const) {
      const r = await withServer(
        () => startSink(work),
        (server) =>
          steady(server, payloads[0], {
            requestsPerSec: SETTINGS.steadyRequestsPerSec,
            warmupSec: SETTINGS.steadyWarmupSec,
            durationSec: SETTINGS.steadySec,
          }),
      );
      steadyFloors[work] = r;
      log(
        `  ${work}-sink: ${(r.serverCores * 100).toFixed(2)}% of a core (other processes ${(r.otherCores * 100).toFixed(1)}%)`,
      );
    }

    log(
      'full trace path: intake + span metrics + service graph + export to a second bare sink standing in for Tempo, ' +
        `100 spans/request, against the bare sink, ${SETTINGS.rounds} alternating slices`,
    );
    const tempoStandIn = await startSink();
    const sinkForFull = await startSink();
    try {
      fullPath = await withServer(
        () => startReceiver({ dataDir, env: { SONDE_TEMPO_ENDPOINT: `http://127.0.0.1:${tempoStandIn.port}` } }),
        (receiver) => compareMaxThroughput([sinkForFull, receiver], payloads[0], SETTINGS, log),
      );
      for (const r of fullPath) log(`  ${describeThroughput(r)}`);
    } finally {
      await tempoStandIn.stop();
      await sinkForFull.stop();
    }

    log('export outage: the same load while the export endpoint refuses connections (the queue fills, then 503s)');
    const closedPort = await (async () => {
      const probe = await startSink();
      const port = probe.port;
      await probe.stop();
      return port;
    })();
    outageSlices = await withServer(
      () => startReceiver({ dataDir, env: { SONDE_TEMPO_ENDPOINT: `http://127.0.0.1:${closedPort}` } }),
      (receiver) => outage(receiver, payloads[0], SETTINGS.connections, OUTAGE_SLICES, quick ? 1 : 3),
    );
    for (const o of outageSlices) {
      log(`  at ${o.atSec} s: ${o.ok} accepted, ${o.non2xx} refused, RSS peak ${mib(o.rssMax).toFixed(1)} MiB`);
    }

    workers = await runWorkersBench(payloads[1], SETTINGS, dataDir, log);
    if (workers) for (const r of [workers.single, workers.multi]) log(`  ${describeThroughput(r)}`);

    redaction = await runRedactionBench(payloads, REDACTION_SETTINGS, join(dataDir, 'redaction'), log);
    lean = await runLeanBench(payloads, REDACTION_SETTINGS, join(dataDir, 'lean'), log);

    if (!flags['no-profile']) {
      const profileDir = mkdtempSync(join(tmpdir(), 'sonde-bench-profile-'));
      log(`profile: receiver under node --cpu-prof at max throughput, 100 spans/request (profile in ${profileDir})`);
      await withServer(
        () =>
          startReceiver({
            dataDir,
            nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-name=receiver.cpuprofile'],
          }),
        (server) => compareMaxThroughput([server], payloads[0], { ...SETTINGS, rounds: 1 }, () => {}),
      );
      const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`node --cpu-prof wrote no profile in ${profileDir}`);
      profile = summariseProfile(join(profileDir, file));
      log(`  ${profile.file}: ${(profile.busyMs / 1000).toFixed(1)} s busy; top self time:`);
      for (const row of profile.top.slice(0, 8)) {
        log(`    ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.function}  (${row.where})`);
      }
    }
  } finally {
    killAll();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const store: StoreBenchResult = await runStoreBench(payloads[0], SETTINGS, { datasetSpans: storeSpans, log });
  const logWork = mkdtempSync(join(tmpdir(), 'sonde-bench-log-store-'));
  let logSection: string;
  try {
    const logIntake = await runLogIntake(logWork, SETTINGS, log);
    const logQueries = await runLogQueries(
      logWork,
      Number(process.env.SONDE_BENCH_LOG_RECORDS ?? (quick ? 100_000 : 10_000_000)),
      log,
    );
    logSection = renderLogSection(logIntake, logQueries, machineLine(machine));
  } finally {
    rmSync(logWork, { recursive: true, force: true });
  }

  const report: Report = {
    date: new Date().toISOString(),
    quick,
    pinned,
    machine,
    settings: SETTINGS,
    payloadBytes: { 100: avgBytes(payloads[0]), 500: avgBytes(payloads[1]) },
    throughput,
    steady: steadyResult,
    steadySink,
    steadyFloors,
    revision: revision(),
    decode,
    decodeOtherCores: decodeCpu.other,
    metrics,
    fullPath,
    outage: outageSlices,
    profile,
    storeIntake: store.intakeOn,
    workers,
    redaction,
    lean,
  };
  process.stdout.write(`\n${renderSummary(report)}\n\n${renderStoreSection(store)}\n\n${logSection}\n`);
  if (!flags['no-write'] && !quick) {
    mkdirSync(dirname(DOC), { recursive: true });
    writeFileSync(DOC, `${renderDoc(report)}\n${renderStoreSection(store)}\n${logSection}\n`);
    log(`wrote ${relative(process.cwd(), DOC) || DOC}`);
  } else if (quick) {
    log(`quick mode: ${relative(process.cwd(), DOC)} not written`);
  }
  const receiverProblems = throughput
    .filter((r) => r.server === 'receiver')
    .reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, steadyResult.failed);
  if (receiverProblems > 0) {
    log(
      `the receiver failed ${receiverProblems} requests (non-2xx, errors or timeouts): the figures above are not valid`,
    );
    process.exitCode = 1;
  }
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => clearTimeout(watchdog),
  (err: unknown) => {
    killAll();
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

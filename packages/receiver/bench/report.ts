/** The bench's Markdown: a summary for the terminal and docs/benchmarks.md. */
import type { DecodeBenchResult } from './decode-bench.ts';
import { type LeanBenchRow, renderLeanSection } from './lean-bench.ts';
import { describeMemory, type OutageSlice, type SteadyResult, type ThroughputResult } from './load.ts';
import { type Machine, machineLine } from './machine.ts';
import type { MetricsBenchResult } from './metrics-bench.ts';
import type { ProfileSummary } from './profile.ts';
import { type RedactionBenchRow, renderRedactionSection } from './redaction-bench.ts';
import type { WorkersBenchResult } from './workers-bench.ts';

export interface Report {
  date: string;
  quick: boolean;
  /** Servers pinned to CPU 1, the client to CPU 0. */
  pinned: boolean;
  machine: Machine;
  settings: {
    connections: number;
    warmupSec: number;
    durationSec: number;
    rounds: number;
    steadyRequestsPerSec: number;
    steadyWarmupSec: number;
    steadySec: number;
    decodeRoundMs: number;
    decodeRounds: number;
    variants: number;
  };
  payloadBytes: Record<number, number>;
  throughput: ThroughputResult[];
  steady: SteadyResult;
  /** The bare sink under the same steady load, for reference. */
  steadySink: SteadyResult;
  /** The sinks that also decode (`decode`), and decode and redact (`redact`), under the same steady load: the floors. */
  steadyFloors: Partial<Record<'decode' | 'redact', SteadyResult>>;
  /** The commit the receiver was built from. */
  revision: string;
  decode: DecodeBenchResult;
  /** CPU used by other processes during the decoder micro-benchmark, in cores. */
  decodeOtherCores: number;
  /** The Prometheus stage: metrics ingest and scrapes (in process). */
  metrics: MetricsBenchResult;
  /** Intake + span metrics + service graph + export to a sink standing in for Tempo, against the bare sink. */
  fullPath: ThroughputResult[];
  /** Maximum load while the export endpoint is down. */
  outage: OutageSlice[];
  profile: ProfileSummary | undefined;
  /** Intake with the trace store on (`npm start` defaults), from the store section, at 100 spans/request. */
  storeIntake?: ThroughputResult;
  /** `workers: 0` against `workers: auto` (`workersCount` threads), both on every CPU, 500 spans/request. */
  workers?: WorkersBenchResult;
  /** Redaction off against on (the default), 100 and 500 spans/request. */
  redaction?: RedactionBenchRow[];
  /** Lean decoding against full, redaction off (lean-bench.ts). */
  lean?: LeanBenchRow[];
}

/** The targets of the issue. */
export const TARGETS = {
  /** Issue 15: trace store off, default processors, one core (it was 25% before). */
  ingestShareOfSink: 0.3,
  /** Issue 15: `npm start` defaults (trace store on), whole receiver on one core. */
  storeIntakeShareOfSink: 0.12,
  /** Issue 15: `workers` on with two cores for the receiver, throughput against `workers: 0`... */
  workersThroughputTimes: 1.6,
  /** ...with CPU per span at most this many times single-thread mode's. */
  workersCpuPerSpanTimes: 1.1,
  /** Issue 13: intake with redaction on (the default) at least this share of intake with it off. */
  redactionOnOff: 0.85,
  /** The issue's own estimate of what 25% of the sink comes to on one core. */
  ingestSpansPerSecEstimate: 300_000,
  /** Issue 15: the receiver's CPU at the steady rate, at most this many times the bare sink's under the same load. */
  steadyCpuTimesSink: 2,
  /** Issue 15: the receiver's peak RSS at the steady rate, at most the sink's plus this. */
  steadyRssOverSinkMiB: 30,
  metricsPointsPerSec: 500_000,
  fullPathShareOfSink: 0.2,
  scrape100kMs: 300,
};

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (x: number, digits = 1) => `${(x * 100).toFixed(digits)}%`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
const yes = (ok: boolean) => (ok ? '**met**' : '**MISSED**');

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The sinks that do part of a receiver's work (bench/sink.ts SINK_WORK), as the tables name them. */
const FLOOR_SINKS: Record<string, string> = {
  'decode-sink': 'sink that decodes (floor)',
  'redact-sink': 'sink that decodes and redacts (floor)',
};

interface Pair {
  size: number;
  sink: ThroughputResult;
  receiver: ThroughputResult;
  ratio: number;
  /** The floor sinks measured in the same slices, if any. */
  floors: ThroughputResult[];
  /** The sink that decodes and redacts against the bare sink: the most a default receiver could reach. */
  redactFloor: number | undefined;
}

function pairs(report: Report): Pair[] {
  const sizes = [...new Set(report.throughput.map((r) => r.spansPerRequest))];
  return sizes.map((size) => {
    const sink = report.throughput.find((r) => r.spansPerRequest === size && r.server === 'sink') as ThroughputResult;
    const receiver = report.throughput.find(
      (r) => r.spansPerRequest === size && r.server === 'receiver',
    ) as ThroughputResult;
    const floors = report.throughput.filter((r) => r.spansPerRequest === size && r.server in FLOOR_SINKS);
    const redact = floors.find((r) => r.server === 'redact-sink');
    return {
      size,
      sink,
      receiver,
      ratio: receiver.spansPerSec / sink.spansPerSec,
      floors,
      redactFloor: redact && redact.spansPerSec / sink.spansPerSec,
    };
  });
}

/** "; the sink that decodes and redacts: 31.0%" for a target's measured cell, when it was measured. */
const floorNote = (text: string | undefined) =>
  text === undefined ? '' : `; the sink that decodes and redacts: ${text}`;

/** CPU per 10k spans/s, as a share of one core. */
const cpuPer10k = (r: ThroughputResult) => r.serverCores / (r.spansPerSec / 10_000);

export function throughputTable(report: Report): string {
  const rows: string[][] = [];
  for (const p of pairs(report)) {
    for (const r of [p.sink, ...p.floors, p.receiver]) {
      const ratio = pct(r.spansPerSec / p.sink.spansPerSec);
      rows.push([
        String(p.size),
        kib(r.requestBytes),
        r.server === 'sink' ? 'bare node:http sink' : (FLOOR_SINKS[r.server] ?? 'sonde receiver'),
        int(r.spansPerSec),
        `${int(r.sliceMinSpansPerSec)} – ${int(r.sliceMaxSpansPerSec)}`,
        int(r.requestsPerSec),
        r.server === 'sink' ? '100%' : r.server === 'receiver' ? `**${ratio}**` : ratio,
        pct(r.serverCores, 0),
        pct(cpuPer10k(r), 2),
        mib(r.rssPeak),
        pct(r.clientCores, 0),
        pct(r.otherCores, 0),
        `${r.latencyP50Ms} / ${r.latencyP99Ms}`,
        String(r.non2xx + r.errors + r.timeouts),
      ]);
    }
  }
  return table(
    [
      'spans/request',
      'request size',
      'server',
      'spans/s',
      'slowest – fastest slice',
      'requests/s',
      'receiver/sink',
      'server CPU (of one core)',
      'CPU per 10k spans/s',
      'peak RSS',
      'client CPU',
      'other processes CPU',
      'latency p50 / p99 (ms)',
      'non-2xx + errors',
    ],
    rows,
  );
}

export function steadyTable(report: Report): string {
  const row = (server: string, s: SteadyResult, bold: boolean) => {
    const b = (x: string) => (bold ? `**${x}**` : x);
    return [
      server,
      `${int(s.targetSpansPerSec)} spans/s (${report.settings.steadyRequestsPerSec} req/s × ${s.spansPerRequest})`,
      `${int(s.achievedSpansPerSec)} spans/s`,
      b(pct(s.serverCores, 2)),
      mib(s.rssAvg),
      b(mib(Math.max(s.rssPeak, s.hwm))),
      `${s.ok} / ${s.sent}`,
      pct(s.otherCores, 1),
    ];
  };
  return table(
    [
      'server',
      'offered',
      'achieved',
      'CPU (of one core)',
      'RSS average',
      'RSS peak (VmHWM)',
      'requests 2xx / sent',
      'other processes CPU',
    ],
    [
      row('sonde receiver', report.steady, true),
      row('bare node:http sink (reference)', report.steadySink, false),
      ...(['decode', 'redact'] as const).flatMap((work) => {
        const r = report.steadyFloors[work];
        return r ? [row(FLOOR_SINKS[`${work}-sink`], r, false)] : [];
      }),
    ],
  );
}

export function decodeTable(report: Report): string {
  const rows: string[][] = [];
  const sizes = [...new Set(report.decode.rows.map((r) => r.spansPerRequest))];
  for (const size of sizes) {
    const rs = report.decode.rows.filter((r) => r.spansPerRequest === size);
    const mine = rs[0];
    for (const r of rs) {
      rows.push([
        String(size),
        r.name,
        int(r.spansPerSec),
        `${int(r.min)} – ${int(r.max)}`,
        r === mine ? '1.00×' : `${(mine.spansPerSec / r.spansPerSec).toFixed(2)}×`,
      ]);
    }
  }
  return table(
    [
      'spans/request',
      'decoder (the first two give the same model; the generic trees alone and the walk that builds nothing are references)',
      'spans/s (one core, in process; median round)',
      'slowest – fastest round',
      "receiver's spans/s against it",
    ],
    rows,
  );
}

interface TargetRow {
  target: string;
  measured: string;
  ok: boolean;
}

export function targets(report: Report): TargetRow[] {
  const rows: TargetRow[] = [];
  const ps = pairs(report);
  for (const p of ps) {
    rows.push({
      target: `ingest ≥ ${pct(TARGETS.ingestShareOfSink, 0)} of the bare sink's throughput (${p.size} spans/request)`,
      measured: `${pct(p.ratio)} (${int(p.receiver.spansPerSec)} vs ${int(p.sink.spansPerSec)} spans/s${floorNote(p.redactFloor === undefined ? undefined : pct(p.redactFloor))})`,
      ok: p.ratio >= TARGETS.ingestShareOfSink,
    });
  }
  for (const p of ps) {
    rows.push({
      target: `ingest ≈ ${int(TARGETS.ingestSpansPerSecEstimate)} spans/s on one core, the issue's estimate of that 25% (${p.size} spans/request)`,
      measured: `${int(p.receiver.spansPerSec)} spans/s using ${pct(p.receiver.serverCores, 0)} of a core`,
      ok: p.receiver.spansPerSec >= TARGETS.ingestSpansPerSecEstimate,
    });
  }
  const sink100 = ps.find((p) => p.size === 100)?.sink;
  if (report.storeIntake && sink100) {
    const ratio = report.storeIntake.spansPerSec / sink100.spansPerSec;
    rows.push({
      target: `\`npm start\` defaults (trace store on) ≥ ${pct(TARGETS.storeIntakeShareOfSink, 0)} of the bare sink (100 spans/request${report.pinned ? ', whole receiver on one core' : ''})`,
      measured: `${pct(ratio)} (${int(report.storeIntake.spansPerSec)} vs ${int(sink100.spansPerSec)} spans/s)`,
      ok: ratio >= TARGETS.storeIntakeShareOfSink,
    });
  }
  if (report.workers) {
    const { single, multi, count } = report.workers;
    const times = multi.spansPerSec / single.spansPerSec;
    const cpu = multi.serverCores / multi.spansPerSec / (single.serverCores / single.spansPerSec);
    rows.push({
      target: `\`workers\` on (${count}) ≥ ${TARGETS.workersThroughputTimes}× the throughput of \`workers: 0\` (500 spans/request, every CPU)`,
      measured: `${times.toFixed(2)}× (${int(multi.spansPerSec)} vs ${int(single.spansPerSec)} spans/s; the client shares the cores)`,
      ok: times >= TARGETS.workersThroughputTimes,
    });
    rows.push({
      target: `\`workers\` on: CPU per span ≤ ${TARGETS.workersCpuPerSpanTimes}× \`workers: 0\`'s`,
      measured: `${cpu.toFixed(2)}× (${((multi.serverCores / multi.spansPerSec) * 1e6).toFixed(2)} vs ${((single.serverCores / single.spansPerSec) * 1e6).toFixed(2)} µs)`,
      ok: cpu <= TARGETS.workersCpuPerSpanTimes,
    });
  }
  for (const r of report.redaction ?? []) {
    rows.push({
      target: `redaction on (the default) ≥ ${pct(TARGETS.redactionOnOff, 0)} of intake with it off (${r.spansPerRequest} spans/request)`,
      measured: `${pct(r.ratio)} (${int(r.b.spansPerSec)} vs ${int(r.a.spansPerSec)} spans/s; by CPU per span ${pct(r.cpuRatio)})`,
      ok: r.ratio >= TARGETS.redactionOnOff,
    });
  }
  const s = report.steady;
  const sink = report.steadySink;
  const cpuTimes = s.serverCores / sink.serverCores;
  rows.push({
    target: `steady 10,000 spans/s in batches of 100: CPU ≤ ${TARGETS.steadyCpuTimesSink}× the bare sink's`,
    measured: `${cpuTimes.toFixed(2)}× (${pct(s.serverCores, 2)} vs ${pct(sink.serverCores, 2)} of a core${floorNote(report.steadyFloors.redact && `${(report.steadyFloors.redact.serverCores / sink.serverCores).toFixed(2)}×`)})`,
    ok: cpuTimes <= TARGETS.steadyCpuTimesSink,
  });
  const peak = Math.max(s.rssPeak, s.hwm);
  const sinkPeak = Math.max(sink.rssPeak, sink.hwm);
  rows.push({
    target: `steady 10,000 spans/s in batches of 100: peak RSS ≤ the bare sink's + ${TARGETS.steadyRssOverSinkMiB} MiB`,
    measured: `+${mib(peak - sinkPeak)} (${mib(peak)} vs ${mib(sinkPeak)} peak)`,
    ok: peak - sinkPeak <= TARGETS.steadyRssOverSinkMiB * 2 ** 20,
  });
  const ingest = report.metrics.ingest.find((r) => r.series === 10_000);
  if (ingest) {
    rows.push({
      target: `OTLP metrics ingest ≥ ${int(TARGETS.metricsPointsPerSec)} data points/s on one core, 10,000 active series`,
      measured: `${int(ingest.pointsPerCpuSec)} points per CPU second (${int(ingest.pointsPerSec)} points/s of wall time)`,
      ok: ingest.pointsPerCpuSec >= TARGETS.metricsPointsPerSec,
    });
  }
  const scrape = report.metrics.scrape.find((r) => r.series === 100_000);
  if (scrape) {
    const worst = Math.max(scrape.firstMs, scrape.changedMs);
    rows.push({
      target: `a scrape of 100,000 series under ${TARGETS.scrape100kMs} ms`,
      measured: `${worst.toFixed(0)} ms (every series rendered), ${scrape.unchangedMs.toFixed(1)} ms unchanged`,
      ok: worst < TARGETS.scrape100kMs,
    });
  }
  const fullSink = report.fullPath.find((r) => r.server !== 'receiver');
  const fullReceiver = report.fullPath.find((r) => r.server === 'receiver');
  if (fullSink && fullReceiver) {
    const ratio = fullReceiver.spansPerSec / fullSink.spansPerSec;
    rows.push({
      target: `full trace path (intake, span metrics, service graph, export) ≥ ${pct(TARGETS.fullPathShareOfSink, 0)} of the bare sink`,
      measured: `${pct(ratio)} (${int(fullReceiver.spansPerSec)} vs ${int(fullSink.spansPerSec)} spans/s)`,
      ok: ratio >= TARGETS.fullPathShareOfSink,
    });
  }
  if (report.outage.length >= 2) {
    // Flat: the RSS does not grow while the outage lasts. The queue is full from the first slice that
    // accepted nothing; the process then settles (the garbage of the refused requests, the batches
    // the exporter retries), within a slice unpinned and over about 20 s pinned, when exactly
    // differing from run to run (main.ts, OUTAGE_SLICES).
    // So the later half of the full-queue slices is compared with the earlier half: growth there
    // is memory held per refused request. Fewer than two such slices: every slice after the first
    // against the first.
    const full = report.outage.filter((o) => o.ok === 0);
    const [early, late] =
      full.length >= 2
        ? [full.slice(0, full.length >> 1), full.slice(full.length >> 1)]
        : [report.outage.slice(0, 1), report.outage.slice(1)];
    const first = Math.max(...early.map((o) => o.rssMax));
    const last = Math.max(...late.map((o) => o.rssMax));
    const span = (slices: OutageSlice[]) =>
      slices.length === 1
        ? `the slice at ${slices[0].atSec} s`
        : `${slices[0].atSec}–${slices[slices.length - 1].atSec} s`;
    rows.push({
      target:
        "export outage: RSS flat while the queue is full (the peak of the later half of the slices that accepted nothing within 10% of the earlier half's)",
      measured: `${mib(first)} at most in ${span(early)}, ${mib(last)} at most in ${span(late)}; ${int(report.outage.reduce((n, o) => n + o.non2xx, 0))} requests refused`,
      ok: last <= first * 1.1,
    });
  }
  const failures = report.throughput
    .filter((r) => r.server === 'receiver')
    .reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, s.failed);
  rows.push({
    target: 'the receiver answers 2xx to every request',
    measured: `${failures} non-2xx, errors or timeouts`,
    ok: failures === 0,
  });
  return rows;
}

export function targetsTable(report: Report): string {
  return table(
    ['target', 'measured', 'result'],
    targets(report).map((t) => [t.target, t.measured, yes(t.ok)]),
  );
}

export function metricsTable(report: Report): string {
  const ingest = new Map(report.metrics.ingest.map((r) => [r.series, r]));
  return table(
    [
      'active series',
      'ingest (points per CPU second, all threads)',
      'ingest (points/s of wall time)',
      '/metrics size',
      'scrape, all rendered',
      'scrape, all changed',
      'scrape, unchanged',
      'heap allocated by the unchanged scrape',
      'longest event-loop stall in a scrape',
    ],
    report.metrics.scrape.map((r) => [
      int(r.series),
      int(ingest.get(r.series)?.pointsPerCpuSec ?? 0),
      int(ingest.get(r.series)?.pointsPerSec ?? 0),
      mib(r.bytes),
      `${r.firstMs.toFixed(0)} ms`,
      `${r.changedMs.toFixed(0)} ms`,
      `${r.unchangedMs.toFixed(2)} ms`,
      kib(r.unchangedHeapKiB * 1024),
      `${r.longestStallMs.toFixed(1)} ms`,
    ]),
  );
}

export function fullPathTable(report: Report): string {
  const rows = report.fullPath.map((r) => [
    r.server === 'receiver' ? 'sonde receiver, exporting to a sink as Tempo' : 'bare node:http sink',
    int(r.spansPerSec),
    pct(r.serverCores, 0),
    mib(r.rssPeak),
    `${r.non2xx + r.errors + r.timeouts}`,
  ]);
  const outage = report.outage.map((o) => [`${o.atSec} s`, int(o.ok), int(o.non2xx), mib(o.rssMax)]);
  return [
    table(['server', 'spans/s', 'server CPU (of one core)', 'peak RSS', 'non-2xx + errors'], rows),
    '',
    'Export endpoint down, same load:',
    '',
    table(['time into the outage', 'requests accepted', 'requests refused (503)', 'RSS peak in the slice'], outage),
  ].join('\n');
}

export function profileSection(p: ProfileSummary): string {
  const phases = table(
    ['phase (each sample counted once, in its innermost phase)', 'CPU time', 'share of busy time'],
    p.phases.filter((x) => x.ms > 0).map((x) => [x.phase, `${(x.ms / 1000).toFixed(2)} s`, pct(x.share)]),
  );
  const top = table(
    ['function (self time)', 'where', 'share of busy time'],
    p.top.map((t) => [`\`${t.function}\``, `\`${t.where}\``, pct(t.share)]),
  );
  return [
    `Receiver under \`node --cpu-prof\` during a maximum-throughput run (100 spans/request, same client), ${(p.busyMs / 1000).toFixed(1)} s of busy CPU sampled. The profiler slows the process down a little; read shares, not times. Each sample counts once, for the innermost phase on its stack (native calls such as \`latin1Slice\` count for the receiver code that made them).`,
    '',
    phases,
    '',
    'Top functions by self time:',
    '',
    top,
  ].join('\n');
}

/** What goes to the terminal at the end: the tables, ready to paste. */
export function renderSummary(report: Report): string {
  const parts = [
    `## sonde receiver benchmark: ${machineLine(report.machine)}`,
    '',
    ...interferenceNote(report),
    '### OTLP/HTTP protobuf ingest at maximum throughput',
    '',
    throughputTable(report),
    '',
    '### Steady load',
    '',
    steadyTable(report),
    '',
    '### Decoder micro-benchmark',
    '',
    decodeTable(report),
    '',
    '### Prometheus stage: OTLP metrics ingest and /metrics scrapes',
    '',
    metricsTable(report),
    '',
    '### Full trace path and export outage',
    '',
    fullPathTable(report),
    '',
    ...(report.workers ? ['### Intake workers', '', workersTable(report.workers), ''] : []),
    ...(report.redaction ? [renderRedactionSection(report.redaction).replace(/^## /, '### '), ''] : []),
    ...(report.lean ? [renderLeanSection(report.lean).replace(/^## /, '### '), ''] : []),
    '### Targets',
    '',
    targetsTable(report),
  ];
  if (report.profile) parts.push('', '### Where the receiver spends its CPU', '', profileSection(report.profile));
  return parts.join('\n');
}

/** The most CPU that other processes used during any measured window, in cores. */
export function maxOtherCores(report: Report): number {
  return Math.max(
    report.decodeOtherCores,
    report.steady.otherCores,
    report.steadySink.otherCores,
    ...Object.values(report.steadyFloors).map((r) => r.otherCores),
    ...report.throughput.map((r) => r.otherCores),
  );
}

function interferenceNote(report: Report): string[] {
  const other = maxOtherCores(report);
  if (other < 0.1) {
    return [
      `Other processes used at most ${pct(other, 0)} of a core during any measured window: the machine was otherwise quiet.`,
      '',
    ];
  }
  return [
    `> **Warning:** other processes used up to ${pct(other, 0)} of a core during a measured window (see the "other processes CPU" columns): the figures of those windows are disturbed; run the bench again on a quiet machine.`,
    '',
  ];
}

/** CPU milliseconds per request, from a share of a core and a request rate. */
const msPerRequest = (cores: number, requestsPerSec: number) => (cores * 1000) / requestsPerSec;

/** Facts computed from the figures, to read the tables by. */
function readingNotes(report: Report): string[] {
  const notes: string[] = [];
  const ps = pairs(report);
  notes.push(
    `- **Maximum throughput.** The receiver took ${ps.map((p) => `${int(p.receiver.spansPerSec)} spans/s at ${p.size} spans/request (${pct(p.ratio)} of the sink)`).join(' and ')}, using about ${pct(Math.max(...ps.map((p) => p.receiver.serverCores)), 0)} of a core: it is bound by its one JavaScript thread.`,
  );
  if (report.profile) {
    const phases = [...report.profile.phases].sort((a, b) => b.ms - a.ms).slice(0, 3);
    notes.push(
      `- **Where the time goes** at maximum throughput (profile below): ${phases.map((p) => `${p.phase} ${pct(p.share, 0)}`).join(', ')}.`,
    );
  }
  const s = report.steady;
  const k = report.steadySink;
  const peak = (x: SteadyResult) => Math.max(x.rssPeak, x.hwm);
  notes.push(
    `- **Steady load.** At 10,000 spans/s the receiver used ${pct(s.serverCores, 1)} of a core and peaked at ${mib(peak(s))}; the bare sink, under the same load, used ${pct(k.serverCores, 1)} and peaked at ${mib(peak(k))}. On this machine that is the floor for any Node.js HTTP server taking this traffic; the receiver's own share on top of it is ${pct(Math.max(0, s.serverCores - k.serverCores), 1)} of a core and ${mib(Math.max(0, peak(s) - peak(k)))}.`,
  );
  const floors = (['decode', 'redact'] as const).map((work) => ({
    work,
    shares: ps
      .map((p) => p.floors.find((r) => r.server === `${work}-sink`))
      .map((r, i) => r && r.spansPerSec / ps[i].sink.spansPerSec),
    steady: report.steadyFloors[work],
  }));
  if (floors.every((f) => f.steady && f.shares.every((x) => x !== undefined))) {
    const [decode, redact] = floors;
    const shares = (f: (typeof floors)[number]) => f.shares.map((x) => pct(x ?? 0)).join(' and ');
    const times = (f: (typeof floors)[number]) => `${((f.steady?.serverCores ?? 0) / k.serverCores).toFixed(2)}×`;
    notes.push(
      `- **Floors.** A sink that also decodes each request with the receiver's decoder took ${shares(decode)} of the bare sink's throughput (${ps.map((p) => p.size).join(' and ')} spans/request), and one that also runs the default redaction ${shares(redact)}; at the steady rate they used ${times(decode)} and ${times(redact)} the bare sink's CPU. That is as far as a receiver with this decoder and the default redaction could go before it derives, stores or forwards anything, or answers through its own HTTP stack: a target beyond it needs a faster decoder or redaction, not a leaner receiver around them.`,
    );
  }
  const r100 = ps.find((p) => p.size === s.spansPerRequest);
  if (r100) {
    const reqRate = report.settings.steadyRequestsPerSec;
    notes.push(
      `- **Cost of one ${s.spansPerRequest}-span request**, in CPU: the receiver ${msPerRequest(r100.receiver.serverCores, r100.receiver.requestsPerSec).toFixed(2)} ms at maximum throughput, ${msPerRequest(s.serverCores, reqRate).toFixed(2)} ms at ${reqRate} requests/s; the sink ${msPerRequest(r100.sink.serverCores, r100.sink.requestsPerSec).toFixed(3)} ms and ${msPerRequest(k.serverCores, reqRate).toFixed(3)} ms. Both cost several times more per request at a low rate than at saturation, so "CPU per 10k spans/s" from the maximum-throughput runs underestimates the steady-load CPU.`,
    );
  }
  return notes;
}

/** docs/benchmarks.md. */
export function renderDoc(report: Report): string {
  const m = report.machine;
  const s = report.settings;
  const ps = pairs(report);
  const sinkClientBound = ps.filter((p) => p.sink.serverCores < 0.9);
  const missed = targets(report).filter((t) => !t.ok);
  const decodeRatios = [...new Set(report.decode.rows.map((r) => r.spansPerRequest))].map((size) => {
    const rs = report.decode.rows.filter((r) => r.spansPerRequest === size);
    return `${(rs[0].spansPerSec / rs[1].spansPerSec).toFixed(2)}× at ${size} spans/request`;
  });
  // The receiver's decoder against the fastest generic tree alone (protobufjs's or pbf's), per size.
  const treeRatios = [...new Set(report.decode.rows.map((r) => r.spansPerRequest))].map((size) => {
    const rs = report.decode.rows.filter((r) => r.spansPerRequest === size);
    const trees = rs.filter((r) => r.treeOnly);
    return `${(rs[0].spansPerSec / Math.max(...trees.map((r) => r.spansPerSec))).toFixed(2)}×`;
  });
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` (\`packages/receiver/bench/main.ts\`) on ${report.date.slice(0, 10)}. Rerun it to refresh this page; it rewrites the whole file.`,
    '',
    "The cost of `@sonde/node` on an instrumented service is in [benchmarks-instrumentation.md](benchmarks-instrumentation.md) (`npm run bench -w @sonde/demo`); the redaction engine's cost per attribute is in [packages/redact/README.md](../packages/redact/README.md) (`npm run bench -w @sonde/redact`). The root `npm run bench` runs all three.",
    '',
    'How these figures came about, run by run (the A/B comparisons behind each change, with their commands, and the experiments that were dropped): [performance-history.md](performance-history.md), written by hand.',
    '',
    '> **All figures come from one run on one machine.** Absolute numbers depend on that machine and on what else ran on it;',
    '> the ratios (receiver against the bare sink, hand-written decoder against protobufjs) are what carries over.',
    report.pinned
      ? "> The server under test runs on one core, the client on the other: every thread of the server shares that core, the embedded stores' writers included, where a deployment gives them the machine's other cores (unpinned figures for the stores are in [performance-history.md](performance-history.md)); the `workers` rows run unpinned."
      : '> The client and the server under test share the same cores.',
    '',
    ...interferenceNote(report),
    '## Machine',
    '',
    `- CPU: ${m.cpu}`,
    `- Cores: ${m.cores} (\`os.availableParallelism()\`)`,
    `- Memory: ${m.memoryGiB.toFixed(1)} GiB`,
    `- Node: ${m.node}`,
    `- OS: ${m.kernel}`,
    `- Receiver: built from ${report.revision}`,
    '',
    '## Summary',
    '',
    missed.length === 0
      ? 'The receiver met every target.'
      : `The receiver **missed ${missed.length} of ${targets(report).length} targets** (marked MISSED below).`,
    '',
    targetsTable(report),
    '',
    "The steady-load targets come from the OpenTelemetry Collector testbed's scenario (10,000 spans/s in batches of 100), in which the Collector uses 5–13% of a core and 51–100 MiB.",
    '',
    '### Reading the results',
    '',
    ...readingNotes(report),
    '',
    '## Method',
    '',
    `- **Payloads.** ${s.variants * 500} spans made with the OpenTelemetry JS SDK (\`@opentelemetry/sdk-trace\` TracerProvider, InMemorySpanExporter) and serialized with its own \`ProtobufTraceSerializer.serializeRequest\` (\`@opentelemetry/otlp-transformer\`): traces of one SERVER span and 3–7 CLIENT/INTERNAL children, 11 attributes per span (\`http.method\`, \`http.route\`, \`url.full\`, \`http.status_code\`, \`server.address\`, \`server.port\`, \`user_agent.original\` and four \`app.*\` of string, int, bool and double type), one event on about a third of the spans and an \`exception\` event (with a stack trace) on about a tenth, two instrumentation scopes, one resource of 14 attributes. ${s.variants} different requests of each size, cycled through: 100 spans (~${(report.payloadBytes[100] / 1024).toFixed(0)} KiB) and 500 spans (~${(report.payloadBytes[500] / 1024).toFixed(0)} KiB). A seeded generator makes the same bytes every run.`,
    "- **Servers**, each a child process started fresh for each case: the receiver through its CLI (`bin/sonde-receiver.js`, built `dist/`) with its default configuration, `SONDE_LOG_LEVEL=warn`, every listener on 127.0.0.1; and a bare sink (`bench/sink.ts`, run as plain JavaScript like the built receiver), a `node:http` server that reads each body into one Buffer and answers 200 with an empty body. Two more sinks, the floors, do the same and also decode each body with the receiver's decoder (its built `dist/`, default limits), one of them then running the default redaction over the spans: what any receiver with this decoder must do with a request before it derives or stores anything, with the privacy default and without. The sinks run with glibc's malloc thresholds fixed (`MALLOC_MMAP_THRESHOLD_` 4 MiB, `MALLOC_TRIM_THRESHOLD_` 16 MiB; `bench/proc.ts`, `SINK_MALLOC_ENV`): with glibc's defaults they kept giving back the top of their heap and growing it again, request after request, which the receiver does not (1 `brk` in 8,000 requests under `strace -c`); at 100 spans/request the bare sink took 1.46× the spans/s with them (2026-12-05), at 500 1.03×. The sink's figures at 100 spans/request before that date were taken without them.",
    `- **Client**: autocannon in the bench process, the same for both servers: ${s.connections} connections, no pipelining, \`POST /v1/traces\` with \`content-type: application/x-protobuf\`, ${s.warmupSec} s warm-up for each server, then ${s.durationSec} s measured for each in ${s.rounds} slices that alternate between sink and receiver (both alive, started fresh for each request size), so that a slow patch of the machine does not fall on one of them only. spans/s = 2xx responses × spans per request ÷ duration.`,
    report.pinned
      ? '- **CPU pinning** (`--pin`, `taskset`): after the decoder micro-benchmark, every server runs on CPU 1 only and the bench process (the client) on CPU 0 only, so the server under test has exactly one core, its GC and libuv threads included.'
      : '- **No CPU pinning**: servers and client float over both CPUs, as a Node.js process normally runs (its GC and libuv threads may use the other core, hence server CPU above 100%).',
    '- **CPU and memory** of the server process from `/proc/<pid>/stat` (utime + stime, over the measured window) and `/proc/<pid>/status` (VmRSS sampled every 100–200 ms, and VmHWM). "CPU per 10k spans/s" = (CPU seconds per second) ÷ (spans/s ÷ 10,000), as a share of one core.',
    `- **Steady load**: a fresh receiver, ${s.steadyRequestsPerSec} requests/s of 100 spans (10,000 spans/s), evenly spaced by a paced \`node:http\` keep-alive client, ${s.steadyWarmupSec} s warm-up then ${s.steadySec} s measured; then the same against a fresh bare sink, for reference.`,
    `- **Decoder micro-benchmark**, in the bench process: the same payloads decoded by the receiver's \`decodeTraceRequest\` (protobuf straight into the model) and by protobufjs (generic decoder, the opentelemetry-proto files in \`proto/\`) followed by a mapping of its message objects to the same model (ids to hex, Long to bigint, AnyValue to the model's values). The two outputs are checked deep-equal before timing (pbf's tree, from the same \`.proto\` files, is checked for its span count); then ${s.decodeRounds} rounds of ${s.decodeRoundMs} ms per decoder, alternating between decoders, after a warm-up, with a full garbage collection before each round; the median round is reported.`,
    '',
    '## Results',
    '',
    '### OTLP/HTTP protobuf ingest at maximum throughput',
    '',
    throughputTable(report),
    '',
    'The spread between slices shows how steady the machine itself was over the run (on a virtual machine, the load of the host\'s other tenants is invisible from inside). "client CPU" is the bench process (autocannon) over the same window; "other processes CPU" is the rest of the machine (from `/proc/stat`), which should be near 0 for the figures to be clean.',
  ];
  if (sinkClientBound.length > 0) {
    lines.push(
      `The sink used less than 90% of a core (${sinkClientBound.map((p) => `${pct(p.sink.serverCores, 0)} at ${p.size} spans/request`).join(', ')}): there the client, not the sink, sets the pace, so the sink's figure is a lower bound of what it can take and the receiver/sink ratio is, if anything, flattering to the receiver.`,
    );
  }
  lines.push(
    '',
    '### Steady load: 10,000 spans/s in batches of 100',
    '',
    steadyTable(report),
    '',
    `The bare sink under the same load (same payloads, same paced client) takes ${pct(report.steadySink.serverCores, 2)} of a core and peaks at ${mib(Math.max(report.steadySink.rssPeak, report.steadySink.hwm))}: that is what any Node.js HTTP server pays on this machine just to receive 100 requests/s of ~${(report.payloadBytes[100] / 1024).toFixed(0)} KiB, before doing anything with them. The receiver's cost above that floor is ${pct(Math.max(0, report.steady.serverCores - report.steadySink.serverCores), 2)} of a core and ${mib(Math.max(0, Math.max(report.steady.rssPeak, report.steady.hwm) - Math.max(report.steadySink.rssPeak, report.steadySink.hwm)))}.`,
    ...(report.steady.memory
      ? [
          '',
          `The receiver's own account of its memory right after the window (its \`/metrics\`: prom-client's process and V8 heap metrics): ${describeMemory(report.steady.memory)}. What the RSS holds beyond the heap and external memory is native: Node and V8 themselves, thread stacks, malloc's arenas.`,
        ]
      : []),
    '',
    '### Decoder: hand-written against generic (protobufjs, pbf)',
    '',
    decodeTable(report),
    '',
    `Decoding straight into the model is ${decodeRatios.join(' and ')} faster than protobufjs followed by the mapping to the model, which is what a receiver built on a generic decoder would have to do; protobufjs alone and pbf alone (their generic trees, not yet usable; pbf's has the ids as views of the body and 64-bit integers as numbers, which lose precision past 2^53) are shown for reference: building the whole model, the receiver's decoder still takes ${treeRatios.join(' and ')} the spans/s of the faster of the two. A receiver built on either generic decoder from the registry would have a lower floor, not a higher one: what decoding costs here is the model's strings and objects (about half: see the walk that builds nothing) and the walk itself.`,
    '',
    '### Full trace path and export outage',
    '',
    fullPathTable(report),
    '',
    'The receiver with span metrics, the service graph and the Tempo exporter on (its defaults), exporting to a second bare sink that stands in for Tempo, against the bare sink, same client and payloads (100 spans/request). Then the export endpoint is a closed port: the in-memory export queue (64 MiB) fills and intake answers 503 with Retry-After, so memory stops growing; the table shows each slice of that outage.',
    '',
    '### Prometheus stage: OTLP metrics ingest and /metrics scrapes',
    '',
    metricsTable(report),
    '',
    `In process (\`bench/metrics-bench.ts\`): the receiver's Prometheus consumer takes batches of cumulative counters (1,000 series per metric, 3 attributes per point; the batches are built beforehand and only \`consume()\` is timed, in wall time and in CPU time of the whole process, the latter being the "one core" figure and the one that holds on a busy machine), then \`/metrics\` is rendered into a counting sink three times: the first scrape (every family rendered), a scrape with nothing changed (the per-family cache is written as it is: the heap it allocates does not grow with the store), and one after every series changed. The longest event-loop stall is the longest gap seen by a 0 ms interval timer during that last scrape: what a request arriving mid-scrape would wait.`,
    ...(report.workers
      ? [
          '',
          '### Intake workers',
          '',
          workersTable(report.workers),
          '',
          `Two receivers with the bench's defaults, one with \`workers: 0\` (everything on the main thread) and one with \`workers: auto\` (${report.workers.count} intake worker threads decode, validate, redact and derive span metrics and event counts; the main thread keeps HTTP, admission, the consumers that take bytes and the service graph), 500 spans/request in alternating slices, neither pinned: both may use every CPU, which the client shares. CPU per span counts every thread of the receiver.`,
        ]
      : []),
    ...(report.redaction
      ? [
          '',
          renderRedactionSection(report.redaction).replace(/^## /, '### '),
          '',
          "Two receivers side by side, one with `redaction.enabled: false` and one with the defaults (every detector, secrets masked), same client and payloads, in alternating slices (three times the slices of the other comparisons: the two throughputs are close). The one with redaction off decodes in full (`debug.full_decode: true`), as redaction on needs: the ratio is redaction's own cost. Without it, a receiver with redaction off decodes lean and goes faster still (`node bench/lean-ab.ts`; packages/receiver/README.md, Lean decoding).",
        ]
      : []),
    ...(report.lean
      ? [
          '',
          renderLeanSection(report.lean).replace(/^## /, '### '),
          '',
          "Two receivers with redaction off side by side, same client and payloads, in alternating slices (as the redaction comparison): one decodes every attribute at intake (`debug.full_decode: true`), the other decodes lean, as the receiver does when no processor reads every attribute: span and event attributes stay the request's bytes until something reads them (packages/receiver/README.md, Lean decoding). With redaction on (the default) the receiver decodes in full, which costs less when every attribute is read anyway.",
        ]
      : []),
  );
  if (report.profile) lines.push('', '### Where the receiver spends its CPU', '', profileSection(report.profile));
  lines.push('');
  return lines.join('\n');
}

/** `workers: 0` against `workers: auto`: throughput, CPU per span (every thread), the main thread's share. */
export function workersTable(w: WorkersBenchResult): string {
  const us = (cores: number, r: ThroughputResult) => ((cores / r.spansPerSec) * 1e6).toFixed(2);
  const row = (workers: string, r: ThroughputResult) => [
    workers,
    int(r.spansPerSec),
    r.serverCores.toFixed(2),
    us(r.serverCores, r),
    us(r.serverMainCores, r),
    us(r.serverCores - r.serverMainCores, r),
    r.clientCores.toFixed(2),
    pct(r.otherCores, 0),
  ];
  return table(
    [
      'workers',
      'spans/s',
      'receiver CPU (cores)',
      'CPU µs/span',
      'main thread µs/span',
      'other threads µs/span',
      'client CPU (cores)',
      'other processes',
    ],
    [row('0', w.single), row(String(w.count), w.multi)],
  );
}

/**
 * The embedded trace store's benchmark (`npm run bench -- store` runs only this section):
 *
 * 1. Intake with the store on against intake with it off: the same 100-span requests at maximum
 *    throughput, a fresh receiver each, one after the other (not alternating: the store-on receiver's
 *    writer thread keeps working after its slice and would take CPU from the other's). With the store
 *    on, the spans/s counted are the accepted ones (2xx); refusals (503 when the write queue is full)
 *    are reported, and so is the store's own write rate (sonde_trace_store_spans_written_total).
 *    "Store on" has the default `durability: wal` (each request journaled and fdatasynced before its
 *    response); "store on, durability memory" measures the same without the write-ahead log, so that
 *    the log's intake cost is the ratio of the two (with the WAL's syncs per request).
 * 2. Queries over a large store: a data set of SDK-made traces (the bench payloads, with fresh trace
 *    ids and start times spread over the last 24 hours) written straight into the store's database
 *    through TraceDb (bulk: indexes built after the load), then a receiver serving it on its admin
 *    port, and Grafana's requests timed one after the other: trace by id (protobuf) and searches.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanTraceRequest, startReceiver, TraceDb, validateConfig } from '../dist/index.js';
import { fmtInt } from './decode-bench.ts';
import { compareMaxThroughput, type MaxThroughputSettings, scrape, type ThroughputResult } from './load.ts';
import type { Payload } from './payloads.ts';
import { freePort, startReceiver as startReceiverProcess } from './proc.ts';
import { measureWriterCpu, type WriterCpuResult } from './store-cpu.ts';

export interface LatencyStats {
  name: string;
  request: string;
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Traces returned per request (search) or bytes (trace by id), on average. */
  avgResult: number;
}

export interface StoreBenchResult {
  /** The writer thread's work (index, compress, write) per span, CPU time, measured on its own. */
  writerCpu: WriterCpuResult;
  intakeOff: ThroughputResult;
  intakeOn: ThroughputResult;
  /** The store on with durability: memory (no write-ahead log): intakeOn / intakeMemory is the WAL's cost. */
  intakeMemory: ThroughputResult;
  /** fdatasyncs of the write-ahead log per accepted request, in the store-on (wal) slices. */
  walSyncsPerRequest: number;
  /** With trace_store.on_full: drop_newest: intake, and the accepted spans the store dropped. */
  intakeDrop: ThroughputResult;
  droppedSpans: number;
  /** Spans the store wrote during its measured slices (its queue empty at each slice's start), per second of them. */
  storeWriteSpansPerSec: number;
  storeWrittenSpans: number;
  storeWriteSec: number;
  datasetSpans: number;
  datasetTraces: number;
  datasetBuildSec: number;
  databaseBytes: number;
  queries: LatencyStats[];
}

const INDEXED = ['http.route', 'http.method', 'http.status_code', 'http.request.method', 'db.system.name'];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runStoreBench(
  payload: Payload,
  settings: MaxThroughputSettings,
  options: { datasetSpans: number; log: (line: string) => void },
): Promise<StoreBenchResult> {
  const { log } = options;
  const work = mkdtempSync(join(tmpdir(), 'sonde-bench-store-'));
  try {
    log(
      "store: the writer's CPU time per span (index + write transactions of 16 MiB, the default batch_max_size, into a store of 1M spans)",
    );
    const writerCpu = measureWriterCpu(payload, {
      spans: 200_000,
      preload: 1_000_000,
      batchBytes: 16 * 1024 * 1024,
      log,
    });
    const configFile = join(work, 'sonde.yaml');
    writeFileSync(configFile, `trace_store:\n  indexed_attributes: [${INDEXED.join(', ')}]\n`);

    // Four receivers (store off, on, on with durability: memory, on with on_full: drop_newest), measured in alternating slices, so that
    // the ratios compare slices taken under the same machine conditions (this VM's speed drifts by tens
    // of percent over minutes). Before each slice, the stores' write queues are drained: no slice pays
    // for the writing of another's.
    log(
      `store: intake with the store off, on (indexed attributes: ${INDEXED.join(', ')}) on with durability: memory and on with on_full: drop_newest, ` +
        `${payload.spansPerRequest} spans/request, fresh receivers, in alternating slices`,
    );
    const dropConfig = join(work, 'drop.yaml');
    writeFileSync(dropConfig, `trace_store:\n  on_full: drop_newest\n  indexed_attributes: [${INDEXED.join(', ')}]\n`);
    const memoryConfig = join(work, 'memory.yaml');
    writeFileSync(memoryConfig, `trace_store:\n  durability: memory\n  indexed_attributes: [${INDEXED.join(', ')}]\n`);
    const onPort = await freePort();
    const memoryPort = await freePort();
    const dropPort = await freePort();
    const off = await startReceiverProcess({
      dataDir: join(work, 'off'),
      env: { SONDE_TRACE_STORE: 'false' },
      args: ['--config', configFile],
    });
    const on = await startReceiverProcess({
      dataDir: join(work, 'on'),
      env: { SONDE_TRACE_STORE: 'true', SONDE_ADMIN_ADDR: `127.0.0.1:${onPort}` },
      args: ['--config', configFile],
    });
    const memory = await startReceiverProcess({
      dataDir: join(work, 'memory'),
      env: { SONDE_TRACE_STORE: 'true', SONDE_ADMIN_ADDR: `127.0.0.1:${memoryPort}` },
      args: ['--config', memoryConfig],
    });
    const drop = await startReceiverProcess({
      dataDir: join(work, 'drop'),
      env: { SONDE_TRACE_STORE: 'true', SONDE_ADMIN_ADDR: `127.0.0.1:${dropPort}` },
      args: ['--config', dropConfig],
    });
    off.name = 'store off';
    on.name = 'store on';
    memory.name = 'store on, durability memory';
    drop.name = 'store on, drop';
    let intakeOff: ThroughputResult;
    let intakeOn: ThroughputResult;
    let intakeMemory: ThroughputResult;
    let walSyncs = 0;
    let intakeDrop: ThroughputResult;
    let written = 0;
    let writeSec = 0;
    let droppedSpans = 0;
    try {
      const drained = async () => {
        const t0 = performance.now();
        for (const port of [onPort, memoryPort, dropPort]) {
          while ((await scrape(port, 'sonde_trace_store_queue_bytes')) > 0 && performance.now() - t0 < 120_000) {
            await sleep(100);
          }
        }
      };
      let before = 0;
      let syncsBefore = 0;
      [intakeOff, intakeOn, intakeMemory, intakeDrop] = await compareMaxThroughput(
        [off, on, memory, drop],
        payload,
        settings,
        log,
        {
          beforeSlice: async (server) => {
            await drained();
            if (server === on) {
              before = await scrape(onPort, 'sonde_trace_store_spans_written_total');
              syncsBefore = await scrape(onPort, 'sonde_trace_store_wal_syncs_total');
            }
          },
          afterSlice: async (server, seconds) => {
            if (server !== on) return;
            written += (await scrape(onPort, 'sonde_trace_store_spans_written_total')) - before;
            walSyncs += (await scrape(onPort, 'sonde_trace_store_wal_syncs_total')) - syncsBefore;
            writeSec += seconds;
          },
        },
      );
      droppedSpans = await scrape(dropPort, 'sonde_trace_store_dropped_spans_total');
    } finally {
      await Promise.all([off.stop(), on.stop(), memory.stop(), drop.stop()]);
    }
    intakeOff.server = 'receiver, store off';
    intakeOn.server = 'receiver, store on (durability: wal)';
    intakeMemory.server = 'receiver, store on, durability: memory';
    const walSyncsPerRequest = walSyncs / intakeOn.ok;
    intakeDrop.server = 'receiver, store on, on_full: drop_newest';
    const storeWriteSpansPerSec = written / writeSec;
    log(
      `  store off ${fmtInt(intakeOff.spansPerSec)} spans/s, store on ${fmtInt(intakeOn.spansPerSec)} spans/s accepted ` +
        `(${intakeOn.non2xx} refused requests): ${((intakeOn.spansPerSec / intakeOff.spansPerSec) * 100).toFixed(1)}%; ` +
        `the store wrote ${fmtInt(written)} spans during its ${writeSec.toFixed(1)} s of slices (${fmtInt(storeWriteSpansPerSec)} spans/s)`,
    );
    log(
      `  store on, durability wal ${fmtInt(intakeOn.spansPerSec)} spans/s vs durability memory ${fmtInt(intakeMemory.spansPerSec)} spans/s ` +
        `(${intakeMemory.non2xx} refused): ${pct(intakeOn.spansPerSec, intakeMemory.spansPerSec)}; ` +
        `${walSyncsPerRequest.toFixed(2)} WAL fdatasyncs per accepted request; latency p50 ${intakeOn.latencyP50Ms.toFixed(1)} vs ${intakeMemory.latencyP50Ms.toFixed(1)} ms`,
    );
    log(
      `  store on (drop) ${fmtInt(intakeDrop.spansPerSec)} spans/s accepted: ${((intakeDrop.spansPerSec / intakeOff.spansPerSec) * 100).toFixed(1)}% of store off; ` +
        `${fmtInt(droppedSpans)} of the accepted spans not stored`,
    );

    log(`store: building a data set of ${fmtInt(options.datasetSpans)} spans straight into the database (bulk)`);
    const dbPath = join(work, 'data', 'traces.db');
    const built = buildDataset(dbPath, payload, options.datasetSpans, log);
    const databaseBytes = statSync(dbPath).size;
    log(
      `  ${fmtInt(built.spans)} spans in ${fmtInt(built.traces)} traces, ${(databaseBytes / 2 ** 30).toFixed(2)} GiB, built in ${built.seconds.toFixed(0)} s`,
    );

    const receiver = await startReceiver(
      validateConfig({
        otlp: { http: { address: 'off' }, grpc: { address: 'off' } },
        admin: { address: '127.0.0.1:0' },
        log: { level: 'warn', summary_interval: 0 },
        data_dir: join(work, 'data'),
        trace_store: { enabled: true, retention: '100000h', max_size: 2 ** 40, indexed_attributes: INDEXED },
      }),
      { defaultMetrics: false },
    );
    const queries: LatencyStats[] = [];
    try {
      const base = `http://${receiver.addresses.admin}`;
      const nowSec = Math.floor(Date.now() / 1000);
      const hourWindow = (i: number) => {
        const end = nowSec - ((i * 7919) % 23) * 3600;
        return `start=${end - 3600}&end=${end}`;
      };
      const count = 200;
      const time = async (
        name: string,
        request: string,
        make: (i: number) => { path: string; accept: string },
        size: (body: ArrayBuffer, status: number) => number,
      ) => {
        // Warm-up: a few requests unmeasured.
        for (let i = 0; i < 5; i++) await fetch(base + make(count + i).path);
        const ms: number[] = [];
        let results = 0;
        for (let i = 0; i < count; i++) {
          const { path, accept } = make(i);
          const t = performance.now();
          const res = await fetch(base + path, { headers: { accept } });
          const body = await res.arrayBuffer();
          ms.push(performance.now() - t);
          if (res.status !== 200) throw new Error(`${path}: ${res.status} ${Buffer.from(body).toString()}`);
          results += size(body, res.status);
        }
        ms.sort((a, b) => a - b);
        const stats: LatencyStats = {
          name,
          request,
          count,
          p50Ms: ms[Math.floor(count * 0.5)],
          p99Ms: ms[Math.ceil(count * 0.99) - 1],
          maxMs: ms[count - 1],
          avgResult: results / count,
        };
        queries.push(stats);
        log(
          `  ${name}: p50 ${stats.p50Ms.toFixed(1)} ms, p99 ${stats.p99Ms.toFixed(1)} ms, max ${stats.maxMs.toFixed(1)} ms (${count} requests, ${stats.avgResult.toFixed(1)} per answer)`,
        );
      };
      const traceCount = (body: ArrayBuffer) =>
        (JSON.parse(Buffer.from(body).toString()) as { traces: unknown[] }).traces.length;
      const routes = built.routes;
      await time(
        'trace by id (protobuf)',
        'GET /api/v2/traces/<id> Accept: application/protobuf',
        (i) => ({
          path: `/api/v2/traces/${built.sampleIds[i % built.sampleIds.length]}`,
          accept: 'application/protobuf',
        }),
        (body) => body.byteLength,
      );
      await time(
        'tag search, TraceQL attribute (1 h window)',
        'GET /api/search?q={ span.http.route = "<route>" }&limit=20&spss=3&start=&end=',
        (i) => ({
          path: `/api/search?q=${encodeURIComponent(`{ span.http.route = "${routes[i % routes.length]}" }`)}&limit=20&spss=3&${hourWindow(i)}`,
          accept: 'application/json',
        }),
        traceCount,
      );
      await time(
        'tag search, TraceQL attribute && status = error (24 h)',
        'GET /api/search?q={ span.http.route = "<route>" && status = error }&limit=20&start=&end=',
        (i) => ({
          path: `/api/search?q=${encodeURIComponent(`{ span.http.route = "${routes[i % routes.length]}" && status = error }`)}&limit=20&start=${nowSec - 86400}&end=${nowSec}`,
          accept: 'application/json',
        }),
        traceCount,
      );
      await time(
        'legacy tags search (service.name + http.method, 1 h window)',
        'GET /api/search?tags=service.name=checkout http.method=GET&limit=20&start=&end=',
        (i) => ({
          path: `/api/search?tags=${encodeURIComponent('service.name=checkout http.method=GET')}&limit=20&${hourWindow(i)}`,
          accept: 'application/json',
        }),
        traceCount,
      );
      await time(
        'duration search (24 h)',
        'GET /api/search?q={ duration > 500ms }&limit=20&start=&end=',
        () => ({
          path: `/api/search?q=${encodeURIComponent('{ duration > 500ms }')}&limit=20&start=${nowSec - 86400}&end=${nowSec}`,
          accept: 'application/json',
        }),
        traceCount,
      );
      await time(
        'tag values (span.http.route)',
        'GET /api/v2/search/tag/span.http.route/values',
        () => ({ path: '/api/v2/search/tag/span.http.route/values', accept: 'application/json' }),
        (body) => (JSON.parse(Buffer.from(body).toString()) as { tagValues: unknown[] }).tagValues.length,
      );
    } finally {
      await receiver.close();
    }
    return {
      writerCpu,
      intakeOff,
      intakeOn,
      intakeMemory,
      walSyncsPerRequest,
      intakeDrop,
      droppedSpans,
      storeWriteSpansPerSec,
      storeWrittenSpans: written,
      storeWriteSec: writeSec,
      datasetSpans: built.spans,
      datasetTraces: built.traces,
      datasetBuildSec: built.seconds,
      databaseBytes,
      queries,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Writes `spans` spans into a new store at `path`: the payload's requests over and over, each copy
 * with fresh trace ids (in the index rows and inside the stored OTLP) and start times moved so that
 * the copies spread over the last 24 hours. Indexes are built once at the end.
 */
export function buildDataset(
  path: string,
  payload: Payload,
  spans: number,
  log: (line: string) => void,
): { spans: number; traces: number; seconds: number; sampleIds: string[]; routes: string[] } {
  const started = performance.now();
  const indexed = { indexedAttributes: new Set(INDEXED) };
  const templates = payload.bodies.map((body) => template(body, indexed));
  const routes = [
    ...new Set(
      templates.flatMap((t) =>
        t.spans.flatMap((s) => s.tags.filter((x) => x[0] === 'span.http.route').map((x) => x[1])),
      ),
    ),
  ];
  let minStart = 2n ** 63n;
  for (const t of templates) for (const s of t.spans) if (s.startNs < minStart) minStart = s.startNs;
  const db = TraceDb.open(path, { indexedAttributes: INDEXED });
  db.db.exec('PRAGMA synchronous = OFF');
  db.dropIndexes();
  const perRequest = payload.spansPerRequest;
  const requests = Math.ceil(spans / perRequest);
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const spreadNs = 24n * 3600n * 1_000_000_000n;
  const sampleIds: string[] = [];
  let written = 0;
  let traces = 0;
  const perTransaction = 20;
  let lastLog = performance.now();
  for (let r = 0; r < requests; r += perTransaction) {
    const bodies: Buffer[] = [];
    for (let k = r; k < Math.min(requests, r + perTransaction); k++) {
      const t = templates[k % templates.length];
      const shift = nowNs - spreadNs + (spreadNs * BigInt(k)) / BigInt(requests) - minStart;
      // A copy of the request with fresh trace ids and its span times moved.
      const body = Buffer.from(t.body);
      for (const at of t.timeOffsets) body.writeBigUInt64LE(body.readBigUInt64LE(at) + shift, at);
      let first: Buffer | undefined;
      for (const offsets of t.idOffsets) {
        const id = randomBytes(16);
        first ??= id;
        for (const at of offsets) id.copy(body, at);
      }
      bodies.push(body);
      traces += t.idOffsets.length;
      if (sampleIds.length < 1000 && k % 97 === 0 && first) sampleIds.push(first.toString('hex'));
    }
    // Arrival time: the copies' start time (as if received live), so that time windows map to blob ids.
    const arrivedMs = Number((nowNs - spreadNs + (spreadNs * BigInt(r)) / BigInt(requests)) / 1_000_000n);
    written += db.write(bodies, arrivedMs).spans;
    if (performance.now() - lastLog > 15_000) {
      lastLog = performance.now();
      log(`  ${fmtInt(written)} spans written (${fmtInt(written / ((lastLog - started) / 1000))} spans/s)`);
    }
  }
  log(`  ${fmtInt(written)} spans written; building the indexes`);
  db.createIndexes();
  db.db.exec('PRAGMA optimize');
  db.close();
  return { spans: written, traces, seconds: (performance.now() - started) / 1000, sampleIds, routes };
}

/**
 * A request body to copy, with where its span times and trace ids sit (found by value: an 8-byte
 * time or a 16-byte id does not occur by chance elsewhere in a request).
 */
function template(body: Buffer, indexed: { indexedAttributes: Set<string> }) {
  const spans = scanTraceRequest(body, { ...indexed, chunks: false }).spans;
  const times = new Set<number>();
  const le = Buffer.alloc(8);
  for (const s of spans) {
    for (const t of [s.startNs, s.startNs + s.durationNs]) {
      le.writeBigUInt64LE(t);
      for (let at = body.indexOf(le); at >= 0; at = body.indexOf(le, at + 1)) times.add(at);
    }
  }
  const idOffsets: number[][] = [];
  for (const hexId of new Set(spans.map((s) => s.traceHex))) {
    const old = Buffer.from(hexId, 'hex');
    const offsets: number[] = [];
    for (let at = body.indexOf(old); at >= 0; at = body.indexOf(old, at + 16)) offsets.push(at);
    idOffsets.push(offsets);
  }
  return { body, spans, timeOffsets: [...times], idOffsets };
}

const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(1)}%`;

/** The store section of docs/benchmarks.md (and of `npm run bench -- store`'s output). */
export function renderStoreSection(r: StoreBenchResult): string {
  const q = (name: string) => r.queries.find((x) => x.name.startsWith(name));
  const byId = q('trace by id');
  const tag = q('tag search, TraceQL attribute (1 h');
  const lines = [
    '## Embedded trace store',
    '',
    '| target | measured | verdict |',
    '|---|---|---|',
    `| intake with the store on ≥ 70% of intake without it (100 spans/request) | ${pct(r.intakeOn.spansPerSec, r.intakeOff.spansPerSec)} (${fmtInt(r.intakeOn.spansPerSec)} vs ${fmtInt(r.intakeOff.spansPerSec)} spans/s; ${r.intakeOn.non2xx} requests refused with 503) | ${r.intakeOn.spansPerSec >= 0.7 * r.intakeOff.spansPerSec ? 'met' : '**MISSED**'} |`,
    `| (diagnostic) intake cost of the write-ahead log: store on with \`durability: wal\` (the default) vs \`memory\` | ${pct(r.intakeOn.spansPerSec, r.intakeMemory.spansPerSec)} (${fmtInt(r.intakeOn.spansPerSec)} vs ${fmtInt(r.intakeMemory.spansPerSec)} spans/s; ${r.walSyncsPerRequest.toFixed(2)} fdatasyncs per request; latency p50 ${r.intakeOn.latencyP50Ms.toFixed(1)} vs ${r.intakeMemory.latencyP50Ms.toFixed(1)} ms) | |`,
    `| trace by id p99 < 20 ms (${fmtInt(r.datasetSpans)} spans stored) | ${byId?.p99Ms.toFixed(1)} ms | ${byId && byId.p99Ms < 20 ? 'met' : '**MISSED**'} |`,
    `| tag search over 10 million spans p99 < 500 ms | ${tag?.p99Ms.toFixed(1)} ms over ${fmtInt(r.datasetSpans)} spans | ${tag && tag.p99Ms < 500 ? (r.datasetSpans >= 10_000_000 ? 'met' : `met at ${fmtInt(r.datasetSpans)} spans`) : '**MISSED**'} |`,
    `| (diagnostic) writer CPU per span: index, compress and write in transactions of 16 MiB, ${fmtInt(r.writerCpu.spans)} spans into a store of ${fmtInt(r.writerCpu.preload)} | ${r.writerCpu.usPerSpan.toFixed(1)} µs (${fmtInt(r.writerCpu.spansPerCpuSec)} spans per CPU second) | |`,
    '',
    `Store off, on (\`durability: wal\`), on with \`durability: memory\` and on with \`on_full: drop_newest\` ran as four receivers measured in alternating slices, each store's write queue drained before every slice. Store write rate while ingesting: ${fmtInt(r.storeWrittenSpans)} spans written during the store-on slices (${r.storeWriteSec.toFixed(1)} s): ${fmtInt(r.storeWriteSpansPerSec)} spans/s. ` +
      `With \`on_full: drop_newest\`, intake was ${fmtInt(r.intakeDrop.spansPerSec)} spans/s (${pct(r.intakeDrop.spansPerSec, r.intakeOff.spansPerSec)} of store off) and ${fmtInt(r.droppedSpans)} accepted spans were not stored. ` +
      `Cores in use during the slices (the machine has ${availableParallelism()}): store off, receiver ${r.intakeOff.serverCores.toFixed(2)} + load generator ${r.intakeOff.clientCores.toFixed(2)}; ` +
      `store on, receiver ${r.intakeOn.serverCores.toFixed(2)} (intake and writer threads) + load generator ${r.intakeOn.clientCores.toFixed(2)}. ` +
      `Where both are near the machine's cores, the writer thread's CPU comes out of intake's: the ratio is bound by the writer's CPU per span above.`,
    '',
    `Data set: ${fmtInt(r.datasetSpans)} spans in ${fmtInt(r.datasetTraces)} traces (the bench payloads with fresh trace ids, spread over 24 hours), ${(r.databaseBytes / 2 ** 30).toFixed(2)} GiB on disk, written in ${r.datasetBuildSec.toFixed(0)} s through TraceDb (indexes built after the load). Requests one at a time over HTTP to a receiver serving it:`,
    '',
    '| query | request | p50 | p99 | max | per answer |',
    '|---|---|---|---|---|---|',
    ...r.queries.map(
      (x) =>
        `| ${x.name} | \`${x.request}\` | ${x.p50Ms.toFixed(1)} ms | ${x.p99Ms.toFixed(1)} ms | ${x.maxMs.toFixed(1)} ms | ${x.avgResult.toFixed(1)} ${x.name.startsWith('trace by id') ? 'bytes' : x.name.startsWith('tag values') ? 'values' : 'traces'} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

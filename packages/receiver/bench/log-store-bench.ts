/**
 * The embedded log store's benchmark (issue 12, "Performance"), run on its own:
 *
 *   node bench/log-store-bench.ts [records]       (packages/receiver, after npm run build)
 *
 * 1. Log intake with the store on (durability: wal, the default; and durability: memory) against the
 *    store off: the same 100-record OTLP/HTTP protobuf requests at maximum throughput, a receiver
 *    each, measured in alternating slices (their write queues drained before each slice).
 * 2. Queries over a store of `records` records (default 1,000,000) spread over the last 24 hours, 20
 *    services, each record with a trace id, written straight into the database (LogDb.write, as the
 *    writer thread does), then read through the LogSource of a LogStore (its reader threads), as the
 *    LogQL engine will: `{service_name="x"} |= "needle"` over 1 h (limit 100), a trace id lookup over
 *    24 h, label values over 24 h, and reading every entry of one service over 6 h (the store's part
 *    of a log-volume query). p50 / p99 over repeated runs, one after the other.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import {
  createLogger,
  decodeLogsRequest,
  encodeLogsRequest,
  LogDb,
  LogStore,
  type ResourceLogs,
} from '../dist/index.js';
import { fmtInt } from './decode-bench.ts';
import { compareMaxThroughput, type MaxThroughputSettings } from './load.ts';
import type { Payload } from './payloads.ts';
import { freePort, startReceiver } from './proc.ts';

const SERVICES = 20;
const LEVELS = ['debug', 'info', 'info', 'info', 'warn', 'error'];
const SEVERITY: Record<string, number> = { debug: 5, info: 9, warn: 13, error: 17 };
const ROUTES = ['/api/cart', '/api/checkout', '/api/products', '/api/users/login', '/healthz'];

/** One request of `n` records of service `svc`, times from `t0` by `stepNs`; a needle every `needleEvery`-th record. */
function logsRequest(svc: number, n: number, t0: bigint, stepNs: bigint, seq: number, needleEvery = 0): Buffer {
  const records = Array.from({ length: n }, (_, i) => {
    const k = seq + i;
    const level = LEVELS[k % LEVELS.length];
    const route = ROUTES[k % ROUTES.length];
    const needle = needleEvery > 0 && k % needleEvery === 0;
    return {
      timeUnixNano: t0 + BigInt(i) * stepNs,
      observedTimeUnixNano: 0n,
      severityNumber: SEVERITY[level],
      severityText: level,
      body: `${needle ? 'needle ' : ''}handled ${route} for user u-${k % 9973} in ${(k * 7) % 1000} ms status=${level === 'error' ? 500 : 200} request_id=${(k * 2654435761) >>> 0}`,
      attributes: [
        { key: 'http.route', value: route },
        { key: 'http.response.status_code', value: BigInt(level === 'error' ? 500 : 200) },
        { key: 'user.id', value: `u-${k % 9973}` },
      ],
      droppedAttributesCount: 0,
      flags: 1,
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      eventName: '',
    };
  });
  const data: ResourceLogs[] = [
    {
      resource: {
        attributes: [
          { key: 'service.name', value: `svc-${svc}` },
          { key: 'service.namespace', value: 'shop' },
          { key: 'deployment.environment.name', value: 'bench' },
          { key: 'host.name', value: `host-${svc % 4}` },
        ],
        droppedAttributesCount: 0,
      },
      schemaUrl: '',
      scopeLogs: [
        {
          scope: { name: 'app-logger', version: '1.0.0', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          logRecords: records,
        },
      ],
    },
  ];
  return encodeLogsRequest(data);
}

interface Stats {
  name: string;
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  avgResult: number;
}

function stats(name: string, ms: number[], results: number[]): Stats {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return {
    name,
    count: ms.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: sorted[sorted.length - 1],
    avgResult: results.reduce((a, b) => a + b, 0) / results.length,
  };
}

async function scrape(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.split(' ').pop());
  return total;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runLogIntake(work: string, settings: MaxThroughputSettings, log: (line: string) => void) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const payload: Payload = {
    spansPerRequest: 100,
    path: '/v1/logs',
    bodies: Array.from({ length: 4 }, (_, v) => logsRequest(v, 100, now, 1_000_000n, v * 100)),
  };
  log(
    `log intake: store off, on (durability: wal), on (durability: memory); ${payload.spansPerRequest} records/request of ~${Math.round(payload.bodies[0].length / 1024)} KiB, alternating slices`,
  );
  const onPort = await freePort();
  const memoryPort = await freePort();
  const memoryConfig = join(work, 'memory.yaml');
  writeFileSync(memoryConfig, 'log_store:\n  durability: memory\n');
  const off = await startReceiver({ dataDir: join(work, 'off'), env: { SONDE_LOG_STORE: 'false' } });
  const on = await startReceiver({
    dataDir: join(work, 'on'),
    env: { SONDE_LOG_STORE: 'true', SONDE_ADMIN_ADDR: `127.0.0.1:${onPort}` },
  });
  const memory = await startReceiver({
    dataDir: join(work, 'memory'),
    env: { SONDE_LOG_STORE: 'true', SONDE_ADMIN_ADDR: `127.0.0.1:${memoryPort}` },
    args: ['--config', memoryConfig],
  });
  off.name = 'log store off';
  on.name = 'log store on (wal)';
  memory.name = 'log store on (memory)';
  try {
    const drained = async () => {
      const t0 = performance.now();
      for (const port of [onPort, memoryPort]) {
        while ((await scrape(port, 'sonde_log_store_queue_bytes')) > 0 && performance.now() - t0 < 120_000) {
          await sleep(100);
        }
      }
    };
    const [rOff, rOn, rMemory] = await compareMaxThroughput([off, on, memory], payload, settings, log, {
      beforeSlice: drained,
    });
    const written = await scrape(onPort, 'sonde_log_store_records_written_total');
    log(
      `  store off ${fmtInt(rOff.spansPerSec)} records/s; on (wal) ${fmtInt(rOn.spansPerSec)} records/s accepted (${rOn.non2xx} refused): ${((rOn.spansPerSec / rOff.spansPerSec) * 100).toFixed(1)}%; ` +
        `on (memory) ${fmtInt(rMemory.spansPerSec)} records/s (${rMemory.non2xx} refused): ${((rMemory.spansPerSec / rOff.spansPerSec) * 100).toFixed(1)}%; ` +
        `latency p50 ${rOff.latencyP50Ms.toFixed(1)} / ${rOn.latencyP50Ms.toFixed(1)} / ${rMemory.latencyP50Ms.toFixed(1)} ms; ${fmtInt(written)} records written by the wal store; ` +
        `receiver CPU ${rOff.serverCores.toFixed(2)} / ${rOn.serverCores.toFixed(2)} / ${rMemory.serverCores.toFixed(2)} cores, client ${rOff.clientCores.toFixed(2)} / ${rOn.clientCores.toFixed(2)} / ${rMemory.clientCores.toFixed(2)}, other ${rOff.otherCores.toFixed(2)} / ${rOn.otherCores.toFixed(2)} / ${rMemory.otherCores.toFixed(2)}`,
    );
    return { off: rOff, on: rOn, memory: rMemory };
  } finally {
    await Promise.all([off.stop(), on.stop(), memory.stop()]);
  }
}

export async function runLogQueries(work: string, records: number, log: (line: string) => void): Promise<Stats[]> {
  const path = join(work, 'data', 'logs.db');
  const nowMs = Date.now();
  const now = BigInt(nowMs) * 1_000_000n;
  const day = 24n * 3600n * 1_000_000_000n;
  const hour = 3600n * 1_000_000_000n;
  const perRequest = 500;
  const requests = Math.ceil(records / perRequest);
  const stepNs = day / BigInt(records);
  log(`log store: writing ${fmtInt(records)} records over 24 h (${SERVICES} services) through LogDb.write`);
  const t0 = performance.now();
  const db = LogDb.open(path);
  const traceSamples: { id: string; timeNs: bigint }[] = [];
  let batch: Buffer[] = [];
  for (let r = 0; r < requests; r++) {
    const first = now - day + BigInt(r * perRequest) * stepNs;
    const body = logsRequest(r % SERVICES, perRequest, first, stepNs, r * perRequest, 10_000);
    batch.push(body);
    if (r % 97 === 0) {
      // A trace id to look up later: decode it back from the request (its first record's).
      const rl = decodeLogsRequest(body, { maxAnyValueDepth: 32 });
      traceSamples.push({ id: rl[0].scopeLogs[0].logRecords[0].traceId, timeNs: first });
    }
    if (batch.length === 32) {
      db.write(batch, nowMs);
      batch = [];
    }
  }
  if (batch.length > 0) db.write(batch, nowMs);
  db.close();
  const buildSec = (performance.now() - t0) / 1000;
  log(
    `  written in ${buildSec.toFixed(0)} s (${fmtInt(records / buildSec)} records/s on one thread); database ${(statSync(path).size / 2 ** 20).toFixed(0)} MiB`,
  );
  const store = new LogStore(
    {
      path,
      retentionMs: 48 * 3600_000,
      maxBytes: 2 ** 40,
      queueBytes: 64 * 2 ** 20,
      onFull: 'refuse',
      batchMaxBytes: 16 * 2 ** 20,
      flushIntervalMs: 100,
      retentionIntervalMs: 3600_000,
      durability: 'memory',
      queryTimeoutMs: 30_000,
      queryWorkers: 2,
    },
    new Registry(),
    createLogger('silent'),
  );
  await store.start();
  const out: Stats[] = [];
  try {
    const time = async (name: string, runs: number, q: (i: number) => Promise<number>) => {
      const ms: number[] = [];
      const results: number[] = [];
      await q(0); // warm-up (page cache, statement cache)
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        results.push(await q(i));
        ms.push(performance.now() - t);
      }
      const s = stats(name, ms, results);
      log(
        `  ${name}: p50 ${s.p50Ms.toFixed(1)} ms, p99 ${s.p99Ms.toFixed(1)} ms, max ${s.maxMs.toFixed(1)} ms (${s.count} runs, ${s.avgResult.toFixed(1)} results on average)`,
      );
      out.push(s);
    };
    const count = async (it: AsyncIterable<unknown>, limit = Infinity) => {
      let n = 0;
      for await (const _ of it) if (++n >= limit) break;
      return n;
    };
    await time('{service_name="svc-N"} |= "needle" over 1 h, backward, limit 100', 30, (i) =>
      count(
        store.select({
          matchers: [{ name: 'service_name', op: '=', value: `svc-${i % SERVICES}` }],
          startNs: now - hour * BigInt(1 + (i % 23)),
          endNs: now - hour * BigInt(i % 23),
          direction: 'backward',
          lineContains: ['needle'],
        }),
        100,
      ),
    );
    await time('| trace_id="…" over 24 h (all streams)', 50, (i) =>
      count(
        store.select({
          matchers: [{ name: 'service_name', op: '=~', value: '.+' }],
          startNs: now - day,
          endNs: now + hour,
          direction: 'backward',
          traceId: traceSamples[(i * 7) % traceSamples.length].id,
        }),
      ),
    );
    await time(
      'label values of service_name over 24 h',
      50,
      async () => (await store.labelValues('service_name', now - day, now)).length,
    );
    await time('label names over 1 h', 50, async () => (await store.labelNames(now - hour, now)).length);
    await time('every entry of {service_name="svc-N"} over 6 h (the store part of a log-volume query)', 5, (i) =>
      count(
        store.select({
          matchers: [{ name: 'service_name', op: '=', value: `svc-${i % SERVICES}` }],
          startNs: now - 6n * hour,
          endNs: now,
          direction: 'forward',
        }),
      ),
    );
  } finally {
    await store.shutdown();
  }
  return out;
}

if (import.meta.main) {
  const records = Number(process.argv[2] ?? 1_000_000);
  const started = Date.now();
  const log = (line: string) =>
    process.stdout.write(`[log-bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${line}\n`);
  const work = mkdtempSync(join(tmpdir(), 'sonde-bench-log-store-'));
  // The store's threads are unref'd: this keeps the process up until its shutdown is done.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    if (process.env.SONDE_BENCH_LOG_INTAKE !== '0') {
      await runLogIntake(work, { connections: 10, warmupSec: 2, durationSec: 12, rounds: 4 }, log);
    }
    await runLogQueries(work, records, log);
  } finally {
    clearInterval(keepAlive);
    rmSync(work, { recursive: true, force: true });
  }
}

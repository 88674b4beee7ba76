/**
 * The Tempo/Loki exporters' compression CPU per span, in process (`node bench/compression-cpu.ts
 * [spans/request]`): the bench payloads concatenated into batches as the exporter makes them
 * (`batch_max_size`, 4 MiB), then compressed at level 1 with zstd and with gzip in alternating rounds,
 * so that both see the same load on a shared machine. Two ways:
 *
 * - `sync`: `zstdCompressSync` / `gzipSync` on this thread, timed with process.threadCpuUsage (the
 *   compression alone);
 * - `worker`: the exporter's CompressWorker (src/export/compress-worker.ts), timed with
 *   process.cpuUsage (every thread: the copy into the arena, the messages and the worker's compression).
 *
 * ROUNDS (default 6) rounds of ROUND_BATCHES (default 8) batches per algorithm and way; BATCH_BYTES
 * (default 4 MiB) bounds a batch (BATCH_BYTES=1: one request per batch, as at a low rate).
 */
import { createRequire } from 'node:module';
import { constants, gzipSync, zstdCompressSync } from 'node:zlib';
import type * as CompressWorkerModule from '../src/export/compress-worker.ts';
import { makePayload, makeSpans } from './payloads.ts';

const require = createRequire(import.meta.url);
const { CompressWorker } = require('../dist/export/compress-worker.js') as typeof CompressWorkerModule;

const spansPerRequest = Number(process.argv[2] ?? 100);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const ROUND_BATCHES = Number(process.env.ROUND_BATCHES ?? 8);
const BATCH_BYTES = Number(process.env.BATCH_BYTES ?? 4 * 1024 * 1024);
const VARIANTS = 100;

type Algorithm = 'zstd' | 'gzip';
const SYNC: Record<Algorithm, (b: Buffer) => Buffer> = {
  zstd: (b) => zstdCompressSync(b, { params: { [constants.ZSTD_c_compressionLevel]: 1 } }),
  gzip: (b) => gzipSync(b, { level: 1 }),
};

const spans = await makeSpans(spansPerRequest * VARIANTS);
const { bodies } = makePayload(spans, spansPerRequest, VARIANTS);
// Batches as the exporter takes them: queued requests in a row up to batch_max_size, each batch
// starting where the last ended, so that a batch holds distinct requests (as many as fit).
const batches: Buffer[][] = [];
for (let next = 0; batches.length < ROUND_BATCHES; ) {
  const parts: Buffer[] = [];
  let bytes = 0;
  while (parts.length === 0 || bytes + bodies[next % VARIANTS].length <= BATCH_BYTES) {
    parts.push(bodies[next % VARIANTS]);
    bytes += bodies[next % VARIANTS].length;
    next++;
  }
  batches.push(parts);
}
const spansPerBatch = batches.map((b) => b.length * spansPerRequest);
const totalSpans = spansPerBatch.reduce((a, b) => a + b, 0);
const whole = batches.map((parts) => Buffer.concat(parts));

const worker = new CompressWorker(1, BATCH_BYTES);
const results: Record<string, { cpuUs: number; spans: number; inBytes: number; outBytes: number }> = {};
const add = (key: string, cpuUs: number, inBytes: number, outBytes: number) => {
  results[key] ??= { cpuUs: 0, spans: 0, inBytes: 0, outBytes: 0 };
  const r = results[key];
  r.cpuUs += cpuUs;
  r.spans += totalSpans;
  r.inBytes += inBytes;
  r.outBytes += outBytes;
};

async function round(algorithm: Algorithm, measured: boolean): Promise<void> {
  let inBytes = 0;
  let outBytes = 0;
  const t0 = process.threadCpuUsage();
  for (const b of whole) {
    inBytes += b.length;
    outBytes += SYNC[algorithm](b).length;
  }
  const t1 = process.threadCpuUsage(t0);
  if (measured) add(`sync ${algorithm}`, t1.user + t1.system, inBytes, outBytes);
  outBytes = 0;
  const p0 = process.cpuUsage();
  for (const parts of batches) outBytes += (await worker.compress(algorithm, parts)).length;
  const p1 = process.cpuUsage(p0);
  if (measured) add(`worker ${algorithm}`, p1.user + p1.system, inBytes, outBytes);
}

// One warm-up round each, then alternating rounds (the order swapped every round).
await round('zstd', false);
await round('gzip', false);
for (let i = 0; i < ROUNDS; i++) {
  const order: Algorithm[] = i % 2 === 0 ? ['zstd', 'gzip'] : ['gzip', 'zstd'];
  for (const a of order) await round(a, true);
}
await worker.close();

const { loadavg } = await import('node:os');
console.log(
  `${spansPerRequest} spans/request, batches of ${batches[0].length} requests (${(whole[0].length / 1024 / 1024).toFixed(2)} MiB, ${spansPerBatch[0]} spans), ${ROUNDS} rounds × ${ROUND_BATCHES} batches; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
for (const [key, r] of Object.entries(results)) {
  console.log(
    `${key.padEnd(12)} ${(r.cpuUs / r.spans).toFixed(3)} µs CPU/span, ratio ${(r.inBytes / r.outBytes).toFixed(2)}, ${(((r.inBytes / r.cpuUs) * 1e6) / 1024 / 1024).toFixed(0)} MiB/s of CPU`,
  );
}

/**
 * Profiling aid for the Prometheus stage's ingest alone: `node --cpu-prof bench/metrics-ingest-profile.ts`
 * feeds the 10,000-series batches of metrics-bench.ts to one consumer for a few seconds and prints
 * points per second of wall time and of this thread's CPU time and of the whole process's (steadier on a shared machine).
 */

import { createRequire } from 'node:module';
import pino from 'pino';
import { Registry } from 'prom-client';
import type * as Receiver from '../dist/index.js';
import { metricsBatch } from './metrics-bench.ts';

// SONDE_BENCH_DIST: another build of the receiver's dist/ (e.g. a copy of the previous one), for A/B runs.
const { PrometheusConsumer } = createRequire(import.meta.url)(
  process.env.SONDE_BENCH_DIST ? `${process.env.SONDE_BENCH_DIST}/index.js` : '../dist/index.js',
) as typeof Receiver;

const series = Number(process.env.SERIES ?? 10_000);
const rounds = Number(process.env.ROUNDS ?? 100);
const consumer = new PrometheusConsumer(
  { metricExpirationMs: 3_600_000, maxSeriesPerMetric: 1000, promoteResourceAttributes: [] },
  new Registry(),
  pino({ level: 'silent' }),
);
let time = 1;
consumer.consume(metricsBatch(series, time++));
let ms = 0;
let cpuUs = 0;
let allUs = 0;
for (let r = 0; r < rounds; r++) {
  const b = metricsBatch(series, time++);
  const start = performance.now();
  const cpu = process.threadCpuUsage();
  const all = process.cpuUsage();
  consumer.consume(b);
  const used = process.threadCpuUsage(cpu);
  cpuUs += used.user + used.system;
  const usedAll = process.cpuUsage(all);
  allUs += usedAll.user + usedAll.system;
  ms += performance.now() - start;
}
await consumer.shutdown();
const points = rounds * series;
process.stdout.write(
  `${series} series: ${Math.round(points / (ms / 1000)).toLocaleString('en-US')} points/s wall, ` +
    `${Math.round(points / (cpuUs / 1e6)).toLocaleString('en-US')} points per CPU second of this thread, ` +
    `${Math.round(points / (allUs / 1e6)).toLocaleString('en-US')} per CPU second of all threads\n`,
);

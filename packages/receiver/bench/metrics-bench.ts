/**
 * The Prometheus stage, in process: OTLP metrics ingest (data points/s into the store, at 10,000 and
 * 100,000 active series, cumulative counters with three attributes each), and scrapes of those
 * stores — the first (everything rendered), an unchanged one (cached), and one after every series
 * changed — with their size, the heap they allocate, and the longest event-loop stall they cause.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { Registry } from 'prom-client';
import { type Batch, PrometheusConsumer, writeFamilies } from '../dist/index.js';

export interface MetricsIngestResult {
  series: number;
  /** Points over the wall time of the consume() calls. */
  pointsPerSec: number;
  /** Points per second of CPU time of the whole process (every thread, GC helpers too) during those calls: steadier than wall time on a shared machine. */
  pointsPerCpuSec: number;
}

export interface ScrapeResult {
  series: number;
  bytes: number;
  firstMs: number;
  unchangedMs: number;
  unchangedHeapKiB: number;
  changedMs: number;
  longestStallMs: number;
}

export interface MetricsBenchResult {
  ingest: MetricsIngestResult[];
  scrape: ScrapeResult[];
}

const SERIES_PER_METRIC = 1000;

export function metricsBatch(series: number, time: number): Batch<'metrics'> {
  const metrics = [];
  for (let m = 0; m < series / SERIES_PER_METRIC; m++) {
    const dataPoints = [];
    for (let i = 0; i < SERIES_PER_METRIC; i++) {
      dataPoints.push({
        attributes: [
          { key: 'http.route', value: `/api/items/${i % 100}` },
          { key: 'http.response.status_code', value: BigInt(200 + Math.floor(i / 100)) },
          { key: 'http.request.method', value: 'GET' },
        ],
        startTimeUnixNano: 1n,
        timeUnixNano: BigInt(time) * 1_000_000_000n,
        exemplars: [],
        flags: 0,
        value: i + time,
        isInt: true,
      });
    }
    metrics.push({
      name: `app.requests.${m}`,
      description: 'Requests served',
      unit: '{request}',
      metadata: [],
      data: { type: 'sum' as const, isMonotonic: true, aggregationTemporality: 2, dataPoints },
    });
  }
  return {
    signal: 'metrics',
    itemCount: series,
    warnings: [],
    decodeStats: undefined,
    context: { transport: 'http', encoding: 'protobuf', receivedAt: 0, raw: undefined, modified: false },
    data: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: 'shop' },
            { key: 'service.instance.id', value: 'i-1' },
          ],
          droppedAttributesCount: 0,
        },
        schemaUrl: '',
        scopeMetrics: [
          {
            scope: { name: 'app', version: '1.0.0', attributes: [], droppedAttributesCount: 0 },
            schemaUrl: '',
            metrics,
          },
        ],
      },
    ],
  };
}

// A full collection before the allocation measurement (as in decode-bench.ts).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export async function runMetricsBench(log: (line: string) => void, quick: boolean): Promise<MetricsBenchResult> {
  const result: MetricsBenchResult = { ingest: [], scrape: [] };
  for (const series of [10_000, 100_000]) {
    const consumer = new PrometheusConsumer(
      { metricExpirationMs: 3_600_000, maxSeriesPerMetric: SERIES_PER_METRIC, promoteResourceAttributes: [] },
      new Registry(),
      pino({ level: 'silent' }),
    );
    let time = 1;
    consumer.consume(metricsBatch(series, time++));
    // Ingest: batches are built beforehand, only consume() is timed.
    const rounds = quick ? 3 : series === 10_000 ? 30 : 6;
    let ms = 0;
    let cpuUs = 0;
    for (let r = 0; r < rounds; r++) {
      const b = metricsBatch(series, time++);
      const start = performance.now();
      const cpu = process.cpuUsage();
      consumer.consume(b);
      const used = process.cpuUsage(cpu);
      ms += performance.now() - start;
      cpuUs += used.user + used.system;
    }
    const pointsPerSec = (rounds * series) / (ms / 1000);
    const pointsPerCpuSec = (rounds * series) / (cpuUs / 1e6);
    result.ingest.push({ series, pointsPerSec, pointsPerCpuSec });
    log(
      `  ingest, ${series} active series: ${Math.round(pointsPerSec).toLocaleString('en-US')} points/s, ` +
        `${Math.round(pointsPerCpuSec).toLocaleString('en-US')} points per CPU second`,
    );

    let bytes = 0;
    const sink = {
      write: (chunk: Buffer) => {
        bytes += chunk.length;
      },
    };
    consumer.consume(metricsBatch(series, time++));
    let start = performance.now();
    await writeFamilies(consumer.store, 'text', sink);
    const firstMs = performance.now() - start;
    const size = bytes;

    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    start = performance.now();
    await writeFamilies(consumer.store, 'text', sink);
    const unchangedMs = performance.now() - start;
    const unchangedHeapKiB = (process.memoryUsage().heapUsed - heapBefore) / 1024;

    consumer.consume(metricsBatch(series, time++));
    let longestStallMs = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      longestStallMs = Math.max(longestStallMs, now - last);
      last = now;
    }, 0);
    start = performance.now();
    await writeFamilies(consumer.store, 'text', sink);
    const changedMs = performance.now() - start;
    clearInterval(probe);
    await consumer.shutdown();
    result.scrape.push({ series, bytes: size, firstMs, unchangedMs, unchangedHeapKiB, changedMs, longestStallMs });
    log(
      `  scrape, ${series} series (${(size / 1048576).toFixed(1)} MiB): first ${firstMs.toFixed(1)} ms, unchanged ${unchangedMs.toFixed(2)} ms ` +
        `(${unchangedHeapKiB.toFixed(0)} KiB heap), all changed ${changedMs.toFixed(1)} ms, longest event-loop stall ${longestStallMs.toFixed(1)} ms`,
    );
  }
  return result;
}

/**
 * Series bounds on /metrics (issue 11, finding 5): a request whose histogram has hundreds of buckets
 * and labels of thousands of characters used to make one family's rendering longer than V8's
 * maximum string, and every scrape came out empty (the receiver's own metrics included) until the
 * series expired. The buckets of a classic histogram, the length of label values and the labels of a
 * series are bounded (merged, truncated, dropped: counted), and the exposition is streamed family by
 * family, so a scrape always renders.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HistogramDataPoint } from '../src';
import { type Sink, writeFamilies } from '../src/series/exposition';
import { type Family, MetricStore, mergeBuckets, thinQuantiles } from '../src/series/store';
import { type Field, kv, PROTOBUF, pb, post, startTestReceiver, type TestReceiver } from './helpers';

const PROMTOOL = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';
const HAVE_PROMTOOL = fs.existsSync(PROMTOOL);

const T1 = 1_700_000_000_000_000_000n;

function packedDoubles(values: number[]): Buffer {
  const b = Buffer.allocUnsafe(values.length * 8);
  for (let i = 0; i < values.length; i++) b.writeDoubleLE(values[i], i * 8);
  return b;
}

function packedFixed64(values: number[]): Buffer {
  const b = Buffer.allocUnsafe(values.length * 8);
  for (let i = 0; i < values.length; i++) b.writeBigUInt64LE(BigInt(values[i]), i * 8);
  return b;
}

/** An ExportMetricsServiceRequest of one cumulative histogram point. */
function histogramRequest(name: string, bounds: number[], counts: number[], attributes: Field[][]): Buffer {
  const count = counts.reduce((a, b) => a + b, 0);
  const point: Field[] = [
    [3, 'fixed64', T1],
    [4, 'fixed64', BigInt(count)],
    [5, 'double', count],
    [6, 'bytes', packedFixed64(counts)],
    [7, 'bytes', packedDoubles(bounds)],
    ...attributes.map((a): Field => [9, 'message', a]),
  ];
  const metric: Field[] = [
    [1, 'bytes', name],
    [
      9,
      'message',
      [
        [1, 'message', point],
        [2, 'varint', 2],
      ],
    ],
  ];
  return pb([
    [
      1,
      'message',
      [
        [1, 'message', [[1, 'message', kv('service.name', [[1, 'bytes', 'shop']])]]],
        [
          2,
          'message',
          [
            [1, 'message', [[1, 'bytes', 'app']]],
            [2, 'message', metric],
          ],
        ],
      ],
    ],
  ]);
}

async function scrape(t: TestReceiver, accept?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${t.admin}/metrics`, { headers: accept ? { accept } : {} });
  return { status: res.status, text: await res.text() };
}

function metricValue(text: string, line: RegExp): number | undefined {
  const m = text.split('\n').find((l) => line.test(l));
  return m === undefined ? undefined : Number(m.slice(m.lastIndexOf(' ') + 1));
}

/** `promtool check metrics` finds no parse error in `text` (skipped when promtool is not installed). */
function promtoolCheck(text: string): void {
  if (!HAVE_PROMTOOL) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-promtool-'));
  try {
    const file = path.join(dir, 'metrics.txt');
    fs.writeFileSync(file, text);
    // promtool check metrics reads the exposition on stdin; lint warnings (help, units) go to stdout
    // with a non-zero exit, so only parse errors are asserted on.
    let out = '';
    try {
      out = execFileSync(PROMTOOL, ['check', 'metrics'], {
        input: fs.readFileSync(file),
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
    }
    expect(out).not.toMatch(/error while linting|parse error|text format parsing error/i);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('series bounds: a scrape always renders', () => {
  let t: TestReceiver;
  afterEach(() => t?.close());

  test('the 813 KB request (700 bounds, 100 attributes of 8,000 characters): /metrics keeps its own metrics and a bounded series', async () => {
    t = await startTestReceiver();
    const bounds = Array.from({ length: 700 }, (_, i) => i + 1);
    const counts = Array.from({ length: 701 }, () => 1);
    const attributes = Array.from({ length: 100 }, (_, i) =>
      kv(`attr_${String(i).padStart(3, '0')}`, [[1, 'bytes', String.fromCharCode(97 + (i % 26)).repeat(8000)]]),
    );
    const body = histogramRequest('big.histogram', bounds, counts, attributes);
    expect(body.length).toBeGreaterThan(800_000);
    expect((await post(`${t.http}/v1/metrics`, body, PROTOBUF)).status).toBe(200);

    for (const accept of [undefined, 'application/openmetrics-text; version=1.0.0']) {
      const { status, text } = await scrape(t, accept);
      expect(status).toBe(200);
      expect(text).toMatch(/^sonde_receiver_accepted_metric_points_total\{transport="http"\} 1$/m);
      const buckets = text.split('\n').filter((l) => l.startsWith('big_histogram_bucket{'));
      expect(buckets.length).toBeGreaterThan(1);
      expect(buckets.length).toBeLessThanOrEqual(160);
      // Merged buckets keep a valid cumulative histogram: exact counts at the bounds kept, +Inf = count.
      for (const line of buckets) {
        const le = /le="([^"]+)"/.exec(line)?.[1] as string;
        const value = Number(line.slice(line.lastIndexOf(' ') + 1).split(' ')[0]);
        expect(value).toBe(le === '+Inf' ? 701 : Number(le));
      }
      expect(buckets[buckets.length - 1]).toContain('le="+Inf"');
      expect(buckets[buckets.length - 2]).toContain('le="700"');
      // Label values are truncated and the labels of a series are bounded.
      const first = buckets[0];
      const values = [...first.matchAll(/="([^"]*)"/g)].map((m) => m[1]);
      expect(Math.max(...values.map((v) => v.length))).toBeLessThanOrEqual(2048);
      expect(values.length).toBeLessThanOrEqual(64 + 1); // + le
      if (accept) expect(text.endsWith('# EOF\n')).toBe(true);
      if (!accept) promtoolCheck(text); // promtool reads the text format
    }
    const { text } = await scrape(t);
    expect(
      metricValue(text, /^sonde_receiver_limit_hits_total\{signal="metrics",limit="max_histogram_buckets"\}/),
    ).toBe(1);
    // 60 attributes kept (64 labels less job, instance, otel_scope_name, otel_scope_version), each truncated; 40 left out.
    expect(
      metricValue(text, /^sonde_receiver_limit_hits_total\{signal="metrics",limit="max_label_value_length"\}/),
    ).toBe(60);
    expect(
      metricValue(text, /^sonde_receiver_limit_hits_total\{signal="metrics",limit="max_labels_per_series"\}/),
    ).toBe(40);
  });

  test('a histogram of 1,000,000 bounds is merged into at most max_histogram_buckets buckets', async () => {
    t = await startTestReceiver({ prometheus: { max_histogram_buckets: 50 } });
    const n = 1_000_000;
    const bounds = Array.from({ length: n }, (_, i) => (i + 1) / 1000);
    const counts = Array.from({ length: n + 1 }, () => 2);
    expect((await post(`${t.http}/v1/metrics`, histogramRequest('huge', bounds, counts, []), PROTOBUF)).status).toBe(
      200,
    );
    const { status, text } = await scrape(t);
    expect(status).toBe(200);
    const buckets = text.split('\n').filter((l) => l.startsWith('huge_bucket{'));
    expect(buckets.length).toBeGreaterThan(1);
    expect(buckets.length).toBeLessThanOrEqual(50);
    let previousLe = Number.NEGATIVE_INFINITY;
    for (const line of buckets) {
      const leText = /le="([^"]+)"/.exec(line)?.[1] as string;
      const le = leText === '+Inf' ? Number.POSITIVE_INFINITY : Number(leText);
      expect(le).toBeGreaterThan(previousLe);
      previousLe = le;
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      // Bound b = (i + 1) / 1000 holds the first i + 1 buckets, 2 each.
      expect(value).toBe(le === Number.POSITIVE_INFINITY ? 2 * (n + 1) : 2 * Math.round(le * 1000));
    }
    expect(buckets[buckets.length - 2]).toContain('le="1000"');
    expect(metricValue(text, /^huge_count\{/)).toBe(2 * (n + 1));
    promtoolCheck(text);
  }, 30_000);
});

describe('the pieces', () => {
  const store = () =>
    new MetricStore(
      { metricExpirationMs: 60_000, maxSeriesPerMetric: 100 },
      { dropped: () => {}, reset: () => {}, overflow: () => {}, expired: () => {} },
    );
  const point = (bounds: number[], counts: number[]): HistogramDataPoint => ({
    attributes: [],
    startTimeUnixNano: 0n,
    timeUnixNano: 0n,
    flags: 0,
    exemplars: [],
    count: counts.reduce((a, b) => a + b, 0),
    sum: 0,
    bucketCounts: counts,
    explicitBounds: bounds,
    min: undefined,
    max: undefined,
  });

  test('mergeBuckets: adjacent buckets merged k at a time, the highest bound kept, +Inf untouched', () => {
    const p = point([1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 8]);
    expect(mergeBuckets(p, 8)).toBe(p);
    const merged = mergeBuckets(p, 4);
    expect(merged.explicitBounds).toEqual([3, 6, 7]);
    expect(merged.bucketCounts).toEqual([6, 15, 7, 8]);
    expect(merged.count).toBe(p.count);
    // Fewer counts than bounds + 1: the rest is in +Inf, as for an unmerged point.
    expect(mergeBuckets(point([1, 2, 3, 4], [1, 1]), 3).bucketCounts).toEqual([2, 0, 0]);
  });

  test('thinQuantiles keeps the first, the last and evenly spaced ones between', () => {
    const q = Array.from({ length: 11 }, (_, i): [number, number] => [i / 10, i]);
    expect(thinQuantiles(q, 20)).toBe(q);
    expect(thinQuantiles(q, 3).map(([quantile]) => quantile)).toEqual([0, 0.5, 1]);
  });

  test('writeFamilies waits for the sink to drain before writing more, and stops when it is closed', async () => {
    const s = store();
    for (let m = 0; m < 4; m++) {
      const family = s.family(`g${m}`, 'gauge', '', '', 1) as Family;
      for (let i = 0; i < 2000; i++)
        s.apply(family, `k="${'v'.repeat(40)}${i}"`, 0n, 1n, { kind: 'gauge', value: i }, [], 0);
    }
    let written = 0;
    let release: (() => void) | undefined;
    let closed = false;
    const sink: Sink = {
      write: (chunk) => {
        written += chunk.length;
        return false;
      },
      drained: () => new Promise<void>((resolve) => (release = resolve)),
      get closed() {
        return closed;
      },
    };
    const done = writeFamilies(s, 'text', sink);
    await new Promise((resolve) => setImmediate(resolve));
    const first = written;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(200 * 1024); // one chunk, not the whole exposition
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(written).toBe(first);
    release?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toBeGreaterThan(first);
    closed = true;
    release?.();
    const total = await done;
    expect(total).toBe(written);
    expect(total).toBeLessThan(4 * 2000 * 50);
  });

  test('a family that cannot be rendered is left out and reported; the others are written', async () => {
    const s = store();
    const good = s.family('good', 'gauge', '', '', 1) as Family;
    s.apply(good, 'a="1"', 0n, 1n, { kind: 'gauge', value: 1 }, [], 0);
    const bad = s.family('bad', 'gauge', '', '', 1) as Family;
    s.apply(bad, 'a="1"', 0n, 1n, { kind: 'gauge', value: 1 }, [], 0);
    // What V8 throws when a string would pass its maximum length.
    Object.defineProperty(bad.series.get('a="1"'), 'labels', {
      get() {
        throw new RangeError('Invalid string length');
      },
    });
    const skipped: string[] = [];
    const out: Buffer[] = [];
    for (let scrape = 0; scrape < 2; scrape++)
      await writeFamilies(s, 'text', { write: (c) => void out.push(c) }, (f) => skipped.push(f.name));
    expect(skipped).toEqual(['bad', 'bad']);
    expect(Buffer.concat(out).toString()).toBe('# TYPE good gauge\ngood{a="1"} 1\n'.repeat(2));
  });
});

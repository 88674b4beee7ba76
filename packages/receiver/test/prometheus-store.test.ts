/**
 * The metric store's rules, from the OpenTelemetry ↔ Prometheus compatibility specification and the
 * Collector's prometheusexporter: temporality, resets, out-of-order points, overflow, expiry, conflicts.
 */
import type { HistogramDataPoint } from '../src';
import { renderFamily } from '../src/series/exposition';
import { type DropReason, type Family, MetricStore, type PointUpdate } from '../src/series/store';

const S = 1_000_000_000n;

function makeStore(maxSeriesPerMetric = 100) {
  const counts = { dropped: {} as Partial<Record<DropReason, number>>, resets: 0, overflow: 0, expired: 0 };
  const store = new MetricStore(
    { metricExpirationMs: 60_000, maxSeriesPerMetric },
    {
      dropped: (reason, n) => {
        counts.dropped[reason] = (counts.dropped[reason] ?? 0) + n;
      },
      reset: () => void counts.resets++,
      overflow: () => void counts.overflow++,
      expired: (n) => {
        counts.expired += n;
      },
    },
  );
  return { store, counts };
}

const counter = (value: number, temporality: 'delta' | 'cumulative'): PointUpdate => ({
  kind: 'counter',
  value,
  temporality,
  monotonic: true,
});

function histogram(bounds: number[], counts: number[], sum: number, temporality: 'delta' | 'cumulative'): PointUpdate {
  const point: HistogramDataPoint = {
    attributes: [],
    startTimeUnixNano: 0n,
    timeUnixNano: 0n,
    exemplars: [],
    flags: 0,
    count: counts.reduce((a, b) => a + b, 0),
    sum,
    bucketCounts: counts,
    explicitBounds: bounds,
    min: undefined,
    max: undefined,
  };
  return { kind: 'histogram', point, temporality };
}

const seriesValue = (family: Family, labels = 'a="1"') => family.series.get(labels)?.value;

describe('temporality', () => {
  test.each([
    [
      'cumulative points replace the value',
      [
        [0n, 1n, counter(5, 'cumulative')],
        [0n, 2n, counter(8, 'cumulative')],
      ],
      8,
      0,
    ],
    [
      'contiguous deltas accumulate',
      [
        [0n, 1n, counter(3, 'delta')],
        [1n, 2n, counter(4, 'delta')],
        [2n, 3n, counter(1, 'delta')],
      ],
      8,
      0,
    ],
    [
      'a delta that does not continue the series is still an increment (another source), never a reset',
      [
        [0n, 1n, counter(3, 'delta')],
        [5n, 6n, counter(4, 'delta')],
        [2n, 4n, counter(2, 'delta')],
      ],
      9,
      0,
    ],
    [
      'a cumulative series with a later start time is a restart (counted)',
      [
        [1n, 2n, counter(10, 'cumulative')],
        [3n, 4n, counter(2, 'cumulative')],
      ],
      2,
      1,
    ],
  ] as [string, [bigint, bigint, PointUpdate][], number, number][])('%s', (_name, points, expected, resets) => {
    const { store, counts } = makeStore();
    const family = store.family('c_total', 'counter', '', '', 1) as Family;
    for (const [start, time, update] of points) store.apply(family, 'a="1"', start * S, time * S, update, [], 0);
    expect(seriesValue(family)).toBe(expected);
    expect(counts.resets).toBe(resets);
  });

  test('out-of-order and duplicate cumulative points are dropped and do not corrupt the series', () => {
    const { store, counts } = makeStore();
    const family = store.family('c_total', 'counter', '', '', 1) as Family;
    store.apply(family, 'a="1"', S, 2n * S, counter(3, 'cumulative'), [], 0);
    store.apply(family, 'a="1"', S, 4n * S, counter(7, 'cumulative'), [], 0);
    store.apply(family, 'a="1"', S, 4n * S, counter(7, 'cumulative'), [], 0); // duplicate
    store.apply(family, 'a="1"', S, 3n * S, counter(5, 'cumulative'), [], 0); // late
    expect(seriesValue(family)).toBe(7);
    expect(counts.dropped.out_of_order).toBe(2);
  });

  test('deltas with the same or earlier times (other sources) are all added', () => {
    const { store, counts } = makeStore();
    const family = store.family('c_total', 'counter', '', '', 1) as Family;
    store.apply(family, 'a="1"', 0n, 2n * S, counter(3, 'delta'), [], 0);
    store.apply(family, 'a="1"', 2n * S, 4n * S, counter(4, 'delta'), [], 0);
    store.apply(family, 'a="1"', 2n * S, 4n * S, counter(4, 'delta'), [], 0); // same interval, another page
    store.apply(family, 'a="1"', 0n, 2n * S, counter(3, 'delta'), [], 0); // earlier, another page
    expect(seriesValue(family)).toBe(14);
    expect(counts.dropped).toEqual({});
    expect(counts.resets).toBe(0);
  });

  test('a delta older than maxDeltaAgeMs (by the receiver clock) is refused and counted; no limit at 0', () => {
    for (const [maxDeltaAgeMs, value, refused] of [
      [60_000, 1, 1],
      [0, 3, undefined],
    ] as const) {
      const counts = { dropped: {} as Partial<Record<DropReason, number>> };
      const store = new MetricStore(
        { metricExpirationMs: 60_000, maxSeriesPerMetric: 10, maxDeltaAgeMs },
        {
          dropped: (reason, n) => {
            counts.dropped[reason] = (counts.dropped[reason] ?? 0) + n;
          },
          reset: () => {},
          overflow: () => {},
          expired: () => {},
        },
      );
      const family = store.family('c_total', 'counter', '', '', 1) as Family;
      const now = 1_700_000_000_000;
      const at = (ms: number) => BigInt(ms) * 1_000_000n;
      store.apply(family, 'a="1"', at(now - 70_000), at(now - 61_000), counter(2, 'delta'), [], now);
      store.apply(family, 'a="1"', at(now - 70_000), at(now - 59_000), counter(1, 'delta'), [], now);
      expect(seriesValue(family)).toBe(value);
      expect(counts.dropped.delta_too_old).toBe(refused);
    }
  });

  test('points without temporality are dropped', () => {
    const { store, counts } = makeStore();
    const family = store.family('c_total', 'counter', '', '', 1) as Family;
    store.apply(family, 'a="1"', 0n, S, { kind: 'counter', value: 1, temporality: 'none', monotonic: true }, [], 0);
    expect(family.series.size).toBe(0);
    expect(counts.dropped.unspecified_temporality).toBe(1);
  });

  test('delta histograms accumulate bucket by bucket; a point of another bucket layout is refused', () => {
    const { store, counts } = makeStore();
    const family = store.family('h_seconds', 'histogram', 's', '', 1) as Family;
    store.apply(family, '', 0n, S, histogram([1, 2], [1, 0, 2], 7, 'delta'), [], 0);
    store.apply(family, '', S, 2n * S, histogram([1, 2], [0, 3, 1], 8, 'delta'), [], 0);
    expect(family.series.get('')?.histogram).toMatchObject({ counts: [1, 3, 3], sum: 15, count: 7 });
    store.apply(family, '', 2n * S, 3n * S, histogram([5], [1, 0], 1, 'delta'), [], 0);
    expect(family.series.get('')?.histogram).toMatchObject({ bounds: [1, 2], counts: [1, 3, 3], count: 7 });
    expect(counts.dropped.bucket_layout_changed).toBe(1);
    expect(counts.resets).toBe(0);
    expect(renderFamily(family, 'text')).toBe(
      '# TYPE h_seconds histogram\nh_seconds_bucket{le="1"} 1\nh_seconds_bucket{le="2"} 4\nh_seconds_bucket{le="+Inf"} 7\nh_seconds_sum 15\nh_seconds_count 7\n',
    );
  });

  test('delta exponential histograms of different scales merge at the coarser scale', () => {
    const { store, counts } = makeStore();
    const family = store.family('e_seconds', 'histogram', 's', '', 1) as Family;
    const exp = (scale: number, offset: number, buckets: number[]): PointUpdate => ({
      kind: 'exponential',
      temporality: 'delta',
      point: {
        attributes: [],
        startTimeUnixNano: 0n,
        timeUnixNano: 0n,
        exemplars: [],
        flags: 0,
        count: buckets.reduce((a, b) => a + b, 0),
        sum: 1,
        scale,
        zeroCount: 0,
        zeroThreshold: 0,
        positive: { offset, bucketCounts: buckets },
        negative: { offset: 0, bucketCounts: [] },
        min: undefined,
        max: undefined,
      },
    });
    store.apply(family, '', 0n, S, exp(2, 4, [1, 1, 1, 1]), [], 0); // indexes 4..7 at scale 2
    store.apply(family, '', 0n, S, exp(1, 2, [5]), [], 0); // index 2 at scale 1
    const e = family.series.get('')?.exponential;
    expect(e?.scale).toBe(1);
    expect(Object.fromEntries(e?.positive ?? [])).toEqual({ 2: 7, 3: 2 });
    expect(e?.count).toBe(9);
    expect(counts.dropped).toEqual({});
  });
});

describe('series limit', () => {
  test('label sets past the limit fold into one overflow series that sums their counters', () => {
    const { store, counts } = makeStore(2);
    const family = store.family('c_total', 'counter', '', '', 1) as Family;
    for (const [labels, value, time] of [
      ['a="1"', 1, 1n],
      ['a="2"', 2, 1n],
      ['a="3"', 10, 1n],
      ['a="4"', 20, 1n],
      ['a="3"', 15, 2n],
    ] as [string, number, bigint][]) {
      store.apply(family, labels, 0n, time * S, counter(value, 'cumulative'), [], 0);
    }
    expect(family.series.size).toBe(2);
    expect(family.overflow?.value).toBe(10 + 20 + 5);
    expect(counts.overflow).toBe(3);
    expect(store.activeSeries).toBe(3);
    expect(renderFamily(family, 'text')).toContain('c_total{otel_metric_overflow="true"} 35\n');
  });

  test('the overflow keeps memory bounded: past 10 × the limit, new label sets are dropped', () => {
    const { store, counts } = makeStore(1);
    const family = store.family('c_total', 'counter', '', '', 1) as Family;
    for (let i = 0; i < 1000; i++) store.apply(family, `a="${i}"`, 0n, S, counter(1, 'cumulative'), [], 0);
    expect(family.series.size).toBe(1);
    expect(family.overflowTracked?.size).toBe(10);
    expect(family.overflow?.value).toBe(10);
    expect(counts.dropped.overflow_untracked).toBe(1000 - 1 - 10);
  });
});

test('series not updated within the expiration disappear, and so do empty families', () => {
  const { store, counts } = makeStore();
  const family = store.family('g', 'gauge', '', '', 1) as Family;
  store.apply(family, 'a="1"', 0n, S, { kind: 'gauge', value: 1 }, [], 0);
  store.apply(family, 'a="2"', 0n, S, { kind: 'gauge', value: 2 }, [], 50_000);
  expect(store.sweep(70_000)).toBe(1);
  expect([...family.series.keys()]).toEqual(['a="2"']);
  expect(store.sweep(120_000)).toBe(1);
  expect(store.families.size).toBe(0);
  expect(counts.expired).toBe(2);
  expect(store.activeSeries).toBe(0);
});

test('a name taken by another type or unit is a conflict: the first family stays, the rest is dropped', () => {
  const { store, counts } = makeStore();
  expect(store.family('x', 'gauge', 's', '', 1)).toBeDefined();
  expect(store.family('x', 'counter', 's', '', 3)).toBeUndefined();
  expect(store.family('x', 'gauge', 'ms', '', 2)).toBeUndefined();
  expect(counts.dropped).toEqual({ type_conflict: 3, unit_conflict: 2 });
});

test('a family is rendered once and reused until it changes', () => {
  const { store } = makeStore();
  const family = store.family('g', 'gauge', '', 'help', 1) as Family;
  store.apply(family, '', 0n, S, { kind: 'gauge', value: 1 }, [], 0);
  expect(renderFamily(family, 'text')).toBe('# HELP g help\n# TYPE g gauge\ng 1\n');
  family.text = [Buffer.from('cached')];
  store.apply(family, '', 0n, 2n * S, { kind: 'gauge', value: 2 }, [], 0);
  expect(family.text).toBeUndefined();
});

test('past the limit, points that cannot be summed (summaries, cumulative histograms) are dropped without an overflow series', () => {
  const { store, counts } = makeStore(1);
  const family = store.family('s', 'summary', '', '', 1) as Family;
  const summary: PointUpdate = { kind: 'summary', sum: 1, count: 1, quantiles: [] };
  store.apply(family, 'a="1"', 0n, S, summary, [], 0);
  store.apply(family, 'a="2"', 0n, S, summary, [], 0);
  expect(family.overflow).toBeUndefined();
  expect(counts.overflow).toBe(0);
  expect(counts.dropped.overflow_untracked).toBe(1);
  expect(store.activeSeries).toBe(1);
  expect(renderFamily(family, 'text')).not.toContain('otel_metric_overflow');
});

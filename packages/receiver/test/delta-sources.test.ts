/**
 * Delta points from many short-lived sources that share one series (browsers: same job, no
 * service.instance.id) are increments over their own intervals: /metrics holds their sum whatever their
 * start times and order, as the Collector's deltatocumulative processor and Prometheus's OTLP receiver
 * take deltas. A delta older than prometheus.max_delta_age, and a delta histogram whose bucket bounds
 * differ from the series', is refused and counted; cumulative series are not touched by any of this.
 */
import { JSON_TYPE, post, startTestReceiver, type TestReceiver } from './helpers';

const MS = 1_000_000n;
const str = (v: string) => ({ stringValue: v });
const BOUNDS = [500, 1000, 2500];

interface Delta {
  start: bigint;
  time: bigint;
  counts: number[];
  sum: number;
  route?: string;
  bounds?: number[];
}

/** One browser page's export: a delta histogram (web_vitals.lcp by page.route) and a delta counter. */
function request(points: Delta[]): string {
  return JSON.stringify({
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: str('shop-web') }] },
        scopeMetrics: [
          {
            scope: { name: '@sonde/web' },
            metrics: [
              {
                name: 'web_vitals.lcp',
                unit: 'ms',
                histogram: {
                  aggregationTemporality: 1,
                  dataPoints: points.map((p) => ({
                    attributes: [{ key: 'page.route', value: str(p.route ?? '/') }],
                    startTimeUnixNano: String(p.start),
                    timeUnixNano: String(p.time),
                    count: String(p.counts.reduce((a, b) => a + b, 0)),
                    sum: p.sum,
                    bucketCounts: p.counts.map(String),
                    explicitBounds: p.bounds ?? BOUNDS,
                  })),
                },
              },
              {
                name: 'page.views',
                sum: {
                  isMonotonic: true,
                  aggregationTemporality: 1,
                  dataPoints: points.map((p) => ({
                    attributes: [{ key: 'page.route', value: str(p.route ?? '/') }],
                    startTimeUnixNano: String(p.start),
                    timeUnixNano: String(p.time),
                    asInt: String(p.counts.reduce((a, b) => a + b, 0)),
                  })),
                },
              },
            ],
          },
        ],
      },
    ],
  });
}

async function scrape(t: TestReceiver): Promise<Map<string, number>> {
  const text = await (await fetch(`${t.admin}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\S+?)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels = (m[2] ?? '').replace(
      /job="[^"]*",instance="[^"]*",otel_scope_name="[^"]*",otel_scope_version="[^"]*",?/,
      '',
    );
    out.set(`${m[1]}${labels === '{}' ? '' : labels}`, Number(m[3]));
  }
  return out;
}

describe('delta points from many sources sharing a series', () => {
  let t: TestReceiver;
  beforeEach(async () => {
    t = await startTestReceiver();
  });
  afterEach(() => t.close());
  const send = async (body: string) => expect((await post(`${t.http}/v1/metrics`, body, JSON_TYPE)).status).toBe(200);

  test('interleaved deltas of several sources with overlapping intervals: /metrics holds their sum', async () => {
    const base = BigInt(Date.now() - 60_000) * MS;
    const at = (ms: number) => base + BigInt(ms) * MS;
    // Five pages, each exporting every 10 s from its own start; their intervals overlap, and the
    // exports arrive interleaved, some with end times earlier than one already received.
    const exports: Delta[] = [];
    for (let page = 0; page < 5; page++) {
      const offset = page * 3_000;
      for (let k = 0; k < 3; k++) {
        exports.push({
          start: at(offset + k * 10_000),
          time: at(offset + (k + 1) * 10_000),
          counts: [page % 2, 1, k, page === 4 ? 2 : 0],
          sum: 100 * page + 10 * k + 1,
        });
      }
    }
    // Arrival order: by page-major round robin, reversed in part, so start times go back and forth.
    const order = [14, 0, 5, 10, 1, 13, 6, 11, 2, 7, 12, 3, 8, 4, 9];
    for (const i of order) await send(request([exports[i]]));
    const expected = exports.reduce(
      (acc, e) => {
        for (let i = 0; i < 4; i++) acc.counts[i] += e.counts[i];
        acc.sum += e.sum;
        return acc;
      },
      { counts: [0, 0, 0, 0], sum: 0 },
    );
    const total = expected.counts.reduce((a, b) => a + b, 0);
    const m = await scrape(t);
    expect(m.get('web_vitals_lcp_milliseconds_count{page_route="/"}')).toBe(total);
    expect(m.get('web_vitals_lcp_milliseconds_sum{page_route="/"}')).toBe(expected.sum);
    let cumulative = 0;
    for (const [i, le] of ['500', '1000', '2500', '+Inf'].entries()) {
      cumulative += expected.counts[i];
      expect(m.get(`web_vitals_lcp_milliseconds_bucket{page_route="/",le="${le}"}`)).toBe(cumulative);
    }
    expect(m.get('page_views_total{page_route="/"}')).toBe(total);
    expect(m.get('sonde_prometheus_series_resets_total')).toBe(0);
    expect([...m.keys()].filter((k) => k.startsWith('sonde_prometheus_dropped_points_total'))).toEqual([]);
  });

  test('a delta older than max_delta_age is refused and counted; one just inside it is added', async () => {
    const now = BigInt(Date.now()) * MS;
    const day = 24n * 3_600_000n * MS;
    await send(request([{ start: now - 10_000n * MS, time: now, counts: [1, 0, 0, 0], sum: 100 }]));
    await send(
      request([{ start: now - day - 20_000n * MS, time: now - day - 10_000n * MS, counts: [0, 5, 0, 0], sum: 4000 }]),
    );
    await send(
      request([{ start: now - day + 50_000n * MS, time: now - day + 60_000n * MS, counts: [0, 0, 2, 0], sum: 3000 }]),
    );
    const m = await scrape(t);
    expect(m.get('web_vitals_lcp_milliseconds_count{page_route="/"}')).toBe(3);
    expect(m.get('page_views_total{page_route="/"}')).toBe(3);
    // Both the histogram point and the counter point of the old export.
    expect(m.get('sonde_prometheus_dropped_points_total{reason="delta_too_old"}')).toBe(2);
  });

  test('a delta histogram with other bucket bounds is refused and counted; the series keeps its sum', async () => {
    const now = BigInt(Date.now()) * MS;
    await send(request([{ start: now - 20_000n * MS, time: now - 10_000n * MS, counts: [1, 1, 1, 1], sum: 5000 }]));
    await send(
      request([{ start: now - 30_000n * MS, time: now - 5_000n * MS, counts: [7, 0], sum: 70, bounds: [100] }]),
    );
    await send(request([{ start: now - 15_000n * MS, time: now, counts: [0, 2, 0, 0], sum: 1500 }]));
    const m = await scrape(t);
    expect(m.get('web_vitals_lcp_milliseconds_count{page_route="/"}')).toBe(6);
    expect(m.get('web_vitals_lcp_milliseconds_bucket{page_route="/",le="1000"}')).toBe(4);
    expect(m.get('sonde_prometheus_dropped_points_total{reason="bucket_layout_changed"}')).toBe(1);
    expect(m.has('web_vitals_lcp_milliseconds_bucket{page_route="/",le="100"}')).toBe(false);
    expect(m.get('sonde_prometheus_series_resets_total')).toBe(0);
  });
});

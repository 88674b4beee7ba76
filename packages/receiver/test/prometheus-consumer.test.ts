/**
 * The Prometheus stage end to end inside the receiver: OTLP metrics over real HTTP, then the admin
 * /metrics scrape, asserting the exact series for each metric type and rule.
 */
import { JSON_TYPE, post, startTestReceiver, type TestReceiver } from './helpers';

const T1 = '1700000000000000000';
const T2 = '1700000010000000000';
const str = (v: string) => ({ stringValue: v });

function request(metrics: object[], resource: object[] = [], scope = { name: 'app', version: '1.0.0' }): string {
  return JSON.stringify({
    resourceMetrics: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: str('shop') },
            { key: 'service.namespace', value: str('web') },
            { key: 'service.instance.id', value: str('i-1') },
            ...resource,
          ],
        },
        scopeMetrics: [{ scope, metrics }],
      },
    ],
  });
}

const BASE = 'job="web/shop",instance="i-1",otel_scope_name="app",otel_scope_version="1.0.0"';

async function scrape(t: TestReceiver, accept?: string): Promise<string[]> {
  const res = await fetch(`${t.admin}/metrics`, { headers: accept ? { accept } : {} });
  const text = await res.text();
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('sonde_') && !/^# (HELP|TYPE|UNIT) sonde_/.test(l));
}

describe('OTLP metrics on /metrics', () => {
  let t: TestReceiver;
  beforeEach(async () => {
    // The points carry fixed times of 2023: no max_delta_age, so that deltas among them are added.
    t = await startTestReceiver({
      prometheus: { promote_resource_attributes: ['deployment.environment.name'], max_delta_age: 0 },
    });
  });
  afterEach(() => t.close());
  const send = async (body: string) => expect((await post(`${t.http}/v1/metrics`, body, JSON_TYPE)).status).toBe(200);

  test('labels: sanitized, sorted, colliding keys joined with ";", empty values and reserved names left out, promoted resource attributes', async () => {
    await send(
      request(
        [
          {
            name: 'jobs.done',
            unit: '{job}',
            sum: {
              isMonotonic: true,
              aggregationTemporality: 2,
              dataPoints: [
                {
                  asInt: '5',
                  timeUnixNano: T1,
                  attributes: [
                    { key: 'z.last', value: str('z') },
                    { key: 'a.b', value: str('dot') },
                    { key: 'a_b', value: str('underscore') },
                    { key: 'empty', value: str('') },
                    { key: 'job', value: str('spoofed') },
                    { key: '9lives', value: { intValue: '9' } },
                    { key: 'quote', value: str('say "hi"\\n') },
                  ],
                },
              ],
            },
          },
        ],
        [{ key: 'deployment.environment.name', value: str('prod') }],
      ),
    );
    expect(await scrape(t)).toEqual([
      '# HELP target_info Target metadata',
      '# TYPE target_info gauge',
      'target_info{job="web/shop",instance="i-1",deployment_environment_name="prod"} 1',
      '# TYPE jobs_done_total counter',
      'jobs_done_total{job="web/shop",instance="i-1",deployment_environment_name="prod",otel_scope_name="app",otel_scope_version="1.0.0",a_b="dot;underscore",key_9lives="9",quote="say \\"hi\\"\\\\n",z_last="z"} 5',
    ]);
  });

  test('delta counters accumulate; non-monotonic deltas are dropped and counted', async () => {
    const delta = (start: string, time: string, v: string) => ({
      name: 'orders',
      sum: {
        isMonotonic: true,
        aggregationTemporality: 1,
        dataPoints: [{ asInt: v, startTimeUnixNano: start, timeUnixNano: time }],
      },
    });
    await send(request([delta('1', T1, '3')]));
    await send(request([delta(T1, T2, '4')]));
    await send(
      request([
        {
          name: 'queue.delta',
          sum: { isMonotonic: false, aggregationTemporality: 1, dataPoints: [{ asInt: '2', timeUnixNano: T1 }] },
        },
      ]),
    );
    const lines = await scrape(t);
    expect(lines).toContain(`orders_total{${BASE}} 7`);
    expect(lines.some((l) => l.startsWith('queue'))).toBe(false);
    const own = await (await fetch(`${t.admin}/metrics`)).text();
    expect(own).toContain('sonde_prometheus_dropped_points_total{reason="non_monotonic_delta"} 1');
  });

  test('a point flagged "no recorded value" removes its series', async () => {
    const gauge = (flags: number) => ({
      name: 'temp',
      unit: 'Cel',
      gauge: { dataPoints: [{ asDouble: 21.5, timeUnixNano: T1, flags }] },
    });
    await send(request([gauge(0)]));
    expect(await scrape(t)).toContain(`temp_celsius{${BASE}} 21.5`);
    await send(request([gauge(1)]));
    expect((await scrape(t)).some((l) => l.startsWith('temp_celsius{'))).toBe(false);
  });

  test('summary → quantiles, _sum and _count', async () => {
    await send(
      request([
        {
          name: 'rpc.latency',
          unit: 'ms',
          summary: {
            dataPoints: [
              {
                timeUnixNano: T1,
                count: '10',
                sum: 125,
                quantileValues: [
                  { quantile: 0.5, value: 10 },
                  { quantile: 0.99, value: 40 },
                ],
              },
            ],
          },
        },
      ]),
    );
    const lines = await scrape(t);
    expect(lines).toEqual(
      expect.arrayContaining([
        '# TYPE rpc_latency_milliseconds summary',
        `rpc_latency_milliseconds{${BASE},quantile="0.5"} 10`,
        `rpc_latency_milliseconds{${BASE},quantile="0.99"} 40`,
        `rpc_latency_milliseconds_sum{${BASE}} 125`,
        `rpc_latency_milliseconds_count{${BASE}} 10`,
      ]),
    );
  });

  test('exponential histogram → classic buckets at the exponential bucket boundaries', async () => {
    // scale 0: base 2; positive offset 1 → buckets (2,4], (4,8]; zero bucket threshold 0.
    await send(
      request([
        {
          name: 'payload.size',
          unit: 'By',
          exponentialHistogram: {
            aggregationTemporality: 2,
            dataPoints: [
              {
                timeUnixNano: T1,
                count: '6',
                sum: 30,
                scale: 0,
                zeroCount: '1',
                positive: { offset: 1, bucketCounts: ['2', '3'] },
              },
            ],
          },
        },
      ]),
    );
    const lines = (await scrape(t)).filter((l) => l.startsWith('payload_size_bytes'));
    expect(lines).toEqual([
      `payload_size_bytes_bucket{${BASE},le="0"} 1`,
      `payload_size_bytes_bucket{${BASE},le="4"} 3`,
      `payload_size_bytes_bucket{${BASE},le="8"} 6`,
      `payload_size_bytes_bucket{${BASE},le="+Inf"} 6`,
      `payload_size_bytes_sum{${BASE}} 30`,
      `payload_size_bytes_count{${BASE}} 6`,
    ]);
  });

  test('a metric whose translated name is taken by another type is dropped and counted; the first is kept', async () => {
    // A gauge named hits_total and a counter named hits both translate to hits_total.
    await send(request([{ name: 'hits_total', gauge: { dataPoints: [{ asInt: '1', timeUnixNano: T1 }] } }]));
    await send(
      request([
        {
          name: 'hits',
          sum: { isMonotonic: true, aggregationTemporality: 2, dataPoints: [{ asInt: '9', timeUnixNano: T2 }] },
        },
      ]),
    );
    const lines = await scrape(t);
    expect(lines).toContain('# TYPE hits_total gauge');
    expect(lines).toContain(`hits_total{${BASE}} 1`);
    const own = await (await fetch(`${t.admin}/metrics`)).text();
    expect(own).toContain('sonde_prometheus_dropped_points_total{reason="type_conflict"} 1');
  });

  test('OpenMetrics: counter families without _total, exemplars on counters, one # EOF', async () => {
    await send(
      request([
        {
          name: 'logins',
          sum: {
            isMonotonic: true,
            aggregationTemporality: 2,
            dataPoints: [
              {
                asInt: '2',
                timeUnixNano: T1,
                exemplars: [
                  {
                    asInt: '1',
                    timeUnixNano: T1,
                    traceId: '5b8efff798038103d269b633813fc60c',
                    spanId: 'eee19b7ec3c1b174',
                  },
                ],
              },
            ],
          },
        },
      ]),
    );
    const res = await fetch(`${t.admin}/metrics`, {
      headers: { accept: 'application/openmetrics-text; version=1.0.0' },
    });
    expect(res.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('# TYPE logins counter\n');
    expect(text).toContain(
      `logins_total{${BASE}} 2 # {trace_id="5b8efff798038103d269b633813fc60c",span_id="eee19b7ec3c1b174"} 1 1700000000.000\n`,
    );
    expect(text.endsWith('# EOF\n')).toBe(true);
    expect(text.match(/# EOF/g)).toHaveLength(1);
    const plain = await (await fetch(`${t.admin}/metrics`)).text();
    expect(plain).toContain(`logins_total{${BASE}} 2\n`);
    expect(plain).not.toContain('trace_id');
    // The receiver's own counters keep their _total in text scrapes after an OpenMetrics one.
    expect(plain).toContain('# TYPE sonde_receiver_requests_total counter\n');
  });

  test('a cardinality flood is folded into one overflow series: memory stays bounded and the overflow is counted', async () => {
    await t.close();
    t = await startTestReceiver({ prometheus: { max_series_per_metric: 100 } });
    const points = Array.from({ length: 5000 }, (_, i) => ({
      asInt: '1',
      timeUnixNano: T1,
      attributes: [{ key: 'visitor.session', value: str(`s-${i}`) }],
    }));
    await send(
      request([{ name: 'clicks', sum: { isMonotonic: true, aggregationTemporality: 2, dataPoints: points } }]),
    );
    const lines = (await scrape(t)).filter((l) => l.startsWith('clicks_total'));
    expect(lines).toHaveLength(101);
    // 100 series, then the overflow: it sums the next 10 × 100 label sets it can track; the
    // remaining 3,900 points are dropped and counted, so memory stays bounded whatever comes.
    expect(lines).toContain('clicks_total{otel_metric_overflow="true"} 1000');
    const own = await (await fetch(`${t.admin}/metrics`)).text();
    expect(own).toContain('sonde_prometheus_overflow_points_total 1000');
    expect(own).toContain('sonde_prometheus_dropped_points_total{reason="overflow_untracked"} 3900');
    expect(own).toContain('sonde_prometheus_series 101');
  });

  test('exponential buckets far apart stay few, finite and distinct (downscaled past 160 buckets)', async () => {
    const point = (start: string, time: string, offset: number) => ({
      startTimeUnixNano: start,
      timeUnixNano: time,
      count: '2',
      sum: 1,
      scale: 0,
      positive: { offset, bucketCounts: ['1'] },
      negative: { offset, bucketCounts: ['1'] },
    });
    const metric = (p: object) => ({
      name: 'spread',
      exponentialHistogram: { aggregationTemporality: 1, dataPoints: [p] },
    });
    await send(request([metric(point('1', T1, -1_000_000))]));
    await send(request([metric(point(T1, T2, 1_000_000))]));
    const buckets = (await scrape(t)).filter((l) => l.startsWith('spread_bucket'));
    const les = buckets.map((l) => /le="([^"]+)"/.exec(l)?.[1] ?? '');
    expect(buckets.length).toBeLessThanOrEqual(2 * 160 + 2);
    expect(new Set(les).size).toBe(les.length);
    expect(les.at(-1)).toBe('+Inf');
    expect(les.slice(0, -1).every((le) => Number.isFinite(Number(le)))).toBe(true);
    expect(buckets.at(-1)).toBe(`spread_bucket{${BASE},le="+Inf"} 4`);
  });

  test('a point attribute named like a promoted resource attribute is left out: one label, from the resource', async () => {
    await send(
      request(
        [
          {
            name: 'g',
            gauge: {
              dataPoints: [
                {
                  asInt: '1',
                  timeUnixNano: T1,
                  attributes: [{ key: 'deployment.environment.name', value: str('other') }],
                },
              ],
            },
          },
        ],
        [{ key: 'deployment.environment.name', value: str('prod') }],
      ),
    );
    const line = (await scrape(t)).find((l) => l.startsWith('g{'));
    expect(line).toBe(
      'g{job="web/shop",instance="i-1",deployment_environment_name="prod",otel_scope_name="app",otel_scope_version="1.0.0"} 1',
    );
  });

  test('an OTLP metric whose name span metrics or the receiver already use is dropped, so /metrics stays valid', async () => {
    const sum = (name: string) => ({
      name,
      sum: { isMonotonic: true, aggregationTemporality: 2, dataPoints: [{ asInt: '1', timeUnixNano: T1 }] },
    });
    const spans = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'op', kind: 2 }],
            },
          ],
        },
      ],
    };
    expect((await post(`${t.http}/v1/traces`, JSON.stringify(spans), JSON_TYPE)).status).toBe(200);
    await send(request([sum('traces.spanmetrics.calls'), sum('sonde.receiver.requests')]));
    const text = await (await fetch(`${t.admin}/metrics`)).text();
    expect(text.match(/^# TYPE traces_spanmetrics_calls_total /gm)).toHaveLength(1);
    expect(text).not.toContain('job="web/shop"');
    expect(text).toContain('sonde_prometheus_dropped_points_total{reason="type_conflict"} 2');
  });
});

describe('exemplar attributes (filteredAttributes) on OpenMetrics exemplars', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ redaction: { enabled: true, block_keys: ['user.secret'] } });
  });
  afterAll(() => t.close());

  const TRACE = '5b8efff798038103d269b633813fc60c';
  const SPAN = 'eee19b7ec3c1b174';
  const exemplarLine = async (name: string) => {
    const lines = await scrape(t, 'application/openmetrics-text; version=1.0.0');
    return lines.find((l) => l.startsWith(`${name}{`) && l.includes(' # {'));
  };

  test('kept as labels after redaction, within the 128-character exemplar label set; what does not fit is left out', async () => {
    const filteredAttributes = [
      { key: 'cart.id', value: str('c-42') },
      { key: 'user.secret', value: str('hunter2') },
      { key: 'contact', value: str('ada@example.com') },
      { key: 'too.long', value: str('x'.repeat(60)) },
      { key: 'retry', value: { intValue: '3' } },
    ];
    const body = request([
      {
        name: 'checkouts',
        sum: {
          isMonotonic: true,
          aggregationTemporality: 2,
          dataPoints: [
            {
              asInt: '2',
              timeUnixNano: T1,
              exemplars: [{ asInt: '1', timeUnixNano: T1, traceId: TRACE, spanId: SPAN, filteredAttributes }],
            },
          ],
        },
      },
    ]);
    expect((await post(`${t.http}/v1/metrics`, body, JSON_TYPE)).status).toBe(200);
    const line = await exemplarLine('checkouts_total');
    const labelSet = /# \{(.*)\}/.exec(line ?? '')?.[1] ?? '';
    expect(labelSet).toBe(`trace_id="${TRACE}",span_id="${SPAN}",cart_id="c-42",contact="[REDACTED:email]",retry="3"`);
    // OpenMetrics: label names and values together at most 128 characters.
    const chars = [...labelSet.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].reduce(
      (n, m) => n + [...m[1]].length + [...m[2]].length,
      0,
    );
    expect(chars).toBeLessThanOrEqual(128);
  });
});

describe('a histogram whose explicit bounds end in +Inf (OpenTelemetry JS 0.27 sends [Infinity])', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver();
  });
  afterAll(() => t.close());

  test('has one le="+Inf" bucket, holding every count', async () => {
    const body = request([
      {
        name: 'latency',
        histogram: {
          aggregationTemporality: 2,
          dataPoints: [
            { timeUnixNano: T1, count: '3', sum: 12, bucketCounts: ['1', '2', '0'], explicitBounds: [5, 'Infinity'] },
          ],
        },
      },
    ]);
    expect((await post(`${t.http}/v1/metrics`, body, JSON_TYPE)).status).toBe(200);
    const buckets = (await scrape(t)).filter((l) => l.startsWith('latency_bucket'));
    expect(buckets).toEqual([`latency_bucket{${BASE},le="5"} 1`, `latency_bucket{${BASE},le="+Inf"} 3`]);
  });
});

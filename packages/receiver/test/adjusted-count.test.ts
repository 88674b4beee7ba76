/**
 * Adjusted counts: the `ot=th` threshold of OpenTelemetry's probability sampling, the multiplier
 * attribute (Tempo's span_multiplier_key), and how span metrics and the service graph weight by them.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Batch, KeyValue, Span } from '../src';
import { renderFamily } from '../src/series/exposition';
import type { Family } from '../src/series/store';
import {
  AdjustedCounter,
  adjustedCountOfThreshold,
  adjustedCountOfTraceState,
  adjustedCountOfValue,
  MAX_ADJUSTED_COUNT,
} from '../src/traces/adjusted-count';
import { ServiceGraphConsumer } from '../src/traces/service-graph';
import { SpanMetricsConsumer } from '../src/traces/span-metrics';
import { modelSpan } from './helpers';

describe('the ot=th threshold', () => {
  test.each([
    ['0', 1],
    ['8', 2], // T = 2^55: half kept
    ['c', 4],
    ['e', 8],
    ['f', 16],
    ['ff', 256],
    ['fff', 4096],
    ['ffffffffffffff', MAX_ADJUSTED_COUNT], // the smallest probability, 2^-56
  ])('th:%s → %d', (th, count) => {
    expect(adjustedCountOfThreshold(th)).toBe(count);
  });

  test('10% (th:e666666666666, trailing zeros left out) is 10 within the threshold precision', () => {
    expect(adjustedCountOfThreshold('e666666666666')).toBeCloseTo(10, 9);
    expect(adjustedCountOfThreshold('e67')).toBeCloseTo(1 / (1 - 0xe67 / 0x1000), 9);
  });

  test.each(['', 'E', 'g', '-1', '123456789abcdef', '0x8', ' 8'])('malformed th %j is ignored', (th) => {
    expect(adjustedCountOfThreshold(th)).toBeUndefined();
  });

  test.each([
    ['ot=th:8', 2],
    ['ot=rv:0123456789abcd;th:c', 4],
    ['vendor=x,ot=th:8;rv:00000000000000', 2],
    [' ot=th:8 , x=y', 2], // optional whitespace around list members (W3C)
    ['other=th:8', undefined],
    ['ot=p:8', undefined],
    ['', undefined],
  ])('tracestate %j → %p', (ts, count) => {
    expect(adjustedCountOfTraceState(ts)).toBe(count);
  });

  test.each([
    [10, 10],
    [2.5, 2.5],
    [7n, 7],
    ['10', 10],
    [0.5, undefined],
    [0, undefined],
    [-3, undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
    ['ten', undefined],
    ['', undefined],
    [true, undefined],
    [1e300, MAX_ADJUSTED_COUNT],
  ])('multiplier value %p → %p', (value, count) => {
    expect(adjustedCountOfValue(value)).toBe(count);
  });

  test('precedence: threshold, then span attribute, then resource attribute, then 1', () => {
    const a = new AdjustedCounter('sampling.multiplier');
    const m = (value: number | string): KeyValue[] => [{ key: 'sampling.multiplier', value }];
    const span = (attributes: KeyValue[]) => ({ attributes });
    expect(a.of('ot=th:8', span(m(10)), m(20))).toBe(2);
    expect(a.of('ot=th:zz', span(m(10)), m(20))).toBe(10);
    expect(a.of('', span(m(10)), m(20))).toBe(10);
    expect(a.of('', span([]), m(20))).toBe(20);
    expect(a.of('', span(m('nope')), m(20))).toBe(1);
    expect(a.of('', span([]), [])).toBe(1);
    expect(new AdjustedCounter('').of('', span(m(10)), m(20))).toBe(1);
  });
});

function batch(spans: Span[], resource: KeyValue[]): Batch<'traces'> {
  return {
    signal: 'traces',
    itemCount: spans.length,
    warnings: [],
    decodeStats: undefined,
    context: { transport: 'http', encoding: 'protobuf', receivedAt: 0, raw: undefined, modified: false },
    data: [
      {
        resource: { attributes: resource, droppedAttributesCount: 0 },
        schemaUrl: '',
        scopeSpans: [
          { scope: { name: 's', version: '', attributes: [], droppedAttributesCount: 0 }, schemaUrl: '', spans },
        ],
      },
    ],
  };
}

const lines = (store: { families: Map<string, unknown> }, name: string) =>
  renderFamily(store.families.get(name) as Family, 'text')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));

afterEach(() => jest.clearAllTimers());

describe('span metrics', () => {
  const consumer = (spanMultiplierKey = '', serviceVersion = true) =>
    new SpanMetricsConsumer(
      {
        dimensions: [],
        latencyBuckets: [0.1],
        maxSeriesPerMetric: 100,
        metricExpirationMs: 60_000,
        spanMultiplierKey,
        serviceVersion,
      },
      new Registry(),
      pino({ level: 'silent' }),
    );

  test('calls, buckets, count and sum are weighted by the adjusted count; exemplars are not', async () => {
    const c = consumer('sampling.multiplier');
    const resource = [
      { key: 'service.name', value: 'shop' },
      { key: 'service.version', value: '1.4.2' },
    ];
    c.consume(
      batch(
        [
          modelSpan({ traceState: 'ot=th:e' }), // 8
          modelSpan({ attributes: [{ key: 'sampling.multiplier', value: 2.5 }] }),
          modelSpan({}), // 1
        ],
        resource,
      ),
    );
    const labels =
      'service="shop",service_version="1.4.2",span_name="GET /",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"';
    expect(lines(c.store, 'traces_spanmetrics_calls_total')).toEqual([
      `traces_spanmetrics_calls_total{${labels}} 11.5`,
    ]);
    expect(lines(c.store, 'traces_spanmetrics_latency')).toEqual([
      `traces_spanmetrics_latency_bucket{${labels},le="0.1"} 11.5`,
      `traces_spanmetrics_latency_bucket{${labels},le="+Inf"} 11.5`,
      expect.stringMatching(/^traces_spanmetrics_latency_sum\{.*\} 0\.575(0000000000001)?$/),
      `traces_spanmetrics_latency_count{${labels}} 11.5`,
    ]);
    const exemplar = renderFamily(c.store.families.get('traces_spanmetrics_calls_total') as Family, 'openmetrics');
    expect(exemplar).toContain('# {traceID="5b8efff798038103d269b633813fc60c",spanID="eee19b7ec3c1b174"} 1 ');
  });

  test('service_version is "" without service.version, and can be turned off', () => {
    const on = consumer();
    on.consume(batch([modelSpan({})], [{ key: 'service.name', value: 'shop' }]));
    expect(lines(on.store, 'traces_spanmetrics_calls_total')[0]).toContain(
      'service="shop",service_version="",span_name',
    );
    const off = consumer('', false);
    off.consume(batch([modelSpan({})], [{ key: 'service.version', value: '2' }]));
    expect(lines(off.store, 'traces_spanmetrics_calls_total')[0]).not.toContain('service_version');
  });

  test('a service.version dimension adds no second service_version label', () => {
    const c = new SpanMetricsConsumer(
      {
        dimensions: ['service.version'],
        latencyBuckets: [0.1],
        maxSeriesPerMetric: 100,
        metricExpirationMs: 60_000,
        serviceVersion: true,
      },
      new Registry(),
      pino({ level: 'silent' }),
    );
    c.consume(batch([modelSpan({})], [{ key: 'service.version', value: '2' }]));
    expect(lines(c.store, 'traces_spanmetrics_calls_total')[0].match(/service_version=/g)).toHaveLength(1);
  });
});

describe('service graph', () => {
  test('each edge counts its server span’s adjusted count, else the client’s; histograms alike', async () => {
    const g = new ServiceGraphConsumer(
      {
        waitMs: 10_000,
        maxItems: 100,
        latencyBuckets: [0.1],
        maxSeriesPerMetric: 100,
        metricExpirationMs: 60_000,
        spanMultiplierKey: 'sampling.multiplier',
      },
      new Registry(),
      pino({ level: 'silent' }),
    );
    // A sampled request at 25% (th:c): client and server carry the same threshold.
    g.consume(
      batch(
        [modelSpan({ kind: 3, spanId: 'aaaaaaaaaaaaaaaa', traceState: 'ot=th:c' })],
        [{ key: 'service.name', value: 'web' }],
      ),
    );
    g.consume(
      batch(
        [
          modelSpan({
            kind: 2,
            spanId: 'bbbbbbbbbbbbbbbb',
            parentSpanId: 'aaaaaaaaaaaaaaaa',
            traceState: 'ot=th:c',
            status: { code: 2, message: '' },
          }),
        ],
        [{ key: 'service.name', value: 'api' }],
      ),
    );
    // A database call from a service that sets a multiplier on its resource.
    g.consume(
      batch(
        [modelSpan({ kind: 3, traceId: '1'.repeat(32), attributes: [{ key: 'db.system.name', value: 'postgresql' }] })],
        [
          { key: 'service.name', value: 'api' },
          { key: 'sampling.multiplier', value: 10 },
        ],
      ),
    );
    expect(lines(g.store, 'traces_service_graph_request_total')).toEqual([
      'traces_service_graph_request_total{client="web",server="api",connection_type=""} 4',
      'traces_service_graph_request_total{client="api",server="postgresql",connection_type="database"} 10',
    ]);
    expect(lines(g.store, 'traces_service_graph_request_failed_total')).toEqual([
      'traces_service_graph_request_failed_total{client="web",server="api",connection_type=""} 4',
    ]);
    expect(lines(g.store, 'traces_service_graph_request_server_seconds')).toContain(
      'traces_service_graph_request_server_seconds_count{client="web",server="api",connection_type=""} 4',
    );
    expect(lines(g.store, 'traces_service_graph_request_client_seconds')).toContain(
      'traces_service_graph_request_client_seconds_sum{client="api",server="postgresql",connection_type="database"} 0.5',
    );
    await g.shutdown();
  });
});

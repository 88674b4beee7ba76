/** Span metrics from hand-built spans: dimensions, unknown kinds, overflow, exemplar labels. */
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Batch, KeyValue, Span } from '../src';
import { renderFamily } from '../src/series/exposition';
import type { Family } from '../src/series/store';
import { SpanMetricsConsumer } from '../src/traces/span-metrics';
import { modelSpan } from './helpers';

function span(name: string, attributes: KeyValue[] = [], kind = 2, code = 0): Span {
  return modelSpan({ name, attributes, kind, status: { code, message: '' } });
}

function batch(spans: Span[], resource: KeyValue[] = [{ key: 'service.name', value: 'shop' }]): Batch<'traces'> {
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

function consumer(dimensions: string[] = [], maxSeriesPerMetric = 100) {
  return new SpanMetricsConsumer(
    { dimensions, latencyBuckets: [0.1], maxSeriesPerMetric, metricExpirationMs: 60_000 },
    new Registry(),
    pino({ level: 'silent' }),
  );
}

const calls = (c: SpanMetricsConsumer) =>
  renderFamily(c.store.families.get('traces_spanmetrics_calls_total') as Family, 'text')
    .split('\n')
    .filter((l) => l.startsWith('traces_'));

afterEach(() => jest.clearAllTimers());

test('dimensions come from the span, then the resource, else ""; one colliding with a default label gets "__"', async () => {
  const c = consumer(['http.route', 'deployment.environment.name', 'missing', 'service']);
  c.consume(
    batch(
      [
        span('GET /a', [
          { key: 'http.route', value: '/a' },
          { key: 'service', value: 'x' },
        ]),
      ],
      [
        { key: 'service.name', value: 'shop' },
        { key: 'deployment.environment.name', value: 'prod' },
      ],
    ),
  );
  expect(calls(c)).toEqual([
    'traces_spanmetrics_calls_total{service="shop",span_name="GET /a",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",http_route="/a",deployment_environment_name="prod",missing="",__service="x"} 1',
  ]);
  await c.shutdown();
});

test('unknown kinds and status codes count as UNSPECIFIED and UNSET; a resource without service.name gives service=""', async () => {
  const c = consumer();
  c.consume(batch([span('x', [], 9, 7)], []));
  expect(calls(c)).toEqual([
    'traces_spanmetrics_calls_total{service="",span_name="x",span_kind="SPAN_KIND_UNSPECIFIED",status_code="STATUS_CODE_UNSET"} 1',
  ]);
  await c.shutdown();
});

test('past the series limit, spans are counted in one overflow series', async () => {
  const c = consumer([], 2);
  c.consume(batch(['a', 'b', 'c', 'd', 'c'].map((n) => span(n))));
  const lines = calls(c);
  expect(lines).toHaveLength(3);
  expect(lines[2]).toBe('traces_spanmetrics_calls_total{otel_metric_overflow="true"} 3');
  const latency = renderFamily(c.store.families.get('traces_spanmetrics_latency') as Family, 'openmetrics');
  expect(latency).toContain(
    'traces_spanmetrics_latency_bucket{otel_metric_overflow="true",le="0.1"} 3 # {traceID="5b8efff798038103d269b633813fc60c",spanID="eee19b7ec3c1b174"} 0.05 1700000000.050',
  );
  await c.shutdown();
});

test("a series' exemplar is its last span in the batch, and each latency bucket's the last span in that bucket", async () => {
  const c = consumer();
  const timed = (id: string, ms: number) =>
    modelSpan({
      spanId: id.padStart(16, '0'),
      startTimeUnixNano: 1_700_000_000_000_000_000n,
      endTimeUnixNano: 1_700_000_000_000_000_000n + BigInt(ms) * 1_000_000n,
    });
  // Bucket le=0.1: spans 1 and 3; +Inf: spans 2 and 4, then 5 in the next batch.
  c.consume(batch([timed('1', 50), timed('2', 200), timed('3', 30), timed('4', 500)]));
  const rendered = (name: string) =>
    renderFamily(c.store.families.get(name) as Family, 'openmetrics')
      .split('\n')
      .filter((l) => l.includes(' # {'));
  const trace = 'traceID="5b8efff798038103d269b633813fc60c"';
  expect(rendered('traces_spanmetrics_calls_total')).toEqual([
    `traces_spanmetrics_calls_total{service="shop",span_name="GET /",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 4 # {${trace},spanID="0000000000000004"} 1 1700000000.500`,
  ]);
  const labels = 'service="shop",span_name="GET /",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"';
  expect(rendered('traces_spanmetrics_latency')).toEqual([
    `traces_spanmetrics_latency_bucket{${labels},le="0.1"} 2 # {${trace},spanID="0000000000000003"} 0.03 1700000000.030`,
    `traces_spanmetrics_latency_bucket{${labels},le="+Inf"} 4 # {${trace},spanID="0000000000000004"} 0.5 1700000000.500`,
  ]);
  c.consume(batch([timed('5', 300)]));
  expect(rendered('traces_spanmetrics_latency')[1]).toContain('spanID="0000000000000005"} 0.3 ');
  expect(rendered('traces_spanmetrics_latency')[0]).toContain('spanID="0000000000000003"}');
  await c.shutdown();
});

test('a series removed by expiry comes back on the next span (the consumer does not write to the removed one)', async () => {
  const c = consumer();
  c.consume(batch([span('GET /a')]));
  c.consume(batch([span('GET /a')]));
  expect(calls(c)[0]).toMatch(/ 2$/);
  c.store.sweep(Date.now() + 61_000);
  expect(c.store.families.get('traces_spanmetrics_calls_total')?.series.size).toBe(0);
  c.consume(batch([span('GET /a')]));
  expect(calls(c)).toEqual([
    'traces_spanmetrics_calls_total{service="shop",span_name="GET /a",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 1',
  ]);
  await c.shutdown();
});

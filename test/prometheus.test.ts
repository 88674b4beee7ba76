/**
 * End to end with a real Prometheus (Debian's 2.42, see prometheus-harness.ts) scraping the receiver's
 * admin /metrics every second:
 *
 * - the receiver's self-metrics: the scrape is healthy, PromQL sees the spans the receiver accepted,
 *   and `promtool check metrics` parses the exposition;
 * - the OTLP → Prometheus exposition: what the OpenTelemetry JS metrics SDK sends (cumulative, and
 *   delta accumulated into a cumulative counter) appears under the names of the OpenTelemetry ↔
 *   Prometheus compatibility rules, with target_info; exemplars of OTLP data points reach Prometheus's
 *   exemplar storage through the OpenMetrics scrape.
 *
 * Exemplars are sent as OTLP JSON, with the ids of a real SDK span: the JS metrics SDK
 * (@opentelemetry/sdk-metrics 3.1.1, the newest) records no exemplars at all: it has no exemplar filter
 * or reservoir, and its OTLP serializers write no `exemplars` field.
 *
 * Prometheus always asks for OpenMetrics (Accept: application/openmetrics-text;version=1.0.0,...), so
 * every scrape here reads the OpenMetrics rendering; promtool reads the text format (a plain GET).
 */
import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, ValueType } from '@opentelemetry/api';
import { AggregationTemporalityPreference } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import { type Prometheus, promtoolCheckMetrics, type Sample, startPrometheus } from './prometheus-harness';

/** How long a series may take to show up: the export, then a scrape (every 1 s), then the query. */
const WAIT_MS = 8_000;

let receiver: Receiver;
let prometheus: Prometheus;
let otlpUrl: string;
let adminUrl: string;
const providers: { shutdown(): Promise<void> }[] = [];

beforeAll(async () => {
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      trace_store: { enabled: false },
    }),
  );
  otlpUrl = `http://${receiver.addresses.otlpHttp}`;
  adminUrl = `http://${receiver.addresses.admin}`;
  prometheus = await startPrometheus({ targets: [receiver.addresses.admin as string] });
}, 30_000);

afterAll(async () => {
  // SDK providers first (their shutdown exports once more, to the receiver), then the scraper.
  await Promise.allSettled(providers.map((p) => p.shutdown()));
  await prometheus?.stop();
  await receiver?.close();
}, 20_000);

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Fails unless the receiver's target is up and its last scrape had no error. A scrape that ran out
 * of time is waited out, for WAIT_MS at most: the scrape timeout here is 1 s (it may not exceed the
 * 1 s interval), which a machine running every test suite at once can overrun. Any other error, or
 * scrapes that keep timing out, fail.
 */
async function expectScrapeHealthy(): Promise<void> {
  const until = Date.now() + WAIT_MS;
  let targets = await prometheus.targets();
  while (targets.some((t) => t.lastError.includes('context deadline exceeded')) && Date.now() < until) {
    targets = await prometheus.waitForScrape(Math.max(1, until - Date.now()));
  }
  expect(targets.map((t) => ({ scrapeUrl: t.scrapeUrl, health: t.health, lastError: t.lastError }))).toEqual([
    { scrapeUrl: `${adminUrl}/metrics`, health: 'up', lastError: '' },
  ]);
}

/** The one series `promql` selects, once it has `value` (waits for a scrape that delivered it). */
async function expectValue(promql: string, value: number): Promise<Sample> {
  const samples = await prometheus.waitFor(
    promql,
    (s) => s.length === 1 && Math.abs(s[0].value - value) <= 1e-9 * Math.max(1, Math.abs(value)),
    WAIT_MS,
  );
  return samples[0];
}

/**
 * Runs every check, waits for all of them, and fails with every failure (not only the first), so one
 * run shows all that is missing.
 */
async function expectAll(checks: Record<string, () => Promise<unknown>>): Promise<void> {
  const names = Object.keys(checks);
  const results = await Promise.allSettled(names.map((name) => checks[name]()));
  const failures = results.flatMap((r, i) =>
    r.status === 'rejected' ? [`✗ ${names[i]}: ${(r.reason as Error)?.message ?? r.reason}`] : [],
  );
  if (failures.length > 0) {
    throw new Error(`${failures.length} of ${names.length} checks failed:\n\n${failures.join('\n\n')}`);
  }
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function nowNanos(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

async function postJson(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${otlpUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${path}: ${res.status} ${text}`);
}

function stringAttrs(values: Record<string, string>) {
  return Object.entries(values).map(([key, value]) => ({ key, value: { stringValue: value } }));
}

// ---------------------------------------------------------------------------------------------
// Self-metrics

describe('Prometheus scrapes the receiver’s own metrics', () => {
  const SPANS = 5;

  test('the scrape is healthy and PromQL sees the accepted spans', async () => {
    await prometheus.waitForScrape(WAIT_MS);
    await expectScrapeHealthy();

    const start = nowNanos();
    await postJson('/v1/traces', {
      resourceSpans: [
        {
          resource: { attributes: stringAttrs({ 'service.name': 'self-metrics' }) },
          scopeSpans: [
            {
              scope: { name: 'prometheus.test' },
              spans: Array.from({ length: SPANS }, (_, i) => ({
                traceId: hex(16),
                spanId: hex(8),
                name: `span ${i}`,
                kind: 1,
                startTimeUnixNano: start,
                endTimeUnixNano: start,
              })),
            },
          ],
        },
      ],
    });

    const sample = await expectValue(`sonde_receiver_accepted_spans_total{job="${prometheus.job}"}`, SPANS);
    expect(sample.metric).toEqual({
      __name__: 'sonde_receiver_accepted_spans_total',
      job: prometheus.job,
      instance: receiver.addresses.admin,
      transport: 'http',
    });
    await expectScrapeHealthy();
  });

  test('promtool check metrics parses GET /metrics (lint findings allowed, no errors)', async () => {
    const res = await fetch(`${adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const result = await promtoolCheckMetrics(await res.text());
    // promtool 2.42: 0 clean, 3 lint findings only, 1 the exposition did not parse.
    expect({ errors: result.errors, exitCodeOk: result.code === 0 || result.code === 3 }).toEqual({
      errors: [],
      exitCodeOk: true,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// OTLP → Prometheus

describe('OTLP metrics on /metrics, as Prometheus scrapes them', () => {
  test('the OpenTelemetry JS metrics SDK (OTLP/HTTP protobuf, cumulative): names, labels, values, target_info', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: `${otlpUrl}/v1/metrics` }),
      exportIntervalMillis: 3_600_000,
    });
    const provider = new MeterProvider({
      resource: resourceFromAttributes({
        'service.name': 'shop',
        'service.instance.id': 'i-1',
        'deployment.environment.name': 'test',
      }),
      readers: [reader],
    });
    providers.push(provider);
    const meter = provider.getMeter('app', '1.0.0');
    const requests = meter.createCounter('http.server.requests', {
      description: 'Requests served',
      unit: '{request}',
      valueType: ValueType.INT,
    });
    const duration = meter.createHistogram('http.server.duration', {
      description: 'Time to serve a request',
      unit: 's',
      advice: { explicitBucketBoundaries: [0.1, 0.5, 1] },
    });
    meter
      .createObservableGauge('process.cpu.utilization', { description: 'CPU utilization', unit: '1' })
      .addCallback((result) => result.observe(0.25));
    const queue = meter.createUpDownCounter('queue.size', { description: 'Items queued', unit: '{item}' });

    requests.add(3, { 'http.route': '/a' });
    requests.add(2, { 'http.route': '/b' });
    for (const v of [0.05, 0.3, 0.7, 2]) duration.record(v);
    queue.add(7);
    await provider.forceFlush();

    const scope = 'otel_scope_name="app",otel_scope_version="1.0.0"';
    await expectAll({
      'counter /a': async () => {
        const s = await expectValue(
          `http_server_requests_total{job="shop",instance="i-1",http_route="/a",${scope}}`,
          3,
        );
        // Exactly these labels: job/instance from the resource, the scope, the data point's attributes.
        expect(s.metric).toEqual({
          __name__: 'http_server_requests_total',
          job: 'shop',
          instance: 'i-1',
          otel_scope_name: 'app',
          otel_scope_version: '1.0.0',
          http_route: '/a',
        });
      },
      'counter /b': () =>
        expectValue(`http_server_requests_total{job="shop",instance="i-1",http_route="/b",${scope}}`, 2),
      'histogram _count': () => expectValue('http_server_duration_seconds_count{job="shop"}', 4),
      'histogram _sum': () => expectValue('http_server_duration_seconds_sum{job="shop"}', 3.05),
      'histogram le="0.1"': () => expectValue('http_server_duration_seconds_bucket{job="shop",le="0.1"}', 1),
      'histogram le="0.5"': () => expectValue('http_server_duration_seconds_bucket{job="shop",le="0.5"}', 2),
      'histogram le="1"': () => expectValue('http_server_duration_seconds_bucket{job="shop",le="1"}', 3),
      'histogram le="+Inf"': () => expectValue('http_server_duration_seconds_bucket{job="shop",le="+Inf"}', 4),
      'histogram buckets': () =>
        prometheus.waitFor('count(http_server_duration_seconds_bucket{job="shop"})', (s) => s[0]?.value === 4, WAIT_MS),
      'gauge with unit 1 → _ratio': () =>
        expectValue(`process_cpu_utilization_ratio{job="shop",instance="i-1",${scope}}`, 0.25),
      'up-down counter → gauge': () => expectValue(`queue_size{job="shop",instance="i-1",${scope}}`, 7),
      target_info: () => expectValue('target_info{job="shop",instance="i-1",deployment_environment_name="test"}', 1),
    });
    await expectScrapeHealthy();

    // The text format (what a plain GET gets) must parse too, now that OTLP families are in it.
    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    const series = `job="shop",instance="i-1",${scope}`;
    expect(text.split('\n')).toEqual(
      expect.arrayContaining([
        '# HELP http_server_requests_total Requests served',
        '# TYPE http_server_requests_total counter',
        `http_server_requests_total{${series},http_route="/a"} 3`,
        `http_server_requests_total{${series},http_route="/b"} 2`,
        '# TYPE http_server_duration_seconds histogram',
        `http_server_duration_seconds_bucket{${series},le="0.1"} 1`,
        `http_server_duration_seconds_bucket{${series},le="0.5"} 2`,
        `http_server_duration_seconds_bucket{${series},le="1"} 3`,
        `http_server_duration_seconds_bucket{${series},le="+Inf"} 4`,
        `http_server_duration_seconds_sum{${series}} 3.05`,
        `http_server_duration_seconds_count{${series}} 4`,
        `process_cpu_utilization_ratio{${series}} 0.25`,
        `queue_size{${series}} 7`,
        'target_info{job="shop",instance="i-1",deployment_environment_name="test"} 1',
      ]),
    );
    const promtool = await promtoolCheckMetrics(text);
    expect({ errors: promtool.errors, exitCodeOk: promtool.code === 0 || promtool.code === 3 }).toEqual({
      errors: [],
      exitCodeOk: true,
    });
  });

  test('delta temporality: two exports of +3 and +4 are one cumulative counter, 7', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({
        url: `${otlpUrl}/v1/metrics`,
        temporalityPreference: AggregationTemporalityPreference.DELTA,
      }),
      exportIntervalMillis: 3_600_000,
    });
    const provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': 'shop-delta', 'service.instance.id': 'i-2' }),
      readers: [reader],
    });
    providers.push(provider);
    const requests = provider
      .getMeter('app', '1.0.0')
      .createCounter('http.server.requests', { unit: '{request}', valueType: ValueType.INT });

    requests.add(3, { 'http.route': '/a' });
    await provider.forceFlush();
    requests.add(4, { 'http.route': '/a' });
    await provider.forceFlush();

    await expectValue('http_server_requests_total{job="shop-delta",instance="i-2",http_route="/a"}', 7);
    await expectScrapeHealthy();
  });

  test('exemplars of OTLP data points reach Prometheus with the span’s trace and span ids', async () => {
    // A real span for the ids (sampled: the default sampler is parent-based always-on).
    const tracerProvider = new TracerProvider();
    providers.push(tracerProvider);
    const span = tracerProvider.getTracer('app').startSpan('GET /checkout');
    const { traceId, spanId } = span.spanContext();
    span.end();

    const from = new Date(Date.now() - 60_000);
    const time = nowNanos();
    const exemplar = (value: number) => ({ timeUnixNano: time, asDouble: value, traceId, spanId });
    await postJson('/v1/metrics', {
      resourceMetrics: [
        {
          resource: { attributes: stringAttrs({ 'service.name': 'checkout', 'service.instance.id': 'c-1' }) },
          scopeMetrics: [
            {
              scope: { name: 'app', version: '1.0.0' },
              metrics: [
                {
                  name: 'checkout.duration',
                  unit: 's',
                  histogram: {
                    aggregationTemporality: 2,
                    dataPoints: [
                      {
                        startTimeUnixNano: time,
                        timeUnixNano: time,
                        count: '2',
                        sum: 0.35,
                        bucketCounts: ['1', '1', '0', '0'],
                        explicitBounds: [0.1, 0.5, 1],
                        exemplars: [exemplar(0.05), exemplar(0.3)],
                      },
                    ],
                  },
                },
                {
                  name: 'checkout.orders',
                  unit: '{order}',
                  sum: {
                    aggregationTemporality: 2,
                    isMonotonic: true,
                    dataPoints: [
                      {
                        startTimeUnixNano: time,
                        timeUnixNano: time,
                        asInt: '2',
                        exemplars: [{ timeUnixNano: time, asInt: '1', traceId, spanId }],
                      },
                    ],
                  },
                },
                {
                  // An exemplar on a gauge: OpenMetrics allows exemplars only on counters and histogram
                  // buckets, and Prometheus 2.42 fails the whole scrape on one elsewhere
                  // ("metric name ... does not support exemplars"): it must be left out.
                  name: 'checkout.queue',
                  unit: '{item}',
                  gauge: { dataPoints: [{ timeUnixNano: time, asInt: '3', exemplars: [exemplar(3)] }] },
                },
              ],
            },
          ],
        },
      ],
    });

    await expectAll({
      'histogram _count': () => expectValue('checkout_duration_seconds_count{job="checkout",instance="c-1"}', 2),
      counter: () => expectValue('checkout_orders_total{job="checkout",instance="c-1"}', 2),
      'gauge (its exemplar left out)': () => expectValue('checkout_queue{job="checkout",instance="c-1"}', 3),
    });
    await expectScrapeHealthy();

    const expectedTime = Number(BigInt(time) / 1_000_000n) / 1000;
    const exemplars = async (promql: string) => {
      let series: Awaited<ReturnType<Prometheus['queryExemplars']>> = [];
      const until = Date.now() + WAIT_MS;
      do {
        series = await prometheus.queryExemplars(promql, from, new Date(Date.now() + 60_000));
        if (series.some((s) => s.exemplars.length > 0)) break;
        await new Promise((r) => setTimeout(r, 250));
      } while (Date.now() < until);
      return series
        .flatMap((s) =>
          s.exemplars.map((e) => ({
            le: s.seriesLabels.le,
            value: e.value,
            labels: e.labels,
            // Prometheus keeps milliseconds, parsed from the exposition's float seconds: allow rounding.
            timestamp: Math.abs(e.timestamp - expectedTime) <= 0.002 ? expectedTime : e.timestamp,
          })),
        )
        .sort((a, b) => a.value - b.value);
    };
    const ids = { trace_id: traceId, span_id: spanId };
    await expectAll({
      'histogram bucket exemplars': async () =>
        // Each exemplar on the bucket its value falls in, with the OTLP exemplar's time (in seconds).
        expect(await exemplars('checkout_duration_seconds_bucket{job="checkout"}')).toEqual([
          { le: '0.1', value: 0.05, labels: ids, timestamp: expectedTime },
          { le: '0.5', value: 0.3, labels: ids, timestamp: expectedTime },
        ]),
      'counter exemplar': async () =>
        expect(await exemplars('checkout_orders_total{job="checkout"}')).toEqual([
          { le: undefined, value: 1, labels: ids, timestamp: expectedTime },
        ]),
    });
  });

  test("Grafana's Tempo datasource queries (Service Graph node graph and RED table) return series", async () => {
    const exporter = new OTLPTraceExporter({ url: `${otlpUrl}/v1/traces` });
    const make = (name: string) => {
      const provider = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': name }),
        spanProcessors: [new SimpleSpanProcessor({ exporter })],
      });
      providers.push(provider);
      return provider;
    };
    const gateway = make('gateway').getTracer('gw');
    const cart = make('cart').getTracer('cart');
    for (let i = 0; i < 3; i++) {
      const root = gateway.startSpan('GET /cart', { kind: SpanKind.SERVER });
      const call = gateway.startSpan('GET /items', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, root));
      const server = cart.startSpan('GET /items', { kind: SpanKind.SERVER }, trace.setSpan(ROOT_CONTEXT, call));
      if (i === 0) server.setStatus({ code: SpanStatusCode.ERROR });
      server.end();
      call.end();
      root.end();
    }
    await Promise.all(providers.map((p) => (p as { forceFlush?: () => Promise<void> }).forceFlush?.()));
    // The exact query shapes of grafana-tempo-datasource (graphTransform.ts, datasource.ts), with $__range = 5m.
    const nonEmpty = (s: Sample[]) => s.length > 0;
    const queries = [
      'sum by (client, server) (rate(traces_service_graph_request_total[5m]))',
      'sum by (client, server) (rate(traces_service_graph_request_failed_total[5m]))',
      'sum by (client, server) (rate(traces_service_graph_request_server_seconds_sum[5m]))',
      'sum by (client, server) (rate(traces_service_graph_request_server_seconds_bucket[5m]))',
      'group by (client, connection_type, server) (traces_service_graph_request_total)',
      'topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER"}[5m])) by (span_name))',
      'topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}[5m])) by (span_name))',
      'histogram_quantile(.9, sum(rate(traces_spanmetrics_latency_bucket{span_kind="SPAN_KIND_SERVER"}[5m])) by (le))',
    ];
    await expectAll(Object.fromEntries(queries.map((q) => [q, () => prometheus.waitFor(q, nonEmpty, WAIT_MS)])));
    const edges = await prometheus.query(
      'group by (client, connection_type, server) (traces_service_graph_request_total)',
    );
    // Prometheus drops labels with empty values: connection_type="" arrives as no label, as with Tempo.
    expect(
      edges.map((e) => `${e.metric.client}→${e.metric.server} (${e.metric.connection_type ?? ''})`).sort(),
    ).toEqual(['gateway→cart ()', 'user→gateway (virtual_node)']);
    const failed = await prometheus.query('traces_service_graph_request_failed_total');
    expect(failed.map((f) => [f.metric.client, f.metric.server, f.value])).toEqual([['gateway', 'cart', 1]]);
    const exemplars = await prometheus.queryExemplars(
      'traces_spanmetrics_latency_bucket',
      Date.now() / 1000 - 300,
      Date.now() / 1000 + 60,
    );
    expect(JSON.stringify(exemplars)).toContain('"traceID"');
  });
});

/**
 * Metrics from traces, end to end: two services instrumented with the real OpenTelemetry SDK send
 * their spans over OTLP to the receiver, and /metrics shows exactly the span-metric series (Tempo's
 * names, which Grafana's Tempo datasource queries) with exemplars that name the real trace ids.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';

let receiver: Receiver;
const providers: TracerProvider[] = [];

beforeAll(async () => {
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent' },
      trace_store: { enabled: false },
      span_metrics: { latency_buckets: [0.01, 0.1, 1] },
      service_graph: { latency_buckets: [0.1, 1] },
    }),
    { defaultMetrics: false },
  );
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.shutdown()));
  await receiver.close();
});

function service(name: string): TracerProvider {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': name, 'process.pid': Math.floor(Math.random() * 1e6) }),
    spanProcessors: [
      new SimpleSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `http://${receiver.addresses.otlpHttp}/v1/traces` }),
      }),
    ],
  });
  providers.push(provider);
  return provider;
}

const ms = (n: number): [number, number] => [1_700_000_000 + Math.floor(n / 1000), (n % 1000) * 1_000_000];

test('a frontend calling a checkout service gives exact RED series, with exemplars naming the trace', async () => {
  const frontend = service('frontend').getTracer('web');
  const checkout = service('checkout').getTracer('api');
  // frontend: SERVER GET /cart (200 ms) → CLIENT POST /checkout (150 ms) → checkout: SERVER POST /checkout (120 ms, error)
  const root = frontend.startSpan('GET /cart', { kind: SpanKind.SERVER, startTime: ms(0) });
  const call = frontend.startSpan(
    'POST /checkout',
    { kind: SpanKind.CLIENT, startTime: ms(20) },
    trace.setSpan(ROOT_CONTEXT, root),
  );
  const server = checkout.startSpan(
    'POST /checkout',
    { kind: SpanKind.SERVER, startTime: ms(30) },
    trace.setSpan(ROOT_CONTEXT, call),
  );
  server.setStatus({ code: SpanStatusCode.ERROR, message: 'payment declined' });
  server.end(ms(150));
  call.end(ms(170));
  root.setStatus({ code: SpanStatusCode.OK });
  root.end(ms(200));
  await Promise.all(providers.map((p) => p.forceFlush()));
  const traceId = root.spanContext().traceId;

  const text = await (await fetch(`http://${receiver.addresses.admin}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l.startsWith('traces_spanmetrics_'));
  const series = (service: string, name: string, kind: string, status: string) =>
    `service="${service}",service_version="",span_name="${name}",span_kind="SPAN_KIND_${kind}",status_code="STATUS_CODE_${status}"`;
  const root_ = series('frontend', 'GET /cart', 'SERVER', 'OK');
  const call_ = series('frontend', 'POST /checkout', 'CLIENT', 'UNSET');
  const server_ = series('checkout', 'POST /checkout', 'SERVER', 'ERROR');
  expect(lines.sort()).toEqual(
    [
      `traces_spanmetrics_calls_total{${root_}} 1`,
      `traces_spanmetrics_calls_total{${call_}} 1`,
      `traces_spanmetrics_calls_total{${server_}} 1`,
      ...[
        [root_, 0.2, [0, 0, 1, 1]],
        [call_, 0.15, [0, 0, 1, 1]],
        [server_, 0.12, [0, 0, 1, 1]],
      ].flatMap(([labels, seconds, counts]) => [
        ...(['0.01', '0.1', '1', '+Inf'] as const).map(
          (le, i) => `traces_spanmetrics_latency_bucket{${labels},le="${le}"} ${(counts as number[])[i]}`,
        ),
        `traces_spanmetrics_latency_sum{${labels}} ${seconds}`,
        `traces_spanmetrics_latency_count{${labels}} 1`,
      ]),
    ].sort(),
  );

  const om = await (
    await fetch(`http://${receiver.addresses.admin}/metrics`, {
      headers: { accept: 'application/openmetrics-text; version=1.0.0' },
    })
  ).text();
  expect(om).toContain(
    `traces_spanmetrics_calls_total{${server_}} 1 # {traceID="${traceId}",spanID="${server.spanContext().spanId}"} 1 1700000000.150\n`,
  );
  expect(om).toContain(
    `traces_spanmetrics_latency_bucket{${root_},le="1"} 1 # {traceID="${traceId}",spanID="${root.spanContext().spanId}"} 0.2 1700000000.200\n`,
  );
});

test('client/server pairs across services, a database call and a producer/consumer pair give the service graph', async () => {
  const web = service('web').getTracer('web');
  const orders = service('orders').getTracer('orders');
  const worker = service('worker').getTracer('worker');
  const root = web.startSpan('GET /order', { kind: SpanKind.SERVER, startTime: ms(1000) });
  const call = web.startSpan(
    'POST /orders',
    { kind: SpanKind.CLIENT, startTime: ms(1010) },
    trace.setSpan(ROOT_CONTEXT, root),
  );
  const handle = orders.startSpan(
    'POST /orders',
    { kind: SpanKind.SERVER, startTime: ms(1020) },
    trace.setSpan(ROOT_CONTEXT, call),
  );
  const insert = orders.startSpan(
    'INSERT orders',
    {
      kind: SpanKind.CLIENT,
      startTime: ms(1030),
      attributes: { 'db.system.name': 'postgresql', 'db.namespace': 'shop' },
    },
    trace.setSpan(ROOT_CONTEXT, handle),
  );
  insert.end(ms(1060));
  const publish = orders.startSpan(
    'publish order.created',
    { kind: SpanKind.PRODUCER, startTime: ms(1070) },
    trace.setSpan(ROOT_CONTEXT, handle),
  );
  publish.setStatus({ code: SpanStatusCode.ERROR });
  publish.end(ms(1075));
  handle.end(ms(1500));
  call.end(ms(1600));
  root.end(ms(1700));
  const process = worker.startSpan(
    'process order.created',
    { kind: SpanKind.CONSUMER, startTime: ms(1080) },
    trace.setSpan(ROOT_CONTEXT, publish),
  );
  process.end(ms(1280));
  await Promise.all(providers.map((p) => p.forceFlush()));

  const text = await (await fetch(`http://${receiver.addresses.admin}/metrics`)).text();
  const lines = text.split('\n');
  const edge = (client: string, server: string, type: string) =>
    `client="${client}",server="${server}",connection_type="${type}"`;
  expect(lines).toEqual(
    expect.arrayContaining([
      `traces_service_graph_request_total{${edge('user', 'web', 'virtual_node')}} 1`,
      `traces_service_graph_request_total{${edge('web', 'orders', '')}} 1`,
      `traces_service_graph_request_total{${edge('orders', 'shop', 'database')}} 1`,
      `traces_service_graph_request_total{${edge('orders', 'worker', 'messaging_system')}} 1`,
      `traces_service_graph_request_failed_total{${edge('orders', 'worker', 'messaging_system')}} 1`,
      // server side of web → orders: 480 ms; client side: 590 ms
      `traces_service_graph_request_server_seconds_bucket{${edge('web', 'orders', '')},le="0.1"} 0`,
      `traces_service_graph_request_server_seconds_bucket{${edge('web', 'orders', '')},le="1"} 1`,
      `traces_service_graph_request_server_seconds_sum{${edge('web', 'orders', '')}} 0.48`,
      `traces_service_graph_request_client_seconds_sum{${edge('web', 'orders', '')}} 0.59`,
    ]),
  );
  expect(lines.some((l) => l.startsWith('traces_service_graph_request_failed_total{client="web"'))).toBe(false);
});

/**
 * Business events, end to end: a service instrumented with the real OpenTelemetry SDK emits events
 * (log records with an event name) inside traced requests, and a counter of its own named sonde.*; /metrics
 * shows `sonde_events_total` by service, event name and consent category, with exemplars naming the
 * real trace ids, and the counter under its translated name (a `sonde_` name from a service is not
 * mistaken for the receiver's own metrics).
 */
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';

let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent' },
    }),
    { defaultMetrics: false },
  );
});

afterAll(() => receiver.close());

test('events become sonde_events_total by service, name and category, with the trace as exemplar', async () => {
  const resource = resourceFromAttributes({ 'service.name': 'cart', 'service.namespace': 'shop' });
  const logs = new LoggerProvider({
    resource,
    processors: [
      new BatchLogRecordProcessor({
        scheduledDelayMillis: 3_600_000,
        exporter: new OTLPLogExporter({ url: `http://${receiver.addresses.otlpHttp}/v1/logs` }),
      }),
    ],
  });
  const tracer = new TracerProvider({ resource }).getTracer('web');
  const logger = logs.getLogger('events');
  const span = tracer.startSpan('POST /cart/items');
  const inRequest = trace.setSpan(ROOT_CONTEXT, span);
  const emit = (eventName: string, category?: string) =>
    logger.emit({
      eventName,
      context: inRequest,
      attributes: category ? { 'sonde.consent.category': category, 'cart.sku': 'sku-1' } : { 'cart.sku': 'sku-1' },
    });
  emit('cart.item_added', 'product');
  emit('cart.item_added', 'product');
  emit('checkout.started');
  logger.emit({ body: 'a plain log line is not an event', context: inRequest });
  span.end();
  await logs.forceFlush();

  const text = await (await fetch(`http://${receiver.addresses.admin}/metrics`)).text();
  expect(text.split('\n').filter((l) => l.startsWith('sonde_events_total'))).toEqual([
    'sonde_events_total{service="cart",event_name="cart.item_added",category="product"} 2',
    'sonde_events_total{service="cart",event_name="checkout.started",category=""} 1',
  ]);
  const om = await (
    await fetch(`http://${receiver.addresses.admin}/metrics`, {
      headers: { accept: 'application/openmetrics-text; version=1.0.0' },
    })
  ).text();
  const traceId = span.spanContext().traceId;
  expect(om).toMatch(
    new RegExp(
      `^sonde_events_total\\{service="cart",event_name="cart.item_added",category="product"\\} 2 # \\{traceID="${traceId}",spanID="${span.spanContext().spanId}"\\} 1`,
      'm',
    ),
  );
  await logs.shutdown();
});

test("a service's own sonde.* metric is exposed under its translated name, next to the receiver's", async () => {
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'storefront', 'service.namespace': 'shop' }),
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `http://${receiver.addresses.otlpHttp}/v1/metrics` }),
        exportIntervalMillis: 3_600_000,
      }),
    ],
  });
  const evaluations = provider.getMeter('flags').createCounter('sonde.flag.evaluations', { unit: '{evaluation}' });
  evaluations.add(3, { flag: 'new-checkout', enabled: 'true' });
  evaluations.add(1, { flag: 'new-checkout', enabled: 'false' });
  await provider.forceFlush();
  const text = await (await fetch(`http://${receiver.addresses.admin}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l.startsWith('sonde_flag_evaluations_total'));
  expect(lines.map((l) => l.replace(/,otel_scope_version="[^"]*"/, '').replace(/,instance="[^"]*"/, ''))).toEqual([
    'sonde_flag_evaluations_total{job="shop/storefront",otel_scope_name="flags",enabled="true",flag="new-checkout"} 3',
    'sonde_flag_evaluations_total{job="shop/storefront",otel_scope_name="flags",enabled="false",flag="new-checkout"} 1',
  ]);
  expect(text).not.toMatch(/sonde_prometheus_dropped_points_total\{reason="type_conflict"\} [1-9]/);
  await provider.shutdown();
});

/**
 * The fuzzer's seed corpus: valid OTLP export requests of the three signals, made by the real
 * OpenTelemetry JS SDK and serialized by its own serializers (@opentelemetry/otlp-transformer), as
 * protobuf and as JSON. Timestamps are fixed, so the same corpus comes out every run.
 */
import { context, SpanKind, SpanStatusCode, trace, ValueType } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import {
  JsonLogsSerializer,
  JsonMetricsSerializer,
  JsonTraceSerializer,
  ProtobufLogsSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { AggregationType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

export type Signal = 'traces' | 'metrics' | 'logs';
export const SIGNALS: readonly Signal[] = ['traces', 'metrics', 'logs'];

export interface Corpus {
  /** Protobuf Export*ServiceRequest bodies, per signal. */
  protobuf: Record<Signal, Buffer[]>;
  /** OTLP JSON bodies, per signal. */
  json: Record<Signal, Buffer[]>;
}

const T0 = 1_700_000_000;

const resource = (name: string) =>
  resourceFromAttributes({
    'service.name': name,
    'service.version': '1.4.2',
    'host.arch': 'amd64',
    'process.pid': 4242,
    'deployment.environment.name': 'fuzz',
  });

async function spanRequests(): Promise<{ protobuf: Buffer[]; json: Buffer[] }> {
  const exporter = new InMemorySpanExporter();
  // Ids from a counter instead of random ones, so the corpus (and every case) is the same each run.
  let id = 0;
  const hex = (digits: number) => (++id).toString(16).padStart(digits, '0');
  const provider = new TracerProvider({
    idGenerator: { generateTraceId: () => `7f${hex(30)}`, generateSpanId: () => `5a${hex(14)}` },
    resource: resource('fuzz-traces'),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('fuzz-lib', '0.1.0');
  const other = provider.getTracer('other-lib');
  const link = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
  for (let t = 0; t < 3; t++) {
    const server = tracer.startSpan(`GET /cart/${t}`, {
      kind: SpanKind.SERVER,
      startTime: [T0 + t, 1000],
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/cart/:id',
        'http.response.status_code': 200 + t,
        'url.full': `https://shop.example/cart/${t}?q=1`,
        ratio: 0.25 * t,
        cached: t % 2 === 0,
        tags: ['a', 'b', 'c'],
        counts: [1, 2, 3],
      },
    });
    const ctx = trace.setSpan(context.active(), server);
    const db = tracer.startSpan(
      'SELECT cart',
      {
        kind: SpanKind.CLIENT,
        startTime: [T0 + t, 5000],
        links: [{ context: link, attributes: { why: 'batch' } }],
        attributes: { 'db.system.name': 'postgresql', 'db.query.text': 'SELECT * FROM cart WHERE id = $1' },
      },
      ctx,
    );
    db.addEvent('retry', { attempt: 2 }, [T0 + t, 6000]);
    db.setStatus({ code: SpanStatusCode.ERROR, message: 'connection reset' });
    db.end([T0 + t, 900_000]);
    const job = other.startSpan('render', { kind: SpanKind.INTERNAL, startTime: [T0 + t, 7000] }, ctx);
    // A fixed stack: a real one would hold this machine's paths, and differ between checkouts.
    job.recordException(
      { name: 'TemplateError', message: 'template missing', stack: 'TemplateError: template missing (render)' },
      [T0 + t, 8000],
    );
    job.end([T0 + t, 950_000]);
    server.setStatus({ code: SpanStatusCode.OK });
    server.end([T0 + t, 999_999]);
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  // One request of everything, and smaller ones (one trace, one span) for quicker mutations.
  const sets = [spans, spans.slice(0, 3), spans.slice(3, 4)];
  return {
    protobuf: sets.map((s) => Buffer.from(ProtobufTraceSerializer.serializeRequest(s) ?? [])),
    json: sets.map((s) => Buffer.from(JsonTraceSerializer.serializeRequest(s) ?? [])),
  };
}

class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

async function metricRequests(): Promise<{ protobuf: Buffer[]; json: Buffer[] }> {
  const reader = new CollectingReader();
  const provider = new MeterProvider({
    resource: resource('fuzz-metrics'),
    readers: [reader],
    views: [{ instrumentName: 'latency.exp', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const meter = provider.getMeter('fuzz-meter', '0.2.0');
  const requests = meter.createCounter('http.server.requests', { unit: '{request}', valueType: ValueType.INT });
  requests.add(5, { 'http.route': '/a', 'http.response.status_code': 200 });
  requests.add(2, { 'http.route': '/b', 'http.response.status_code': 500 });
  meter.createUpDownCounter('queue.depth').add(-3.5, { queue: 'q1' });
  const latency = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.05, 0.1, 0.5, 1] },
  });
  for (const v of [0.003, 0.02, 0.2, 0.7, 3]) latency.record(v, { 'http.route': '/a' });
  const exponential = meter.createHistogram('latency.exp', { unit: 'ms' });
  for (const v of [1.5, 3, 3, 40, 0, 1e6]) exponential.record(v);
  meter.createGauge('temperature', { unit: 'Cel' }).record(21.5, { room: 'a' });
  meter
    .createObservableGauge('memory.used', { unit: 'By', valueType: ValueType.INT })
    .addCallback((r) => r.observe(123_456_789, { pool: 'heap' }));

  const { resourceMetrics, errors } = await reader.collect();
  if (errors.length > 0) throw new Error(`metric collection failed: ${errors.join(', ')}`);
  // Fixed times instead of the clock's, so the corpus is the same each run.
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      for (const point of metric.dataPoints) Object.assign(point, { startTime: [T0, 0], endTime: [T0 + 10, 0] });
    }
  }
  await provider.shutdown();
  const single = {
    resource: resourceMetrics.resource,
    scopeMetrics: [
      { ...resourceMetrics.scopeMetrics[0], metrics: resourceMetrics.scopeMetrics[0].metrics.slice(2, 3) },
    ],
  };
  const sets = [resourceMetrics, single];
  return {
    protobuf: sets.map((s) => Buffer.from(ProtobufMetricsSerializer.serializeRequest(s) ?? [])),
    json: sets.map((s) => Buffer.from(JsonMetricsSerializer.serializeRequest(s) ?? [])),
  };
}

async function logRequests(): Promise<{ protobuf: Buffer[]; json: Buffer[] }> {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resource('fuzz-logs'),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger('fuzz-logger', '0.3.0');
  const span = { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', traceFlags: 1 };
  const ctx = trace.setSpanContext(context.active(), span);
  logger.emit({
    timestamp: [T0, 1],
    observedTimestamp: [T0, 11],
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: 'payment failed for order 42',
    attributes: { 'order.id': 42, 'payment.provider': 'acme', retried: true },
    context: ctx,
  });
  logger.emit({
    timestamp: [T0, 2],
    observedTimestamp: [T0, 12],
    severityNumber: SeverityNumber.INFO,
    body: { message: 'structured', nested: { list: [1, 'two', false], ratio: 0.5 } },
    attributes: { 'event.name': 'cart.checkout', 'sonde.consent.category': 'product' },
  });
  logger.emit({ timestamp: [T0, 3], observedTimestamp: [T0, 13], severityNumber: SeverityNumber.DEBUG, body: 'short' });
  await provider.forceFlush();
  const records = exporter.getFinishedLogRecords();
  await provider.shutdown();
  const sets = [records, records.slice(1, 2)];
  return {
    protobuf: sets.map((s) => Buffer.from(ProtobufLogsSerializer.serializeRequest(s) ?? [])),
    json: sets.map((s) => Buffer.from(JsonLogsSerializer.serializeRequest(s) ?? [])),
  };
}

export async function buildCorpus(): Promise<Corpus> {
  const [traces, metrics, logs] = await Promise.all([spanRequests(), metricRequests(), logRequests()]);
  const corpus: Corpus = {
    protobuf: { traces: traces.protobuf, metrics: metrics.protobuf, logs: logs.protobuf },
    json: { traces: traces.json, metrics: metrics.json, logs: logs.json },
  };
  for (const signal of SIGNALS) {
    for (const body of [...corpus.protobuf[signal], ...corpus.json[signal]]) {
      if (body.length === 0) throw new Error(`the SDK serialized an empty ${signal} request`);
    }
  }
  return corpus;
}

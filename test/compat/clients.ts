/**
 * The OpenTelemetry JS release lines of the compatibility suite, each driven through its own SDK and
 * exporters (as a user of that line would write it) to record the same scenario:
 *
 * - 0.27: SDK 1.0, OTLP 0.11 (`instrumentationLibrarySpans`, int/double metric types); traces over
 *   the three transports, metrics over HTTP (0.27 had no gRPC metric exporter), no logs;
 * - 0.57: SDK 1.30, events as log records with an `event.name` attribute (sdk-events 0.57);
 * - 0.200: SDK 2.0;
 * - latest: the versions the rest of the end-to-end tests use (test/package.json).
 *
 * The old lines are workspaces of their own under test-clients/ (pinned in package-lock.json), each
 * with the @opentelemetry/api of its time so that their peer ranges hold; their modules are loaded
 * from there at run time, hence loose types.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

// biome-ignore lint/suspicious/noExplicitAny: modules of old SDK lines, loaded at run time without their types
type Loose = any;

export type Transport = 'http/json' | 'http/protobuf' | 'grpc';
export const TRANSPORTS: Transport[] = ['http/json', 'http/protobuf', 'grpc'];

export interface Endpoints {
  http: string;
  grpc: string;
}

/** What one export round recorded on the client side, to compare with what arrived. */
export interface SentSpans {
  spans: { name: string; traceId: string; spanId: string; parentSpanId: string; start: bigint; end: bigint }[];
  sdkVersion: string;
}

export interface Line {
  name: string;
  /** telemetry.sdk.version on the resource. */
  sdkVersion: string;
  transports: { traces: Transport[]; metrics: Transport[]; logs: Transport[] };
  /**
   * 0.27 writes timestamps through a double (hrTimeToNanoseconds returns a number), so they arrive
   * rounded as the exporter sent them: in JSON as the number's shortest decimal form.
   */
  nanosAsDouble?: boolean;
  /** Events: how the line marks one ('attribute': an `event.name` attribute; 'field': eventName). */
  events?: 'attribute' | 'field';
  sendTraces(e: Endpoints, t: Transport, service: string): Promise<SentSpans>;
  sendMetrics(e: Endpoints, t: Transport, service: string): Promise<void>;
  sendLogs(e: Endpoints, t: Transport, service: string): Promise<void>;
}

function loader(workspace: string | undefined): NodeJS.Require {
  const from = workspace
    ? path.resolve(__dirname, '../../packages/test-clients', workspace, 'package.json')
    : path.resolve(__dirname, '../package.json');
  return createRequire(from);
}

const EXPORTER_PACKAGE: Record<Transport, string> = { 'http/json': 'http', 'http/protobuf': 'proto', grpc: 'grpc' };

function exporterOptions(e: Endpoints, t: Transport, signal: 'traces' | 'metrics' | 'logs'): Loose {
  return t === 'grpc' ? { url: e.grpc } : { url: `${e.http}/v1/${signal}` };
}

/**
 * An HrTime as nanoseconds. Old lines (0.27) compute the nanosecond part in floating point, so it can
 * come out as 551166416.0000001; their exporters then send `t[0] * 1e9 + t[1]` as a double (an integer
 * at today's times): that sum, exactly, is what they put on the wire (onWire in otel-js-lines.test.ts).
 */
function hrNanos(t: [number, number]): bigint {
  if (!Number.isInteger(t[1])) return BigInt(t[0] * 1e9 + t[1]);
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

/** The trace scenario: a server span with a child client span that failed, an event on the server span. */
function recordSpans(tracer: Loose, api: Loose): Loose[] {
  const root = tracer.startSpan('GET /compat', {
    kind: 1, // SERVER
    attributes: { 'http.route': '/compat', 'compat.int': 42, 'compat.double': 1.5, 'compat.bool': true },
  });
  root.addEvent('retry', { attempt: 2 });
  const child = tracer.startSpan(
    'SELECT compat',
    { kind: 2, attributes: { 'db.system': 'sqlite', 'compat.list': ['a', 'b'] } }, // CLIENT
    api.trace.setSpan(api.ROOT_CONTEXT, root),
  );
  child.setStatus({ code: 2, message: 'boom' });
  child.end();
  root.end();
  return [root, child];
}

function sentSpans(spans: Loose[], sdkVersion: string): SentSpans {
  return {
    sdkVersion,
    spans: spans.map((s) => ({
      name: s.name,
      traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId,
      parentSpanId: s.parentSpanId ?? s.parentSpanContext?.spanId ?? '',
      start: hrNanos(s.startTime),
      end: hrNanos(s.endTime),
    })),
  };
}

/** The metric scenario: a counter (3 + 2 on /a, 1 on /b) and a histogram (10 and 30). */
function recordMetrics(meter: Loose): void {
  const counter = meter.createCounter('compat.requests', { description: 'requests', unit: '1' });
  counter.add(3, { route: '/a' });
  counter.add(2, { route: '/a' });
  counter.add(1, { route: '/b' });
  const histogram = meter.createHistogram('compat.latency', { unit: 'ms' });
  histogram.record(10, { route: '/a' });
  histogram.record(30, { route: '/a' });
}

/** The log scenario: one log line, and one event the way the line emits events (if it does). */
function recordLogs(logger: Loose, eventLogger?: Loose): void {
  logger.emit({
    body: 'compat log body',
    severityNumber: 9,
    severityText: 'INFO',
    attributes: { 'compat.key': 'value', 'compat.int': 7 },
  });
  eventLogger?.();
}

/** Counts the exporter's export() calls not answered yet. */
function pendingExports(exporter: Loose): () => number {
  let pending = 0;
  const original = exporter.export.bind(exporter);
  exporter.export = (items: unknown, done: (result: unknown) => void) => {
    pending++;
    original(items, (result: unknown) => {
      pending--;
      done(result);
    });
  };
  return () => pending;
}

/** Waits (bounded) until `ready` holds. */
async function until(ready: () => boolean): Promise<void> {
  for (let waited = 0; !ready() && waited < 5_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
}

// ---------------------------------------------------------------------------------------------

const line027: Line = (() => {
  const load = loader('otel-027');
  const { Resource } = load('@opentelemetry/resources');
  const sdkVersion = '1.0.1';
  return {
    name: '0.27',
    sdkVersion,
    nanosAsDouble: true,
    transports: { traces: TRANSPORTS, metrics: ['http/json', 'http/protobuf'], logs: [] },
    async sendTraces(e, t, service) {
      const { BasicTracerProvider, SimpleSpanProcessor } = load('@opentelemetry/sdk-trace-base');
      const { OTLPTraceExporter } = load(`@opentelemetry/exporter-trace-otlp-${EXPORTER_PACKAGE[t]}`);
      const provider = new BasicTracerProvider({ resource: new Resource({ 'service.name': service }) });
      const exporter = new OTLPTraceExporter(exporterOptions(e, t, 'traces'));
      const pending = pendingExports(exporter);
      provider.addSpanProcessor(new SimpleSpanProcessor(exporter));
      // 0.27's gRPC exporter loads its protos after construction and queues what is exported before;
      // a shutdown before that drops the queue. A running service is past that point: so is this one.
      if (t === 'grpc') await until(() => exporter.serviceClient !== undefined);
      const spans = recordSpans(provider.getTracer('compat', '1.2.3'), load('@opentelemetry/api'));
      await provider.forceFlush();
      await until(() => pending() === 0); // 0.27's forceFlush does not wait for the exports under way
      await provider.shutdown();
      return sentSpans(spans, sdkVersion);
    },
    async sendMetrics(e, t, service) {
      const { MeterProvider } = load('@opentelemetry/sdk-metrics-base');
      const { OTLPMetricExporter } = load(`@opentelemetry/exporter-metrics-otlp-${EXPORTER_PACKAGE[t]}`);
      const provider = new MeterProvider({
        resource: new Resource({ 'service.name': service }),
        exporter: new OTLPMetricExporter(exporterOptions(e, t, 'metrics')),
        interval: 3_600_000,
      });
      recordMetrics(provider.getMeter('compat', '1.2.3'));
      await provider.shutdown(); // collects and exports once, then waits for the exporter
    },
    async sendLogs() {
      throw new Error('OpenTelemetry JS 0.27 has no log exporter');
    },
  };
})();

function modernLine(name: string, workspace: string | undefined, sdkVersion: string, events?: 'attribute'): Line {
  const load = loader(workspace);
  const resources = load('@opentelemetry/resources');
  const resource = (service: string) =>
    resources.resourceFromAttributes
      ? resources.defaultResource().merge(resources.resourceFromAttributes({ 'service.name': service }))
      : new resources.Resource({ 'service.name': service });
  // Simple processors take an options object since SDK 3.
  const simple = (Processor: Loose, exporter: Loose) =>
    workspace ? new Processor(exporter) : new Processor({ exporter });
  const traceSdk = workspace ? '@opentelemetry/sdk-trace-base' : '@opentelemetry/sdk-trace';
  return {
    name,
    sdkVersion,
    transports: { traces: TRANSPORTS, metrics: TRANSPORTS, logs: TRANSPORTS },
    events,
    async sendTraces(e, t, service) {
      const sdk = load(traceSdk);
      const { OTLPTraceExporter } = load(`@opentelemetry/exporter-trace-otlp-${EXPORTER_PACKAGE[t]}`);
      const Provider = sdk.BasicTracerProvider ?? sdk.TracerProvider;
      const provider = new Provider({
        resource: resource(service),
        spanProcessors: [simple(sdk.SimpleSpanProcessor, new OTLPTraceExporter(exporterOptions(e, t, 'traces')))],
      });
      const spans = recordSpans(provider.getTracer('compat', '1.2.3'), load('@opentelemetry/api'));
      await provider.forceFlush();
      await provider.shutdown();
      return sentSpans(spans, sdkVersion);
    },
    async sendMetrics(e, t, service) {
      const { MeterProvider, PeriodicExportingMetricReader } = load('@opentelemetry/sdk-metrics');
      const { OTLPMetricExporter } = load(`@opentelemetry/exporter-metrics-otlp-${EXPORTER_PACKAGE[t]}`);
      const provider = new MeterProvider({
        resource: resource(service),
        readers: [
          new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter(exporterOptions(e, t, 'metrics')),
            exportIntervalMillis: 3_600_000,
          }),
        ],
      });
      recordMetrics(provider.getMeter('compat', '1.2.3'));
      await provider.forceFlush();
      await provider.shutdown();
    },
    async sendLogs(e, t, service) {
      const logs = load('@opentelemetry/sdk-logs');
      const { OTLPLogExporter } = load(`@opentelemetry/exporter-logs-otlp-${EXPORTER_PACKAGE[t]}`);
      const processor = simple(logs.SimpleLogRecordProcessor, new OTLPLogExporter(exporterOptions(e, t, 'logs')));
      // Processors are constructor options since sdk-logs 0.201; before, addLogRecordProcessor.
      const provider = new logs.LoggerProvider({ resource: resource(service), processors: [processor] });
      if (provider.addLogRecordProcessor) provider.addLogRecordProcessor(processor);
      let emitEvent: (() => void) | undefined;
      if (events === 'attribute') {
        const { EventLoggerProvider } = load('@opentelemetry/sdk-events');
        const eventLogger = new EventLoggerProvider(provider).getEventLogger('compat-events', '1.2.3');
        emitEvent = () => eventLogger.emit({ name: 'compat.clicked', data: { button: 'buy' } });
      }
      recordLogs(provider.getLogger('compat', '1.2.3'), emitEvent);
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}

/** The version of a package of test/package.json (its package.json is not among its exports). */
function installedVersion(name: string): string {
  const main = loader(undefined).resolve(name);
  const root = main.slice(0, main.lastIndexOf(`/node_modules/${name}/`) + `/node_modules/${name}/`.length);
  return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
}

export const LINES: Line[] = [
  line027,
  modernLine('0.57', 'otel-057', '1.30.1', 'attribute'),
  modernLine('0.200', 'otel-0200', '2.0.0'),
  modernLine('latest', undefined, installedVersion('@opentelemetry/core')),
];

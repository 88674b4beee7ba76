/**
 * End to end: the real OpenTelemetry JS SDKs and OTLP exporters (HTTP/JSON, HTTP/protobuf, gRPC,
 * each plain and gzip-compressed) send traces, metrics and logs to a running receiver, and what
 * reaches the receiver's pipeline is compared exactly with what the SDK recorded.
 *
 * One table of transports, one scenario and one expectation per signal: every row runs the same
 * assertions.
 */
import {
  type Attributes,
  context,
  createTraceState,
  DiagLogLevel,
  diag,
  type HrTime,
  ROOT_CONTEXT,
  SeverityNumber,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  ValueType,
} from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as HttpJsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as HttpProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import {
  AggregationTemporalityPreference,
  OTLPMetricExporter as HttpJsonMetricExporter,
} from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as HttpProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as HttpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as HttpProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  StackContextManager,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type {
  AnyValue,
  HistogramDataPoint,
  KeyValue,
  LogRecord,
  Metric,
  NumberDataPoint,
  ResourceLogs,
  ResourceMetrics,
  ResourceSpans,
  Span,
} from '@sonde/receiver';
import { attrs, comparable, type Harness, kvlist, ns, received, startHarness, tap } from './helpers';

// ---------------------------------------------------------------------------------------------
// The transports

interface Endpoints {
  /** http://host:port of OTLP/HTTP */
  http: string;
  /** http://host:port of OTLP/gRPC */
  grpc: string;
}

interface TransportCase {
  name: string;
  transport: 'http' | 'grpc';
  encoding: 'json' | 'protobuf';
  gzip: boolean;
  traceExporter(e: Endpoints): HttpJsonTraceExporter | HttpProtoTraceExporter | GrpcTraceExporter;
  metricExporter(
    e: Endpoints,
    temporality: AggregationTemporalityPreference,
  ): HttpJsonMetricExporter | HttpProtoMetricExporter | GrpcMetricExporter;
  logExporter(e: Endpoints): HttpJsonLogExporter | HttpProtoLogExporter | GrpcLogExporter;
}

/**
 * The exporters' `compression` option is typed with a string enum of @opentelemetry/otlp-exporter-base,
 * of which the exporters hold two copies (0.301.0 and 0.301.1): TypeScript treats the two enums as
 * different types, so the value is written as the string the enum stands for.
 */
const compression = (gzip: boolean) => (gzip ? 'gzip' : 'none') as never;

const FAMILIES = [
  {
    name: 'OTLP/HTTP JSON',
    transport: 'http',
    encoding: 'json',
    traceExporter: (e: Endpoints, gzip: boolean) =>
      new HttpJsonTraceExporter({
        url: `${e.http}/v1/traces`,
        compression: compression(gzip),
      }),
    metricExporter: (e: Endpoints, gzip: boolean, temporalityPreference: AggregationTemporalityPreference) =>
      new HttpJsonMetricExporter({
        url: `${e.http}/v1/metrics`,
        compression: compression(gzip),
        temporalityPreference,
      }),
    logExporter: (e: Endpoints, gzip: boolean) =>
      new HttpJsonLogExporter({
        url: `${e.http}/v1/logs`,
        compression: compression(gzip),
      }),
  },
  {
    name: 'OTLP/HTTP protobuf',
    transport: 'http',
    encoding: 'protobuf',
    traceExporter: (e: Endpoints, gzip: boolean) =>
      new HttpProtoTraceExporter({
        url: `${e.http}/v1/traces`,
        compression: compression(gzip),
      }),
    metricExporter: (e: Endpoints, gzip: boolean, temporalityPreference: AggregationTemporalityPreference) =>
      new HttpProtoMetricExporter({
        url: `${e.http}/v1/metrics`,
        compression: compression(gzip),
        temporalityPreference,
      }),
    logExporter: (e: Endpoints, gzip: boolean) =>
      new HttpProtoLogExporter({
        url: `${e.http}/v1/logs`,
        compression: compression(gzip),
      }),
  },
  {
    name: 'OTLP/gRPC',
    transport: 'grpc',
    encoding: 'protobuf',
    traceExporter: (e: Endpoints, gzip: boolean) =>
      new GrpcTraceExporter({ url: e.grpc, compression: compression(gzip) }),
    metricExporter: (e: Endpoints, gzip: boolean, temporalityPreference: AggregationTemporalityPreference) =>
      new GrpcMetricExporter({
        url: e.grpc,
        compression: compression(gzip),
        temporalityPreference,
      }),
    logExporter: (e: Endpoints, gzip: boolean) => new GrpcLogExporter({ url: e.grpc, compression: compression(gzip) }),
  },
] as const;

const TRANSPORTS: TransportCase[] = FAMILIES.flatMap((f) =>
  [false, true].map(
    (gzip): TransportCase => ({
      name: `${f.name}${gzip ? ' + gzip' : ''}`,
      transport: f.transport,
      encoding: f.encoding,
      gzip,
      traceExporter: (e) => f.traceExporter(e, gzip),
      metricExporter: (e, t) => f.metricExporter(e, gzip, t),
      logExporter: (e) => f.logExporter(e, gzip),
    }),
  ),
);

// ---------------------------------------------------------------------------------------------
// What every scenario shares

const RESOURCE_SCHEMA = 'https://opentelemetry.io/schemas/1.36.0';
const SCOPE_SCHEMA = 'https://opentelemetry.io/schemas/1.30.0';

const RESOURCE_ATTRIBUTES = {
  'service.name': 'checkout',
  'service.version': '1.2.3',
  'host.cpu.count': 8,
  'deployment.canary': true,
};
const EXPECTED_RESOURCE_ATTRIBUTES = attrs({
  'service.name': 'checkout',
  'service.version': '1.2.3',
  'host.cpu.count': 8n,
  'deployment.canary': true,
});

function newResource() {
  return resourceFromAttributes(RESOURCE_ATTRIBUTES, {
    schemaUrl: RESOURCE_SCHEMA,
  });
}

let harness: Harness;
let endpoints: Endpoints;

beforeAll(async () => {
  harness = await startHarness();
  endpoints = { http: harness.httpUrl, grpc: harness.grpcUrl };
});

afterAll(async () => {
  await harness?.close();
});

beforeEach(() => harness.reset());

/** Every export the exporter reported on succeeded. */
function expectAllSucceeded(results: { code: number; error?: Error }[], exports: number) {
  expect(results).toHaveLength(exports);
  for (const r of results)
    expect({ code: r.code, error: r.error }).toStrictEqual({
      code: ExportResultCode.SUCCESS,
      error: undefined,
    });
}

// ---------------------------------------------------------------------------------------------
// Traces

const T = {
  parentStart: [1_700_000_000, 100_000_001] as HrTime,
  childStart: [1_700_000_000, 250_000_000] as HrTime,
  event: [1_700_000_000, 300_000_123] as HrTime,
  childEnd: [1_700_000_000, 750_999_999] as HrTime,
  parentEnd: [1_700_000_001, 5] as HrTime,
};

const LINK = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceState: 'congo=t61rcwkgmze,rojo=00f067aa0ba902b7',
};

/** A 4 KiB attribute that compresses well, so that gzip shows on the wire. */
const PADDING = 'sonde '.repeat(700);

/** The child span's attributes: every kind of value the API accepts on a span. */
const CHILD_ATTRIBUTES: Attributes = {
  'http.request.method': 'POST',
  'http.response.status_code': 504,
  'retry.delta': -3,
  'big.int': 2 ** 60,
  'max.safe': Number.MAX_SAFE_INTEGER,
  'payment.amount': 99.95,
  'sampling.ratio': -0.125,
  'payment.captured': false,
  'text.unicode': 'héllo ✓ 日本 🚀',
  'text.empty': '',
  'list.strings': ['a', 'b', ''],
  'list.ints': [200, -404],
  'list.doubles': [0.5, 1.25],
  'list.bools': [true, false],
  'list.mixed': ['x', 1, 2.5, true, null],
  'list.empty': [],
  'map.nested': {
    region: 'eu-west-1',
    zone: { id: 7, primary: true, weights: [0.1, 0.9] },
  },
  'bytes.value': new Uint8Array([0, 1, 0x7f, 0x80, 0xfe, 0xff]),
  'value.empty': null,
};
/**
 * 2^60 is an integer double, so the exporters send it as an intValue. Protobuf carries it exactly;
 * the JSON exporter writes it with JSON.stringify, whose shortest round-trip form is
 * 1152921504606847000: that decimal is the int64 on the wire, and the receiver must take its digits
 * exactly (as the Collector does) rather than go through a double, which would give 2^60 back.
 */
const BIG_INT_ON_THE_WIRE = {
  protobuf: 1_152_921_504_606_846_976n,
  json: 1_152_921_504_606_847_000n,
};

const expectedChildAttributes = (encoding: 'json' | 'protobuf') =>
  attrs({
    'http.request.method': 'POST',
    'http.response.status_code': 504n,
    'retry.delta': -3n,
    'big.int': BIG_INT_ON_THE_WIRE[encoding],
    'max.safe': 9_007_199_254_740_991n,
    'payment.amount': 99.95,
    'sampling.ratio': -0.125,
    'payment.captured': false,
    'text.unicode': 'héllo ✓ 日本 🚀',
    'text.empty': '',
    'list.strings': ['a', 'b', ''],
    'list.ints': [200n, -404n],
    'list.doubles': [0.5, 1.25],
    'list.bools': [true, false],
    'list.mixed': ['x', 1n, 2.5, true, undefined],
    'list.empty': [],
    'map.nested': kvlist({
      region: 'eu-west-1',
      zone: kvlist({ id: 7n, primary: true, weights: [0.1, 0.9] }),
    }),
    'bytes.value': new Uint8Array([0, 1, 0x7f, 0x80, 0xfe, 0xff]),
    'value.empty': undefined,
  });

interface TraceRun {
  parent: ReadableSpan;
  child: ReadableSpan;
}

/** A SERVER span and its CLIENT child (event, link, error status), ended with explicit times and flushed. */
async function recordTrace(provider: TracerProvider): Promise<TraceRun> {
  const tracer = provider.getTracer('e2e-tracer', '1.4.2', {
    schemaUrl: SCOPE_SCHEMA,
  });
  const parent = tracer.startSpan('GET /checkout', {
    kind: SpanKind.SERVER,
    startTime: T.parentStart,
    attributes: {
      'http.route': '/checkout',
      'http.response.status_code': 500,
      padding: PADDING,
    },
  });
  const child = tracer.startSpan(
    'POST payments',
    {
      kind: SpanKind.CLIENT,
      startTime: T.childStart,
      attributes: CHILD_ATTRIBUTES,
      links: [
        {
          context: {
            traceId: LINK.traceId,
            spanId: LINK.spanId,
            traceFlags: TraceFlags.SAMPLED,
            isRemote: true,
            traceState: createTraceState(LINK.traceState),
          },
          attributes: { 'link.reason': 'retry-of', 'link.attempt': 1 },
        },
      ],
    },
    trace.setSpan(ROOT_CONTEXT, parent),
  );
  child.addEvent(
    'retry',
    {
      'retry.attempt': 2,
      'retry.backoff_ms': 12.5,
      'retry.reasons': ['timeout', 'reset'],
    },
    T.event,
  );
  child.setStatus({
    code: SpanStatusCode.ERROR,
    message: 'payment gateway timeout',
  });
  child.end(T.childEnd);
  parent.end(T.parentEnd);
  await provider.forceFlush();
  return {
    parent: parent as unknown as ReadableSpan,
    child: child as unknown as ReadableSpan,
  };
}

function expectedTrace({ parent, child }: TraceRun, encoding: 'json' | 'protobuf'): ResourceSpans[] {
  const traceId = parent.spanContext().traceId;
  const scope = {
    name: 'e2e-tracer',
    version: '1.4.2',
    attributes: [],
    droppedAttributesCount: 0,
  };
  // W3C sampled flag, plus "has is_remote" (0x100); the link's context is remote (0x200).
  const LOCAL_SAMPLED = 0x101;
  const childSpan: Span = {
    traceId,
    spanId: child.spanContext().spanId,
    traceState: '',
    parentSpanId: parent.spanContext().spanId,
    flags: LOCAL_SAMPLED,
    name: 'POST payments',
    kind: 3,
    startTimeUnixNano: ns(child.startTime),
    endTimeUnixNano: ns(child.endTime),
    attributes: expectedChildAttributes(encoding),
    droppedAttributesCount: 0,
    events: [
      {
        timeUnixNano: 1_700_000_000_300_000_123n,
        name: 'retry',
        attributes: attrs({
          'retry.attempt': 2n,
          'retry.backoff_ms': 12.5,
          'retry.reasons': ['timeout', 'reset'],
        }),
        droppedAttributesCount: 0,
      },
    ],
    droppedEventsCount: 0,
    links: [
      {
        traceId: LINK.traceId,
        spanId: LINK.spanId,
        traceState: LINK.traceState,
        attributes: attrs({ 'link.reason': 'retry-of', 'link.attempt': 1n }),
        droppedAttributesCount: 0,
        flags: 0x301,
      },
    ],
    droppedLinksCount: 0,
    status: { message: 'payment gateway timeout', code: 2 },
  };
  const parentSpan: Span = {
    traceId,
    spanId: parent.spanContext().spanId,
    traceState: '',
    parentSpanId: '',
    flags: LOCAL_SAMPLED,
    name: 'GET /checkout',
    kind: 2,
    startTimeUnixNano: ns(parent.startTime),
    endTimeUnixNano: ns(parent.endTime),
    attributes: attrs({
      'http.route': '/checkout',
      'http.response.status_code': 500n,
      padding: PADDING,
    }),
    droppedAttributesCount: 0,
    events: [],
    droppedEventsCount: 0,
    links: [],
    droppedLinksCount: 0,
    status: { message: '', code: 0 },
  };
  return [
    {
      resource: {
        attributes: EXPECTED_RESOURCE_ATTRIBUTES,
        droppedAttributesCount: 0,
      },
      scopeSpans: [{ scope, spans: [childSpan, parentSpan], schemaUrl: SCOPE_SCHEMA }],
      schemaUrl: RESOURCE_SCHEMA,
    },
  ];
}

describe.each(TRANSPORTS)('$name', (tc) => {
  test('traces: a SERVER span and its CLIENT child arrive exactly as the SDK recorded them', async () => {
    const exporter = tc.traceExporter(endpoints);
    const taps = tap(exporter);
    const provider = new TracerProvider({
      resource: newResource(),
      spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 3_600_000 })],
    });
    const bodyBefore = await harness.bodyBytes('traces', tc.transport);
    try {
      const run = await recordTrace(provider);

      // The SDK recorded the explicit times, and the two spans share the SDK's trace id.
      expect([run.parent.startTime, run.child.startTime, run.child.endTime, run.parent.endTime]).toStrictEqual([
        T.parentStart,
        T.childStart,
        T.childEnd,
        T.parentEnd,
      ]);
      expect(run.child.spanContext().traceId).toBe(run.parent.spanContext().traceId);
      expect(run.parent.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);

      expectAllSucceeded(taps.results, 1);
      expect(harness.batches.traces).toHaveLength(1);
      const batch = harness.batches.traces[0];
      expect(batch.context.transport).toBe(tc.transport);
      expect(batch.context.encoding).toBe(tc.encoding);
      expect(batch.itemCount).toBe(2);
      expect(comparable(batch.data)).toStrictEqual(comparable(expectedTrace(run, tc.encoding)));
      expect(batch.data[0].scopeSpans[0].spans[1].startTimeUnixNano).toBe(1_700_000_000_100_000_001n);
      expect(batch.data[0].scopeSpans[0].spans[1].endTimeUnixNano).toBe(1_700_000_001_000_000_005n);

      // The request really was (or was not) compressed on the wire.
      const body = (await harness.bodyBytes('traces', tc.transport)) - bodyBefore;
      const wire = harness.wireBytes(tc.transport);
      expect(body).toBeGreaterThan(PADDING.length);
      if (tc.gzip) expect(wire).toBeLessThan(body / 2);
      else expect(wire).toBeGreaterThan(body);
    } finally {
      await provider.shutdown();
    }
  });

  test('traces: export() called directly reports SUCCESS', async () => {
    const memory = new InMemorySpanExporter();
    const source = new TracerProvider({
      resource: newResource(),
      spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
    });
    const span = source.getTracer('direct').startSpan('direct-call', { startTime: T.parentStart });
    span.end(T.parentEnd);
    const spans = memory.getFinishedSpans();
    await source.shutdown();

    const exporter = tc.traceExporter(endpoints);
    try {
      const result = await new Promise((resolve) => exporter.export(spans, resolve));
      expect(result).toStrictEqual({ code: ExportResultCode.SUCCESS });
      expect(
        received(harness.batches.traces).flatMap((rs) =>
          rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => [s.name, s.spanId])),
        ),
      ).toStrictEqual([['direct-call', span.spanContext().spanId]]);
    } finally {
      await exporter.shutdown();
    }
  });

  test('traces: a span with an all-zero trace id is rejected as a partial success, the other kept', async () => {
    const warnings: string[] = [];
    diag.setLogger(
      {
        error: () => {},
        warn: (...args: unknown[]) => void warnings.push(args.map(String).join(' ')),
        info: () => {},
        debug: () => {},
        verbose: () => {},
      },
      DiagLogLevel.WARN,
    );
    const exporter = tc.traceExporter(endpoints);
    try {
      const resource = newResource();
      const spans = [
        fakeSpan('0'.repeat(32), 'bad', resource),
        fakeSpan('5b8efff798038103d269b633813fc60c', 'good', resource),
      ];
      const result = await new Promise((resolve) => exporter.export(spans, resolve));
      // Partial success is success (OTLP spec): the client must not retry.
      expect(result).toStrictEqual({ code: ExportResultCode.SUCCESS });
      expect(
        received(harness.batches.traces).flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.name))),
      ).toStrictEqual(['good']);
      const partial = warnings.filter((w) => w.includes('Partial Success'));
      expect(partial).toHaveLength(1);
      const [, json] = partial[0].split('Received Partial Success response: ');
      const body = JSON.parse(json) as {
        rejectedSpans: number | string;
        errorMessage: string;
      };
      expect(Number(body.rejectedSpans)).toBe(1);
      expect(body.errorMessage).toMatch(/trace_id/);
    } finally {
      diag.disable();
      await exporter.shutdown();
    }
  });

  test.each([
    ['cumulative', AggregationTemporalityPreference.CUMULATIVE],
    ['delta', AggregationTemporalityPreference.DELTA],
  ] as const)(
    'metrics (%s): counter, up-down counter, histogram and gauge arrive exactly',
    async (label, preference) => {
      const exporter = tc.metricExporter(endpoints, preference);
      const taps = tap(exporter);
      const reader = new PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: 3_600_000,
      });
      const provider = new MeterProvider({
        resource: newResource(),
        readers: [reader],
      });
      try {
        await recordMetrics(provider, reader);
        expectAllSucceeded(taps.results, 2);
        // Each collection reached the pipeline as one request: compare the second (after two rounds).
        expect(harness.batches.metrics).toHaveLength(2);
        const batch = harness.batches.metrics[1];
        expect(batch.context.transport).toBe(tc.transport);
        expect(batch.context.encoding).toBe(tc.encoding);
        expect(batch.itemCount).toBe(6);
        const sdk = taps.exported[1] as unknown as SdkResourceMetrics;
        expect(comparable(sortMetrics(batch.data))).toStrictEqual(comparable(expectedMetrics(label === 'delta', sdk)));
      } finally {
        await provider.shutdown();
      }
    },
  );

  test('logs: string and map bodies, event name, and the active span context arrive exactly', async () => {
    const exporter = tc.logExporter(endpoints);
    const taps = tap(exporter);
    const provider = new LoggerProvider({
      resource: newResource(),
      processors: [
        new BatchLogRecordProcessor({
          exporter,
          scheduledDelayMillis: 3_600_000,
        }),
      ],
    });
    const tracerProvider = new TracerProvider();
    context.setGlobalContextManager(new StackContextManager().enable());
    try {
      const spanContext = await recordLogs(provider, tracerProvider);
      expectAllSucceeded(taps.results, 1);
      expect(harness.batches.logs).toHaveLength(1);
      const batch = harness.batches.logs[0];
      expect(batch.context.transport).toBe(tc.transport);
      expect(batch.context.encoding).toBe(tc.encoding);
      expect(batch.itemCount).toBe(3);
      const sdk = taps.exported[0] as unknown as {
        hrTime: HrTime;
        hrTimeObserved: HrTime;
      }[];
      expect(comparable(batch.data)).toStrictEqual(comparable(expectedLogs(spanContext, sdk[2])));
    } finally {
      context.disable();
      await Promise.all([provider.shutdown(), tracerProvider.shutdown()]);
    }
  });
});

/** A hand-made ReadableSpan, for ids the SDK would never produce. */
function fakeSpan(traceId: string, name: string, resource: ReturnType<typeof newResource>): ReadableSpan {
  return {
    name,
    kind: SpanKind.INTERNAL,
    spanContext: () => ({
      traceId,
      spanId: '1111111111111111',
      traceFlags: TraceFlags.SAMPLED,
    }),
    startTime: T.parentStart,
    endTime: T.parentEnd,
    status: { code: SpanStatusCode.UNSET },
    attributes: {},
    links: [],
    events: [],
    duration: [0, 0],
    ended: true,
    resource,
    instrumentationScope: { name: 'fake' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Metrics

const BOUNDS = [0, 10, 100, 1000];
const ROUTE_A = { 'http.route': '/a', 'http.ok': true, shard: 3 };
const ROUTE_B = { 'http.route': '/b', 'http.ok': false, shard: 4 };

/** Two rounds of measurements, each followed by a collection and export. */
async function recordMetrics(provider: MeterProvider, reader: PeriodicExportingMetricReader): Promise<void> {
  const meter = provider.getMeter('e2e-meter', '2.0.0', {
    schemaUrl: SCOPE_SCHEMA,
  });
  const requests = meter.createCounter('http.server.requests', {
    description: 'Requests served',
    unit: '{request}',
    valueType: ValueType.INT,
  });
  const depth = meter.createUpDownCounter('queue.depth', {
    description: 'Items waiting',
    unit: '{item}',
  });
  const latency = meter.createHistogram('http.server.duration', {
    description: 'Time to serve a request',
    unit: 'ms',
    advice: { explicitBucketBoundaries: BOUNDS },
  });
  const temperature = meter.createObservableGauge('room.temperature', {
    description: 'Room temperature',
    unit: 'Cel',
  });
  temperature.addCallback((result) => {
    result.observe(21.5, { room: 'lab' });
    result.observe(-3.25, { room: 'cellar' });
  });

  requests.add(3, ROUTE_A);
  requests.add(4, ROUTE_A);
  requests.add(1, ROUTE_B);
  depth.add(5.5, { queue: 'q1' });
  depth.add(-2, { queue: 'q1' });
  for (const v of [5, 50, 50, 5000]) latency.record(v, { 'http.route': '/a' });
  await reader.forceFlush();

  requests.add(10, ROUTE_A);
  requests.add(2, ROUTE_B);
  depth.add(-1.5, { queue: 'q1' });
  latency.record(7, { 'http.route': '/a' });
  await reader.forceFlush();
}

/** The part of the SDK's ResourceMetrics the expectations read (its timestamps). */
interface SdkResourceMetrics {
  scopeMetrics: {
    metrics: {
      descriptor: { name: string };
      dataPoints: {
        attributes: Attributes;
        startTime: HrTime;
        endTime: HrTime;
      }[];
    }[];
  }[];
}

/** The start and end time the SDK gave the point of `name` with `attributes`. */
function sdkTimes(
  sdk: SdkResourceMetrics,
  name: string,
  attributes: Attributes,
): { startTimeUnixNano: bigint; timeUnixNano: bigint } {
  const metric = sdk.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  const point = metric?.dataPoints.find((p) => JSON.stringify(p.attributes) === JSON.stringify(attributes));
  if (!point) throw new Error(`the SDK exported no point of ${name} with ${JSON.stringify(attributes)}`);
  return {
    startTimeUnixNano: ns(point.startTime),
    timeUnixNano: ns(point.endTime),
  };
}

function numberPoint(
  sdk: SdkResourceMetrics,
  name: string,
  attributes: Attributes,
  expectedAttributes: Record<string, AnyValue>,
  value: number,
  isInt: boolean,
): NumberDataPoint {
  return {
    attributes: attrs(expectedAttributes),
    ...sdkTimes(sdk, name, attributes),
    exemplars: [],
    flags: 0,
    value,
    isInt,
  };
}

function expectedMetrics(delta: boolean, sdk: SdkResourceMetrics): ResourceMetrics[] {
  const DELTA = 1;
  const CUMULATIVE = 2;
  const histogram: HistogramDataPoint = {
    attributes: attrs({ 'http.route': '/a' }),
    ...sdkTimes(sdk, 'http.server.duration', { 'http.route': '/a' }),
    exemplars: [],
    flags: 0,
    ...(delta
      ? {
          count: 1,
          sum: 7,
          bucketCounts: [0, 1, 0, 0, 0],
          explicitBounds: BOUNDS,
          min: 7,
          max: 7,
        }
      : {
          count: 5,
          sum: 5112,
          bucketCounts: [0, 2, 2, 0, 1],
          explicitBounds: BOUNDS,
          min: 5,
          max: 5000,
        }),
  };
  const metrics: Metric[] = [
    {
      name: 'http.server.duration',
      description: 'Time to serve a request',
      unit: 'ms',
      data: {
        type: 'histogram',
        dataPoints: [histogram],
        aggregationTemporality: delta ? DELTA : CUMULATIVE,
      },
      metadata: [],
    },
    {
      name: 'http.server.requests',
      description: 'Requests served',
      unit: '{request}',
      data: {
        type: 'sum',
        dataPoints: sortPoints([
          numberPoint(
            sdk,
            'http.server.requests',
            ROUTE_A,
            { 'http.route': '/a', 'http.ok': true, shard: 3n },
            delta ? 10 : 17,
            true,
          ),
          numberPoint(
            sdk,
            'http.server.requests',
            ROUTE_B,
            { 'http.route': '/b', 'http.ok': false, shard: 4n },
            delta ? 2 : 3,
            true,
          ),
        ]),
        aggregationTemporality: delta ? DELTA : CUMULATIVE,
        isMonotonic: true,
      },
      metadata: [],
    },
    {
      name: 'queue.depth',
      description: 'Items waiting',
      unit: '{item}',
      // An up-down counter stays cumulative under the delta preference (OTel SDK spec).
      data: {
        type: 'sum',
        dataPoints: [numberPoint(sdk, 'queue.depth', { queue: 'q1' }, { queue: 'q1' }, 2, false)],
        aggregationTemporality: CUMULATIVE,
        isMonotonic: false,
      },
      metadata: [],
    },
    {
      name: 'room.temperature',
      description: 'Room temperature',
      unit: 'Cel',
      data: {
        type: 'gauge',
        dataPoints: sortPoints([
          numberPoint(sdk, 'room.temperature', { room: 'lab' }, { room: 'lab' }, 21.5, false),
          numberPoint(sdk, 'room.temperature', { room: 'cellar' }, { room: 'cellar' }, -3.25, false),
        ]),
      },
      metadata: [],
    },
  ];
  return [
    {
      resource: {
        attributes: EXPECTED_RESOURCE_ATTRIBUTES,
        droppedAttributesCount: 0,
      },
      scopeMetrics: [
        {
          scope: {
            name: 'e2e-meter',
            version: '2.0.0',
            attributes: [],
            droppedAttributesCount: 0,
          },
          metrics,
          schemaUrl: SCOPE_SCHEMA,
        },
      ],
      schemaUrl: RESOURCE_SCHEMA,
    },
  ];
}

/** A stable order for comparison: OTLP gives metrics and points no order. */
function sortMetrics(data: ResourceMetrics[]): ResourceMetrics[] {
  for (const rm of data) {
    for (const sm of rm.scopeMetrics) {
      sm.metrics.sort((a, b) => a.name.localeCompare(b.name));
      for (const m of sm.metrics) (m.data.dataPoints as { attributes: KeyValue[] }[]).sort(byAttributes);
    }
  }
  return data;
}

function sortPoints<P extends { attributes: KeyValue[] }>(points: P[]): P[] {
  return points.sort(byAttributes);
}

function byAttributes(a: { attributes: KeyValue[] }, b: { attributes: KeyValue[] }): number {
  return attributesKey(a.attributes).localeCompare(attributesKey(b.attributes));
}

function attributesKey(attributes: KeyValue[]): string {
  return JSON.stringify(comparable(attributes), (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

// ---------------------------------------------------------------------------------------------
// Logs

const L = {
  first: [1_700_000_002, 1] as HrTime,
  firstObserved: [1_700_000_002, 999_999_999] as HrTime,
  second: [1_700_000_003, 500_000_000] as HrTime,
  secondObserved: [1_700_000_003, 500_000_001] as HrTime,
};

/** Three records: a plain string log, an event with a map body, and one inside an active span. */
async function recordLogs(provider: LoggerProvider, tracerProvider: TracerProvider) {
  const logger = provider.getLogger('e2e-logger', '3.0.0', {
    schemaUrl: SCOPE_SCHEMA,
    attributes: { 'logger.kind': 'audit' },
  });
  logger.emit({
    timestamp: L.first,
    observedTimestamp: L.firstObserved,
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: 'user signed in',
    attributes: {
      'account.id': 42,
      'session.new': true,
      'auth.latency_s': 0.25,
      'auth.methods': ['password', 'otp'],
    },
  });
  logger.emit({
    eventName: 'order.placed',
    timestamp: L.second,
    observedTimestamp: L.secondObserved,
    severityNumber: SeverityNumber.WARN2,
    severityText: 'WARN2',
    body: {
      order: { id: 'o-1001', total: 99.5, quantity: 3 },
      express: true,
      lines: ['sku-1', 'sku-2'],
      checksum: new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
    },
    attributes: {
      'order.region': 'eu',
      customer: { tier: 'gold', since: 2019 },
    },
  });
  const tracer = tracerProvider.getTracer('log-parent');
  const spanContext = tracer.startActiveSpan('handle payment', (span) => {
    logger.emit({
      severityNumber: SeverityNumber.ERROR,
      severityText: 'ERROR',
      body: 'payment failed',
      attributes: { 'error.type': 'timeout' },
    });
    span.end();
    return span.spanContext();
  });
  await provider.forceFlush();
  return spanContext;
}

function expectedLogs(
  spanContext: { traceId: string; spanId: string },
  third: { hrTime: HrTime; hrTimeObserved: HrTime },
): ResourceLogs[] {
  const plain = {
    droppedAttributesCount: 0,
    flags: 0,
    traceId: '',
    spanId: '',
  };
  const records: LogRecord[] = [
    {
      ...plain,
      timeUnixNano: 1_700_000_002_000_000_001n,
      observedTimeUnixNano: 1_700_000_002_999_999_999n,
      severityNumber: 9,
      severityText: 'INFO',
      body: 'user signed in',
      attributes: attrs({
        'account.id': 42n,
        'session.new': true,
        'auth.latency_s': 0.25,
        'auth.methods': ['password', 'otp'],
      }),
      eventName: '',
    },
    {
      ...plain,
      timeUnixNano: 1_700_000_003_500_000_000n,
      observedTimeUnixNano: 1_700_000_003_500_000_001n,
      severityNumber: 14,
      severityText: 'WARN2',
      body: kvlist({
        order: kvlist({ id: 'o-1001', total: 99.5, quantity: 3n }),
        express: true,
        lines: ['sku-1', 'sku-2'],
        checksum: new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
      }),
      attributes: attrs({
        'order.region': 'eu',
        customer: kvlist({ tier: 'gold', since: 2019n }),
      }),
      eventName: 'order.placed',
    },
    {
      timeUnixNano: ns(third.hrTime),
      observedTimeUnixNano: ns(third.hrTimeObserved),
      severityNumber: 17,
      severityText: 'ERROR',
      body: 'payment failed',
      attributes: attrs({ 'error.type': 'timeout' }),
      droppedAttributesCount: 0,
      flags: 1,
      traceId: spanContext.traceId,
      spanId: spanContext.spanId,
      eventName: '',
    },
  ];
  return [
    {
      resource: {
        attributes: EXPECTED_RESOURCE_ATTRIBUTES,
        droppedAttributesCount: 0,
      },
      scopeLogs: [
        {
          scope: {
            name: 'e2e-logger',
            version: '3.0.0',
            attributes: attrs({ 'logger.kind': 'audit' }),
            droppedAttributesCount: 0,
          },
          logRecords: records,
          schemaUrl: SCOPE_SCHEMA,
        },
      ],
      schemaUrl: RESOURCE_SCHEMA,
    },
  ];
}

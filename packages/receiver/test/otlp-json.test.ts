/**
 * The OTLP/JSON codec (src/otlp/json): edge cases of the decoder for the three signals, round trips
 * through the encoder, and the JSON written by the OpenTelemetry JS SDK's own serializers.
 */
import {
  context,
  type HrTime,
  ROOT_CONTEXT,
  SeverityNumber,
  SpanKind,
  SpanStatusCode,
  trace,
  ValueType,
} from '@opentelemetry/api';
import { JsonLogsSerializer, JsonMetricsSerializer, JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import {
  AggregationType,
  DataPointType,
  type ExponentialHistogram,
  type Histogram,
  MeterProvider,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import {
  AggregationTemporality,
  type AnyValue,
  attributeValue,
  emptyResource,
  emptyScope,
  FLAG_NO_RECORDED_VALUE,
  type KeyValue,
  KeyValueList,
  type LogRecord,
  type Metric,
  type NumberDataPoint,
  SpanKind as OtlpSpanKind,
  type ResourceLogs,
  type ResourceMetrics,
  type ResourceSpans,
  type Signal,
  type SignalData,
  type Span,
  StatusCode,
} from '../src/model';
import { MalformedPayloadError, TooDeepError } from '../src/otlp/errors';
import { decodeJsonRequest } from '../src/otlp/json/decode';
import { encodeJsonRequest } from '../src/otlp/json/encode';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../src/otlp/limits';

// ---------------------------------------------------------------------------------------------
// Helpers

const LIMITS: DecodeLimits = { maxAnyValueDepth: 4 };
const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const SPAN_ID = 'eee19b7ec3c1b174';
const PARENT_ID = 'eee19b7ec3c1b173';

/** JSON text of `value`, where bigints are written as unquoted numbers with all their digits. */
function rawJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `@@${v}@@` : v)).replace(
    /"@@(-?\d+)@@"/g,
    '$1',
  );
}

function decode<S extends Signal>(signal: S, json: unknown, limits = LIMITS): SignalData[S] {
  return decodeJsonRequest(signal, Buffer.from(typeof json === 'string' ? json : rawJson(json)), limits);
}

function refusal(signal: Signal, json: unknown, limits = LIMITS): MalformedPayloadError {
  try {
    decode(signal, json, limits);
  } catch (e) {
    if (e instanceof MalformedPayloadError) return e;
    throw e;
  }
  throw new Error('expected the request to be refused');
}

function roundTrip<S extends Signal>(signal: S, data: SignalData[S]): SignalData[S] {
  return decode(signal, JSON.stringify(encodeJsonRequest(signal, data)));
}

const spansRequest = (...spans: object[]) => ({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
const metricsRequest = (...metrics: object[]) => ({ resourceMetrics: [{ scopeMetrics: [{ metrics }] }] });
const logsRequest = (...logRecords: object[]) => ({ resourceLogs: [{ scopeLogs: [{ logRecords }] }] });
const gaugeRequest = (...dataPoints: object[]) => metricsRequest({ name: 'g', gauge: { dataPoints } });

const firstSpan = (json: unknown): Span => decode('traces', json)[0].scopeSpans[0].spans[0];
const firstMetric = (json: unknown): Metric => decode('metrics', json)[0].scopeMetrics[0].metrics[0];
const firstLog = (json: unknown): LogRecord => decode('logs', json)[0].scopeLogs[0].logRecords[0];
/** The value of the single attribute of the first span of `attributeValueJson`. */
const spanAttribute = (valueJson: unknown): AnyValue =>
  firstSpan(spansRequest({ attributes: [{ key: 'k', value: valueJson }] })).attributes[0].value;

const kv = (key: string, value: AnyValue): KeyValue => ({ key, value });

/** An AnyValue JSON whose innermost scalar sits at `depth`, inside arrays or kvlists. */
function nestedJson(depth: number, kind: 'arrayValue' | 'kvlistValue'): object {
  if (depth === 1) return { intValue: '1' };
  const inner = nestedJson(depth - 1, kind);
  return kind === 'arrayValue'
    ? { arrayValue: { values: [inner] } }
    : { kvlistValue: { values: [{ key: 'k', value: inner }] } };
}

function hrTimeToNanos(time: HrTime): bigint {
  return BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);
}

/** Adds unknown fields, of every JSON type, to every object of `json`. */
function withUnknownFields(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(withUnknownFields);
  if (typeof json !== 'object' || json === null) return json;
  const out: Record<string, unknown> = {
    futureObject: { values: [{ stringValue: 'x' }], nested: { traceId: 'not hex' } },
    futureArray: [1, 'two', null, { three: 3 }],
  };
  for (const [key, value] of Object.entries(json)) out[key] = withUnknownFields(value);
  out.futureString = 'x';
  out.futureNumber = 12;
  out.futureNull = null;
  return out;
}

/** Renames every key of `json` to its snake_case original proto field name. */
function withSnakeCaseKeys(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(withSnakeCaseKeys);
  if (typeof json !== 'object' || json === null) return json;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    out[key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = withSnakeCaseKeys(value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rich hand-built models, one per signal

/** One attribute of every AnyValue kind, including nesting and the edge values of each. */
const EVERY_KIND: KeyValue[] = [
  kv('string', 'héllo ✓'),
  kv('empty string', ''),
  kv('true', true),
  kv('false', false),
  kv('int', 42n),
  kv('int zero', 0n),
  kv('int min', -9223372036854775808n),
  kv('int max', 9223372036854775807n),
  kv('double', -0.25),
  kv('double integral', 3),
  kv('double zero', 0),
  kv('NaN', Number.NaN),
  kv('Infinity', Number.POSITIVE_INFINITY),
  kv('-Infinity', Number.NEGATIVE_INFINITY),
  kv('bytes', new Uint8Array([0, 1, 2, 250, 255])),
  kv('empty bytes', new Uint8Array(0)),
  kv('array', ['a', 1n, 1.5, true, ['nested', [new Uint8Array([7])]], undefined]),
  kv('empty array', []),
  kv(
    'kvlist',
    new KeyValueList([kv('inner', 'v'), kv('deeper', new KeyValueList([kv('n', 7n)])), kv('none', undefined)]),
  ),
  kv('empty kvlist', new KeyValueList([])),
  kv('unset', undefined),
];

const ZERO_SPAN: Span = {
  traceId: '',
  spanId: '',
  traceState: '',
  parentSpanId: '',
  flags: 0,
  name: '',
  kind: 0,
  startTimeUnixNano: 0n,
  endTimeUnixNano: 0n,
  attributes: [],
  droppedAttributesCount: 0,
  events: [],
  droppedEventsCount: 0,
  links: [],
  droppedLinksCount: 0,
  status: { message: '', code: 0 },
};

const RICH_TRACES: ResourceSpans[] = [
  {
    resource: {
      attributes: [kv('service.name', 'checkout'), kv('host.cpus', 8n)],
      droppedAttributesCount: 2,
    },
    scopeSpans: [
      {
        scope: {
          name: 'lib',
          version: '1.2.3',
          attributes: [kv('scope.attr', true)],
          droppedAttributesCount: 1,
        },
        spans: [
          {
            traceId: TRACE_ID,
            spanId: SPAN_ID,
            traceState: 'vendor=x',
            parentSpanId: PARENT_ID,
            flags: 0x301,
            name: 'GET /cart',
            kind: OtlpSpanKind.SERVER,
            startTimeUnixNano: 1700000000123456789n,
            endTimeUnixNano: 18446744073709551615n,
            attributes: EVERY_KIND,
            droppedAttributesCount: 3,
            events: [
              {
                timeUnixNano: 1700000000200000000n,
                name: 'retry',
                attributes: [kv('attempt', 2n)],
                droppedAttributesCount: 1,
              },
              { timeUnixNano: 0n, name: '', attributes: [], droppedAttributesCount: 0 },
            ],
            droppedEventsCount: 4,
            links: [
              {
                traceId: '0af7651916cd43dd8448eb211c80319c',
                spanId: 'b7ad6b7169203331',
                traceState: 'a=b',
                attributes: [kv('link', 'x')],
                droppedAttributesCount: 5,
                flags: 1,
              },
            ],
            droppedLinksCount: 6,
            status: { message: 'boom', code: StatusCode.ERROR },
          },
          ZERO_SPAN,
        ],
        schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
      },
      { scope: emptyScope(), spans: [], schemaUrl: '' },
    ],
    schemaUrl: 'https://opentelemetry.io/schemas/1.25.0',
  },
  { resource: emptyResource(), scopeSpans: [], schemaUrl: '' },
];

const RICH_METRICS: ResourceMetrics[] = [
  {
    resource: { attributes: [kv('service.name', 'billing')], droppedAttributesCount: 0 },
    scopeMetrics: [
      {
        scope: { name: 'meter', version: '', attributes: [], droppedAttributesCount: 0 },
        metrics: [
          {
            name: 'temperature',
            description: 'room temperature',
            unit: 'Cel',
            data: {
              type: 'gauge',
              dataPoints: [
                {
                  attributes: [kv('room', 'a')],
                  startTimeUnixNano: 0n,
                  timeUnixNano: 1700000000000000001n,
                  exemplars: [
                    {
                      filteredAttributes: [kv('user', 'u1')],
                      timeUnixNano: 1700000000000000000n,
                      value: 21.5,
                      isInt: false,
                      spanId: SPAN_ID,
                      traceId: TRACE_ID,
                    },
                    {
                      filteredAttributes: [],
                      timeUnixNano: 0n,
                      value: -7,
                      isInt: true,
                      spanId: '',
                      traceId: '',
                    },
                    {
                      filteredAttributes: [],
                      timeUnixNano: 0n,
                      value: 0,
                      isInt: false,
                      spanId: '',
                      traceId: '',
                    },
                  ],
                  flags: 0,
                  value: 21.5,
                  isInt: false,
                },
                {
                  attributes: [],
                  startTimeUnixNano: 0n,
                  timeUnixNano: 1700000000000000002n,
                  exemplars: [],
                  flags: FLAG_NO_RECORDED_VALUE,
                  value: Number.NaN,
                  isInt: false,
                },
                {
                  attributes: [],
                  startTimeUnixNano: 0n,
                  timeUnixNano: 0n,
                  exemplars: [],
                  flags: 0,
                  value: 0,
                  isInt: true,
                },
              ],
            },
            metadata: [kv('origin', 'prometheus')],
          },
          {
            name: 'requests',
            description: '',
            unit: '1',
            data: {
              type: 'sum',
              aggregationTemporality: AggregationTemporality.CUMULATIVE,
              isMonotonic: true,
              dataPoints: [
                {
                  attributes: [kv('route', '/a')],
                  startTimeUnixNano: 1600000000000000000n,
                  timeUnixNano: 1700000000000000000n,
                  exemplars: [],
                  flags: 0,
                  value: 9007199254740991,
                  isInt: true,
                },
              ],
            },
            metadata: [],
          },
          {
            name: 'queue.delta',
            description: '',
            unit: '',
            data: {
              type: 'sum',
              aggregationTemporality: AggregationTemporality.DELTA,
              isMonotonic: false,
              dataPoints: [],
            },
            metadata: [],
          },
          {
            name: 'latency',
            description: '',
            unit: 'ms',
            data: {
              type: 'histogram',
              aggregationTemporality: AggregationTemporality.DELTA,
              dataPoints: [
                {
                  attributes: [],
                  startTimeUnixNano: 1n,
                  timeUnixNano: 2n,
                  exemplars: [
                    {
                      filteredAttributes: [],
                      timeUnixNano: 2n,
                      value: 12,
                      isInt: true,
                      spanId: SPAN_ID,
                      traceId: TRACE_ID,
                    },
                  ],
                  flags: 0,
                  count: 6,
                  sum: 112.5,
                  bucketCounts: [1, 0, 3, 2],
                  explicitBounds: [0, 10, Number.POSITIVE_INFINITY],
                  min: 0,
                  max: 70,
                },
                {
                  attributes: [],
                  startTimeUnixNano: 0n,
                  timeUnixNano: 3n,
                  exemplars: [],
                  flags: 0,
                  count: 0,
                  sum: undefined,
                  bucketCounts: [],
                  explicitBounds: [],
                  min: undefined,
                  max: undefined,
                },
                {
                  attributes: [],
                  startTimeUnixNano: 0n,
                  timeUnixNano: 4n,
                  exemplars: [],
                  flags: 0,
                  count: 1,
                  sum: 0,
                  bucketCounts: [1],
                  explicitBounds: [],
                  min: Number.NEGATIVE_INFINITY,
                  max: Number.NaN,
                },
              ],
            },
            metadata: [],
          },
          {
            name: 'latency.exp',
            description: '',
            unit: 's',
            data: {
              type: 'exponentialHistogram',
              aggregationTemporality: AggregationTemporality.CUMULATIVE,
              dataPoints: [
                {
                  attributes: [kv('host', 'h')],
                  startTimeUnixNano: 10n,
                  timeUnixNano: 20n,
                  exemplars: [],
                  flags: 0,
                  count: 9,
                  sum: -1.25,
                  scale: -3,
                  zeroCount: 2,
                  positive: { offset: -2, bucketCounts: [1, 0, 4] },
                  negative: { offset: 5, bucketCounts: [2] },
                  min: -4,
                  max: 100,
                  zeroThreshold: 1e-9,
                },
                {
                  attributes: [],
                  startTimeUnixNano: 0n,
                  timeUnixNano: 0n,
                  exemplars: [],
                  flags: 0,
                  count: 0,
                  sum: undefined,
                  scale: 0,
                  zeroCount: 0,
                  positive: { offset: 0, bucketCounts: [] },
                  negative: { offset: 0, bucketCounts: [] },
                  min: undefined,
                  max: undefined,
                  zeroThreshold: 0,
                },
              ],
            },
            metadata: [],
          },
          {
            name: 'rpc.duration',
            description: 'summary',
            unit: 's',
            data: {
              type: 'summary',
              dataPoints: [
                {
                  attributes: [],
                  startTimeUnixNano: 5n,
                  timeUnixNano: 6n,
                  count: 100,
                  sum: 12.5,
                  quantileValues: [
                    { quantile: 0, value: 0.01 },
                    { quantile: 0.5, value: 0.1 },
                    { quantile: 1, value: Number.POSITIVE_INFINITY },
                  ],
                  flags: FLAG_NO_RECORDED_VALUE,
                },
              ],
            },
            metadata: [],
          },
          {
            name: 'no.data',
            description: '',
            unit: '',
            data: { type: 'none', dataPoints: [] },
            metadata: [],
          },
        ],
        schemaUrl: '',
      },
    ],
    schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
  },
];

const ZERO_LOG: LogRecord = {
  timeUnixNano: 0n,
  observedTimeUnixNano: 0n,
  severityNumber: 0,
  severityText: '',
  body: undefined,
  attributes: [],
  droppedAttributesCount: 0,
  flags: 0,
  traceId: '',
  spanId: '',
  eventName: '',
};

const RICH_LOGS: ResourceLogs[] = [
  {
    resource: { attributes: [kv('service.name', 'api')], droppedAttributesCount: 0 },
    scopeLogs: [
      {
        scope: { name: 'logger', version: '2', attributes: [], droppedAttributesCount: 0 },
        logRecords: [
          {
            timeUnixNano: 1700000000000000001n,
            observedTimeUnixNano: 1700000000000000002n,
            severityNumber: 13,
            severityText: 'WARN',
            body: new KeyValueList([kv('msg', 'disk low'), kv('free', 12n), kv('raw', new Uint8Array([1, 2]))]),
            attributes: EVERY_KIND,
            droppedAttributesCount: 1,
            flags: 1,
            traceId: TRACE_ID,
            spanId: SPAN_ID,
            eventName: 'disk.low',
          },
          { ...ZERO_LOG, body: 'plain text', severityNumber: 24 },
          { ...ZERO_LOG, body: '' },
          ZERO_LOG,
        ],
        schemaUrl: '',
      },
    ],
    schemaUrl: '',
  },
];

// ---------------------------------------------------------------------------------------------
// Decoding: empty requests and zero values

describe('decodeJsonRequest: empty requests', () => {
  const roots = { traces: 'resourceSpans', metrics: 'resourceMetrics', logs: 'resourceLogs' } as const;
  describe.each(['traces', 'metrics', 'logs'] as const)('%s', (signal) => {
    test.each([
      ['an empty body', ''],
      ['{}', '{}'],
      ['an empty list', `{"${roots[signal]}": []}`],
      ['a null list', `{"${roots[signal]}": null}`],
      ['only unknown fields', '{"somethingElse": [1, 2]}'],
      ['a byte order mark', '\ufeff{}'],
    ])('%s decodes to an empty array', (_name, body) => {
      expect(decode(signal, body)).toEqual([]);
    });
  });
});

describe('decodeJsonRequest: absent fields get the model zero values', () => {
  test('traces', () => {
    expect(decode('traces', { resourceSpans: [{}] })).toStrictEqual([
      { resource: emptyResource(), scopeSpans: [], schemaUrl: '' },
    ]);
    expect(decode('traces', { resourceSpans: [{ scopeSpans: [{}] }] })[0].scopeSpans).toStrictEqual([
      { scope: emptyScope(), spans: [], schemaUrl: '' },
    ]);
    expect(firstSpan(spansRequest({}))).toStrictEqual(ZERO_SPAN);
    expect(firstSpan(spansRequest({ events: [{}], links: [{}], status: {} }))).toStrictEqual({
      ...ZERO_SPAN,
      events: [{ timeUnixNano: 0n, name: '', attributes: [], droppedAttributesCount: 0 }],
      links: [{ traceId: '', spanId: '', traceState: '', attributes: [], droppedAttributesCount: 0, flags: 0 }],
    });
  });

  test('null fields are absent fields', () => {
    const span = firstSpan(spansRequest({ name: null, traceId: null, attributes: null, status: null, kind: null }));
    expect(span).toStrictEqual(ZERO_SPAN);
  });

  test('metrics', () => {
    expect(firstMetric(metricsRequest({}))).toStrictEqual({
      name: '',
      description: '',
      unit: '',
      data: { type: 'none', dataPoints: [] },
      metadata: [],
    });
    const base = { attributes: [], startTimeUnixNano: 0n, timeUnixNano: 0n, exemplars: [], flags: 0 };
    expect(firstMetric(gaugeRequest({})).data).toStrictEqual({
      type: 'gauge',
      dataPoints: [{ ...base, value: 0, isInt: false }],
    });
    expect(firstMetric(metricsRequest({ sum: {} })).data).toStrictEqual({
      type: 'sum',
      dataPoints: [],
      aggregationTemporality: 0,
      isMonotonic: false,
    });
    expect(firstMetric(metricsRequest({ histogram: { dataPoints: [{}] } })).data.dataPoints[0]).toStrictEqual({
      ...base,
      count: 0,
      sum: undefined,
      bucketCounts: [],
      explicitBounds: [],
      min: undefined,
      max: undefined,
    });
    expect(
      firstMetric(metricsRequest({ exponentialHistogram: { dataPoints: [{}] } })).data.dataPoints[0],
    ).toStrictEqual({
      ...base,
      count: 0,
      sum: undefined,
      scale: 0,
      zeroCount: 0,
      positive: { offset: 0, bucketCounts: [] },
      negative: { offset: 0, bucketCounts: [] },
      min: undefined,
      max: undefined,
      zeroThreshold: 0,
    });
    expect(firstMetric(metricsRequest({ summary: { dataPoints: [{ quantileValues: [{}] }] } })).data).toStrictEqual({
      type: 'summary',
      dataPoints: [
        {
          attributes: [],
          startTimeUnixNano: 0n,
          timeUnixNano: 0n,
          count: 0,
          sum: 0,
          quantileValues: [{ quantile: 0, value: 0 }],
          flags: 0,
        },
      ],
    });
  });

  test('logs', () => {
    expect(firstLog(logsRequest({}))).toStrictEqual(ZERO_LOG);
    expect(decode('logs', { resourceLogs: [{ scopeLogs: [{}] }] })).toStrictEqual([
      {
        resource: emptyResource(),
        scopeLogs: [{ scope: emptyScope(), logRecords: [], schemaUrl: '' }],
        schemaUrl: '',
      },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoding: unknown fields, snake_case, enums

describe('decodeJsonRequest: unknown fields are ignored at every level', () => {
  test.each([
    ['traces', RICH_TRACES],
    ['metrics', RICH_METRICS],
    ['logs', RICH_LOGS],
  ] as const)('%s', (signal, model) => {
    const json = withUnknownFields(encodeJsonRequest(signal, model));
    expect(decode(signal, JSON.stringify(json))).toStrictEqual(model);
  });
});

describe('decodeJsonRequest: snake_case keys (the original proto field names) are accepted', () => {
  test.each([
    ['traces', RICH_TRACES],
    ['metrics', RICH_METRICS],
    ['logs', RICH_LOGS],
  ] as const)('%s', (signal, model) => {
    const json = withSnakeCaseKeys(encodeJsonRequest(signal, model));
    expect(JSON.stringify(json)).toContain('_unix_nano');
    expect(decode(signal, JSON.stringify(json))).toStrictEqual(model);
  });
});

describe('decodeJsonRequest: the names of OTLP before 0.15 (instrumentationLibrary…), as exporters before OpenTelemetry JS 0.29 send', () => {
  const OLD_NAMES: Record<string, string> = {
    scopeSpans: 'instrumentationLibrarySpans',
    scopeMetrics: 'instrumentationLibraryMetrics',
    scopeLogs: 'instrumentationLibraryLogs',
    scope: 'instrumentationLibrary',
  };
  const withOldNames = (json: unknown): unknown => {
    if (Array.isArray(json)) return json.map(withOldNames);
    if (typeof json !== 'object' || json === null) return json;
    return Object.fromEntries(Object.entries(json).map(([k, v]) => [OLD_NAMES[k] ?? k, withOldNames(v)]));
  };
  test.each([
    ['traces', RICH_TRACES],
    ['metrics', RICH_METRICS],
    ['logs', RICH_LOGS],
  ] as const)('%s decode as with the new names', (signal, model) => {
    const json = JSON.stringify(withOldNames(encodeJsonRequest(signal, model)));
    expect(json).toContain('"instrumentationLibrary"');
    expect(json).not.toMatch(/"scope(Spans|Metrics|Logs)?":/);
    expect(decode(signal, json)).toStrictEqual(model);
  });

  test('in snake_case too', () => {
    const json = {
      resource_spans: [
        {
          instrumentation_library_spans: [
            { instrumentation_library: { name: 'lib', version: '1' }, spans: [{ name: 's' }] },
          ],
        },
      ],
    };
    const [scopeSpans] = decode('traces', json)[0].scopeSpans;
    expect(scopeSpans.scope).toStrictEqual({ ...emptyScope(), name: 'lib', version: '1' });
    expect(scopeSpans.spans.map((s) => s.name)).toStrictEqual(['s']);
  });

  test('the new names win when a request holds both, and errors name the field as sent', () => {
    const both = {
      resourceSpans: [
        { scopeSpans: [{ spans: [{ name: 'new' }] }], instrumentationLibrarySpans: [{ spans: [{ name: 'old' }] }] },
      ],
    };
    expect(decode('traces', both)[0].scopeSpans.flatMap((s) => s.spans.map((x) => x.name))).toStrictEqual(['new']);
    expect(
      refusal('traces', { resourceSpans: [{ instrumentationLibrarySpans: [{ spans: [{ name: 3 }] }] }] }).message,
    ).toContain('resourceSpans[0].instrumentationLibrarySpans[0].spans[0].name');
  });

  test('old structures count against max_decoded_structures as new ones do', () => {
    const request = {
      resourceSpans: [{ instrumentationLibrarySpans: Array.from({ length: 10 }, () => ({ spans: [{}] })) }],
    };
    expect(() => decode('traces', request, { maxAnyValueDepth: 4, maxDecodedStructures: 40 })).toThrow(/structures/);
  });
});

describe('decodeJsonRequest: the metric types of OTLP before 0.9 (doubleSum, intGauge, labels…), as OpenTelemetry JS 0.27 sends them', () => {
  // What @opentelemetry/exporter-metrics-otlp-http 0.27.0 sent for a counter and a histogram (captured).
  const SENT_BY_027 = `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}],"droppedAttributesCount":0},"instrumentationLibraryMetrics":[{"metrics":[{"name":"compat.requests","description":"","unit":"1","doubleSum":{"dataPoints":[{"labels":[{"key":"route","value":"/a"}],"value":3,"startTimeUnixNano":1796437007801000000,"timeUnixNano":1796437007802745000}],"isMonotonic":true,"aggregationTemporality":2}},{"name":"compat.latency","description":"","unit":"1","doubleHistogram":{"dataPoints":[{"labels":[{"key":"route","value":"/a"}],"sum":10,"count":1,"startTimeUnixNano":1796437007801000000,"timeUnixNano":1796437007802968300,"bucketCounts":[1,0],"explicitBounds":[null]}],"aggregationTemporality":2}}],"instrumentationLibrary":{"name":"compat","version":"1.2.3"}}]}]}`;

  test('doubleSum and doubleHistogram with labels, and an infinite bound written as null', () => {
    const [rm] = decode('metrics', SENT_BY_027);
    const [sum, histogram] = rm.scopeMetrics[0].metrics;
    expect(rm.scopeMetrics[0].scope.name).toBe('compat');
    expect(sum.data).toStrictEqual({
      type: 'sum',
      isMonotonic: true,
      aggregationTemporality: 2,
      dataPoints: [
        {
          attributes: [kv('route', '/a')],
          startTimeUnixNano: 1796437007801000000n,
          timeUnixNano: 1796437007802745000n,
          exemplars: [],
          flags: 0,
          value: 3,
          isInt: false,
        },
      ],
    });
    expect(histogram.data).toMatchObject({
      type: 'histogram',
      aggregationTemporality: 2,
      dataPoints: [{ attributes: [kv('route', '/a')], count: 1, sum: 10, bucketCounts: [1], explicitBounds: [] }],
    });
  });

  test('intGauge and intSum values are ints; more than one type is refused', () => {
    const point = { labels: [{ key: 'k', value: 'v' }], value: '7', timeUnixNano: '1' };
    expect(firstMetric(metricsRequest({ name: 'g', intGauge: { dataPoints: [point] } })).data).toMatchObject({
      type: 'gauge',
      dataPoints: [{ attributes: [kv('k', 'v')], value: 7, isInt: true }],
    });
    expect(
      firstMetric(
        metricsRequest({ name: 's', intSum: { dataPoints: [point], isMonotonic: false, aggregationTemporality: 1 } }),
      ).data,
    ).toMatchObject({
      type: 'sum',
      isMonotonic: false,
      aggregationTemporality: 1,
      dataPoints: [{ value: 7, isInt: true }],
    });
    expect(() => decode('metrics', metricsRequest({ name: 'x', intSum: {}, doubleGauge: {} }))).toThrow(
      MalformedPayloadError,
    );
  });
});

describe('decodeJsonRequest: enums', () => {
  test.each([
    ['an integer', 3, 3],
    ['an unknown integer (open enum)', 42, 42],
    ['its name, as a courtesy', 'SPAN_KIND_CONSUMER', 5],
    ['its UNSPECIFIED name', 'SPAN_KIND_UNSPECIFIED', 0],
  ])('span kind as %s', (_name, kind, expected) => {
    expect(firstSpan(spansRequest({ kind })).kind).toBe(expected);
  });

  test('every enum accepts its names', () => {
    expect(firstSpan(spansRequest({ status: { code: 'STATUS_CODE_ERROR' } })).status.code).toBe(2);
    expect(firstLog(logsRequest({ severityNumber: 'SEVERITY_NUMBER_WARN' })).severityNumber).toBe(13);
    expect(firstLog(logsRequest({ severityNumber: 'SEVERITY_NUMBER_FATAL4' })).severityNumber).toBe(24);
    expect(firstLog(logsRequest({ severityNumber: 'SEVERITY_NUMBER_TRACE2' })).severityNumber).toBe(2);
    const sum = firstMetric(metricsRequest({ sum: { aggregationTemporality: 'AGGREGATION_TEMPORALITY_DELTA' } }));
    expect(sum.data).toMatchObject({ aggregationTemporality: 1 });
  });

  test.each([
    [
      'traces',
      spansRequest({}, { kind: 'SERVER' }),
      'resourceSpans[0].scopeSpans[0].spans[1].kind: expected an enum integer, got "SERVER"',
    ],
    [
      'traces',
      spansRequest({ kind: 1.5 }),
      'resourceSpans[0].scopeSpans[0].spans[0].kind: expected an enum integer, got 1.5',
    ],
    [
      'traces',
      spansRequest({ kind: '2' }),
      'resourceSpans[0].scopeSpans[0].spans[0].kind: expected an enum integer, got "2"',
    ],
    [
      'traces',
      spansRequest({ status: { code: 'STATUS_CODE_BOGUS' } }),
      'resourceSpans[0].scopeSpans[0].spans[0].status.code: expected an enum integer, got "STATUS_CODE_BOGUS"',
    ],
    [
      'logs',
      logsRequest({ severityNumber: 'WARN' }),
      'resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber: expected an enum integer, got "WARN"',
    ],
    [
      'metrics',
      metricsRequest({ sum: { aggregationTemporality: 'CUMULATIVE' } }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality: expected an enum integer, got "CUMULATIVE"',
    ],
  ] as const)('%s: refuses %j', (signal, json, message) => {
    expect(refusal(signal, json).message).toBe(message);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoding: integers

describe('decodeJsonRequest: 64-bit integers as strings and as numbers', () => {
  test.each([
    ['a decimal string', '1700000000123456789', 1700000000123456789n],
    ['a small number', 1700000000, 1700000000n],
    ['a number beyond 2^53, exactly', 1700000000123456789n, 1700000000123456789n],
    ['the largest uint64 as a number', 18446744073709551615n, 18446744073709551615n],
    ['the largest uint64 as a string', '18446744073709551615', 18446744073709551615n],
    ['a string with leading zeros', '007', 7n],
  ])('timestamp as %s', (_name, time, expected) => {
    expect(firstSpan(spansRequest({ startTimeUnixNano: time })).startTimeUnixNano).toBe(expected);
    expect(firstLog(logsRequest({ timeUnixNano: time })).timeUnixNano).toBe(expected);
    const point = firstMetric(gaugeRequest({ timeUnixNano: time })).data.dataPoints[0];
    expect(point.timeUnixNano).toBe(expected);
  });

  test.each([
    ['a decimal string', '-42', -42n],
    ['a number', 42, 42n],
    ['a negative number', -42, -42n],
    ['the largest int64 as a number', 9223372036854775807n, 9223372036854775807n],
    ['the smallest int64 as a number', -9223372036854775808n, -9223372036854775808n],
    ['the smallest int64 as a string', '-9223372036854775808', -9223372036854775808n],
    ['2^53 + 1 as a number', 9007199254740993n, 9007199254740993n],
  ])('intValue as %s', (_name, intValue, expected) => {
    expect(spanAttribute({ intValue })).toBe(expected);
  });

  test('the exact parse keeps the rest of the request intact', () => {
    // A number beyond 2^53 in a timestamp sends the request through the exact parse: the doubles,
    // counts and strings of the same request must decode exactly as on the fast path.
    const json = metricsRequest({
      name: 'm',
      histogram: {
        dataPoints: [
          {
            timeUnixNano: 1700000000123456789n,
            count: 9007199254740993n,
            sum: 12345678901234567890n,
            bucketCounts: [1, '2', 9007199254740993n],
            explicitBounds: [1e300, -2.5],
            min: 1e21,
            attributes: [{ key: 'd', value: { doubleValue: 12345678901234567890n } }],
          },
        ],
      },
    });
    expect(firstMetric(json).data.dataPoints[0]).toMatchObject({
      timeUnixNano: 1700000000123456789n,
      count: 9007199254740992,
      sum: 12345678901234567000,
      bucketCounts: [1, 2, 9007199254740992],
      explicitBounds: [1e300, -2.5],
      min: 1e21,
      attributes: [kv('d', 12345678901234567000)],
    });
  });

  test('int64 points and exemplars: asInt is a number with isInt, asDouble a number without', () => {
    const points = firstMetric(
      gaugeRequest(
        { asInt: '123' },
        { asInt: -5 },
        { asDouble: 2.5 },
        { asDouble: 0 },
        { asDouble: '7' },
        { exemplars: [{ asInt: '9007199254740991' }, { asDouble: 'NaN' }, {}] },
      ),
    ).data.dataPoints as { value: number; isInt: boolean; exemplars: { value: number; isInt: boolean }[] }[];
    expect(points.map(({ value, isInt }) => ({ value, isInt }))).toEqual([
      { value: 123, isInt: true },
      { value: -5, isInt: true },
      { value: 2.5, isInt: false },
      { value: 0, isInt: false },
      { value: 7, isInt: false },
      { value: 0, isInt: false },
    ]);
    expect(points[5].exemplars.map(({ value, isInt }) => ({ value, isInt }))).toEqual([
      { value: 9007199254740991, isInt: true },
      { value: Number.NaN, isInt: false },
      { value: 0, isInt: false },
    ]);
  });

  test('counts accept strings and numbers', () => {
    const point = firstMetric(
      metricsRequest({
        exponentialHistogram: {
          dataPoints: [{ count: '10', zeroCount: 3, scale: '-2', positive: { offset: '-1', bucketCounts: ['4', 3] } }],
        },
      }),
    ).data.dataPoints[0];
    expect(point).toMatchObject({
      count: 10,
      zeroCount: 3,
      scale: -2,
      positive: { offset: -1, bucketCounts: [4, 3] },
    });
    expect(firstSpan(spansRequest({ droppedAttributesCount: '3', flags: 257 }))).toMatchObject({
      droppedAttributesCount: 3,
      flags: 257,
    });
  });

  const span = 'resourceSpans[0].scopeSpans[0].spans[0]';
  test.each([
    [{ startTimeUnixNano: '-1' }, `${span}.startTimeUnixNano: expected an unsigned 64-bit integer, got "-1"`],
    [
      { startTimeUnixNano: '18446744073709551616' },
      `${span}.startTimeUnixNano: expected an unsigned 64-bit integer, got "18446744073709551616"`,
    ],
    [{ endTimeUnixNano: '12a' }, `${span}.endTimeUnixNano: expected an integer, got "12a"`],
    [
      { endTimeUnixNano: '1'.repeat(100_000) },
      `${span}.endTimeUnixNano: expected an unsigned 64-bit integer, got "${'1'.repeat(40)}…"`,
    ],
    [{ endTimeUnixNano: '' }, `${span}.endTimeUnixNano: expected an integer, got ""`],
    [{ endTimeUnixNano: ' 12' }, `${span}.endTimeUnixNano: expected an integer, got " 12"`],
    [{ endTimeUnixNano: '0x10' }, `${span}.endTimeUnixNano: expected an integer, got "0x10"`],
    [{ endTimeUnixNano: 1.5 }, `${span}.endTimeUnixNano: expected an integer, got 1.5`],
    [{ endTimeUnixNano: true }, `${span}.endTimeUnixNano: expected an integer, got true`],
    [
      { attributes: [{ key: 'k', value: { intValue: '9223372036854775808' } }] },
      `${span}.attributes[0].value.intValue: expected a 64-bit integer, got "9223372036854775808"`,
    ],
    [
      { attributes: [{ key: 'k', value: { intValue: 9223372036854775808n } }] },
      `${span}.attributes[0].value.intValue: expected a 64-bit integer, got 9223372036854775808`,
    ],
    [
      { attributes: [{ key: 'k', value: { intValue: '1.0' } }] },
      `${span}.attributes[0].value.intValue: expected an integer, got "1.0"`,
    ],
    [{ droppedAttributesCount: -1 }, `${span}.droppedAttributesCount: expected an unsigned 32-bit integer, got -1`],
    [{ flags: 4294967296 }, `${span}.flags: expected an unsigned 32-bit integer, got 4294967296`],
    [{ events: [{}, { timeUnixNano: 'soon' }] }, `${span}.events[1].timeUnixNano: expected an integer, got "soon"`],
  ])('refuses %j', (spanJson, message) => {
    const error = refusal('traces', spansRequest(spanJson));
    expect(error.message).toBe(message);
  });

  test.each([
    [
      { histogram: { dataPoints: [{ count: -1 }] } },
      'histogram.dataPoints[0].count: expected an unsigned 64-bit integer, got -1',
    ],
    [
      { histogram: { dataPoints: [{ bucketCounts: [1, 'x'] }] } },
      'histogram.dataPoints[0].bucketCounts[1]: expected an integer, got "x"',
    ],
    [
      { exponentialHistogram: { dataPoints: [{ scale: 2147483648 }] } },
      'exponentialHistogram.dataPoints[0].scale: expected a 32-bit integer, got 2147483648',
    ],
    [{ gauge: { dataPoints: [{ asInt: 1.5 }] } }, 'gauge.dataPoints[0].asInt: expected an integer, got 1.5'],
    [
      { gauge: { dataPoints: [{ exemplars: [{ asInt: 'x' }] }] } },
      'gauge.dataPoints[0].exemplars[0].asInt: expected an integer, got "x"',
    ],
  ])('refuses the metric %j', (metricJson, message) => {
    const error = refusal('metrics', metricsRequest(metricJson));
    expect(error.message).toBe(`resourceMetrics[0].scopeMetrics[0].metrics[0].${message}`);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoding: doubles, bytes and AnyValue

describe('decodeJsonRequest: doubles', () => {
  test.each([
    ['a number', 1.25, 1.25],
    ['"NaN"', 'NaN', Number.NaN],
    ['"Infinity"', 'Infinity', Number.POSITIVE_INFINITY],
    ['"-Infinity"', '-Infinity', Number.NEGATIVE_INFINITY],
    ['a numeric string', '-1.5e3', -1500],
    ['an integral number', 7, 7],
  ])('doubleValue as %s', (_name, doubleValue, expected) => {
    expect(spanAttribute({ doubleValue })).toBe(expected);
  });

  test('non-finite values in every double field', () => {
    const histogram = firstMetric(
      metricsRequest({
        histogram: {
          dataPoints: [{ sum: 'NaN', min: '-Infinity', max: 'Infinity', explicitBounds: ['-Infinity', 0, 'Infinity'] }],
        },
      }),
    ).data.dataPoints[0];
    expect(histogram).toMatchObject({
      sum: Number.NaN,
      min: Number.NEGATIVE_INFINITY,
      max: Number.POSITIVE_INFINITY,
      explicitBounds: [Number.NEGATIVE_INFINITY, 0, Number.POSITIVE_INFINITY],
    });
    const summary = firstMetric(
      metricsRequest({
        summary: { dataPoints: [{ sum: 'Infinity', quantileValues: [{ quantile: 1, value: 'NaN' }] }] },
      }),
    ).data.dataPoints[0];
    expect(summary).toMatchObject({
      sum: Number.POSITIVE_INFINITY,
      quantileValues: [{ quantile: 1, value: Number.NaN }],
    });
    const point = firstMetric(gaugeRequest({ asDouble: '-Infinity' })).data.dataPoints[0];
    expect(point).toMatchObject({ value: Number.NEGATIVE_INFINITY, isInt: false });
  });

  test.each([
    ['nan', 'expected a number, got "nan"'],
    ['1,5', 'expected a number, got "1,5"'],
    ['', 'expected a number, got ""'],
    [true, 'expected a number, got true'],
  ])('refuses doubleValue %j', (doubleValue, detail) => {
    const error = refusal('traces', spansRequest({ attributes: [{ key: 'k', value: { doubleValue } }] }));
    expect(error.message).toBe(`resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.doubleValue: ${detail}`);
  });
});

describe('decodeJsonRequest: AnyValue', () => {
  test.each([
    ['stringValue', { stringValue: 'hé' }, 'hé'],
    ['empty stringValue', { stringValue: '' }, ''],
    ['boolValue true', { boolValue: true }, true],
    ['boolValue false', { boolValue: false }, false],
    ['intValue', { intValue: '7' }, 7n],
    ['doubleValue', { doubleValue: 0.5 }, 0.5],
    ['bytesValue, standard base64', { bytesValue: 'AAH6+/8=' }, new Uint8Array([0, 1, 250, 251, 255])],
    ['bytesValue, URL-safe base64', { bytesValue: 'AAH6-_8' }, new Uint8Array([0, 1, 250, 251, 255])],
    ['empty bytesValue', { bytesValue: '' }, new Uint8Array(0)],
    ['an empty object', {}, undefined],
    ['an absent value', undefined, undefined],
    ['empty arrayValue', { arrayValue: {} }, []],
    ['empty kvlistValue', { kvlistValue: {} }, new KeyValueList([])],
    [
      'nested arrayValue',
      {
        arrayValue: {
          values: [{ stringValue: 'a' }, { arrayValue: { values: [{ intValue: 1 }, {}] } }, { boolValue: false }],
        },
      },
      ['a', [1n, undefined], false],
    ],
    [
      'nested kvlistValue',
      {
        kvlistValue: {
          values: [
            { key: 'a', value: { doubleValue: 1.5 } },
            {
              key: 'b',
              value: {
                kvlistValue: {
                  values: [{ key: 'c', value: { arrayValue: { values: [{ bytesValue: 'AQ==' }] } } }],
                },
              },
            },
            { key: 'd' },
          ],
        },
      },
      new KeyValueList([kv('a', 1.5), kv('b', new KeyValueList([kv('c', [new Uint8Array([1])])])), kv('d', undefined)]),
    ],
  ])('%s', (_name, valueJson, expected) => {
    expect(spanAttribute(valueJson)).toStrictEqual(expected);
  });

  test('the same AnyValue decoding applies to log bodies and every attribute list', () => {
    const value = {
      kvlistValue: { values: [{ key: 'x', value: { arrayValue: { values: [{ intValue: '1' }] } } }] },
    };
    const expected = new KeyValueList([kv('x', [1n])]);
    expect(firstLog(logsRequest({ body: value })).body).toStrictEqual(expected);
    const attributes = [{ key: 'k', value }];
    const resources = decode('metrics', {
      resourceMetrics: [
        {
          resource: { attributes },
          scopeMetrics: [
            {
              scope: { attributes },
              metrics: [{ metadata: attributes, gauge: { dataPoints: [{ attributes }] } }],
            },
          ],
        },
      ],
    });
    const metric = resources[0].scopeMetrics[0].metrics[0];
    for (const list of [
      resources[0].resource.attributes,
      resources[0].scopeMetrics[0].scope.attributes,
      metric.metadata,
      metric.data.dataPoints[0].attributes,
    ]) {
      expect(list).toStrictEqual([kv('k', expected)]);
    }
  });

  const attribute = 'resourceSpans[0].scopeSpans[0].spans[0].attributes[0]';
  test.each([
    [{ stringValue: 5 }, `${attribute}.value.stringValue: expected a string, got 5`],
    [{ boolValue: 'true' }, `${attribute}.value.boolValue: expected a boolean, got "true"`],
    [{ bytesValue: 'not base64!' }, `${attribute}.value.bytesValue: expected a base64 string, got "not base64!"`],
    [{ bytesValue: 'AAAAA' }, `${attribute}.value.bytesValue: expected a base64 string, got "AAAAA"`],
    [{ arrayValue: [] }, `${attribute}.value.arrayValue: expected an object, got an array`],
    [{ arrayValue: { values: {} } }, `${attribute}.value.arrayValue.values: expected an array, got an object`],
    [{ arrayValue: { values: [{}, 'x'] } }, `${attribute}.value.arrayValue.values[1]: expected an object, got "x"`],
    [
      { kvlistValue: { values: [{ key: 1 }] } },
      `${attribute}.value.kvlistValue.values[0].key: expected a string, got 1`,
    ],
    ['x', `${attribute}.value: expected an object, got "x"`],
  ])('refuses the value %j', (valueJson, message) => {
    expect(refusal('traces', spansRequest({ attributes: [{ key: 'k', value: valueJson }] })).message).toBe(message);
  });
});

describe('decodeJsonRequest: AnyValue depth limit', () => {
  const attribute = 'resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value';

  test.each(['arrayValue', 'kvlistValue'] as const)('%s nested exactly at the limit is accepted', (kind) => {
    const value = spanAttribute(nestedJson(LIMITS.maxAnyValueDepth, kind));
    expect(value).toBeDefined();
  });

  test('an empty array at the limit is accepted', () => {
    const json = {
      arrayValue: {
        values: [{ arrayValue: { values: [{ arrayValue: { values: [{ arrayValue: {} }] } }] } }],
      },
    };
    expect(spanAttribute(json)).toStrictEqual([[[[]]]]);
  });

  test.each([
    ['arrayValue', `${attribute}.arrayValue.values[0].arrayValue.values[0].arrayValue.values[0].arrayValue.values[0]`],
    [
      'kvlistValue',
      `${attribute}.kvlistValue.values[0].value.kvlistValue.values[0].value.kvlistValue.values[0].value.kvlistValue.values[0].value`,
    ],
  ] as const)('%s nested one over the limit is refused with TooDeepError', (kind, path) => {
    const error = refusal(
      'traces',
      spansRequest({ attributes: [{ key: 'k', value: nestedJson(LIMITS.maxAnyValueDepth + 1, kind) }] }),
    );
    expect(error).toBeInstanceOf(TooDeepError);
    expect(error.reason).toBe('too_deep');
    expect(error.httpStatus).toBe(400);
    expect(error.path).toBe(path);
  });

  test('a scalar is depth 1: with a limit of 1, scalars pass and any array is too deep', () => {
    const limits = { maxAnyValueDepth: 1 };
    expect(decode('logs', logsRequest({ body: { stringValue: 'x' } }), limits)[0].scopeLogs[0].logRecords[0].body).toBe(
      'x',
    );
    expect(
      decode('logs', logsRequest({ body: { arrayValue: {} } }), limits)[0].scopeLogs[0].logRecords[0].body,
    ).toEqual([]);
    const error = refusal('logs', logsRequest({ body: { arrayValue: { values: [{ stringValue: 'x' }] } } }), limits);
    expect(error).toBeInstanceOf(TooDeepError);
    expect(error.path).toBe('resourceLogs[0].scopeLogs[0].logRecords[0].body.arrayValue.values[0]');
  });

  test('the limit applies in metrics too, with the default limits', () => {
    const depth = DEFAULT_DECODE_LIMITS.maxAnyValueDepth;
    const point = (d: number) => gaugeRequest({ attributes: [{ key: 'k', value: nestedJson(d, 'arrayValue') }] });
    expect(() => decode('metrics', point(depth), DEFAULT_DECODE_LIMITS)).not.toThrow();
    expect(refusal('metrics', point(depth + 1), DEFAULT_DECODE_LIMITS)).toBeInstanceOf(TooDeepError);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoding: ids

describe('decodeJsonRequest: trace and span ids', () => {
  test('uppercase hex is accepted and lowercased', () => {
    const span = firstSpan(
      spansRequest({
        traceId: TRACE_ID.toUpperCase(),
        spanId: 'EEE19b7eC3C1B174',
        parentSpanId: PARENT_ID.toUpperCase(),
        links: [{ traceId: TRACE_ID.toUpperCase(), spanId: SPAN_ID.toUpperCase() }],
      }),
    );
    expect([span.traceId, span.spanId, span.parentSpanId]).toEqual([TRACE_ID, SPAN_ID, PARENT_ID]);
    expect([span.links[0].traceId, span.links[0].spanId]).toEqual([TRACE_ID, SPAN_ID]);
    const log = firstLog(logsRequest({ traceId: TRACE_ID.toUpperCase(), spanId: SPAN_ID.toUpperCase() }));
    expect([log.traceId, log.spanId]).toEqual([TRACE_ID, SPAN_ID]);
    const metric = firstMetric(
      gaugeRequest({ exemplars: [{ traceId: TRACE_ID.toUpperCase(), spanId: SPAN_ID.toUpperCase() }] }),
    );
    const exemplar = (metric.data.dataPoints[0] as NumberDataPoint).exemplars[0];
    expect([exemplar.traceId, exemplar.spanId]).toEqual([TRACE_ID, SPAN_ID]);
  });

  test('an empty id is an absent id', () => {
    expect(firstSpan(spansRequest({ traceId: '', spanId: '', parentSpanId: '' }))).toStrictEqual(ZERO_SPAN);
  });

  const spans = 'resourceSpans[0].scopeSpans[0].spans';
  test.each([
    ['traces', spansRequest({}, {}, { traceId: 'abc' }), `${spans}[2].traceId: expected 32 hex characters, got "abc"`],
    [
      'traces',
      spansRequest({ traceId: `${TRACE_ID}00` }),
      `${spans}[0].traceId: expected 32 hex characters, got "${TRACE_ID}00"`,
    ],
    [
      'traces',
      spansRequest({ traceId: `zz${TRACE_ID.slice(2)}` }),
      `${spans}[0].traceId: expected 32 hex characters, got "zz${TRACE_ID.slice(2)}"`,
    ],
    ['traces', spansRequest({ traceId: 5 }), `${spans}[0].traceId: expected 32 hex characters, got 5`],
    ['traces', spansRequest({ spanId: TRACE_ID }), `${spans}[0].spanId: expected 16 hex characters, got "${TRACE_ID}"`],
    [
      'traces',
      spansRequest({ spanId: 'eee19b7ec3c1b17' }),
      `${spans}[0].spanId: expected 16 hex characters, got "eee19b7ec3c1b17"`,
    ],
    [
      'traces',
      spansRequest({ parentSpanId: 'eee19b7ec3c1b17g' }),
      `${spans}[0].parentSpanId: expected 16 hex characters, got "eee19b7ec3c1b17g"`,
    ],
    [
      'traces',
      spansRequest({ spanId: '7u2bfsOkQh0=' }),
      `${spans}[0].spanId: expected 16 hex characters, got "7u2bfsOkQh0="`,
    ],
    [
      'traces',
      spansRequest({ links: [{}, { spanId: 'x' }] }),
      `${spans}[0].links[1].spanId: expected 16 hex characters, got "x"`,
    ],
    [
      'logs',
      logsRequest({ traceId: 'abc' }),
      'resourceLogs[0].scopeLogs[0].logRecords[0].traceId: expected 32 hex characters, got "abc"',
    ],
    [
      'logs',
      logsRequest({}, { spanId: [] }),
      'resourceLogs[0].scopeLogs[0].logRecords[1].spanId: expected 16 hex characters, got an array',
    ],
    [
      'metrics',
      gaugeRequest({ exemplars: [{ spanId: 'abc' }] }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].exemplars[0].spanId: expected 16 hex characters, got "abc"',
    ],
  ] as const)('%s: refuses %j', (signal, json, message) => {
    const error = refusal(signal, json);
    expect(error.message).toBe(message);
    expect(error.reason).toBe('malformed');
    expect(error.httpStatus).toBe(400);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoding: wrong JSON types and invalid JSON

describe('decodeJsonRequest: wrong JSON types are refused with the path', () => {
  test.each([
    ['traces', { resourceSpans: {} }, 'resourceSpans: expected an array, got an object'],
    ['traces', { resourceSpans: [null] }, 'resourceSpans[0]: expected an object, got null'],
    ['traces', { resourceSpans: [{ resource: [] }] }, 'resourceSpans[0].resource: expected an object, got an array'],
    [
      'traces',
      { resourceSpans: [{ resource: { attributes: 'x' } }] },
      'resourceSpans[0].resource.attributes: expected an array, got "x"',
    ],
    [
      'traces',
      { resourceSpans: [{ resource: { droppedAttributesCount: 'x' } }] },
      'resourceSpans[0].resource.droppedAttributesCount: expected an integer, got "x"',
    ],
    ['traces', { resourceSpans: [{ schemaUrl: 1 }] }, 'resourceSpans[0].schemaUrl: expected a string, got 1'],
    [
      'traces',
      { resourceSpans: [{ scopeSpans: [{ scope: 'x' }] }] },
      'resourceSpans[0].scopeSpans[0].scope: expected an object, got "x"',
    ],
    [
      'traces',
      { resourceSpans: [{ scopeSpans: [{ scope: { version: 2 } }] }] },
      'resourceSpans[0].scopeSpans[0].scope.version: expected a string, got 2',
    ],
    [
      'traces',
      { resourceSpans: [{ scopeSpans: [{ spans: {} }] }] },
      'resourceSpans[0].scopeSpans[0].spans: expected an array, got an object',
    ],
    ['traces', spansRequest({ name: 5 }), 'resourceSpans[0].scopeSpans[0].spans[0].name: expected a string, got 5'],
    [
      'traces',
      spansRequest({ attributes: [5] }),
      'resourceSpans[0].scopeSpans[0].spans[0].attributes[0]: expected an object, got 5',
    ],
    [
      'traces',
      spansRequest({
        attributes: [
          { key: 'a', value: {} },
          { key: null, value: 'x' },
        ],
      }),
      'resourceSpans[0].scopeSpans[0].spans[0].attributes[1].value: expected an object, got "x"',
    ],
    [
      'traces',
      spansRequest({ events: [{ attributes: [{ key: true }] }] }),
      'resourceSpans[0].scopeSpans[0].spans[0].events[0].attributes[0].key: expected a string, got true',
    ],
    [
      'traces',
      spansRequest({ status: { message: {} } }),
      'resourceSpans[0].scopeSpans[0].spans[0].status.message: expected a string, got an object',
    ],
    [
      'traces',
      spansRequest({ links: 'x' }),
      'resourceSpans[0].scopeSpans[0].spans[0].links: expected an array, got "x"',
    ],
    [
      'metrics',
      { resourceMetrics: [{ scopeMetrics: {} }] },
      'resourceMetrics[0].scopeMetrics: expected an array, got an object',
    ],
    [
      'metrics',
      metricsRequest({ gauge: [] }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0].gauge: expected an object, got an array',
    ],
    [
      'metrics',
      metricsRequest({ gauge: {}, sum: {} }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0]: expected at most one of gauge, sum, histogram, exponentialHistogram, summary',
    ],
    [
      'metrics',
      metricsRequest({ sum: { isMonotonic: 'yes' } }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0].sum.isMonotonic: expected a boolean, got "yes"',
    ],
    [
      'metrics',
      metricsRequest({ summary: { dataPoints: [{ quantileValues: [{ quantile: true }] }] } }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0].summary.dataPoints[0].quantileValues[0].quantile: expected a number, got true',
    ],
    [
      'metrics',
      metricsRequest({ histogram: { dataPoints: [{ explicitBounds: [0, 'abc'] }] } }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].explicitBounds[1]: expected a number, got "abc"',
    ],
    [
      'metrics',
      metricsRequest({ exponentialHistogram: { dataPoints: [{ negative: { bucketCounts: 3 } }] } }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0].exponentialHistogram.dataPoints[0].negative.bucketCounts: expected an array, got 3',
    ],
    [
      'metrics',
      metricsRequest({ name: 'm', metadata: {} }),
      'resourceMetrics[0].scopeMetrics[0].metrics[0].metadata: expected an array, got an object',
    ],
    [
      'logs',
      { resourceLogs: [{ scopeLogs: [{ logRecords: 'x' }] }] },
      'resourceLogs[0].scopeLogs[0].logRecords: expected an array, got "x"',
    ],
    ['logs', logsRequest({ body: 5 }), 'resourceLogs[0].scopeLogs[0].logRecords[0].body: expected an object, got 5'],
    [
      'logs',
      logsRequest({ eventName: {} }),
      'resourceLogs[0].scopeLogs[0].logRecords[0].eventName: expected a string, got an object',
    ],
    [
      'logs',
      logsRequest({ severityText: ['WARN'] }),
      'resourceLogs[0].scopeLogs[0].logRecords[0].severityText: expected a string, got an array',
    ],
  ] as const)('%s: %j', (signal, json, message) => {
    const error = refusal(signal, json);
    expect(error).toBeInstanceOf(MalformedPayloadError);
    expect(error).not.toBeInstanceOf(TooDeepError);
    expect(error.message).toBe(message);
  });

  test('a long string is cut short in the message', () => {
    const error = refusal('traces', spansRequest({ traceId: 'x'.repeat(1000) }));
    expect(error.detail).toBe(`expected 32 hex characters, got "${'x'.repeat(40)}…"`);
  });

  test.each([
    ['an array', '[]', 'expected a JSON object, got an array'],
    ['null', 'null', 'expected a JSON object, got null'],
    ['a string', '"x"', 'expected a JSON object, got "x"'],
    ['a number', '5', 'expected a JSON object, got 5'],
  ])('a request that is %s', (_name, body, message) => {
    for (const signal of ['traces', 'metrics', 'logs'] as const) {
      const error = refusal(signal, body);
      expect(error.message).toBe(message);
      expect(error.path).toBe('');
    }
  });

  test.each([
    ['truncated', '{"resourceSpans": ['],
    ['a trailing comma', '{"resourceSpans": [],}'],
    ['single quotes', "{'resourceSpans': []}"],
    ['bare NaN', '{"resourceSpans": [{"x": NaN}]}'],
    ['whitespace only', '  \n'],
  ])('invalid JSON (%s)', (_name, body) => {
    for (const signal of ['traces', 'metrics', 'logs'] as const) {
      const error = refusal(signal, body);
      expect(error.message).toMatch(/^invalid JSON: ./);
      expect(error.path).toBe('');
      expect(error.reason).toBe('malformed');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Encoding and round trips

describe('encodeJsonRequest', () => {
  test('writes the OTLP JSON forms', () => {
    const json = encodeJsonRequest('traces', RICH_TRACES) as {
      resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[];
    };
    const [span, zero] = json.resourceSpans[0].scopeSpans[0].spans;
    expect(span).toMatchObject({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      kind: 2,
      flags: 0x301,
      startTimeUnixNano: '1700000000123456789',
      endTimeUnixNano: '18446744073709551615',
      status: { message: 'boom', code: 2 },
    });
    const attributes = span.attributes as { key: string; value: unknown }[];
    const encodedValue = (key: string) => attributes.find((a) => a.key === key)?.value;
    expect(encodedValue('int min')).toEqual({ intValue: '-9223372036854775808' });
    expect(encodedValue('int zero')).toEqual({ intValue: '0' });
    expect(encodedValue('double zero')).toEqual({ doubleValue: 0 });
    expect(encodedValue('empty string')).toEqual({ stringValue: '' });
    expect(encodedValue('NaN')).toEqual({ doubleValue: 'NaN' });
    expect(encodedValue('-Infinity')).toEqual({ doubleValue: '-Infinity' });
    expect(encodedValue('bytes')).toEqual({ bytesValue: 'AAEC+v8=' });
    expect(encodedValue('unset')).toEqual({});
    expect(encodedValue('empty kvlist')).toEqual({ kvlistValue: { values: [] } });
    expect(zero).toEqual({});
    expect(json.resourceSpans[1]).toEqual({});
  });

  test('writes 64-bit counts as strings, keeps present zero sums, leaves out absent ones', () => {
    const json = encodeJsonRequest('metrics', RICH_METRICS) as {
      resourceMetrics: {
        scopeMetrics: { metrics: Record<string, { dataPoints: Record<string, unknown>[] }>[] }[];
      }[];
    };
    const metrics = json.resourceMetrics[0].scopeMetrics[0].metrics;
    expect(metrics[1].sum).toMatchObject({ aggregationTemporality: 2, isMonotonic: true });
    expect(metrics[1].sum.dataPoints[0]).toMatchObject({ asInt: '9007199254740991' });
    expect(metrics[2].sum).toEqual({ aggregationTemporality: 1 });
    const [full, empty, zeroSum] = metrics[3].histogram.dataPoints;
    expect(full).toMatchObject({
      count: '6',
      bucketCounts: ['1', '0', '3', '2'],
      explicitBounds: [0, 10, 'Infinity'],
    });
    expect(empty).toEqual({ timeUnixNano: '3' });
    expect(zeroSum).toMatchObject({ sum: 0, min: '-Infinity', max: 'NaN' });
    expect(metrics[0].gauge.dataPoints[2]).toEqual({ asInt: '0' });
    expect(metrics[6]).toEqual({ name: 'no.data' });
  });

  test.each([
    ['traces', RICH_TRACES],
    ['metrics', RICH_METRICS],
    ['logs', RICH_LOGS],
  ] as const)('%s: decode(encode(x)) equals x', (signal, model) => {
    expect(roundTrip(signal, model)).toStrictEqual(model);
  });

  test.each(['traces', 'metrics', 'logs'] as const)('%s: an empty request', (signal) => {
    expect(roundTrip(signal, [])).toStrictEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The JSON of the OpenTelemetry JS SDK serializers

describe('the JSON of @opentelemetry/otlp-transformer serializers', () => {
  test('JsonTraceSerializer', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'sdk-test', 'service.instances': 3 }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    const tracer = provider.getTracer('test-lib', '1.2.3');
    const linked = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };

    const parent = tracer.startSpan('GET /cart', {
      kind: SpanKind.SERVER,
      startTime: [1700000000, 123456789],
      attributes: { 'http.method': 'GET', 'http.status_code': 200, ratio: 0.25, ok: true, tags: ['a', 'b'] },
    });
    const child = tracer.startSpan(
      'SELECT cart',
      {
        kind: SpanKind.CLIENT,
        startTime: [1700000001, 5],
        links: [{ context: linked, attributes: { why: 'batch' } }],
      },
      trace.setSpan(context.active(), parent),
    );
    child.addEvent('retry', { attempt: 2 }, [1700000001, 500]);
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    child.end([1700000002, 999999999]);
    parent.end([1700000003, 0]);
    await provider.forceFlush();

    const body = JsonTraceSerializer.serializeRequest(exporter.getFinishedSpans());
    const decoded = decodeJsonRequest('traces', Buffer.from(body ?? []), DEFAULT_DECODE_LIMITS);

    expect(decoded).toHaveLength(1);
    expect(attributeValue(decoded[0].resource.attributes, 'service.name')).toBe('sdk-test');
    expect(attributeValue(decoded[0].resource.attributes, 'service.instances')).toBe(3n);
    expect(decoded[0].scopeSpans).toHaveLength(1);
    expect(decoded[0].scopeSpans[0].scope).toMatchObject({ name: 'test-lib', version: '1.2.3' });
    const spans = decoded[0].scopeSpans[0].spans;
    const decodedParent = spans.find((s) => s.name === 'GET /cart');
    const decodedChild = spans.find((s) => s.name === 'SELECT cart');

    expect(decodedParent).toMatchObject({
      traceId: parent.spanContext().traceId,
      spanId: parent.spanContext().spanId,
      parentSpanId: '',
      kind: OtlpSpanKind.SERVER,
      startTimeUnixNano: 1700000000123456789n,
      endTimeUnixNano: 1700000003000000000n,
      attributes: [
        kv('http.method', 'GET'),
        kv('http.status_code', 200n),
        kv('ratio', 0.25),
        kv('ok', true),
        kv('tags', ['a', 'b']),
      ],
      status: { message: '', code: StatusCode.UNSET },
    });
    expect(decodedParent && decodedParent.flags & 0xff).toBe(1);
    expect(decodedChild).toMatchObject({
      traceId: parent.spanContext().traceId,
      spanId: child.spanContext().spanId,
      parentSpanId: parent.spanContext().spanId,
      kind: OtlpSpanKind.CLIENT,
      startTimeUnixNano: 1700000001000000005n,
      endTimeUnixNano: 1700000002999999999n,
      events: [
        {
          timeUnixNano: 1700000001000000500n,
          name: 'retry',
          attributes: [kv('attempt', 2n)],
          droppedAttributesCount: 0,
        },
      ],
      links: [
        {
          traceId: linked.traceId,
          spanId: linked.spanId,
          attributes: [kv('why', 'batch')],
          droppedAttributesCount: 0,
        },
      ],
      status: { message: 'boom', code: StatusCode.ERROR },
    });
    await provider.shutdown();
  });

  test('JsonMetricsSerializer', async () => {
    class TestReader extends MetricReader {
      protected override async onShutdown(): Promise<void> {}
      protected override async onForceFlush(): Promise<void> {}
    }
    const reader = new TestReader();
    const provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': 'sdk-metrics' }),
      readers: [reader],
      views: [{ instrumentName: 'latency.exp', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
    });
    const meter = provider.getMeter('meter-lib', '0.1.0');
    const requests = meter.createCounter('requests', {
      description: 'requests served',
      unit: '1',
      valueType: ValueType.INT,
    });
    requests.add(5, { route: '/a' });
    requests.add(2, { route: '/a' });
    meter.createUpDownCounter('queue.depth').add(-3.5);
    const latency = meter.createHistogram('latency', { unit: 'ms' });
    latency.record(10);
    latency.record(250);
    const exponential = meter.createHistogram('latency.exp');
    for (const v of [1.5, 3, 3, 40]) exponential.record(v);
    meter.createGauge('temperature').record(21.5, { room: 'a' });

    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const body = JsonMetricsSerializer.serializeRequest(resourceMetrics);
    const decoded = decodeJsonRequest('metrics', Buffer.from(body ?? []), DEFAULT_DECODE_LIMITS);

    expect(attributeValue(decoded[0].resource.attributes, 'service.name')).toBe('sdk-metrics');
    expect(decoded[0].scopeMetrics[0].scope).toMatchObject({ name: 'meter-lib', version: '0.1.0' });
    const sdkMetrics = resourceMetrics.scopeMetrics[0].metrics;
    const metrics = decoded[0].scopeMetrics[0].metrics;
    expect(metrics.map((m) => m.name)).toEqual(sdkMetrics.map((m) => m.descriptor.name));

    for (const sdkMetric of sdkMetrics) {
      const metric = metrics.find((m) => m.name === sdkMetric.descriptor.name);
      const sdkPoint = sdkMetric.dataPoints[0];
      expect(metric?.data.dataPoints[0]).toMatchObject({
        startTimeUnixNano: hrTimeToNanos(sdkPoint.startTime),
        timeUnixNano: hrTimeToNanos(sdkPoint.endTime),
      });
      if (sdkMetric.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM) {
        const value = sdkPoint.value as ExponentialHistogram;
        expect(metric?.data.dataPoints[0]).toMatchObject({
          count: value.count,
          sum: value.sum,
          scale: value.scale,
          zeroCount: value.zeroCount,
          positive: value.positive,
          negative: value.negative,
          min: value.min,
          max: value.max,
        });
      }
      if (sdkMetric.dataPointType === DataPointType.HISTOGRAM) {
        const value = sdkPoint.value as Histogram;
        expect(metric?.data.dataPoints[0]).toMatchObject({
          count: value.count,
          sum: value.sum,
          min: value.min,
          max: value.max,
          bucketCounts: value.buckets.counts,
          explicitBounds: value.buckets.boundaries,
        });
      }
    }

    const byName = (name: string) => metrics.find((m) => m.name === name)?.data;
    expect(metrics.find((m) => m.name === 'requests')).toMatchObject({
      description: 'requests served',
      unit: '1',
    });
    expect(byName('requests')).toMatchObject({
      type: 'sum',
      isMonotonic: true,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPoints: [{ attributes: [kv('route', '/a')], value: 7, isInt: true }],
    });
    expect(byName('queue.depth')).toMatchObject({
      type: 'sum',
      isMonotonic: false,
      dataPoints: [{ value: -3.5, isInt: false }],
    });
    expect(byName('latency')).toMatchObject({
      type: 'histogram',
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPoints: [{ count: 2, sum: 260, min: 10, max: 250 }],
    });
    expect(byName('latency.exp')).toMatchObject({
      type: 'exponentialHistogram',
      dataPoints: [{ count: 4, sum: 47.5 }],
    });
    expect(byName('temperature')).toMatchObject({
      type: 'gauge',
      dataPoints: [{ attributes: [kv('room', 'a')], value: 21.5, isInt: false }],
    });
    await provider.shutdown();
  });

  test('JsonLogsSerializer', async () => {
    const exporter = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'sdk-logs' }),
      processors: [new SimpleLogRecordProcessor({ exporter })],
    });
    const logger = provider.getLogger('log-lib', '2.0.0');
    const spanContext = { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 };
    logger.emit({
      timestamp: [1700000000, 1],
      observedTimestamp: [1700000000, 2],
      severityNumber: SeverityNumber.WARN,
      severityText: 'WARN',
      eventName: 'disk.low',
      body: { msg: 'disk low', free: 12, ratio: 0.5, tags: ['a'], raw: new Uint8Array([1, 2, 255]) },
      attributes: { 'disk.path': '/var', 'disk.count': 2 },
      context: trace.setSpanContext(ROOT_CONTEXT, spanContext),
    });
    logger.emit({ timestamp: [1700000005, 999999999], body: 'plain' });
    await provider.forceFlush();

    const body = JsonLogsSerializer.serializeRequest(exporter.getFinishedLogRecords());
    const decoded = decodeJsonRequest('logs', Buffer.from(body ?? []), DEFAULT_DECODE_LIMITS);

    expect(attributeValue(decoded[0].resource.attributes, 'service.name')).toBe('sdk-logs');
    expect(decoded[0].scopeLogs[0].scope).toMatchObject({ name: 'log-lib', version: '2.0.0' });
    const [warn, plain] = decoded[0].scopeLogs[0].logRecords;
    expect(warn).toStrictEqual({
      timeUnixNano: 1700000000000000001n,
      observedTimeUnixNano: 1700000000000000002n,
      severityNumber: 13,
      severityText: 'WARN',
      body: new KeyValueList([
        kv('msg', 'disk low'),
        kv('free', 12n),
        kv('ratio', 0.5),
        kv('tags', ['a']),
        kv('raw', new Uint8Array([1, 2, 255])),
      ]),
      attributes: [kv('disk.path', '/var'), kv('disk.count', 2n)],
      droppedAttributesCount: 0,
      flags: 1,
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      eventName: 'disk.low',
    });
    expect(plain).toMatchObject({
      timeUnixNano: 1700000005999999999n,
      body: 'plain',
      traceId: '',
      spanId: '',
      eventName: '',
    });
    await provider.shutdown();
  });
});

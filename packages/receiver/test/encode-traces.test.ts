/** The protobuf trace encoder: model → ExportTraceServiceRequest → model is the identity. */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { KeyValueList, type ResourceSpans, type Span } from '../src';
import { DEFAULT_DECODE_LIMITS } from '../src/otlp/limits';
import { decodeTraceRequest } from '../src/otlp/protobuf/decode-traces';
import { encodeTraceRequest } from '../src/otlp/protobuf/encode-traces';
import { modelSpan, withoutOffsets } from './helpers';

const decode = (buf: Buffer) => withoutOffsets(decodeTraceRequest(buf, DEFAULT_DECODE_LIMITS));

function richSpan(): Span {
  return {
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId: 'eee19b7ec3c1b174',
    traceState: 'vendor=a,other=b',
    parentSpanId: '00f067aa0ba902b7',
    flags: 0x301,
    name: 'GET /cart',
    kind: 2,
    startTimeUnixNano: 1_700_000_000_123_456_789n,
    endTimeUnixNano: 0xffff_ffff_ffff_fffen,
    attributes: [
      { key: 'str', value: 'héllo ✓' },
      { key: 'empty', value: '' },
      { key: 'yes', value: true },
      { key: 'no', value: false },
      { key: 'int', value: 42n },
      { key: 'zero', value: 0n },
      { key: 'negative', value: -1n },
      { key: 'min', value: -(2n ** 63n) },
      { key: 'max', value: 2n ** 63n - 1n },
      { key: 'double', value: 0.25 },
      { key: 'double-zero', value: 0 },
      { key: 'negative-zero', value: -0 },
      { key: 'nan', value: Number.NaN },
      { key: 'inf', value: Number.NEGATIVE_INFINITY },
      { key: 'bytes', value: new Uint8Array([0, 1, 255]) },
      { key: 'empty-bytes', value: new Uint8Array() },
      { key: 'unset', value: undefined },
      { key: 'array', value: ['a', 1n, 2.5, false, [true, []], new KeyValueList([{ key: 'k', value: 'v' }])] },
      { key: 'empty-array', value: [] },
      {
        key: 'kvlist',
        value: new KeyValueList([
          { key: 'nested', value: new KeyValueList([{ key: 'deep', value: [new Uint8Array([7])] }]) },
          { key: 'none', value: undefined },
        ]),
      },
      { key: 'empty-kvlist', value: new KeyValueList([]) },
      { key: '', value: 'empty key' },
    ],
    droppedAttributesCount: 3,
    events: [
      {
        timeUnixNano: 1_700_000_000_200_000_000n,
        name: 'exception',
        attributes: [{ key: 'exception.type', value: 'Error' }],
        droppedAttributesCount: 1,
      },
      { timeUnixNano: 0n, name: '', attributes: [], droppedAttributesCount: 0 },
    ],
    droppedEventsCount: 4,
    links: [
      {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceState: 'x=y',
        attributes: [{ key: 'why', value: 'batch' }],
        droppedAttributesCount: 2,
        flags: 0x101,
      },
      { traceId: '', spanId: '', traceState: '', attributes: [], droppedAttributesCount: 0, flags: 0 },
    ],
    droppedLinksCount: 5,
    status: { code: 2, message: 'boom' },
  };
}

function emptySpan(): Span {
  return modelSpan({ traceId: '', spanId: '', name: '', kind: 0, startTimeUnixNano: 0n, endTimeUnixNano: 0n });
}

function richModel(): ResourceSpans[] {
  return [
    {
      resource: {
        attributes: [
          { key: 'service.name', value: 'shop' },
          { key: 'service.instances', value: 3n },
        ],
        droppedAttributesCount: 1,
      },
      schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
      scopeSpans: [
        {
          scope: {
            name: 'lib',
            version: '1.2.3',
            attributes: [{ key: 'scope.attr', value: 1.5 }],
            droppedAttributesCount: 6,
          },
          schemaUrl: 'https://opentelemetry.io/schemas/1.25.0',
          spans: [richSpan(), emptySpan()],
        },
        { scope: { name: '', version: '', attributes: [], droppedAttributesCount: 0 }, schemaUrl: '', spans: [] },
      ],
    },
    { resource: { attributes: [], droppedAttributesCount: 0 }, schemaUrl: '', scopeSpans: [] },
  ];
}

test('decode(encode(model)) deep-equals a model that uses every field and AnyValue kind', () => {
  const model = richModel();
  const decoded = decode(encodeTraceRequest(model));
  expect(decoded).toEqual(model);
  // The kinds that proto3 zero values could blur, checked one by one.
  const attrs = decoded[0].scopeSpans[0].spans[0].attributes;
  const byKey = new Map(attrs.map((kv) => [kv.key, kv.value]));
  expect(Object.is(byKey.get('negative-zero'), -0)).toBe(true);
  expect(byKey.get('zero')).toBe(0n);
  expect(byKey.get('double-zero')).toBe(0);
  expect(byKey.get('no')).toBe(false);
  expect(byKey.get('empty')).toBe('');
  expect(byKey.get('min')).toBe(-(2n ** 63n));
  expect(byKey.has('unset') && byKey.get('unset') === undefined).toBe(true);
});

test('an empty request encodes to no bytes, and encoding is deterministic', () => {
  expect(encodeTraceRequest([])).toHaveLength(0);
  expect(encodeTraceRequest(richModel()).equals(encodeTraceRequest(richModel()))).toBe(true);
});

test('concatenated requests decode to the concatenation of their resource spans', () => {
  const a = richModel();
  const b = richModel().slice(0, 1);
  const both = Buffer.concat([encodeTraceRequest(a), encodeTraceRequest(b)]);
  expect(decode(both)).toEqual([...a, ...b]);
});

test("the SDK's ProtobufTraceSerializer output, decoded then encoded again, decodes to the same model", async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'sdk-test', 'service.instances': 3, ratio: -0.5 }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('test-lib', '1.2.3');
  const linked = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
  const parent = tracer.startSpan('GET /cart', {
    kind: SpanKind.SERVER,
    startTime: [1700000000, 123456789],
    attributes: { 'http.method': 'GET', 'http.status_code': 200, neg: -7, ratio: 0.25, ok: true, tags: ['a', 'b'] },
  });
  const child = tracer.startSpan(
    'SELECT cart',
    { kind: SpanKind.CLIENT, startTime: [1700000001, 5], links: [{ context: linked, attributes: { why: 'batch' } }] },
    trace.setSpan(context.active(), parent),
  );
  child.addEvent('retry', { attempt: 2 }, [1700000001, 500]);
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  child.end([1700000002, 999999999]);
  parent.end([1700000003, 0]);
  await provider.forceFlush();

  const sdkBytes = Buffer.from(ProtobufTraceSerializer.serializeRequest(exporter.getFinishedSpans()) ?? []);
  const model = decode(sdkBytes);
  expect(model[0].scopeSpans[0].spans).toHaveLength(2);
  const ours = encodeTraceRequest(model);
  expect(decode(ours)).toEqual(model);
  // Same content, so the same size give or take field order: a sanity check that nothing is doubled.
  expect(Math.abs(ours.length - sdkBytes.length)).toBeLessThan(sdkBytes.length * 0.1);
});

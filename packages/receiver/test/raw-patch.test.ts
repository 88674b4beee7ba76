/**
 * The redaction's patch (otlp/protobuf/patch.ts): a redacted request reaches the stores and exporters
 * as the received bytes with the redaction's edits applied; what they get must decode to exactly what
 * encoding the redacted model gives. Requests are generated (seeded) with personal data in every place
 * the redaction looks: resource, scope, span, event, link and record attributes, nested values, log
 * bodies and span status messages.
 */
import { Registry } from 'prom-client';
import { validateConfig } from '../src/config/load';
import { toRedactionConfig } from '../src/config/schema';
import {
  type AnyValue,
  type KeyValue,
  KeyValueList,
  type LogRecord,
  type ResourceLogs,
  type ResourceSpans,
  type Signal,
  type SignalData,
  type Span,
} from '../src/model';
import { DEFAULT_DECODE_LIMITS } from '../src/otlp/limits';
import { decodeLogsRequest } from '../src/otlp/protobuf/decode-logs';
import { decodeTraceRequest } from '../src/otlp/protobuf/decode-traces';
import { encodeLogsRequest } from '../src/otlp/protobuf/encode-logs';
import { encodeTraceRequest } from '../src/otlp/protobuf/encode-traces';
import { applyPatch, PatchError, RawPatch } from '../src/otlp/protobuf/patch';
import { type Batch, type Processor, SignalPipeline } from '../src/pipeline/pipeline';
import { Redaction } from '../src/pipeline/redaction';
import { requestPayload } from '../src/queue/admission';
import { prng } from './helpers';

const KEYS = [
  'http.route',
  'user.id',
  'enduser.id',
  'app.note',
  'url.full',
  'password',
  'http.request.header.authorization',
  'n',
];
const STRINGS = [
  '/api/cart',
  'alice@example.com',
  'card 4111 1111 1111 1111 used',
  'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl',
  'https://shop.example/api/users/123?email=bob@example.com&page=2',
  'plain text',
  '10.1.2.3',
  'x'.repeat(150),
  'ünïcode ✓',
];

function value(rand: () => number, depth = 0): AnyValue {
  const k = Math.floor(rand() * (depth > 1 ? 5 : 7));
  switch (k) {
    case 0:
      return BigInt(Math.floor(rand() * 1e6));
    case 1:
      return rand() < 0.5;
    case 2:
      return rand() * 100;
    case 5:
      return [STRINGS[Math.floor(rand() * STRINGS.length)], value(rand, depth + 1)];
    case 6:
      return new KeyValueList(attributes(rand, 2, depth + 1));
    default:
      return STRINGS[Math.floor(rand() * STRINGS.length)];
  }
}

function attributes(rand: () => number, most: number, depth = 0): KeyValue[] {
  return Array.from({ length: Math.floor(rand() * (most + 1)) }, () => ({
    key: KEYS[Math.floor(rand() * KEYS.length)],
    value: value(rand, depth),
  }));
}

const hex = (rand: () => number, bytes: number) =>
  Array.from({ length: bytes }, () =>
    Math.floor(rand() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');

function logsRequest(rand: () => number): ResourceLogs[] {
  return Array.from({ length: 1 + Math.floor(rand() * 2) }, () => ({
    resource: { attributes: attributes(rand, 3), droppedAttributesCount: 0 },
    schemaUrl: '',
    scopeLogs: Array.from({ length: 1 + Math.floor(rand() * 2) }, () => ({
      scope: { name: 'lib', version: '1', attributes: attributes(rand, 1), droppedAttributesCount: 0 },
      schemaUrl: 'https://opentelemetry.io/schemas/1.30.0',
      logRecords: Array.from(
        { length: Math.floor(rand() * 12) },
        (): LogRecord => ({
          timeUnixNano: 1_700_000_000_000_000_000n + BigInt(Math.floor(rand() * 1e9)),
          observedTimeUnixNano: 0n,
          severityNumber: 9,
          severityText: 'INFO',
          body: rand() < 0.2 ? value(rand) : STRINGS[Math.floor(rand() * STRINGS.length)],
          attributes: attributes(rand, 6),
          droppedAttributesCount: 0,
          flags: 1,
          traceId: rand() < 0.8 ? hex(rand, 16) : '',
          spanId: rand() < 0.8 ? hex(rand, 8) : '',
          eventName: '',
        }),
      ),
    })),
  }));
}

function tracesRequest(rand: () => number): ResourceSpans[] {
  return [
    {
      resource: {
        attributes: [{ key: 'service.name', value: 'svc' }, ...attributes(rand, 2)],
        droppedAttributesCount: 0,
      },
      schemaUrl: '',
      scopeSpans: [
        {
          scope: { name: 'lib', version: '', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          spans: Array.from(
            { length: Math.floor(rand() * 10) },
            (): Span => ({
              traceId: hex(rand, 16),
              spanId: hex(rand, 8),
              traceState: '',
              parentSpanId: rand() < 0.5 ? hex(rand, 8) : '',
              flags: 0,
              name: 'GET /api/cart',
              kind: 2,
              startTimeUnixNano: 1_700_000_000_000_000_000n,
              endTimeUnixNano: 1_700_000_000_100_000_000n,
              attributes: attributes(rand, 8),
              droppedAttributesCount: 0,
              events: Array.from({ length: Math.floor(rand() * 2) }, () => ({
                timeUnixNano: 1_700_000_000_050_000_000n,
                name: 'exception',
                attributes: attributes(rand, 3),
                droppedAttributesCount: 0,
              })),
              droppedEventsCount: 0,
              links: Array.from({ length: Math.floor(rand() * 2) }, () => ({
                traceId: hex(rand, 16),
                spanId: hex(rand, 8),
                traceState: '',
                attributes: attributes(rand, 2),
                droppedAttributesCount: 0,
                flags: 0,
              })),
              droppedLinksCount: 0,
              status: { message: rand() < 0.3 ? STRINGS[Math.floor(rand() * STRINGS.length)] : '', code: 2 },
            }),
          ),
        },
      ],
    },
  ];
}

function redaction(section: Record<string, unknown> = {}): Redaction {
  const config = validateConfig({ redaction: { enabled: true, ...section } });
  return new Redaction(toRedactionConfig(config.redaction), new Registry());
}

function batchOf<S extends Signal>(signal: S, raw: Buffer, data: SignalData[S]): Batch<S> {
  return {
    signal,
    data,
    itemCount: 1,
    warnings: [],
    decodeStats: undefined,
    context: { transport: 'http', encoding: 'protobuf', receivedAt: 0, raw, modified: false },
  };
}

/** What a store or exporter would get, decoded, against the model encoded anew and decoded. */
function compare(signal: 'logs' | 'traces', batch: Batch<'logs'> | Batch<'traces'>) {
  const encodeModel = (data: SignalData['logs'] | SignalData['traces']) =>
    signal === 'logs'
      ? encodeLogsRequest(data as SignalData['logs'])
      : encodeTraceRequest(data as SignalData['traces']);
  const payload = requestPayload(batch as Batch<Signal>, encodeModel as (d: unknown) => Buffer);
  const decode = (b: Buffer) =>
    signal === 'logs' ? decodeLogsRequest(b, DEFAULT_DECODE_LIMITS) : decodeTraceRequest(b, DEFAULT_DECODE_LIMITS);
  const encoded = encodeModel(batch.data);
  return { got: strip(decode(payload)), want: strip(decode(encoded)), payload, encoded };
}

/** The decoded data without the decoder's offsets (they differ between two encodings of the same data). */
function strip(data: unknown): unknown {
  return JSON.parse(
    JSON.stringify(data, (k, v) =>
      k === 'at' ? undefined : typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : v,
    ),
  );
}

describe('redaction patch: a redacted request is its received bytes with the edits applied', () => {
  test.each([
    ['logs', 'block'],
    ['traces', 'block'],
    ['logs', 'allow'],
    ['traces', 'allow'],
  ] as const)('%s, mode %s: 300 generated requests decode the same as the model encoded anew', (signal, mode) => {
    const section = mode === 'allow' ? { mode: 'allow', allow_keys: ['http.route', 'app.note', 'url.full', 'n'] } : {};
    const processor = redaction(section).processor();
    const rand = prng(signal === 'logs' ? 1 : 2);
    let patched = 0;
    for (let i = 0; i < 300; i++) {
      const pipeline = new SignalPipeline(signal).addProcessor(processor as Processor<typeof signal>);
      const model = signal === 'logs' ? logsRequest(rand) : tracesRequest(rand);
      const raw =
        signal === 'logs' ? encodeLogsRequest(model as ResourceLogs[]) : encodeTraceRequest(model as ResourceSpans[]);
      const data =
        signal === 'logs'
          ? decodeLogsRequest(raw, DEFAULT_DECODE_LIMITS)
          : decodeTraceRequest(raw, DEFAULT_DECODE_LIMITS);
      const batch = batchOf(signal, raw, data) as Batch<'logs'> | Batch<'traces'>;
      void pipeline.consume(batch as never);
      if (!batch.context.modified) continue;
      expect(batch.context.patch).toBeDefined();
      patched++;
      const { got, want, payload, encoded } = compare(signal, batch);
      expect(got).toEqual(want);
      // The received bytes came from the same encoder, so the patched ones are its bytes exactly.
      expect(payload.equals(encoded)).toBe(true);
    }
    // Most generated requests hold something to redact: the patch was exercised, not skipped.
    expect(patched).toBeGreaterThan(200);
  });

  test('the removed attribute is gone from the bytes, and message lengths crossing 128 bytes are rewritten', () => {
    const long = 'y'.repeat(100);
    const model: ResourceLogs[] = [
      {
        resource: { attributes: [{ key: 'service.name', value: 'svc' }], droppedAttributesCount: 0 },
        schemaUrl: '',
        scopeLogs: [
          {
            scope: { name: '', version: '', attributes: [], droppedAttributesCount: 0 },
            schemaUrl: '',
            logRecords: [
              {
                timeUnixNano: 1n,
                observedTimeUnixNano: 0n,
                severityNumber: 9,
                severityText: '',
                body: long,
                attributes: [{ key: 'user.id', value: 'u-42-secret' }],
                droppedAttributesCount: 0,
                flags: 0,
                traceId: '',
                spanId: '',
                eventName: '',
              },
            ],
          },
        ],
      },
    ];
    const raw = encodeLogsRequest(model);
    const batch = batchOf('logs', raw, decodeLogsRequest(raw, DEFAULT_DECODE_LIMITS));
    void new SignalPipeline('logs').addProcessor(redaction().processor()).consume(batch);
    const { got, want, payload, encoded } = compare('logs', batch);
    expect(got).toEqual(want);
    expect(payload.includes('u-42-secret')).toBe(false);
    expect(payload.includes(long)).toBe(true);
    // The record (141 bytes) and its scope's message lost their second length byte with the 26-byte attribute.
    expect(payload.equals(encoded)).toBe(true);
    expect(raw.length - payload.length).toBeGreaterThanOrEqual(26 + 2);
  });

  test('a processor that changes the batch without recording edits drops the patch: the model is encoded', () => {
    const rand = prng(3);
    const raw = encodeLogsRequest(logsRequest(rand));
    const batch = batchOf('logs', raw, decodeLogsRequest(raw, DEFAULT_DECODE_LIMITS));
    const truncate: Processor<'logs'> = {
      name: 'truncate-bodies',
      process(b) {
        for (const rl of b.data) for (const sl of rl.scopeLogs) for (const lr of sl.logRecords) lr.body = 'cut';
        b.context.modified = true;
      },
    };
    void new SignalPipeline('logs').addProcessor(redaction().processor()).addProcessor(truncate).consume(batch);
    expect(batch.context.patch).toBeUndefined();
    const { got, want, payload } = compare('logs', batch);
    expect(got).toEqual(want);
    expect(payload.includes('alice@example.com')).toBe(false);
  });

  test('a batch already changed before the processors (rejected items) keeps no patch', () => {
    const raw = encodeLogsRequest(logsRequest(prng(4)));
    const batch = batchOf('logs', raw, decodeLogsRequest(raw, DEFAULT_DECODE_LIMITS));
    batch.context.modified = true;
    void new SignalPipeline('logs').addProcessor(redaction().processor()).consume(batch);
    expect(batch.context.patch).toBeUndefined();
  });

  test('an edit at an offset where no field starts is refused (and the model is encoded instead)', () => {
    const raw = encodeLogsRequest(logsRequest(prng(5)));
    const patch = new RawPatch();
    patch.remove(1); // inside the first message's length prefix
    expect(() => applyPatch(raw, patch)).toThrow(PatchError);
    const beyond = new RawPatch();
    beyond.remove(raw.length + 10);
    expect(() => applyPatch(raw, beyond)).toThrow(PatchError);

    // A tag written in two bytes (0x8a 0x00 for field 1, LEN) puts the attribute's recorded offset on its second byte.
    const kv = Buffer.from([0x0a, 0x07, 0x75, 0x73, 0x65, 0x72, 0x2e, 0x69, 0x64, 0x12, 0x03, 0x0a, 0x01, 0x78]);
    const resource = Buffer.concat([Buffer.from([0x8a, 0x00, kv.length]), kv]);
    const rl = Buffer.concat([Buffer.from([0x0a, resource.length]), resource]);
    const body = Buffer.concat([Buffer.from([0x0a, rl.length]), rl]);
    const data = decodeLogsRequest(body, DEFAULT_DECODE_LIMITS);
    expect(data[0].resource.attributes[0].key).toBe('user.id');
    const batch = batchOf('logs', body, data);
    void new SignalPipeline('logs').addProcessor(redaction().processor()).consume(batch);
    expect(batch.context.modified).toBe(true);
    const { got, want, payload } = compare('logs', batch);
    expect(got).toEqual(want);
    expect(payload.includes('user.id')).toBe(false);
  });
});

/**
 * Issue 11, finding 1: every structure a request decodes into counts against
 * limits.max_decoded_structures before it is built, in protobuf and in JSON, for the three signals;
 * and memory admission counts the decoded size of a request, not only its bytes. (The end-to-end
 * repro, 63 KB of gzip that used to take the process down, is test/decode-bounds.test.ts at the root.)
 */
import type { Signal } from '../src';
import { decodeRequest } from '../src/intake/decode';
import { TooManyStructuresError } from '../src/otlp/errors';
import type { DecodeLimits, DecodeStats } from '../src/otlp/limits';
import type { Encoding } from '../src/otlp/responses';
import { type Field, JSON_TYPE, kv, PROTOBUF, pb, post, span, startTestReceiver, traceRequest } from './helpers';

function decode(signal: Signal, encoding: Encoding, body: Buffer, maxDecodedStructures?: number) {
  const limits: DecodeLimits = { maxAnyValueDepth: 32, maxDecodedStructures };
  const stats: DecodeStats = { longestString: 0, mostAttributes: 0 };
  const data = decodeRequest(signal, encoding, body, limits, stats);
  return { data, structures: stats.structures ?? -1 };
}

const times = <T>(n: number, item: T): T[] => Array.from({ length: n }, () => item);
const many = (field: number, n: number, inner: Field[] = []): Field[] => times(n, [field, 'message', inner] as Field);
const one = (field: number, inner: Field[]): Field => [field, 'message', inner];

/** Protobuf requests holding `n` of one kind of structure, and what each counts. */
const PROTOBUF_CASES: [string, Signal, (n: number) => Buffer, number][] = [
  ['empty ResourceSpans', 'traces', (n) => pb(many(1, n)), 4],
  ['empty ScopeSpans', 'traces', (n) => pb([one(1, many(2, n))]), 4],
  ['empty spans', 'traces', (n) => pb([one(1, [one(2, many(2, n))])]), 5],
  ['empty span attributes', 'traces', (n) => pb([one(1, [one(2, [one(2, many(9, n))])])]), 1],
  ['empty span events', 'traces', (n) => pb([one(1, [one(2, [one(2, many(11, n))])])]), 2],
  ['empty span links', 'traces', (n) => pb([one(1, [one(2, [one(2, many(13, n))])])]), 2],
  ['resource attributes', 'traces', (n) => pb([one(1, [one(1, many(1, n))])]), 1],
  ['scope attributes', 'traces', (n) => pb([one(1, [one(2, [one(1, many(3, n))])])]), 1],
  [
    'values of an array attribute',
    'traces',
    (n) => pb([one(1, [one(1, [one(1, [one(2, [one(5, many(1, n))])])])])]),
    1,
  ],
  [
    'empty arrays inside an array attribute',
    'traces',
    (n) => pb([one(1, [one(1, [one(1, [one(2, [one(5, many(1, n, [one(5, [])]))])])])])]),
    3,
  ],
  [
    'entries of a kvlist attribute',
    'traces',
    (n) => pb([one(1, [one(1, [one(1, [one(2, [one(6, many(1, n))])])])])]),
    1,
  ],
  ['empty ResourceMetrics', 'metrics', (n) => pb(many(1, n)), 4],
  ['empty metrics', 'metrics', (n) => pb([one(1, [one(2, many(2, n))])]), 4],
  ['empty gauge points', 'metrics', (n) => pb([one(1, [one(2, [one(2, [one(5, many(1, n))])])])]), 5],
  ['empty histogram points', 'metrics', (n) => pb([one(1, [one(2, [one(2, [one(9, many(1, n))])])])]), 5],
  ['exemplars of a point', 'metrics', (n) => pb([one(1, [one(2, [one(2, [one(5, [one(1, many(5, n))])])])])]), 2],
  [
    'quantiles of a summary point',
    'metrics',
    (n) => pb([one(1, [one(2, [one(2, [one(11, [one(1, many(6, n))])])])])]),
    2,
  ],
  [
    'packed varint exponential buckets (one per 8)',
    'metrics',
    (n) => pb([one(1, [one(2, [one(2, [one(10, [one(1, [one(8, [[2, 'bytes', Buffer.alloc(8 * n)]])])])])])])]),
    1,
  ],
  ['empty ResourceLogs', 'logs', (n) => pb(many(1, n)), 4],
  ['empty log records', 'logs', (n) => pb([one(1, [one(2, many(2, n))])]), 3],
  ['log record attributes', 'logs', (n) => pb([one(1, [one(2, [one(2, many(6, n))])])]), 1],
];

describe('protobuf: every structure counts against limits.max_decoded_structures', () => {
  test.each(PROTOBUF_CASES)('%s (%s): each counts, and over the limit is refused', (_name, signal, make, weight) => {
    const small = decode(signal, 'protobuf', make(100)).structures;
    const large = decode(signal, 'protobuf', make(200)).structures;
    expect(large - small).toBe(100 * weight);
    // Exactly at the limit is accepted; one structure fewer allowed, refused naming the limit.
    expect(decode(signal, 'protobuf', make(200), large).structures).toBe(large);
    expect(() => decode(signal, 'protobuf', make(200), large - 1)).toThrow(TooManyStructuresError);
    expect(() => decode(signal, 'protobuf', make(200), large - 1)).toThrow(/limits\.max_decoded_structures/);
  });
});

const jsonOf = (value: unknown) => Buffer.from(JSON.stringify(value));
const objects = (n: number, item: unknown = {}) => times(n, item);

/** JSON requests holding `n` of one kind of structure, and what each counts. */
const JSON_CASES: [string, Signal, (n: number) => Buffer, number][] = [
  ['empty resourceSpans', 'traces', (n) => jsonOf({ resourceSpans: objects(n) }), 4],
  ['empty spans', 'traces', (n) => jsonOf({ resourceSpans: [{ scopeSpans: [{ spans: objects(n) }] }] }), 5],
  [
    'span attributes',
    'traces',
    (n) => jsonOf({ resourceSpans: [{ scopeSpans: [{ spans: [{ attributes: objects(n, { key: 'k' }) }] }] }] }),
    1,
  ],
  [
    'values of an array attribute',
    'traces',
    (n) =>
      jsonOf({
        resourceSpans: [{ resource: { attributes: [{ key: 'k', value: { arrayValue: { values: objects(n) } } }] } }],
      }),
    1,
  ],
  ['empty resourceMetrics', 'metrics', (n) => jsonOf({ resourceMetrics: objects(n) }), 4],
  [
    'empty gauge points',
    'metrics',
    (n) => jsonOf({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ gauge: { dataPoints: objects(n) } }] }] }] }),
    5,
  ],
  ['empty resourceLogs', 'logs', (n) => jsonOf({ resourceLogs: objects(n) }), 4],
  ['empty log records', 'logs', (n) => jsonOf({ resourceLogs: [{ scopeLogs: [{ logRecords: objects(n) }] }] }), 3],
];

describe('JSON: every structure counts against limits.max_decoded_structures', () => {
  test.each(JSON_CASES)('%s (%s): each counts, and over the limit is refused', (_name, signal, make, weight) => {
    const small = decode(signal, 'json', make(100)).structures;
    const large = decode(signal, 'json', make(200)).structures;
    expect(large - small).toBe(100 * weight);
    // (What JSON.parse would build is counted too, before it runs, and may be the larger count.)
    expect(decode(signal, 'json', make(200), 2 * large).structures).toBe(large);
    expect(() => decode(signal, 'json', make(200), large - 1)).toThrow(TooManyStructuresError);
  });

  test('what JSON.parse would build is counted before it runs, unknown fields included', () => {
    // 10,000 empty objects in a field no reader looks at: JSON.parse would build them all.
    const body = jsonOf({ resourceSpans: [], ignored: objects(10_000) });
    expect(() => decode('traces', 'json', body, 5_000)).toThrow(TooManyStructuresError);
    expect(decode('traces', 'json', body, 20_000).data).toEqual([]);
    // Values after commas count half: 10,000 numbers are 5,000.
    const numbers = jsonOf({ resourceSpans: [], ignored: times(10_001, 0) });
    expect(() => decode('traces', 'json', numbers, 4_000)).toThrow(TooManyStructuresError);
    expect(decode('traces', 'json', numbers, 6_000).data).toEqual([]);
  });

  test('braces, brackets, commas and escaped quotes inside strings are not structures', () => {
    const text = `{[,\\"{[,`.repeat(5_000);
    const body = jsonOf({
      resourceSpans: [{ resource: { attributes: [{ key: 'k', value: { stringValue: text } }] } }],
    });
    const { data } = decode('traces', 'json', body, 20);
    expect(data[0].resource.attributes[0].value).toBe(text);
  });
});

describe('over HTTP', () => {
  test('a request over the limit is a 400 naming it, counted as a limit hit and a refusal', async () => {
    const t = await startTestReceiver({ limits: { max_decoded_structures: 50 } });
    try {
      const attrs = times(60, [9, 'message', kv('k', [[1, 'bytes', 'v']])] as Field);
      const res = await post(`${t.http}/v1/traces`, traceRequest([span(attrs)]), PROTOBUF);
      expect(res.status).toBe(400);
      const json = await post(`${t.http}/v1/logs`, JSON.stringify({ resourceLogs: objects(20) }), JSON_TYPE);
      expect(json.status).toBe(400);
      expect(json.body.toString()).toContain('limits.max_decoded_structures');
      // Within the limit, accepted.
      expect((await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF)).status).toBe(200);
      const metrics = await (await fetch(`${t.admin}/metrics`)).text();
      expect(metrics).toContain('sonde_receiver_limit_hits_total{signal="traces",limit="max_decoded_structures"} 1');
      expect(metrics).toContain('sonde_receiver_limit_hits_total{signal="logs",limit="max_decoded_structures"} 1');
      expect(metrics).toContain(
        'sonde_receiver_refused_requests_total{signal="traces",transport="http",reason="too_many_structures"} 1',
      );
    } finally {
      await t.close();
    }
  });
});

describe('memory admission', () => {
  test('a request holds its decoded size in flight, not only its bytes: others are refused meanwhile', async () => {
    // 2,000 attributes are ~20 KB on the wire but some 130 KB decoded; the limit is 64 KiB.
    const t = await startTestReceiver({ overload: { max_in_flight_bytes: '64KiB', retry_after: '3s' } });
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const inConsumer = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let held = true;
    t.receiver.pipeline.traces.addConsumer({
      name: 'slow',
      consume: () => {
        if (!held) return;
        held = false;
        entered();
        return blocked;
      },
    });
    try {
      const attrs = times(2_000, [9, 'message', kv('k', [[1, 'bytes', 'v']])] as Field);
      const big = traceRequest([span(attrs)]);
      expect(big.length).toBeLessThan(32 * 1024);
      const first = post(`${t.http}/v1/traces`, big, PROTOBUF);
      await inConsumer;
      const metrics = await (await fetch(`${t.admin}/metrics`)).text();
      const inFlight = Number(/^sonde_receiver_in_flight_bytes (\d+)/m.exec(metrics)?.[1]);
      expect(inFlight).toBeGreaterThan(100_000);
      const second = await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF);
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toBe('3');
      release();
      expect((await first).status).toBe(200);
      // All of it is released once the first request is done.
      const after = await (await fetch(`${t.admin}/metrics`)).text();
      expect(after).toMatch(/^sonde_receiver_in_flight_bytes 0$/m);
      expect((await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF)).status).toBe(200);
    } finally {
      release();
      await t.close();
    }
  });
});

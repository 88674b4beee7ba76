/**
 * Lean decoding (src/otlp/protobuf/lean.ts) against full decoding: the same request bodies through
 * decodeTraceRequestLean and decodeTraceRequest give the same model once the lean spans' attributes
 * are read (offsets included), the same decode stats, and the same error for a malformed body; and
 * the service graph's lookups in the bytes find what attributeValue finds in the decoded attributes.
 * Bodies: spans written by the receiver's encoder with every kind of value, hand-written protobuf for
 * what an encoder does not usually write (fields out of order, repeated key and value fields, unknown
 * fields, a tag written in two bytes), and thousands of random mutations of those
 * (`LEAN_MUTATIONS=40000 npx jest test/lean-decode` for more).
 */
import {
  type AnyValue,
  attributeValue,
  type KeyValue,
  KeyValueList,
  type ResourceSpans,
  type Span,
  type SpanEvent,
} from '../src/model';
import type { DecodeLimits, DecodeStats } from '../src/otlp/limits';
import { decodeTraceRequest, decodeTraceRequestLean } from '../src/otlp/protobuf/decode-traces';
import { encodeTraceRequest } from '../src/otlp/protobuf/encode-traces';
import { attributesInBytes, firstValues, KeySet, LeanSpan } from '../src/otlp/protobuf/lean';
import { AdjustedCounter } from '../src/traces/adjusted-count';
import { type Field, kv, modelSpan, pb, prng, span, traceRequest } from './helpers';

const LIMITS: DecodeLimits = { maxAnyValueDepth: 8, maxDecodedStructures: 20_000 };

/**
 * Every field of the model as plain data (a lean item's attributes read through its getter); without
 * the field offsets when `offsets` is false (data decoded from other bytes).
 */
function plain(data: ResourceSpans[], offsets = true): unknown {
  const at = (x: number | undefined) => (offsets ? x : undefined);
  const attrs = (list: KeyValue[]) => list.map((a) => ({ key: a.key, value: value(a.value), at: at(a.at) }));
  const value = (v: AnyValue): unknown =>
    v instanceof KeyValueList
      ? { kvlist: attrs(v.values) }
      : Array.isArray(v)
        ? v.map(value)
        : typeof v === 'bigint'
          ? `${v}n`
          : v instanceof Uint8Array
            ? { bytes: Buffer.from(v).toString('hex') }
            : v;
  const event = (e: SpanEvent) => ({
    time: `${e.timeUnixNano}`,
    name: e.name,
    attributes: attrs(e.attributes),
    dropped: e.droppedAttributesCount,
  });
  const spanOf = (s: Span) => ({
    ids: [s.traceId, s.spanId, s.parentSpanId, s.traceState, s.flags],
    name: s.name,
    kind: s.kind,
    times: [`${s.startTimeUnixNano}`, `${s.endTimeUnixNano}`],
    attributes: attrs(s.attributes),
    dropped: [s.droppedAttributesCount, s.droppedEventsCount, s.droppedLinksCount],
    events: s.events.map(event),
    links: s.links.map((l) => ({ ...l, attributes: attrs(l.attributes) })),
    status: { ...s.status },
    at: at(s.at),
  });
  return data.map((rs) => ({
    resource: { attributes: attrs(rs.resource.attributes), dropped: rs.resource.droppedAttributesCount },
    schemaUrl: rs.schemaUrl,
    scopeSpans: rs.scopeSpans.map((ss) => ({
      scope: { ...ss.scope, attributes: attrs(ss.scope.attributes) },
      schemaUrl: ss.schemaUrl,
      spans: ss.spans.map(spanOf),
    })),
  }));
}

/** What decoding `body` gives: the model as plain data and the stats, or the error's message. */
function outcome(decode: typeof decodeTraceRequest, body: Buffer): { ok: unknown; stats: DecodeStats } | string {
  const stats: DecodeStats = { longestString: 0, mostAttributes: 0, structures: 0 };
  try {
    const data = decode(body, LIMITS, stats);
    return { ok: plain(data), stats };
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
}

const str = (key: string, value: string): KeyValue => ({ key, value });

/** Spans with every kind of attribute value, events and links, in a few resources and scopes. */
function modelRequests(random: () => number): Buffer[] {
  const values = (): AnyValue[] => [
    'GET',
    `https://shop.example.com/cart/${Math.floor(random() * 1e6)}?locale=en-GB`,
    'caf\u00e9 \u{1f600}',
    '',
    BigInt(Math.floor(random() * 1e9)),
    -42n,
    2n ** 63n - 1n,
    0.5 + random(),
    true,
    false,
    new Uint8Array([1, 2, 3, 250]),
    ['a', 1n, [true, 'nested']],
    new KeyValueList([str('inner', 'v'), { key: 'deeper', value: new KeyValueList([str('x', 'y')]) }]),
    undefined,
  ];
  const requests: Buffer[] = [];
  for (let r = 0; r < 6; r++) {
    const data: ResourceSpans[] = [];
    for (let s = 0; s < 2; s++) {
      const spans: Span[] = [];
      for (let i = 0; i < 12; i++) {
        const all = values();
        const attributes: KeyValue[] = [];
        const n = Math.floor(random() * 14);
        for (let k = 0; k < n; k++) {
          // Keys repeat now and then (the first one wins for attributeValue).
          attributes.push({ key: `key.${Math.floor(random() * 8)}`, value: all[Math.floor(random() * all.length)] });
        }
        if (random() < 0.5) attributes.push(str('server.address', `db${i}.internal`));
        if (random() < 0.3) attributes.push(str('db.system.name', random() < 0.5 ? 'postgresql' : ''));
        if (random() < 0.3) attributes.push(str('peer.service', 'ledger'));
        spans.push({
          traceId: (i + 1).toString(16).padStart(32, '0'),
          spanId: (i + 17).toString(16).padStart(16, '0'),
          traceState: i % 3 === 0 ? 'ot=th:8' : '',
          parentSpanId: i % 2 === 0 ? '' : '00000000000000aa',
          flags: 1,
          name: `op-${i % 4}`,
          kind: i % 6,
          startTimeUnixNano: 1_700_000_000_000_000_000n + BigInt(i),
          endTimeUnixNano: 1_700_000_000_500_000_000n + BigInt(i),
          attributes,
          droppedAttributesCount: i % 2,
          events:
            i % 3 === 0
              ? [
                  {
                    timeUnixNano: 1_700_000_000_100_000_000n,
                    name: 'exception',
                    attributes: [str('exception.message', 'boom'), { key: 'n', value: 3n }],
                    droppedAttributesCount: 0,
                  },
                  { timeUnixNano: 0n, name: 'empty', attributes: [], droppedAttributesCount: 1 },
                ]
              : [],
          droppedEventsCount: 0,
          links:
            i % 4 === 0
              ? [
                  {
                    traceId: 'ab'.repeat(16),
                    spanId: 'cd'.repeat(8),
                    traceState: '',
                    attributes: [str('link.kind', 'follows')],
                    droppedAttributesCount: 0,
                    flags: 0,
                  },
                ]
              : [],
          droppedLinksCount: 0,
          status: { code: i % 3, message: i % 3 === 2 ? 'failed' : '' },
        });
      }
      data.push({
        resource: { attributes: [str('service.name', `svc-${s}`)], droppedAttributesCount: 0 },
        scopeSpans: [
          { scope: { name: 'scope', version: '1', attributes: [], droppedAttributesCount: 0 }, spans, schemaUrl: '' },
        ],
        schemaUrl: '',
      });
    }
    requests.push(encodeTraceRequest(data));
  }
  return requests;
}

const s = (key: string, v: string) => kv(key, [[1, 'bytes', v]]);

/** Bodies an encoder does not usually write. */
const HAND_WRITTEN: [string, Buffer][] = [
  [
    'attributes between other fields, and after the events',
    traceRequest([
      span([
        [9, 'message', s('first', 'a')],
        [6, 'varint', 2],
        [
          11,
          'message',
          [
            [2, 'bytes', 'event'],
            [3, 'message', s('in.event', 'b')],
          ],
        ],
        [9, 'message', s('second', 'c')],
      ]),
    ]),
  ],
  [
    'a KeyValue with two keys and two values (the last of each wins)',
    traceRequest([
      span([
        [
          9,
          'message',
          [
            [1, 'bytes', 'old'],
            [2, 'message', [[1, 'bytes', 'x']]],
            [1, 'bytes', 'server.address'],
            [2, 'message', [[3, 'varint', 7]]],
          ],
        ],
      ]),
    ]),
  ],
  [
    'an AnyValue with two fields of its oneof (the last wins), and unknown fields',
    traceRequest([
      span([
        [
          9,
          'message',
          [
            [1, 'bytes', 'peer.service'],
            [
              2,
              'message',
              [
                [3, 'varint', 5],
                [15, 'varint', 1],
                [1, 'bytes', 'ledger'],
              ],
            ],
            [7, 'fixed32', 9],
          ],
        ],
      ]),
    ]),
  ],
  ['a span with no attributes', traceRequest([span()])],
  ['a KeyValue with no value', traceRequest([span([[9, 'message', [[1, 'bytes', 'k']]]])])],
  ['an empty KeyValue', traceRequest([span([[9, 'message', []]])])],
  [
    'an array nested to the depth limit',
    traceRequest([span([[9, 'message', kv('deep', nest(LIMITS.maxAnyValueDepth - 1))]])]),
  ],
  [
    'an array nested past the depth limit',
    traceRequest([span([[9, 'message', kv('deep', nest(LIMITS.maxAnyValueDepth))]])]),
  ],
  [
    'more structures than the limit, in attributes',
    traceRequest([span(Array.from({ length: 20_001 }, () => [9, 'message', []] as Field))]),
  ],
];

/** An AnyValue holding arrays `levels` deep. */
function nest(levels: number): Field[] {
  let value: Field[] = [[1, 'bytes', 'leaf']];
  for (let i = 0; i < levels; i++) value = [[5, 'message', [[1, 'message', value]]]];
  return value;
}

/** A span whose attributes fields are written with a two-byte tag (0xca 0x00 is field 9, LEN). */
function twoByteTag(): Buffer {
  const attribute = (key: string) => {
    const kvBytes = pb(s(key, 'v'));
    return Buffer.concat([Buffer.from([0xca, 0x00, kvBytes.length]), kvBytes]);
  };
  const spanBytes = Buffer.concat([pb(span()), attribute('first'), pb([[6, 'varint', 3]]), attribute('second')]);
  return pb([[1, 'message', [[2, 'message', [[2, 'bytes', spanBytes]]]]]]);
}

describe('lean decoding', () => {
  const random = prng(2026);
  const bodies = [...modelRequests(random), ...HAND_WRITTEN.map(([, b]) => b), twoByteTag()];

  test.each(HAND_WRITTEN)('%s: the same outcome as the full decoder', (_name, body) => {
    expect(outcome(decodeTraceRequestLean, body)).toStrictEqual(outcome(decodeTraceRequest, body));
  });

  test('a tag written in more bytes than needed is read the same', () => {
    const body = twoByteTag();
    const full = outcome(decodeTraceRequest, body);
    expect(typeof full).not.toBe('string');
    expect(outcome(decodeTraceRequestLean, body)).toStrictEqual(full);
    const [lean] = decodeTraceRequestLean(body, LIMITS)[0].scopeSpans[0].spans;
    expect(lean.attributes.map((a) => a.key)).toStrictEqual(['first', 'second']);
    expect(lean.kind).toBe(3);
  });

  test('spans with every kind of value: the same model (offsets included) and stats', () => {
    for (const body of modelRequests(prng(7))) {
      const full = outcome(decodeTraceRequest, body);
      expect(typeof full).not.toBe('string');
      expect(outcome(decodeTraceRequestLean, body)).toStrictEqual(full);
    }
  });

  test('a lean batch encoded anew (its attributes copied as bytes) decodes to the same model', () => {
    for (const body of [...modelRequests(prng(11)), twoByteTag(), HAND_WRITTEN[0][1], HAND_WRITTEN[2][1]]) {
      const lean = decodeTraceRequestLean(body, LIMITS);
      const again = encodeTraceRequest(lean);
      // Nothing was decoded to write it.
      const items = lean.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.flatMap((sp) => [sp, ...sp.events])));
      expect(items.length).toBeGreaterThan(0);
      expect(items.every((item) => attributesInBytes(item))).toBe(true);
      expect(plain(decodeTraceRequest(again, LIMITS), false)).toStrictEqual(
        plain(decodeTraceRequest(body, LIMITS), false),
      );
    }
  });

  test('JSON.stringify writes a lean span as it writes the full model', () => {
    const [body] = modelRequests(prng(5));
    const json = (data: ResourceSpans[]) =>
      data
        .flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
        .map((sp) => JSON.parse(JSON.stringify(sp, bigintText)));
    const full = json(decodeTraceRequest(body, LIMITS));
    expect(full.length).toBeGreaterThan(5);
    expect(json(decodeTraceRequestLean(body, LIMITS))).toStrictEqual(full);
  });

  test('the attributes stay bytes until read, are decoded once, and can be replaced', () => {
    const [body] = modelRequests(prng(3));
    const spans = decodeTraceRequestLean(body, LIMITS).flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    const lean = spans.find((sp) => sp instanceof LeanSpan && sp.attrTo > sp.attrFrom) as LeanSpan;
    expect(attributesInBytes(lean)).toBe(true);
    const first = lean.attributes;
    expect(attributesInBytes(lean)).toBe(false);
    expect(lean.attributes).toBe(first);
    lean.attributes = [str('replaced', 'yes')];
    expect(lean.attributes).toStrictEqual([str('replaced', 'yes')]);
  });

  test('firstValues finds what attributeValue finds in the decoded attributes', () => {
    const keys = new KeySet([
      'server.address',
      'db.system.name',
      'peer.service',
      'key.0',
      'key.3',
      'old',
      'absent',
      'k',
      'in.event',
    ]);
    let found = 0;
    for (const body of bodies) {
      let data: ResourceSpans[];
      try {
        data = decodeTraceRequestLean(body, LIMITS);
      } catch {
        continue;
      }
      for (const sp of data.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))) {
        for (const item of [sp, ...sp.events]) {
          if (!attributesInBytes(item)) continue;
          const values = new Array<AnyValue>(keys.keys.length);
          firstValues(item, keys, values);
          const decoded = item.attributes;
          expect(values).toStrictEqual(keys.keys.map((k) => attributeValue(decoded, k)));
          found += values.filter((v) => v !== undefined).length;
        }
      }
    }
    expect(found).toBeGreaterThan(50);
  });

  test("a multiplier attribute read in a lean span's bytes gives the same adjusted count", () => {
    const counter = new AdjustedCounter('sampling.multiplier');
    const values: AnyValue[] = ['4', ' 2.5 ', 'ten', 8n, 0.5, 3.25, true, undefined, ['2']];
    const data: ResourceSpans[] = [
      {
        resource: { attributes: [str('sampling.multiplier', '7')], droppedAttributesCount: 0 },
        scopeSpans: [
          {
            scope: { name: '', version: '', attributes: [], droppedAttributesCount: 0 },
            schemaUrl: '',
            spans: values.map((value, i) =>
              modelSpan({
                spanId: (i + 1).toString(16).padStart(16, '0'),
                attributes: [str('other', 'x'), { key: 'sampling.multiplier', value }],
              }),
            ),
          },
        ],
        schemaUrl: '',
      },
    ];
    const body = encodeTraceRequest(data);
    const counts = (decoded: ResourceSpans[]) =>
      decoded[0].scopeSpans[0].spans.map((sp) => counter.of('', sp, decoded[0].resource.attributes));
    const lean = decodeTraceRequestLean(body, LIMITS);
    const expected = counts(decodeTraceRequest(body, LIMITS));
    expect(counts(lean)).toStrictEqual(expected);
    // A span attribute with no value falls back to the resource's (7).
    expect(expected).toStrictEqual([4, 2.5, 1, 8, 1, 3.25, 1, 7, 1]);
    // Found in the bytes: nothing decoded.
    expect(lean[0].scopeSpans[0].spans.every((sp) => attributesInBytes(sp))).toBe(true);
  });

  test('random mutations: both decoders accept or refuse alike, with the same model, stats or error', () => {
    const rand = prng(20261205);
    const pick = (n: number) => Math.floor(rand() * n);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < Number(process.env.LEAN_MUTATIONS ?? 3000); i++) {
      const body = Buffer.from(bodies[pick(bodies.length)]);
      const edits = 1 + pick(3);
      let mutated: Buffer = body;
      for (let e = 0; e < edits; e++) {
        const at = pick(mutated.length);
        const roll = rand();
        if (roll < 0.5) mutated[at] = pick(256);
        else if (roll < 0.65) mutated = mutated.subarray(0, at);
        else if (roll < 0.8) mutated = Buffer.concat([mutated.subarray(0, at), mutated.subarray(at + 1)]);
        else mutated = Buffer.concat([mutated.subarray(0, at), Buffer.from([pick(256)]), mutated.subarray(at)]);
      }
      const full = outcome(decodeTraceRequest, mutated);
      const lean = outcome(decodeTraceRequestLean, mutated);
      if (JSON.stringify(lean, bigintText) !== JSON.stringify(full, bigintText)) {
        throw new Error(`case ${i}: ${mutated.toString('hex')}\nfull: ${show(full)}\nlean: ${show(lean)}`);
      }
      if (typeof full === 'string') refused++;
      else accepted++;
    }
    // Both kinds of outcome were compared many times.
    expect(accepted).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(300);
  });
});

function bigintText(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value;
}

function show(o: unknown): string {
  return JSON.stringify(o, bigintText).slice(0, 2000);
}

/**
 * The trace store's database and query language, in process (no writer thread): what a request is
 * stored as, retention by age and by size (oldest first), and the TraceQL subset with its errors.
 * The Tempo API, the writer and reader threads are tested end to end in test/trace-store-api.test.ts,
 * kill -9 in test/trace-store-durability.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResourceSpans } from '../src/model';
import { MalformedPayloadError } from '../src/otlp/errors';
import { decodeTraceRequest } from '../src/otlp/protobuf/decode-traces';
import { encodeTraceRequest } from '../src/otlp/protobuf/encode-traces';
import {
  BlobIndex,
  indexTraceRequest,
  keyTable,
  NAME_KEY,
  STATUS_KEY,
  timeToBigInt,
} from '../src/trace-store/blob-index';
import { BUCKET_ROWS, TraceDb } from '../src/trace-store/db';
import { lengthPrefix, scanTraceRequest } from '../src/trace-store/scan';
import { search, tagValues } from '../src/trace-store/search';
import { parseLogfmtTags, parseTraceQL, UnsupportedQueryError } from '../src/trace-store/traceql';
import { withoutOffsets } from './helpers';

const INDEXED = { indexedAttributes: new Set(['http.route', 'deployment.environment.name']) };
const T0 = 1_700_000_000_000_000_000n;

function traceRequest(traceId: string, service: string, spans: number, startNs = T0): Buffer {
  const data: ResourceSpans[] = [
    {
      resource: {
        attributes: [
          { key: 'service.name', value: service },
          { key: 'deployment.environment.name', value: 'prod' },
        ],
        droppedAttributesCount: 0,
      },
      schemaUrl: '',
      scopeSpans: [
        {
          scope: { name: 'test', version: '1', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          spans: Array.from({ length: spans }, (_, i) => ({
            traceId,
            spanId: (i + 1).toString(16).padStart(16, '0'),
            traceState: '',
            parentSpanId: i === 0 ? '' : '0000000000000001',
            flags: 0,
            name: i === 0 ? 'GET /cart' : `child-${i}`,
            kind: i === 0 ? 2 : 1,
            startTimeUnixNano: startNs + BigInt(i),
            endTimeUnixNano: startNs + BigInt(i) + 1_000_000n * BigInt(i + 1),
            attributes: [
              { key: 'http.route', value: i === 0 ? '/cart' : `/x/${i}` },
              { key: 'padding', value: 'p'.repeat(300) },
            ],
            droppedAttributesCount: 0,
            events: [],
            droppedEventsCount: 0,
            links: [],
            droppedLinksCount: 0,
            status: { code: i === 0 ? 2 : 0, message: '' },
          })),
        },
      ],
    },
  ];
  return encodeTraceRequest(data);
}

const traceId = (n: number) => n.toString(16).padStart(32, '0');

let dir: string;
let db: TraceDb;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sonde-store-unit-'));
  db = TraceDb.open(join(dir, 'traces.db'), { indexedAttributes: INDEXED.indexedAttributes });
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function write(request: Buffer, receivedMs: number): void {
  db.write([request], receivedMs);
}

const all = { startNs: 0n, endNs: 2n ** 63n - 1n, limit: 100, spss: 3 };

test('a request is stored as per-trace chunks that decode back to the same spans', () => {
  const request = traceRequest(traceId(1), 'cart', 3);
  write(request, Date.now());
  const chunks = db.traceChunks(Buffer.from(traceId(1), 'hex'));
  expect(chunks).toHaveLength(1);
  const asRequest = Buffer.concat([lengthPrefix(1, chunks[0].length), chunks[0]]);
  expect(decodeTraceRequest(asRequest, { maxAnyValueDepth: 32 })).toStrictEqual(
    decodeTraceRequest(request, { maxAnyValueDepth: 32 }),
  );
  expect(db.traceChunks(Buffer.from(traceId(2), 'hex'))).toStrictEqual([]);
  // The time window of trace by id: chunks overlapping it only.
  expect(db.traceChunks(Buffer.from(traceId(1), 'hex'), T0 + 10_000_000_000n, T0 + 20_000_000_000n)).toStrictEqual([]);
  expect(db.traceChunks(Buffer.from(traceId(1), 'hex'), T0 - 1n, T0 + 1n)).toHaveLength(1);
});

test('spans of one request are split by trace, each chunk keeping its resource', () => {
  const a = decodeTraceRequest(traceRequest(traceId(1), 'cart', 2), { maxAnyValueDepth: 32 });
  const b = decodeTraceRequest(traceRequest(traceId(2), 'cart', 2), { maxAnyValueDepth: 32 });
  a[0].scopeSpans[0].spans.push(...b[0].scopeSpans[0].spans);
  write(encodeTraceRequest(a), Date.now());
  for (const id of [1, 2]) {
    const [chunk] = db.traceChunks(Buffer.from(traceId(id), 'hex'));
    const rs = decodeTraceRequest(Buffer.concat([lengthPrefix(1, chunk.length), chunk]), { maxAnyValueDepth: 32 });
    expect(withoutOffsets(rs[0].resource.attributes[0])).toStrictEqual({ key: 'service.name', value: 'cart' });
    expect(rs[0].scopeSpans[0].spans.map((s) => s.traceId)).toStrictEqual([traceId(id), traceId(id)]);
  }
});

test('retention by age removes what arrived before the cutoff, and nothing else', () => {
  const now = Date.now();
  write(traceRequest(traceId(1), 'old', 5), now - 3 * 3600_000);
  write(traceRequest(traceId(2), 'new', 5), now - 60_000);
  const removed = db.enforceRetention(now, 3600_000, 2 ** 40);
  expect(removed).toStrictEqual({ batches: 1, spans: 5 });
  expect(db.traceChunks(Buffer.from(traceId(1), 'hex'))).toStrictEqual([]);
  expect(db.traceChunks(Buffer.from(traceId(2), 'hex'))).toHaveLength(1);
  expect(db.spanCount()).toBe(5);
  // Search and tag values forget the old trace too.
  const found = search(db, parseTraceQL('{ span.http.route = "/cart" }', INDEXED), all);
  expect(found.traces.map((t) => t.traceID)).toStrictEqual([traceId(2)]);
  expect(tagValues(db, 'resource.service.name', 10)).toStrictEqual([{ type: 'string', value: 'new' }]);
  // Again: nothing more to remove.
  expect(db.enforceRetention(now, 3600_000, 2 ** 40)).toStrictEqual({ batches: 0, spans: 0 });
});

test('retention by size removes the oldest batches until the database is back under its bound', () => {
  const now = Date.now();
  for (let i = 1; i <= 60; i++) write(traceRequest(traceId(i), `svc-${i}`, 40), now - (100 - i) * 1000);
  const before = db.usedBytes();
  const maxBytes = Math.floor(before / 2);
  const removed = db.enforceRetention(now, 24 * 3600_000, maxBytes);
  expect(removed.batches).toBeGreaterThan(0);
  expect(removed.spans).toBe(removed.batches * 40);
  expect(db.usedBytes()).toBeLessThanOrEqual(maxBytes);
  // Oldest first: the first `removed.batches` traces are gone, the rest are all there.
  for (let i = 1; i <= 60; i++) {
    expect([i, db.traceChunks(Buffer.from(traceId(i), 'hex')).length]).toStrictEqual([i, i <= removed.batches ? 0 : 1]);
  }
});

test('search: most recent traces first, limit, spss, root service and name, trace duration bounds', () => {
  for (let i = 1; i <= 5; i++) write(traceRequest(traceId(i), 'cart', 4, T0 + BigInt(i) * 1_000_000_000n), Date.now());
  const r = search(db, parseTraceQL('{ resource.service.name = "cart" }', INDEXED), { ...all, limit: 2, spss: 2 });
  expect(r.traces.map((t) => t.traceID)).toStrictEqual([traceId(5), traceId(4)]);
  expect(r.traces[0]).toMatchObject({
    rootServiceName: 'cart',
    rootTraceName: 'GET /cart',
    startTimeUnixNano: String(T0 + 5_000_000_000n),
    durationMs: 4,
  });
  expect(r.traces[0].spanSets[0].spans).toHaveLength(2);
  const long = search(db, [parseLogfmtTags('service.name=cart', INDEXED)], { ...all, minTraceDurationNs: 5_000_000 });
  expect(long.traces).toStrictEqual([]);
  const tagged = search(db, [parseLogfmtTags('deployment.environment.name=prod http.route=/x/2', INDEXED)], all);
  expect(tagged.traces).toHaveLength(5);
  expect(tagged.traces[0].spanSets[0].spans.map((s) => s.name)).toStrictEqual(['child-2']);
});

describe('TraceQL subset', () => {
  const parse = (q: string) => parseTraceQL(q, INDEXED);
  const error = (q: string) => {
    try {
      parse(q);
    } catch (err) {
      expect(err).toBeInstanceOf(UnsupportedQueryError);
      return (err as Error).message;
    }
    throw new Error(`"${q}" parsed`);
  };

  test.each([
    '{}',
    '{ resource.service.name = "x" }',
    '{ .service.name != "x" }',
    '{ span.http.route = "/a" && status = error }',
    '{ duration > 500ms }',
    '{ span:duration >= 1.5s && span:name = "x" }',
    '{ name = "GET /cart" }',
    '{ (name = "a" || name = "b") && kind = server }',
    '{ name =~ "GET .*" } || { status != ok }',
    '{ span.http.route !~ "/internal/.*" }',
    '{ resource.deployment.environment.name = "prod" }',
  ])('accepts %s', (q) => {
    expect(parse(q).length).toBeGreaterThan(0);
  });

  test.each([
    [
      '{ span.user.id = "1" }',
      /attribute "user.id" is not indexed .*trace_store.indexed_attributes: http.route, deployment/,
    ],
    ['{ } | count() > 1', /pipelines .* not supported/],
    ['{ name = "a" } && { name = "b" }', /spanset &&/],
    ['{ name = "a" } ~ { name = "b" }', /structural operator "~"/],
    ['{ rootServiceName = "a" }', /"rootServiceName" is not supported/],
    ['{ status = fine }', /must be one of unset, ok, error/],
    ['{ duration > "slow" }', /must be a duration/],
    ['{ name = unquoted }', /quote strings/],
    ['{ name = "a" ', /expected "}" at offset 13, found the end of the query/],
    ['{ name = "a }', /unterminated string/],
    ['{ span.http.route =~ "(" }', /invalid regular expression/],
  ])('refuses %s', (q, message) => {
    expect(error(q)).toMatch(message);
  });
});

describe("the writer's index pass", () => {
  /** Two resources, typed attribute values, a span without a trace id, spans of two traces interleaved. */
  function mixedRequest(): Buffer {
    const span = (traceId: string, i: number, attributes: { key: string; value: unknown }[], parent = '') => ({
      traceId,
      spanId: (i + 1).toString(16).padStart(16, '0'),
      traceState: '',
      parentSpanId: parent,
      flags: 0,
      name: `op-${i % 3}`,
      kind: 2,
      startTimeUnixNano: T0 + BigInt(i) * 1000n + 1n,
      endTimeUnixNano: T0 + BigInt(i) * 1000n + 1n + BigInt(i) * 7n,
      attributes,
      droppedAttributesCount: 0,
      events: [],
      droppedEventsCount: 0,
      links: [],
      droppedLinksCount: 0,
      status: { code: i % 3, message: '' },
    });
    const resource = (service: string, spans: ReturnType<typeof span>[]) => ({
      resource: {
        attributes: [
          { key: 'deployment.environment.name', value: `env-${service}` },
          { key: 'service.name', value: service },
        ],
        droppedAttributesCount: 0,
      },
      schemaUrl: '',
      scopeSpans: [
        { scope: { name: 's', version: '', attributes: [], droppedAttributesCount: 0 }, schemaUrl: '', spans },
      ],
    });
    const data = [
      resource('a', [
        span(traceId(1), 0, [
          { key: 'http.route', value: '/a' },
          { key: 'http.status_code', value: 200n },
        ]),
        span(
          traceId(2),
          1,
          [
            { key: 'http.route', value: '/ä/ü' },
            { key: 'http.status_code', value: -1n },
          ],
          '00000000000000aa',
        ),
        span(
          traceId(1),
          2,
          [
            { key: 'http.status_code', value: 2n ** 62n },
            { key: 'http.route', value: true },
          ],
          '0000000000000001',
        ),
      ]),
      resource('b', [
        span(traceId(2), 3, [
          { key: 'http.route', value: 1.5 },
          { key: 'http.status_code', value: 'x' },
        ]),
        span('', 4, [{ key: 'http.route', value: '/no-trace' }]),
      ]),
    ] as unknown as ResourceSpans[];
    return encodeTraceRequest(data);
  }
  const KEYS = { indexedAttributes: new Set(['http.route', 'http.status_code', 'deployment.environment.name']) };

  test('finds the same searchable values, extents and roots as the full scan a search runs', () => {
    const body = mixedRequest();
    const index = new BlobIndex();
    indexTraceRequest(body, keyTable(KEYS.indexedAttributes), index);
    const rows = scanTraceRequest(body, KEYS).spans;
    expect(index.spans).toBe(rows.length);
    expect(index.spans).toBe(4);
    // Every value the scan reads from the spans, and no other, under the same posting keys.
    const expected = new Map<string, Set<string>>();
    const add = (k: string, v: string) => expected.set(k, (expected.get(k) ?? new Set()).add(v));
    for (const r of rows) {
      add('resource.service.name', r.service);
      add(NAME_KEY, r.name);
      add(STATUS_KEY, String(r.status));
      for (const [k, v] of r.tags) add(k, v);
    }
    const sorted = (m: Map<string, Set<string>>) =>
      Object.fromEntries(
        [...m].map(([k, v]) => [k, [...v].sort()]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      );
    expect(sorted(index.postings())).toStrictEqual(sorted(expected));
    expect(sorted(index.postings())['span.http.status_code']).toStrictEqual(
      ['-1', '200', String(2n ** 62n), 'x'].sort(),
    );
    // Per trace: the extent of its spans and the root (the span without a parent) with its service.
    for (const id of [traceId(1), traceId(2)]) {
      const mine = rows.filter((r) => r.traceHex === id);
      const entry = [...index.traces.values()].find((t) => Buffer.from(t.traceId).toString('hex') === id);
      expect(entry).toBeDefined();
      // biome-ignore lint/complexity/useMathMinMax: bigints, which Math.min/max do not take
      const start = mine.reduce((m, r) => (r.startNs < m ? r.startNs : m), mine[0].startNs);
      // biome-ignore lint/complexity/useMathMinMax: bigints, which Math.min/max do not take
      const end = mine.reduce((m, r) => (r.startNs + r.durationNs > m ? r.startNs + r.durationNs : m), 0n);
      expect([timeToBigInt(entry!.start), timeToBigInt(entry!.end)]).toStrictEqual([start, end]);
      const root = mine.find((r) => r.root);
      expect([entry!.rootService, entry!.rootName]).toStrictEqual([root?.service ?? null, root?.name ?? null]);
    }
    // biome-ignore lint/complexity/useMathMinMax: bigints, which Math.min/max do not take
    expect(timeToBigInt(index.minStart)).toBe(rows.reduce((m, r) => (r.startNs < m ? r.startNs : m), rows[0].startNs));
    expect(index.maxDuration).toBe(Math.max(...rows.map((r) => Number(r.durationNs))));
  });

  test('tag values carry the type of their attribute (Grafana quotes strings only)', () => {
    const data = decodeTraceRequest(traceRequest(traceId(1), 'cart', 2), { maxAnyValueDepth: 32 });
    for (const span of data[0].scopeSpans[0].spans)
      span.attributes.push({ key: 'deployment.environment.name', value: 2.5 });
    write(encodeTraceRequest(data), Date.now());
    expect(tagValues(db, 'span.http.route', 10)).toStrictEqual([
      { type: 'string', value: '/cart' },
      { type: 'string', value: '/x/1' },
    ]);
    expect(tagValues(db, 'span.deployment.environment.name', 10)).toStrictEqual([{ type: 'float', value: '2.5' }]);
    expect(tagValues(db, 'resource.deployment.environment.name', 10)).toStrictEqual([
      { type: 'string', value: 'prod' },
    ]);
  });

  test('a request that does not read is left out whole, and counted', () => {
    const good = traceRequest(traceId(1), 'cart', 3);
    const torn = good.subarray(0, good.length - 7);
    expect(db.write([good, torn], Date.now())).toStrictEqual({ spans: 3, bytes: good.length, failed: 1 });
    expect(db.spanCount()).toBe(3);
  });

  test("nothing of a request that does not read is in its blob's index, though its first spans read", () => {
    const good = traceRequest(traceId(1), 'cart', 3);
    // A whole ResourceSpans of another trace and service, then bytes that do not read.
    const bad = Buffer.concat([traceRequest(traceId(2), 'torn', 2, T0 - 10n ** 12n), Buffer.from([0x0a, 0xff, 0xff])]);
    const after = traceRequest(traceId(3), 'cart', 1);
    expect(db.write([good, bad, after], Date.now())).toStrictEqual({
      spans: 4,
      bytes: good.length + after.length,
      failed: 1,
    });
    expect(db.traceChunks(Buffer.from(traceId(2), 'hex'))).toStrictEqual([]);
    expect(db.traceChunks(Buffer.from(traceId(3), 'hex'))).toHaveLength(1);
    expect(db.db.prepare('SELECT spans, CAST(min_start AS TEXT) AS min_start FROM blobs').all()).toEqual([
      { spans: 4, min_start: String(T0) },
    ]);
    expect(tagValues(db, 'resource.service.name', 10)).toStrictEqual([{ type: 'string', value: 'cart' }]);
    expect(
      db.db.prepare("SELECT count(*) AS n FROM postings WHERE key = 'resource.service.name' AND value = 'torn'").get(),
    ).toEqual({ n: 0 });
  });
});

describe('search over the stored spans', () => {
  beforeEach(() => {
    // Received as they start: a time window maps to blobs by arrival.
    for (let i = 1; i <= 3; i++) {
      const start = T0 + BigInt(i) * 1_000_000_000n;
      write(traceRequest(traceId(i), `svc-${i}`, 4, start), Number(start / 1_000_000n));
    }
  });
  const ids = (q: string) => search(db, parseTraceQL(q, INDEXED), all).traces.map((t) => t.traceID);

  test.each([
    ['{ span.http.route = "/x/2" }', [3, 2, 1]],
    ['{ span.http.route =~ "/x/.*" && resource.service.name != "svc-2" }', [3, 1]],
    ['{ span.http.route !~ "/x/.*" && status = error }', [3, 2, 1]],
    ['{ resource.deployment.environment.name = "prod" && kind = server && .service.name = "svc-1" }', [1]],
    ['{ duration > 3ms }', [3, 2, 1]],
    ['{ duration > 4ms }', []],
    ['{ name = "child-3" && duration >= 4ms }', [3, 2, 1]],
    ['{ name = "nope" } || { resource.service.name = "svc-3" }', [3]],
    ['{ span.http.route > "/x/2" }', [3, 2, 1]],
    ['{ span.http.route = "/cart" && status = ok }', []],
    ['{ span.http.route =~ "/c.*" }', [3, 2, 1]],
    ['{ span.http.route =~ "/nothing.*" }', []],
    ['{ name =~ "child-[12]" && span.http.route = "/x/2" }', [3, 2, 1]],
    ['{ resource.service.name =~ "svc-[13]" }', [3, 1]],
  ])('%s', (q, expected) => {
    expect(ids(q)).toStrictEqual(expected.map(traceId));
  });

  test('a regex on an indexed key reads only the blobs holding a value it matches', () => {
    const inspected = (q: string) => Number(search(db, parseTraceQL(q, INDEXED), all).metrics.inspectedBytes);
    expect(inspected('{ span.http.route =~ "/nothing.*" }')).toBe(0);
    expect(inspected('{ span.http.route =~ "/c.*" }')).toBeGreaterThan(0);
    // Not indexed by value (a kind): every blob in the window is read.
    expect(inspected('{ kind = consumer }')).toBeGreaterThan(0);
  });

  test('a time window leaves out spans that start outside it', () => {
    const r = search(db, parseTraceQL('{ }', INDEXED), {
      ...all,
      startNs: T0 + 2_000_000_000n,
      endNs: T0 + 2_500_000_000n,
    });
    expect(r.traces.map((t) => t.traceID)).toStrictEqual([traceId(2)]);
    expect(r.traces[0].spanSets[0].matched).toBe(4);
    expect(Number(r.metrics.inspectedBytes)).toBeGreaterThan(0);
  });
});

test('the trace index spans buckets: lookups find traces in each, retention removes them with their blobs', () => {
  // Random-looking ids (the buckets' bloom filters hash their bytes).
  const randomId = (n: number) => createHash('sha256').update(String(n)).digest('hex').slice(0, 32);
  // Requests of 1,000 one-span traces: BUCKET_ROWS is reached after a few of them.
  const request = (from: number, n: number) => {
    const data = decodeTraceRequest(traceRequest(traceId(1), 'many', 1), { maxAnyValueDepth: 32 });
    const template = data[0].scopeSpans[0].spans[0];
    data[0].scopeSpans[0].spans = Array.from({ length: n }, (_, i) => ({ ...template, traceId: randomId(from + i) }));
    return encodeTraceRequest(data);
  };
  const now = Date.now();
  const requests = Math.ceil((BUCKET_ROWS * 1.5) / 1000);
  for (let r = 0; r < requests; r++) write(request(1 + r * 1000, 1000), now - (requests - r) * 1000);
  const buckets = Number(db.db.prepare('SELECT count(*) AS n FROM buckets').get()?.n);
  expect(buckets).toBe(2);
  const last = requests * 1000;
  for (let n = 1; n <= last; n += 37) {
    expect([n, db.traceChunks(Buffer.from(randomId(n), 'hex')).length]).toStrictEqual([n, 1]);
  }
  for (const n of [1, 999, BUCKET_ROWS + 1, last]) {
    expect([n, db.traceChunks(Buffer.from(randomId(n), 'hex')).length]).toStrictEqual([n, 1]);
    expect(db.traceSummary(Buffer.from(randomId(n), 'hex'))?.rootService).toBe('many');
  }
  // Retention by age: the first half of the requests go, and with them their traces.
  const removed = db.enforceRetention(now, Math.floor(requests / 2) * 1000 + 500, 2 ** 40);
  expect(removed.batches).toBe(requests - Math.floor(requests / 2));
  const kept = Math.floor(requests / 2) * 1000;
  expect(db.traceChunks(Buffer.from(randomId(1), 'hex'))).toStrictEqual([]);
  expect(db.traceSummary(Buffer.from(randomId(last - kept), 'hex'))).toBeUndefined();
  expect(db.traceChunks(Buffer.from(randomId(last - kept + 1), 'hex'))).toHaveLength(1);
  expect(db.traceChunks(Buffer.from(randomId(last), 'hex'))).toHaveLength(1);
  const rows = Number(db.db.prepare('SELECT count(*) AS n FROM traces').get()?.n);
  expect(rows).toBe(kept);
});

test('the bloom filters a reader caches are those of the live buckets: retention drops the removed ones', () => {
  // Bucket ids only grow (blob ids never come back), so a cache keyed by them that kept the removed
  // buckets' filters (4 KiB each) would grow with every bucket a long-running store ever had.
  const randomId = (n: number) => createHash('sha256').update(`live-${n}`).digest('hex').slice(0, 32);
  const request = (from: number, n: number) => {
    const data = decodeTraceRequest(traceRequest(traceId(1), 'many', 1), { maxAnyValueDepth: 32 });
    const template = data[0].scopeSpans[0].spans[0];
    data[0].scopeSpans[0].spans = Array.from({ length: n }, (_, i) => ({ ...template, traceId: randomId(from + i) }));
    return encodeTraceRequest(data);
  };
  const liveBuckets = () => Number(db.db.prepare('SELECT count(*) AS n FROM buckets').get()?.n);
  const now = Date.now();
  // Rounds of one bucket's worth of traces, each older than the next by an hour; every round looks
  // traces up (caching the filters), then retention keeps the last hour only.
  for (let round = 0; round < 4; round++) {
    const first = round * BUCKET_ROWS;
    write(request(first, BUCKET_ROWS), now - (4 - round) * 3600_000 + 1);
    expect(db.traceChunks(Buffer.from(randomId(first), 'hex'))).toHaveLength(1);
    expect(db.traceChunks(Buffer.from(randomId(first + BUCKET_ROWS - 1), 'hex'))).toHaveLength(1);
    db.enforceRetention(now - (3 - round) * 3600_000, 3600_000, 2 ** 40);
    expect(db.traceChunks(Buffer.from(randomId(first), 'hex'))).toHaveLength(1);
    expect(liveBuckets()).toBe(1);
    expect(db.cachedBloomFilters()).toBeLessThanOrEqual(liveBuckets());
  }
});

test('a bucket id reused after retention removed every bucket is not read through a stale bloom filter', () => {
  const randomId = (n: number) => createHash('sha256').update(`reuse-${n}`).digest('hex').slice(0, 32);
  const now = Date.now();
  write(traceRequest(randomId(1), 'old', 1), now - 3 * 3600_000);
  // The lookup caches bucket 1's bloom filter (1 row).
  expect(db.traceChunks(Buffer.from(randomId(1), 'hex'))).toHaveLength(1);
  expect(db.enforceRetention(now, 3600_000, 2 ** 40).batches).toBe(1);
  // Every bucket is gone: the next write starts a bucket again, with as many rows as the cached one.
  write(traceRequest(randomId(2), 'new', 1), now);
  expect(db.traceChunks(Buffer.from(randomId(2), 'hex'))).toHaveLength(1);
  expect(db.traceSummary(Buffer.from(randomId(2), 'hex'))?.rootService).toBe('new');
});

test('a search without a driving value is not cut short by a later batch that stored no blob', () => {
  const ms = Number(T0 / 1_000_000n);
  write(traceRequest(traceId(1), 'cart', 2), ms);
  // A batch whose only request does not read: a batch row without blobs (last_blob 0).
  expect(db.write([Buffer.from([0x0a, 0xff])], ms + 3600_000).failed).toBe(1);
  const r = search(db, parseTraceQL('{ kind = server }', INDEXED), { ...all, startNs: T0 - 1n, endNs: T0 + 1n });
  expect(r.traces.map((t) => t.traceID)).toStrictEqual([traceId(1)]);
});

test('spans starting at or after 2^63 ns do not fail the batch they arrive in', () => {
  const result = db.write([traceRequest(traceId(1), 'cart', 2), traceRequest(traceId(2), 'far', 2, 2n ** 63n + 5n)], 1);
  expect(result.spans).toBe(4);
  expect(db.traceChunks(Buffer.from(traceId(1), 'hex'))).toHaveLength(1);
  expect(db.traceChunks(Buffer.from(traceId(2), 'hex'))).toHaveLength(1);
  expect(search(db, parseTraceQL('{ }', INDEXED), all).traces.map((t) => t.traceID)).toContain(traceId(1));
});

describe('the index pass on bytes the scan would not read the same way', () => {
  const keys = keyTable(INDEXED.indexedAttributes);
  const wrap = (field: number, body: number[]) => [(field << 3) | 2, body.length, ...body];
  test.each([
    ['a truncated fixed64 field', Buffer.from([0x09, 1, 2, 3])],
    ['a truncated fixed32 field', Buffer.from([0x0d, 1])],
    ['a truncated varint', Buffer.from([0x08, 0x80])],
    ['a truncated long varint', Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['a varint longer than 10 bytes', Buffer.from([0x08, ...Array(10).fill(0xff), 0x01])],
    ['a span start time cut at the end', Buffer.from(wrap(1, wrap(2, wrap(2, [0x39, 1, 2, 3]))))],
    [
      'a span end time cut at the end',
      Buffer.from(wrap(1, wrap(2, wrap(2, [...wrap(1, Array(16).fill(7)), 0x41, 1])))),
    ],
    ['a double attribute cut at the end', Buffer.from(wrap(1, wrap(2, wrap(2, wrap(9, wrap(2, [0x21, 1, 2]))))))],
  ])('%s: MalformedPayloadError, as from the scan', (_, body) => {
    expect(() => scanTraceRequest(body, INDEXED)).toThrow(MalformedPayloadError);
    expect(() => indexTraceRequest(body, keys, new BlobIndex())).toThrow(MalformedPayloadError);
  });

  test('a request that does not read is not stored in a blob with others', () => {
    const good = traceRequest(traceId(1), 'cart', 3);
    expect(db.write([good, Buffer.from([0x09, 1, 2, 3])], Date.now()).failed).toBe(1);
    expect(search(db, parseTraceQL('{ }', INDEXED), all).traces.map((t) => t.traceID)).toStrictEqual([traceId(1)]);
  });

  test('varints wider than 32 bits read as their low 32 bits, as the scan reads them', () => {
    // The ResourceSpans tag (0x0a) written with bit 32 set, then a span whose bool attribute is 2^32.
    const wideTag = [0x8a, 0x80, 0x80, 0x80, 0x10];
    const attr = [...wrap(1, [...Buffer.from('http.route')]), ...wrap(2, [0x10, 0x80, 0x80, 0x80, 0x80, 0x10])];
    const span = [...wrap(1, Array(16).fill(7)), ...wrap(9, attr)];
    const rs = wrap(2, wrap(2, span));
    const body = Buffer.from([...wideTag, rs.length, ...rs]);
    const scanned = scanTraceRequest(body, INDEXED).spans;
    expect(scanned).toHaveLength(1);
    const index = new BlobIndex();
    indexTraceRequest(body, keys, index);
    expect(index.spans).toBe(1);
    expect([...(index.values.get('span.http.route') ?? [])]).toStrictEqual(scanned[0].tags.map(([, v]) => v));
  });
});

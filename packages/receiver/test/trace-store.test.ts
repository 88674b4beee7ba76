/**
 * The trace store's database and query language, in process (no writer thread): what a request is
 * stored as, retention by age and by size (oldest first), and the TraceQL subset with its errors.
 * The Tempo API, the writer and reader threads are tested end to end in test/trace-store-api.test.ts,
 * kill -9 in test/trace-store-durability.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResourceSpans } from '../src/model';
import { decodeTraceRequest } from '../src/otlp/protobuf/decode-traces';
import { encodeTraceRequest } from '../src/otlp/protobuf/encode-traces';
import { TraceDb } from '../src/trace-store/db';
import { lengthPrefix, scanTraceRequest } from '../src/trace-store/scan';
import { search, tagValues } from '../src/trace-store/search';
import { parseLogfmtTags, parseTraceQL, UnsupportedQueryError } from '../src/trace-store/traceql';

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
  db = TraceDb.open(join(dir, 'traces.db'));
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function write(request: Buffer, receivedMs: number): void {
  db.write(scanTraceRequest(request, INDEXED), receivedMs, request.length);
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
    expect(rs[0].resource.attributes[0]).toStrictEqual({ key: 'service.name', value: 'cart' });
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
  ])('refuses %s', (q, message) => {
    expect(error(q)).toMatch(message);
  });
});

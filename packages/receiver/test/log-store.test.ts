/**
 * The embedded log store (src/log-store/): the log database directly (selection by stream matchers,
 * regexes, time window, direction and pages, line and trace-id hints, label names and values,
 * series, stats, retention by age and size, a malformed request refused whole), and the LogStore
 * consumer in process with its real writer and reader threads (LogSource over the reader threads,
 * on_full refuse, replay of the write-ahead log after a crash, requests without a raw body).
 * End to end with the OpenTelemetry exporters: test/log-store-e2e.test.ts at the repository root.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as zlib, zstdCompressSync } from 'node:zlib';
import { Registry } from 'prom-client';
import { blobBloomAdd, blobBloomHas, newBlobBloom, packBlob, unpackBlob } from '../src/blob-store/blob-db';
import { BlobWal } from '../src/blob-store/wal';
import { LogDb, packTimes, type SelectCursor, unpackTimes } from '../src/log-store/log-db';
import { indexedTime, indexLogsRequest } from '../src/log-store/log-index';
import { LogStore, type LogStoreOptions } from '../src/log-store/log-store';
import type { MetricExpr } from '../src/log-store/logql/ast';
import { runMetricQuery, stepsOf } from '../src/log-store/logql/engine';
import { parseQuery } from '../src/log-store/logql/parser';
import { type LabelMatcher, type LogSource, type LokiEntry, toLokiEntries } from '../src/log-store/loki-entry';
import { streamKey } from '../src/log-store/matchers';
import { createLogger } from '../src/logger';
import { type AnyValue, KeyValueList, type ResourceLogs } from '../src/model';
import { OverloadedError } from '../src/otlp/errors';
import { decodeLogsRequest } from '../src/otlp/protobuf/decode-logs';
import { encodeLogsRequest } from '../src/otlp/protobuf/encode-logs';
import type { Batch } from '../src/pipeline/pipeline';
import { encodeRecord } from '../src/record-log';

const T0 = 1_700_000_000_000_000_000n;
const SEC = 1_000_000_000n;
const ALL = { startNs: 0n, endNs: 2n ** 62n };
const traceId = (n: number) => n.toString(16).padStart(32, '0');

interface Rec {
  t: bigint;
  body: AnyValue;
  level?: string;
  trace?: string;
  attrs?: Record<string, string>;
}

function request(service: string, records: Rec[], extraResource: Record<string, string> = {}): Buffer {
  const data: ResourceLogs[] = [
    {
      resource: {
        attributes: [
          { key: 'service.name', value: service },
          ...Object.entries(extraResource).map(([key, value]) => ({ key, value })),
        ],
        droppedAttributesCount: 0,
      },
      schemaUrl: '',
      scopeLogs: [
        {
          scope: { name: 'test', version: '1', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          logRecords: records.map((r) => ({
            timeUnixNano: r.t,
            observedTimeUnixNano: 0n,
            severityNumber: r.level === 'error' ? 17 : 9,
            severityText: r.level ?? 'info',
            body: r.body,
            attributes: Object.entries(r.attrs ?? {}).map(([key, value]) => ({ key, value })),
            droppedAttributesCount: 0,
            flags: 0,
            traceId: r.trace ?? '',
            spanId: r.trace ? '0102030405060708' : '',
            eventName: '',
          })),
        },
      ],
    },
  ];
  return encodeLogsRequest(data);
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'sonde-log-store-'));
});
const stores: LogStore[] = [];
const dbs: LogDb[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.shutdown();
  for (const d of dbs.splice(0)) d.close();
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
});

function openDb(): LogDb {
  const db = LogDb.open(join(dir, 'logs.db'));
  dbs.push(db);
  return db;
}

/** Every entry of a selection, read page by page (`max` entries a page). */
function selectAll(
  db: LogDb,
  matchers: LabelMatcher[],
  extra: Partial<Parameters<LogDb['selectPage']>[0]> = {},
  max = 1000,
): LokiEntry[] {
  const out: LokiEntry[] = [];
  let after: Parameters<LogDb['selectPage']>[0]['after'];
  for (;;) {
    const page = db.selectPage({ matchers, ...ALL, direction: 'forward', ...extra, after, max });
    out.push(...page.entries);
    if (!page.next) return out;
    after = page.next;
  }
}

const lines = (entries: LokiEntry[]) => entries.map((e) => e.line);

test('entries come back with their stream labels, line, metadata and trace id; matchers select streams', () => {
  const db = openDb();
  db.write(
    [
      request('checkout', [
        { t: T0, body: 'order placed', trace: traceId(1), attrs: { 'order.id': '42' } },
        { t: T0 + SEC, body: 'payment failed', level: 'error' },
      ]),
      request('cart', [{ t: T0 + 2n * SEC, body: 'cart emptied' }], { 'k8s.namespace.name': 'shop' }),
      request('cart-api', [{ t: T0 + 3n * SEC, body: new KeyValueList([{ key: 'kind', value: 'map' }]) }]),
    ],
    1_700_000_000_000,
  );
  const [first] = selectAll(db, [{ name: 'service_name', op: '=', value: 'checkout' }]);
  expect(first).toStrictEqual({
    timeNs: T0,
    line: 'order placed',
    stream: { service_name: 'checkout' },
    metadata: expect.objectContaining({
      trace_id: traceId(1),
      span_id: '0102030405060708',
      order_id: '42',
      severity_text: 'info',
      detected_level: 'info',
      scope_name: 'test',
    }),
  });
  expect(lines(selectAll(db, [{ name: 'service_name', op: '=', value: 'checkout' }]))).toStrictEqual([
    'order placed',
    'payment failed',
  ]);
  expect(lines(selectAll(db, [{ name: 'service_name', op: '=~', value: 'cart.*' }]))).toStrictEqual([
    'cart emptied',
    expect.any(String),
  ]);
  // Regexes are anchored: "cart" does not match "cart-api".
  expect(lines(selectAll(db, [{ name: 'service_name', op: '=~', value: 'cart' }]))).toStrictEqual(['cart emptied']);
  expect(lines(selectAll(db, [{ name: 'service_name', op: '!~', value: 'cart.*' }]))).toHaveLength(2);
  expect(lines(selectAll(db, [{ name: 'service_name', op: '!=', value: 'checkout' }]))).toHaveLength(2);
  // A missing label is "": != "shop" holds for streams without the label.
  expect(selectAll(db, [{ name: 'k8s_namespace_name', op: '!=', value: 'shop' }])).toHaveLength(3);
  expect(lines(selectAll(db, [{ name: 'k8s_namespace_name', op: '=', value: 'shop' }]))).toStrictEqual([
    'cart emptied',
  ]);
  expect(selectAll(db, [{ name: 'service_name', op: '=', value: 'nope' }])).toStrictEqual([]);
  expect(() => selectAll(db, [{ name: 'service_name', op: '=~', value: '(a' }])).toThrow(/invalid regular expression/);
});

test('time window [start, end), both directions, ties in arrival order, across overlapping blobs and pages', () => {
  const db = openDb();
  // Three writes (three blobs) whose times interleave, with ties.
  const times = [
    [5n, 1n, 9n, 3n],
    [2n, 8n, 3n, 7n],
    [6n, 3n, 4n, 10n],
  ];
  for (const [w, ts] of times.entries()) {
    db.write(
      [
        request(
          's',
          ts.map((t, i) => ({ t: T0 + t * SEC, body: `w${w}-i${i}-t${t}` })),
        ),
      ],
      1_700_000_000_000,
    );
  }
  const all = times.flatMap((ts, w) => ts.map((t, i) => ({ t, line: `w${w}-i${i}-t${t}` })));
  const forward = [...all].sort((a, b) => Number(a.t - b.t)).map((x) => x.line); // stable: arrival order on ties
  const m: LabelMatcher[] = [{ name: 'service_name', op: '=', value: 's' }];
  expect(lines(selectAll(db, m))).toStrictEqual(forward);
  expect(lines(selectAll(db, m, { direction: 'backward' }))).toStrictEqual([...forward].reverse());
  // Pages of 2 or 3 give the same sequence.
  expect(lines(selectAll(db, m, {}, 2))).toStrictEqual(forward);
  expect(lines(selectAll(db, m, { direction: 'backward' }, 3))).toStrictEqual([...forward].reverse());
  // [3s, 7s): 3 included, 7 not.
  const window = { startNs: T0 + 3n * SEC, endNs: T0 + 7n * SEC };
  expect(lines(selectAll(db, m, window))).toStrictEqual(
    all
      .filter((x) => x.t >= 3n && x.t < 7n)
      .sort((a, b) => Number(a.t - b.t))
      .map((x) => x.line),
  );
  // A limit: the first page of 4, backward, is the 4 latest.
  const page = db.selectPage({ matchers: m, ...ALL, direction: 'backward', max: 4 });
  expect(lines(page.entries)).toStrictEqual([...forward].reverse().slice(0, 4));
  expect(page.next).toBeDefined();
});

test('line and trace id hints: only matching entries (a map body matched on its JSON line); trace id lookup through the index', () => {
  const db = openDb();
  for (let i = 0; i < 50; i++) {
    db.write(
      [
        request('api', [
          {
            t: T0 + BigInt(i) * SEC,
            body: i === 17 ? 'found the needle here' : `plain line ${i}`,
            trace: traceId(i + 1),
          },
        ]),
      ],
      1_700_000_000_000 + i,
    );
  }
  const m: LabelMatcher[] = [{ name: 'service_name', op: '=', value: 'api' }];
  expect(lines(selectAll(db, m, { lineContains: ['needle'] }))).toStrictEqual(['found the needle here']);
  expect(lines(selectAll(db, m, { lineContains: ['plain', 'line 3'] }))).toStrictEqual([
    'plain line 3',
    ...Array.from({ length: 10 }, (_, i) => `plain line ${30 + i}`),
  ]);
  const hit = selectAll(db, m, { traceId: traceId(31).toUpperCase() });
  expect(hit.map((e) => e.metadata.trace_id)).toStrictEqual([traceId(31)]);
  expect(selectAll(db, m, { traceId: traceId(999) })).toStrictEqual([]);
  // A blob with a map body: its line is JSON, whose quotes are not in the protobuf; it is still read.
  db.write([request('api', [{ t: T0, body: new KeyValueList([{ key: 'msg', value: 'quoted' }]) }])], 1_700_000_000_000);
  expect(lines(selectAll(db, m, { lineContains: ['"msg":"quoted"'] }))).toStrictEqual(['{"msg":"quoted"}']);
  expect(selectAll(db, m, { traceId: 'not-hex' })).toStrictEqual([]);
  // The trace id, outside the window: not returned.
  expect(selectAll(db, m, { traceId: traceId(31), startNs: T0, endNs: T0 + 10n * SEC })).toStrictEqual([]);
});

test('label names and values, series and stats come from the streams and postings', () => {
  const db = openDb();
  db.write(
    [
      request('a', [{ t: T0, body: 'xx' }], { 'deployment.environment': 'prod', 'host.name': 'h1' }),
      request('b', [
        { t: T0 + 10n * SEC, body: 'yyy' },
        { t: T0 + 11n * SEC, body: 'zzzz' },
      ]),
    ],
    1_700_000_000_000,
  );
  expect(db.labelNames(ALL.startNs, ALL.endNs)).toStrictEqual(['deployment_environment', 'service_name']);
  expect(db.labelValues('service_name', ALL.startNs, ALL.endNs)).toStrictEqual(['a', 'b']);
  expect(
    db.labelValues('service_name', ALL.startNs, ALL.endNs, [
      { name: 'deployment_environment', op: '=', value: 'prod' },
    ]),
  ).toStrictEqual(['a']);
  // Only streams with entries in the window.
  expect(db.labelValues('service_name', T0 + 5n * SEC, T0 + 20n * SEC)).toStrictEqual(['b']);
  expect(db.series([[{ name: 'service_name', op: '=~', value: 'a|b' }]], ALL.startNs, ALL.endNs)).toStrictEqual([
    { deployment_environment: 'prod', service_name: 'a' },
    { service_name: 'b' },
  ]);
  expect(db.stats([{ name: 'service_name', op: '=', value: 'b' }], ALL.startNs, ALL.endNs)).toStrictEqual({
    streams: 1,
    chunks: 1,
    bytes: 7,
    entries: 2,
  });
});

test('volume: line bytes per stream and interval from the postings, a blob spread over its time extent', () => {
  const db = openDb();
  // One write (one batch, one blob) per minute: each blob lies in one interval of a 60 s step.
  db.write([request('a', [{ t: T0, body: 'xx' }]), request('b', [{ t: T0 + 1n * SEC, body: 'yyy' }])], 1);
  db.write([request('a', [{ t: T0 + 60n * SEC, body: 'xxxx' }])], 2);
  const bounds = [T0, T0 + 60n * SEC, T0 + 120n * SEC];
  const by = (v: ReturnType<LogDb['volume']>) => Object.fromEntries(v.map((x) => [x.labels.service_name, x.bytes]));
  expect(by(db.volume([], bounds))).toStrictEqual({
    a: [
      [0, 2],
      [1, 4],
    ],
    b: [[0, 3]],
  });
  expect(by(db.volume([{ name: 'service_name', op: '=', value: 'a' }], bounds))).toStrictEqual({
    a: [
      [0, 2],
      [1, 4],
    ],
  });
  // Outside the bounds: left out.
  expect(by(db.volume([], [T0 + 30n * SEC, T0 + 90n * SEC]))).toStrictEqual({ a: [[0, 4]] });
  // A blob whose entries span two intervals (10 s .. 70 s): its bytes spread by time, 5/6 and 1/6.
  const db2 = LogDb.open(join(dir, 'spread.db'));
  dbs.push(db2);
  db2.write(
    [
      request('c', [
        { t: T0 + 10n * SEC, body: 'abc' },
        { t: T0 + 70n * SEC, body: 'abc' },
      ]),
    ],
    1,
  );
  expect(by(db2.volume([], bounds))).toStrictEqual({
    c: [
      [0, 5],
      [1, 1],
    ],
  });
});

/** One request with a resource (a stream) per service name, one record each. */
function manyStreams(n: number, extra: (i: number) => Record<string, string> = () => ({})): Buffer {
  const data: ResourceLogs[] = Array.from({ length: n }, (_, i) => ({
    resource: {
      attributes: Object.entries({ 'service.name': `s${i}`, ...extra(i) }).map(([key, value]) => ({ key, value })),
      droppedAttributesCount: 0,
    },
    schemaUrl: '',
    scopeLogs: [
      {
        scope: { name: 'test', version: '1', attributes: [], droppedAttributesCount: 0 },
        schemaUrl: '',
        logRecords: [
          {
            timeUnixNano: T0 + BigInt(i),
            observedTimeUnixNano: 0n,
            severityNumber: 9,
            severityText: 'info',
            body: `line of s${i}`,
            attributes: [],
            droppedAttributesCount: 0,
            flags: 0,
            traceId: '',
            spanId: '',
            eventName: '',
          },
        ],
      },
    ],
  }));
  return encodeLogsRequest(data);
}

test('label-value postings: a selector with an equality or a regex that needs the label reads only the streams it names', () => {
  const db = openDb();
  db.write([manyStreams(10_000, (i) => ({ 'deployment.environment': i % 2 ? 'prod' : 'dev' }))], 1);
  const examined = (f: () => unknown) => {
    db.streamsExamined = 0;
    f();
    return db.streamsExamined;
  };
  const m = (name: string, op: LabelMatcher['op'], value: string): LabelMatcher => ({ name, op, value });
  let got: LokiEntry[] = [];
  expect(examined(() => (got = selectAll(db, [m('service_name', '=', 's4242')])))).toBe(1);
  expect(lines(got)).toStrictEqual(['line of s4242']);
  expect(examined(() => (got = selectAll(db, [m('service_name', '=~', 's424[0-9]')])))).toBe(10);
  expect(lines(got)).toHaveLength(10);
  // Both: the equality's postings, then the other matchers on those streams.
  expect(
    examined(() => (got = selectAll(db, [m('service_name', '=', 's7'), m('deployment_environment', '=', 'prod')]))),
  ).toBe(1);
  expect(lines(got)).toStrictEqual(['line of s7']);
  expect(selectAll(db, [m('service_name', '=', 's8'), m('deployment_environment', '=', 'prod')])).toStrictEqual([]);
  expect(
    examined(() => db.labelValues('deployment_environment', ALL.startNs, ALL.endNs, [m('service_name', '=', 's3')])),
  ).toBe(1);
  // A label that is not there, and matchers an absent label satisfies (every stream is read, as before).
  expect(selectAll(db, [m('service_name', '=', 'nope')])).toStrictEqual([]);
  expect(
    examined(() =>
      db.labelValues('service_name', ALL.startNs, ALL.endNs, [m('service_name', '!=', 's1'), m('region', '=', '')]),
    ),
  ).toBe(10_000);
  expect(selectAll(db, [m('service_name', '!=', 's1'), m('region', '=', '')])).toHaveLength(9_999);
  // Retention removes the postings with their streams.
  db.enforceRetention(Date.now(), 1, Number.MAX_SAFE_INTEGER);
  expect(selectAll(db, [m('service_name', '=', 's4242')])).toStrictEqual([]);
  expect(Number(db.db.prepare('SELECT count(*) AS n FROM stream_labels').get()?.n)).toBe(0);
});

test('a store written before the label-value postings gets them at the next start', () => {
  const first = LogDb.open(join(dir, 'old.db'));
  first.write([manyStreams(3)], 1);
  first.db.exec('DELETE FROM stream_labels');
  first.close();
  const db = LogDb.open(join(dir, 'old.db'));
  dbs.push(db);
  expect(db.db.prepare('SELECT name, value FROM stream_labels ORDER BY value').all()).toEqual([
    { name: 'service_name', value: 's0' },
    { name: 'service_name', value: 's1' },
    { name: 'service_name', value: 's2' },
  ]);
  expect(lines(selectAll(db, [{ name: 'service_name', op: '=', value: 's1' }]))).toStrictEqual(['line of s1']);
});

test('a stream with many levels in a blob gets a level row for each, with its entries', () => {
  const db = openDb();
  // 12 levels (more than the writer compares one by one), records cycling through them, two streams.
  const records = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      t: T0 + BigInt(i) * SEC,
      body: `line ${i}`,
      attrs: { level: `l${i % 12}` },
    }));
  db.write([request('a', records(36)), request('b', records(5)), request('a', records(12))], 1_700_000_000_000);
  const rows = db.db
    .prepare(
      'SELECT s.labels AS stream, l.level, sum(l.entries) AS entries FROM level_times l JOIN streams s ON s.id = l.stream GROUP BY 1, 2 ORDER BY 1, 2',
    )
    .all()
    .map((r) => `${JSON.parse(r.stream as string).service_name} ${r.level} ${r.entries}`);
  const levels = Array.from({ length: 12 }, (_, i) => `l${i}`).sort();
  expect(rows).toStrictEqual([
    ...levels.map((l) => `a ${l} 4`),
    ...levels.filter((l) => Number(l.slice(1)) < 5).map((l) => `b ${l} 1`),
  ]);
});

test('a request that does not decode is refused whole; the others of its batch are stored', () => {
  const db = openDb();
  // Random-looking ids (the bloom filter hashes their bytes).
  const keptId = '5b8efff798038103d269b633813fc60c';
  const refusedId = 'a3ce929d0e0e47364bf4ad53df20c46a';
  const good = request('ok', [{ t: T0, body: 'kept', trace: keptId, level: 'info' }]);
  // Its first record reads (the index pass meets it) before the bytes that do not.
  const bad = Buffer.concat([
    request('bad', [{ t: T0 - 100n * SEC, body: 'half', trace: refusedId, level: 'error' }]),
    Buffer.from([0x0a, 0xff, 0xff]),
  ]);
  const after = request('ok', [{ t: T0 + SEC, body: 'also kept', level: 'info' }]);
  const r = db.write([good, bad, after], 1_700_000_000_000);
  expect(r).toStrictEqual({ items: 2, bytes: good.length + after.length, failed: 1 });
  expect(lines(selectAll(db, [{ name: 'service_name', op: '=~', value: '.+' }]))).toStrictEqual(['kept', 'also kept']);
  expect(db.labelValues('service_name', ALL.startNs, ALL.endNs)).toStrictEqual(['ok']);
  // Nothing of the refused request in the blob's index: its extent, level rows and trace ids.
  expect(
    db.db.prepare('SELECT records, CAST(min_ns AS TEXT) AS min_ns, CAST(max_ns AS TEXT) AS max_ns FROM blobs').all(),
  ).toEqual([{ records: 2, min_ns: String(T0), max_ns: String(T0 + SEC) }]);
  expect(db.db.prepare('SELECT level, detected_level, entries FROM level_times').all()).toEqual([
    { level: '', detected_level: 'info', entries: 2 },
  ]);
  const bloom = db.db.prepare('SELECT bloom FROM blob_traces').get()?.bloom as Uint8Array;
  expect(blobBloomHas(bloom, Buffer.from(keptId, 'hex'))).toBe(true);
  expect(blobBloomHas(bloom, Buffer.from(refusedId, 'hex'))).toBe(false);
});

test('retention removes batches by age, then the oldest past the size bound; indexes go with them', () => {
  const db = openDb();
  const now = 1_700_000_000_000;
  db.write([request('old', [{ t: T0, body: 'old', trace: traceId(1) }])], now - 2 * 3600_000);
  db.write([request('new', [{ t: T0 + SEC, body: 'new', trace: traceId(2) }])], now);
  expect(db.enforceRetention(now, 3600_000, 2 ** 30)).toStrictEqual({ batches: 1, items: 1 });
  const any: LabelMatcher[] = [{ name: 'service_name', op: '=~', value: '.+' }];
  expect(lines(selectAll(db, any))).toStrictEqual(['new']);
  expect(db.labelValues('service_name', ALL.startNs, ALL.endNs)).toStrictEqual(['new']);
  expect(selectAll(db, any, { traceId: traceId(1) })).toStrictEqual([]);
  expect(lines(selectAll(db, any, { traceId: traceId(2) }))).toStrictEqual(['new']);

  // Size: 40 batches of incompressible lines, then a bound below their size keeps the newest only.
  for (let i = 0; i < 40; i++) {
    const noise = Buffer.alloc(20_000);
    for (let j = 0; j < noise.length; j++) noise[j] = (Math.imul(j + 1, 2654435761 + i) >>> 24) & 0xff;
    db.write([request('bulk', [{ t: T0 + BigInt(10 + i) * SEC, body: `${i} ${noise.toString('base64')}` }])], now);
  }
  const before = db.usedBytes();
  const bound = Math.floor(before / 2);
  const removed = db.enforceRetention(now, 3600_000, bound);
  expect(removed.items).toBeGreaterThan(10);
  expect(db.usedBytes()).toBeLessThanOrEqual(bound);
  const kept = lines(selectAll(db, [{ name: 'service_name', op: '=', value: 'bulk' }])).map((l) =>
    Number(l.split(' ')[0]),
  );
  expect(kept.length).toBeGreaterThan(0);
  expect(kept).toStrictEqual(Array.from({ length: kept.length }, (_, i) => 40 - kept.length + i));
});

test("the writer's index pass agrees with toLokiEntries: stream, time fallbacks, trace id, string bodies", () => {
  const data: ResourceLogs[] = [
    {
      resource: {
        attributes: [
          { key: 'k8s.container.name', value: 'fallback-name' },
          { key: 'k8s.pod.name', value: 'pod-1' },
          { key: 'host.name', value: 'h' },
        ],
        droppedAttributesCount: 0,
      },
      schemaUrl: '',
      scopeLogs: [
        {
          scope: { name: 's', version: '', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          logRecords: [
            { t: T0, obs: 0n, body: 'plain ünïcode', trace: traceId(9) },
            { t: 0n, obs: T0 + 5n, body: new KeyValueList([{ key: 'a', value: 1n }]), trace: '' },
            { t: 0n, obs: 0n, body: undefined, trace: '' },
            { t: 0n, obs: 0n, body: 2.5, trace: traceId(10) },
          ].map((r) => ({
            timeUnixNano: r.t,
            observedTimeUnixNano: r.obs,
            severityNumber: 0,
            severityText: '',
            body: r.body as AnyValue,
            attributes: [],
            droppedAttributesCount: 0,
            flags: 0,
            traceId: r.trace,
            spanId: '',
            eventName: '',
          })),
        },
      ],
    },
    { resource: { attributes: [], droppedAttributesCount: 0 }, schemaUrl: '', scopeLogs: [] },
  ];
  const body = encodeLogsRequest(data);
  const receivedNs = 1_700_000_000_123_000_000n;
  const entries = toLokiEntries(decodeLogsRequest(body, { maxAnyValueDepth: 32 }), receivedNs);
  const indexed: unknown[] = [];
  indexLogsRequest(body, receivedNs, (r) =>
    indexed.push({
      stream: r.stream,
      timeNs: indexedTime(r),
      traceId: r.traceAt >= 0 ? body.toString('hex', r.traceAt, r.traceAt + 16) : undefined,
      plain: r.plain,
    }),
  );
  expect(indexed).toStrictEqual(
    entries.map((e, i) => ({
      stream: streamKey(e.stream),
      timeNs: e.timeNs,
      traceId: e.metadata.trace_id,
      plain: i !== 1 && i !== 3,
    })),
  );
  expect(entries[0].stream).toStrictEqual({
    k8s_container_name: 'fallback-name',
    k8s_pod_name: 'pod-1',
    service_name: 'fallback-name',
  });
  expect(() => indexLogsRequest(Buffer.from([0x0a, 0x05, 0x12, 0x09]), receivedNs, () => {})).toThrow();
});

test("the writer's index pass agrees with toLokiEntries on level and detected_level", () => {
  const rec = (severityNumber: number, severityText: string, attrs: [string, AnyValue][]) => ({
    timeUnixNano: T0,
    observedTimeUnixNano: 0n,
    severityNumber,
    severityText,
    body: 'line',
    attributes: attrs.map(([key, value]) => ({ key, value })),
    droppedAttributesCount: 0,
    flags: 0,
    traceId: '',
    spanId: '',
    eventName: '',
  });
  const scope = (attrs: [string, AnyValue][], logRecords: ReturnType<typeof rec>[]) => ({
    scope: {
      name: 's',
      version: '',
      attributes: attrs.map(([key, value]) => ({ key, value })),
      droppedAttributesCount: 0,
    },
    schemaUrl: '',
    logRecords,
  });
  const records = [
    rec(9, 'info', []),
    rec(17, '', []),
    rec(0, '', []),
    rec(13, 'WARNING', []),
    rec(9, 'info', [['level', 'ERR']]),
    rec(9, 'info', [['log.level', 'Fatal']]),
    rec(9, '', [
      ['Severity', 'notice'],
      ['user.id', 'u-1'],
      ['lvl', 'debug'],
    ]),
    rec(5, 'dbg', [['detected_level', 'custom']]),
    rec(5, 'dbg', [['detected.level', '']]),
    rec(21, '', [['severity_text', 'trace']]),
    rec(21, 'error', [['severity_text', 'trace']]),
    rec(1, '', [['level', 7n]]),
    rec(1, '', [
      ['sévérité', 'x'],
      ['service', 'y'],
      ['d', 'z'],
    ]),
  ];
  const data: ResourceLogs[] = [
    {
      resource: { attributes: [{ key: 'service.name', value: 'a' }], droppedAttributesCount: 0 },
      schemaUrl: '',
      scopeLogs: [scope([], records), scope([['level', 'warn']], records.slice(0, 5))],
    },
    {
      resource: {
        attributes: [
          { key: 'service.name', value: 'b' },
          { key: 'log_level', value: 'crit' },
        ],
        droppedAttributesCount: 0,
      },
      schemaUrl: '',
      scopeLogs: [scope([], records.slice(0, 6))],
    },
  ];
  const body = encodeLogsRequest(data);
  const entries = toLokiEntries(decodeLogsRequest(body, { maxAnyValueDepth: 32 }), T0);
  const indexed: unknown[] = [];
  indexLogsRequest(body, T0, (r) => indexed.push([r.level, r.detectedLevel]));
  expect(indexed).toStrictEqual(entries.map((e) => [e.metadata.level ?? '', e.metadata.detected_level]));
  // The cases are not all the same.
  expect(new Set(indexed.map((x) => JSON.stringify(x))).size).toBeGreaterThan(10);
});

/** The LogDb as a LogSource, with its volume index or without (every entry read). */
function dbSource(db: LogDb, withVolume: boolean): LogSource {
  const source: LogSource = {
    async *select(sel) {
      let after: SelectCursor | undefined;
      for (;;) {
        const page = db.selectPage({ ...sel, after, max: 5000 });
        yield* page.entries;
        if (!page.next) return;
        after = page.next;
      }
    },
    labelNames: async () => [],
    labelValues: async () => [],
    series: async () => [],
    stats: async () => ({ streams: 0, chunks: 0, bytes: 0, entries: 0 }),
    volume: async () => [],
  };
  if (withVolume) {
    source.countVolume = async (q) => db.countVolume(q);
    Object.assign(source, { countVolumeLabels: ['level', 'detected_level'] });
  }
  return source;
}

test('the log-volume query counts from the level index as it would from every entry', async () => {
  const db = openDb();
  const levels = ['info', 'error', 'warn', 'debug', ''];
  // 3 services over 10 minutes, times out of order within requests, levels from severity and
  // attributes; ~2,000-byte lines so that the records fill many blobs.
  for (let batch = 0; batch < 6; batch++) {
    const bodies: Buffer[] = [];
    for (let r = 0; r < 20; r++) {
      const recs: Rec[] = Array.from({ length: 40 }, (_, i) => {
        const k = batch * 800 + r * 40 + i;
        const jitter = BigInt((k * 7919) % 5000) * 1_000_000n;
        return {
          t: T0 + BigInt(k) * 700_000_000n + jitter,
          body: `line ${k} ${'x'.repeat(2000)}`,
          level: levels[k % 5] || undefined,
          attrs: (k % 11 === 0 ? { level: 'CRIT' } : k % 13 === 0 ? { 'log.level': 'err' } : {}) as Record<
            string,
            string
          >,
        };
      });
      bodies.push(request(`svc-${r % 3}`, recs));
    }
    // Times too far apart for exact offsets in a double: that row keeps no times (its blob is read).
    if (batch === 2)
      bodies.push(
        request('svc-1', [
          { t: 5n, body: 'early' },
          { t: T0 + 30n * SEC, body: 'late' },
        ]),
      );
    db.write(bodies, 1_700_000_000_000 + batch);
  }
  const cases = [
    { q: 'sum by (level, detected_level) (count_over_time({service_name="svc-1"} | drop __error__ [1m]))', step: 60n },
    { q: 'sum by (detected_level) (count_over_time({service_name=~"svc-[02]"} [90s]))', step: 30n },
    { q: 'sum by (level) (rate({service_name=~"svc.+"} [7s]))', step: 13n },
    { q: 'sum(count_over_time({service_name="svc-2"} | drop __error__ [20s]))', step: 20n },
  ];
  const run = async (source: LogSource, q: string, step: bigint, start: bigint) => {
    const stats = { linesProcessed: 0, bytesProcessed: 0, entriesReturned: 0 };
    const v = await runMetricQuery(
      source,
      parseQuery(q) as MetricExpr,
      stepsOf(start, start + 600n * SEC, step * SEC),
      { maxSeries: 500 },
      stats,
    );
    if (v.type !== 'matrix') throw new Error('not a matrix');
    const series = v.series.map((x) => ({ ...x, labels: JSON.stringify(x.labels) }));
    return series.sort((a, b) => (a.labels < b.labels ? -1 : 1));
  };
  let total = 0;
  for (const { q, step } of cases) {
    // Windows aligned with the data's seconds, and cutting them anywhere.
    for (const start of [T0, T0 + 123_456_789n]) {
      const expected = await run(dbSource(db, false), q, step, start);
      expect(await run(dbSource(db, true), q, step, start)).toStrictEqual(expected);
      total += expected.reduce((n, x) => n + x.values.length, 0);
    }
  }
  expect(total).toBeGreaterThan(100);
  // Blobs without rows (a store written before they were) and rows without times are read instead.
  const blobs = Number(db.db.prepare('SELECT count(*) AS n FROM blobs').get()?.n);
  expect(blobs).toBeGreaterThan(10);
  db.db.exec(`DELETE FROM level_times WHERE blob <= (SELECT min(id) FROM blobs) + ${Math.floor(blobs / 3)}`);
  db.db.exec('UPDATE level_times SET times = NULL WHERE blob % 3 = 1');
  for (const { q, step } of cases) {
    const start = T0 + 123_456_789n;
    expect(await run(dbSource(db, true), q, step, start)).toStrictEqual(await run(dbSource(db, false), q, step, start));
  }
});

function logsBatch(body: Buffer, raw = true): Batch<'logs'> {
  const data = decodeLogsRequest(body, { maxAnyValueDepth: 32 });
  return {
    signal: 'logs',
    data,
    itemCount: data.reduce((n, rl) => n + rl.scopeLogs.reduce((m, sl) => m + sl.logRecords.length, 0), 0),
    context: {
      transport: 'http',
      encoding: raw ? 'protobuf' : 'json',
      receivedAt: Date.now(),
      raw: raw ? body : undefined,
      modified: false,
    },
    warnings: [],
    decodeStats: undefined,
  };
}

async function openStore(extra: Partial<LogStoreOptions> = {}): Promise<{ store: LogStore; registry: Registry }> {
  const registry = new Registry();
  const store = new LogStore(
    {
      path: join(dir, 'logs.db'),
      retentionMs: 24 * 3600_000,
      maxBytes: 2 ** 30,
      queueBytes: 64 * 2 ** 20,
      onFull: 'refuse',
      batchMaxBytes: 16 * 2 ** 20,
      flushIntervalMs: 20,
      retentionIntervalMs: 3600_000,
      durability: 'wal',
      ...extra,
    },
    registry,
    createLogger('silent'),
  );
  stores.push(store);
  await store.start();
  return { store, registry };
}

async function collect(it: AsyncIterable<LokiEntry>, limit = Infinity): Promise<LokiEntry[]> {
  const out: LokiEntry[] = [];
  for await (const e of it) {
    out.push(e);
    if (out.length >= limit) break;
  }
  return out;
}

test('LogStore: consumed requests (protobuf or not) are read through LogSource on the reader threads', async () => {
  const { store, registry } = await openStore();
  await store.consume(logsBatch(request('svc', [{ t: T0, body: 'from protobuf', trace: traceId(7) }])));
  await store.consume(logsBatch(request('svc', [{ t: T0 + SEC, body: 'from json' }]), false));
  // 2500 more: a selection reads more than one page.
  for (let i = 0; i < 5; i++) {
    await store.consume(
      logsBatch(
        request(
          'bulk',
          Array.from({ length: 500 }, (_, j) => ({ t: T0 + BigInt(i * 500 + j), body: `n${i * 500 + j}` })),
        ),
      ),
    );
  }
  await store.flush();
  expect(store.readerThread).toBe(true);
  const svc: LabelMatcher[] = [{ name: 'service_name', op: '=', value: 'svc' }];
  const got = await collect(store.select({ matchers: svc, ...ALL, direction: 'backward' }));
  expect(lines(got)).toStrictEqual(['from json', 'from protobuf']);
  expect(got[1].metadata.trace_id).toBe(traceId(7));
  const bulk = await collect(
    store.select({ matchers: [{ name: 'service_name', op: '=', value: 'bulk' }], ...ALL, direction: 'forward' }),
  );
  expect(bulk).toHaveLength(2500);
  expect(bulk.map((e) => e.line)).toStrictEqual(Array.from({ length: 2500 }, (_, i) => `n${i}`));
  expect(
    await collect(store.select({ matchers: svc, ...ALL, direction: 'forward', traceId: traceId(7) })),
  ).toHaveLength(1);
  expect(await store.labelValues('service_name', ALL.startNs, ALL.endNs)).toStrictEqual(['bulk', 'svc']);
  expect(await store.labelNames(ALL.startNs, ALL.endNs)).toStrictEqual(['service_name']);
  expect(await store.series([svc], ALL.startNs, ALL.endNs)).toStrictEqual([{ service_name: 'svc' }]);
  expect((await store.stats(svc, ALL.startNs, ALL.endNs)).entries).toBe(2);
  await expect(
    collect(store.select({ matchers: [{ name: 'x', op: '=~', value: '(' }], ...ALL, direction: 'forward' })),
  ).rejects.toThrow(/invalid regular expression/);
  const written = (await registry.getSingleMetric('sonde_log_store_records_written_total')?.get())?.values[0].value;
  expect(written).toBe(2502);
  // A cancelled selection stops.
  const ac = new AbortController();
  ac.abort();
  await expect(
    collect(store.select({ matchers: svc, ...ALL, direction: 'forward', signal: ac.signal })),
  ).rejects.toThrow(/cancelled/);
});

test('LogStore: a full write queue refuses with 503 + Retry-After (on_full: refuse), never half-written', async () => {
  const body = request('svc', [{ t: T0, body: 'x'.repeat(1000) }]);
  const { store, registry } = await openStore({
    queueBytes: body.length + 10,
    durability: 'memory',
    flushIntervalMs: 60_000,
  });
  store.consume(logsBatch(body)); // queued: the writer waits for its flush interval
  let refused: unknown;
  try {
    store.admit(body.length);
  } catch (err) {
    refused = err;
  }
  expect(refused).toBeInstanceOf(OverloadedError);
  expect((refused as OverloadedError).httpStatus).toBe(503);
  expect((refused as OverloadedError).retryAfterSeconds).toBe(1);
  expect((refused as Error).message).toMatch(/log_store\.queue_size/);
  expect(() => store.consume(logsBatch(body))).toThrow(OverloadedError);
  expect((await registry.getSingleMetric('sonde_log_store_refused_requests_total')?.get())?.values[0].value).toBe(2);
  await store.flush();
  expect(
    await collect(
      store.select({ matchers: [{ name: 'service_name', op: '=', value: 'svc' }], ...ALL, direction: 'forward' }),
    ),
  ).toHaveLength(1);
});

test.each(['drop_newest', 'drop'] as const)(
  'LogStore: a full write queue with on_full %s accepts the request without storing it (counted queue_full)',
  async (onFull) => {
    const body = request('svc', [{ t: T0, body: 'x'.repeat(1000) }]);
    const { store, registry } = await openStore({
      queueBytes: body.length + 10,
      durability: 'memory',
      flushIntervalMs: 60_000,
      onFull,
    });
    store.consume(logsBatch(body)); // queued: the writer waits for its flush interval
    expect(() => store.admit(body.length)).not.toThrow();
    expect(() => store.consume(logsBatch(body))).not.toThrow();
    const dropped = await registry.getSingleMetric('sonde_log_store_dropped_records_total')?.get();
    expect(dropped?.values.find((v) => v.labels.reason === 'queue_full')?.value).toBe(1);
    expect((await registry.getSingleMetric('sonde_log_store_refused_requests_total')?.get())?.values[0].value).toBe(0);
    await store.flush();
    expect(
      await collect(
        store.select({ matchers: [{ name: 'service_name', op: '=', value: 'svc' }], ...ALL, direction: 'forward' }),
      ),
    ).toHaveLength(1);
  },
);

test('LogStore: on_full drop_oldest is refused with the reason (a queued request is already acknowledged)', async () => {
  await expect(openStore({ onFull: 'drop_oldest' as never })).rejects.toThrow(
    /log_store\.on_full: drop_oldest is not supported by a store/,
  );
});

test('LogStore: acknowledged requests in the write-ahead log that SQLite lacks are replayed at start', async () => {
  // A killed receiver's log: two requests journaled (acknowledged), none written to SQLite.
  const walDir = join(dir, 'logs.db.journal');
  const wal = BlobWal.open(walDir, { segmentBytes: 2 ** 30, syncIntervalMs: 0 });
  await wal.recover(undefined, async () => {});
  await wal.append(encodeRecord(request('crash', [{ t: T0, body: 'first' }]), 1));
  await wal.append(encodeRecord(request('crash', [{ t: T0 + SEC, body: 'second', trace: traceId(3) }]), 1));
  await wal.close();
  const { store, registry } = await openStore();
  expect(store.walRecovery?.records).toBe(2);
  const m: LabelMatcher[] = [{ name: 'service_name', op: '=', value: 'crash' }];
  expect(lines(await collect(store.select({ matchers: m, ...ALL, direction: 'forward' })))).toStrictEqual([
    'first',
    'second',
  ]);
  expect((await registry.getSingleMetric('sonde_log_store_wal_replayed_records_total')?.get())?.values[0].value).toBe(
    2,
  );
  await store.shutdown();
  // Once: a second start replays nothing, and holds them once.
  const again = await openStore();
  expect(again.store.walRecovery?.records).toBe(0);
  expect(await collect(again.store.select({ matchers: m, ...ALL, direction: 'forward' }))).toHaveLength(2);
});

describe("the writer's per-record encodings", () => {
  const unpacked = (data: Uint8Array) => {
    const out: number[] = [];
    unpackTimes(data, (t) => out.push(t));
    return out;
  };

  test("times pack and unpack as offsets from the group's least: in order or not, small and beyond 32 bits", () => {
    const cases: number[][] = [
      [0, 1, 2, 1_000_000, 1_000_001],
      [5_000_000, 10, 0, 2 ** 31, 2 ** 30 - 1, 2 ** 30, 2 ** 30 + 1],
      [2 ** 51, 0, 2 ** 52, 3, 2 ** 40 + 7],
    ];
    for (const times of cases) {
      const min = Math.min(...times);
      expect(unpacked(packTimes(times, min) as Uint8Array)).toEqual(times.map((t) => t - min));
    }
    // Successive times a microsecond apart: under 2 bytes a time.
    const dense = Array.from({ length: 1000 }, (_, i) => i * 1000);
    expect((packTimes(dense, 0) as Uint8Array).length).toBeLessThan(2 * dense.length);
  });

  test('a time whose difference from the one before is not exact once zigzag-encoded packs no times', () => {
    expect(packTimes([-(2 ** 53), 2 ** 53], -(2 ** 53))).toBeUndefined();
    // 2^53 - 3 from the one before: its zigzag value (2^54 - 7) is not a double; it was packed rounded.
    expect(packTimes([2 ** 53, 3], 0)).toBeUndefined();
  });

  test("packed times are a copy: a later, larger group does not change an earlier one's bytes", () => {
    const first = packTimes([0, 300, 70_000], 0) as Uint8Array;
    const copy = Uint8Array.from(first);
    // More times than the scratch buffer holds at first (it grows).
    const many = Array.from({ length: 5000 }, (_, i) => i * 2 ** 33);
    expect(unpacked(packTimes(many, 0) as Uint8Array)).toEqual(many);
    expect(first).toEqual(copy);
  });

  test('blobs written with the former zstd parameters (level 1 alone) still read, and new ones read', () => {
    const parts = [request('a', [{ t: T0, body: 'one' }]), request('b', [{ t: T0 + SEC, body: 'two' }])];
    const whole = Buffer.concat(parts);
    const former = zstdCompressSync(whole, { params: { [zlib.ZSTD_c_compressionLevel]: 1 } });
    expect(unpackBlob(former).equals(whole)).toBe(true);
    expect(unpackBlob(packBlob(parts)).equals(whole)).toBe(true);
  });

  test('packed blobs do not share the buffer their requests are gathered in: one after the other, small and past 1 MiB', () => {
    const partsOf = (n: number, fill: number) =>
      Array.from({ length: n }, (_, i) => Buffer.alloc(20_000 + i, fill + i));
    const cases = [partsOf(3, 1), partsOf(13, 50), partsOf(80, 100), partsOf(2, 200)];
    const packed = cases.map((parts) => packBlob(parts));
    cases.forEach((parts, i) => {
      expect(unpackBlob(packed[i]).equals(Buffer.concat(parts))).toBe(true);
    });
  });

  test("a blob's bloom filter sets the bits it always did (filters in existing stores still answer)", () => {
    // The definition: 8 bits (h1 + i·h2) mod m, h1 and h2 from the id's two halves.
    const reference = (bloom: Uint8Array, id: Buffer) => {
      const m = bloom.length * 8;
      const h1 = (id.readUInt32LE(0) ^ id.readUInt32LE(8)) >>> 0;
      const h2 = ((id.readUInt32LE(4) ^ id.readUInt32LE(12)) | 1) >>> 0;
      for (let i = 0; i < 8; i++) {
        const bit = (h1 + i * h2) % m;
        bloom[bit >> 3] |= 1 << (bit & 7);
      }
    };
    for (const size of [1, 3, 1000, 1181]) {
      const ids = Array.from({ length: size }, () => randomBytes(16));
      const expected = newBlobBloom(size);
      const actual = newBlobBloom(size);
      for (const id of ids) {
        reference(expected, id);
        blobBloomAdd(actual, id);
      }
      expect(Buffer.from(actual).equals(Buffer.from(expected))).toBe(true);
      for (const id of ids) expect(blobBloomHas(expected, id)).toBe(true);
    }
  });

  test("a blob's bloom filter finds every id added (from inside a request's bytes) and few others", () => {
    // Trace ids are random.
    const ids = Array.from({ length: 2000 }, () => randomBytes(16));
    const bloom = newBlobBloom(ids.length);
    for (const id of ids) {
      // As the writer adds it: at its offset in the request body.
      const body = Buffer.concat([Buffer.from([1, 2, 3]), id, Buffer.from([4])]);
      blobBloomAdd(bloom, body, 3);
    }
    for (const id of ids) expect(blobBloomHas(bloom, id)).toBe(true);
    let falsePositives = 0;
    for (let i = 0; i < 10_000; i++) if (blobBloomHas(bloom, randomBytes(16))) falsePositives++;
    // About 0.06% expected (16 bits and 8 hashes an id).
    expect(falsePositives).toBeLessThan(100);
  });
});

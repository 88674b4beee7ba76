/**
 * The trace store's write-ahead log (durability: wal), in process with its real writer thread and
 * real files: replay of what SQLite lacks (once: records it already holds are not stored twice), a
 * torn tail and a corrupt record cut off at recovery, group commit, and a log that cannot be written
 * (disk full: a segment on /dev/full) refusing with 503 instead of acknowledging.
 * Kill -9 at saturation, end to end, is test/trace-store-wal.test.ts at the repository root.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createLogger } from '../src/logger';
import type { ResourceSpans } from '../src/model';
import { OtlpError } from '../src/otlp/errors';
import { decodeTraceRequest } from '../src/otlp/protobuf/decode-traces';
import { encodeTraceRequest } from '../src/otlp/protobuf/encode-traces';
import type { Batch } from '../src/pipeline/pipeline';
import { encodeRecord, HEADER_BYTES, segmentName } from '../src/record-log';
import { TraceDb } from '../src/trace-store/db';
import { lengthPrefix } from '../src/trace-store/scan';
import { TraceStore, type TraceStoreOptions } from '../src/trace-store/trace-store';
import { TraceWal } from '../src/trace-store/wal';
import { modelSpan } from './helpers';

const T0 = 1_700_000_000_000_000_000n;
const id = (n: number) => n.toString(16).padStart(32, '0');

function request(traceId: string, spans: number): Buffer {
  const data: ResourceSpans[] = [
    {
      resource: { attributes: [{ key: 'service.name', value: 'wal' }], droppedAttributesCount: 0 },
      schemaUrl: '',
      scopeSpans: [
        {
          scope: { name: 'test', version: '1', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          spans: Array.from({ length: spans }, (_, i) =>
            modelSpan({
              traceId,
              spanId: (i + 1).toString(16).padStart(16, '0'),
              name: `op-${i}`,
              startTimeUnixNano: T0 + BigInt(i),
              endTimeUnixNano: T0 + BigInt(i) + 1_000_000n,
              attributes: [{ key: 'padding', value: 'p'.repeat(200) }],
            }),
          ),
        },
      ],
    },
  ];
  return encodeTraceRequest(data);
}

function batch(body: Buffer): Batch<'traces'> {
  const data = decodeTraceRequest(body, { maxAnyValueDepth: 32 });
  return {
    signal: 'traces',
    data,
    itemCount: data.reduce((n, rs) => n + rs.scopeSpans.reduce((m, ss) => m + ss.spans.length, 0), 0),
    context: { transport: 'http', encoding: 'protobuf', receivedAt: Date.now(), raw: body, modified: false },
    warnings: [],
    decodeStats: undefined,
  };
}

let dir: string;
let dbPath: string;
let walDir: string;
const stores: TraceStore[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'sonde-store-wal-'));
  dbPath = join(dir, 'traces.db');
  walDir = `${dbPath}.journal`;
});

afterEach(async () => {
  for (const s of stores.splice(0)) await s.shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function open(extra: Partial<TraceStoreOptions> = {}): Promise<{ store: TraceStore; registry: Registry }> {
  const registry = new Registry();
  const store = new TraceStore(
    {
      path: dbPath,
      retentionMs: 24 * 3600_000,
      maxBytes: 2 ** 30,
      queueBytes: 64 * 2 ** 20,
      onFull: 'refuse',
      batchMaxBytes: 16 * 2 ** 20,
      flushIntervalMs: 50,
      retentionIntervalMs: 3600_000,
      indexedAttributes: [],
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

/** Spans stored for a trace (0: not found). */
async function spans(store: TraceStore, traceId: string): Promise<number> {
  const chunks = await store.traceChunks(Buffer.from(traceId, 'hex'));
  let n = 0;
  for (const chunk of chunks) {
    const rs = decodeTraceRequest(Buffer.concat([lengthPrefix(1, chunk.length), chunk]), { maxAnyValueDepth: 32 });
    for (const r of rs) for (const ss of r.scopeSpans) n += ss.spans.length;
  }
  return n;
}

async function metric(registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  return (await m.get()).values.reduce((n, v) => n + v.value, 0);
}

/** A log of `bodies` as a killed receiver would leave it (one segment), written through TraceWal. */
async function writeLog(bodies: Buffer[], spanCounts: number[]): Promise<{ segment: number; ends: number[] }> {
  const wal = TraceWal.open(walDir, { segmentBytes: 2 ** 30, syncIntervalMs: 0 });
  await wal.recover(undefined, async () => {});
  const ends: number[] = [];
  let segment = 0;
  for (const [i, body] of bodies.entries()) {
    const p = await wal.append(encodeRecord(body, spanCounts[i]));
    ends.push(p.offset);
    segment = p.segment;
  }
  await wal.close();
  return { segment, ends };
}

test('records that SQLite does not hold are replayed at start, before the store is ready, and only those', async () => {
  const bodies = [request(id(1), 3), request(id(2), 4), request(id(3), 5)];
  const log = await writeLog(bodies, [3, 4, 5]);
  // SQLite holds the first request already, and the log position past it (committed with it).
  const db = TraceDb.open(dbPath);
  db.write([bodies[0]], Date.now(), { segment: log.segment, offset: log.ends[0] });
  db.close();

  const { store, registry } = await open();
  // Found as soon as start() resolved: replay is part of it.
  expect([await spans(store, id(1)), await spans(store, id(2)), await spans(store, id(3))]).toStrictEqual([3, 4, 5]);
  expect(await metric(registry, 'sonde_trace_store_wal_replayed_spans_total')).toBe(9);
  // The replayed segment was deleted once its records were committed (and the empty one at close).
  await store.shutdown();
  expect(fs.readdirSync(walDir)).toEqual([]);
  // A second start replays nothing: no trace is stored twice.
  const again = await open();
  expect([await spans(again.store, id(1)), await spans(again.store, id(2))]).toStrictEqual([3, 4]);
});

test('requests consumed with durability wal are in the log before consume resolves, and come back after a crash', async () => {
  const { store, registry } = await open({ flushIntervalMs: 60_000 });
  await store.consume(batch(request(id(7), 6)));
  await store.consume(batch(request(id(8), 2)));
  expect(await metric(registry, 'sonde_trace_store_wal_syncs_total')).toBe(2);
  // The writer holds them in memory (a 60 s batch): a crash now would lose them but for the log.
  // Copy the data directory as a killed process leaves it (the log's files as written).
  const crashed = join(dir, 'crashed');
  fs.cpSync(walDir, join(crashed, 'traces.db.journal'), { recursive: true });
  dbPath = join(crashed, 'traces.db');
  walDir = `${dbPath}.journal`;
  const { store: after, registry: r2 } = await open();
  expect([await spans(after, id(7)), await spans(after, id(8))]).toStrictEqual([6, 2]);
  expect(await metric(r2, 'sonde_trace_store_wal_replayed_spans_total')).toBe(8);
});

test('a torn tail is cut off at recovery; what comes before it is replayed', async () => {
  const bodies = [request(id(1), 3), request(id(2), 4)];
  const log = await writeLog(bodies, [3, 4]);
  const file = join(walDir, segmentName(log.segment));
  fs.truncateSync(file, log.ends[1] - 7); // the second record half written
  const { store, registry } = await open();
  expect([await spans(store, id(1)), await spans(store, id(2))]).toStrictEqual([3, 0]);
  expect(store.walRecovery).toStrictEqual({
    records: 1,
    bytes: log.ends[0] - HEADER_BYTES,
    spans: 3,
    truncatedBytes: log.ends[1] - 7 - log.ends[0],
    corruptSegments: 0,
  });
  expect(await metric(registry, 'sonde_trace_store_wal_replayed_spans_total')).toBe(3);
  // The segment was cut, replayed, then deleted (its records are in SQLite): a new start finds nothing.
  expect(fs.existsSync(file)).toBe(false);
});

test('a record whose CRC does not match ends the log there: it and what follows are not stored', async () => {
  const bodies = [request(id(1), 3), request(id(2), 4), request(id(3), 5)];
  const log = await writeLog(bodies, [3, 4, 5]);
  const file = join(walDir, segmentName(log.segment));
  const data = fs.readFileSync(file);
  data[log.ends[0] + HEADER_BYTES + 20] ^= 0xff; // inside the second record's payload
  fs.writeFileSync(file, data);
  const { store } = await open();
  expect([await spans(store, id(1)), await spans(store, id(2)), await spans(store, id(3))]).toStrictEqual([3, 0, 0]);
  expect(store.walRecovery).toMatchObject({ records: 1, spans: 3, truncatedBytes: data.length - log.ends[0] });
});

test('concurrent requests share a write and an fdatasync (group commit)', async () => {
  const { store, registry } = await open();
  await Promise.all(Array.from({ length: 20 }, (_, i) => store.consume(batch(request(id(100 + i), 2)))));
  // The first request's sync, then one for the 19 that arrived while it ran.
  expect(await metric(registry, 'sonde_trace_store_wal_syncs_total')).toBe(2);
  await store.flush();
  for (let i = 0; i < 20; i++) expect(await spans(store, id(100 + i))).toBe(2);
});

test('a log that cannot be written (disk full) refuses the request with 503; the next segment takes the next one', async () => {
  // Tiny segments: every request begins a new one. The next one is made a link to /dev/full (ENOSPC).
  const { store, registry } = await open({ walSegmentBytes: 1 });
  await store.consume(batch(request(id(1), 2)));
  await store.flush();
  const segments = fs.readdirSync(walDir).filter((f) => f.endsWith('.seg'));
  const next = Number(segments.sort().at(-1)?.slice(0, 16)) + 1;
  fs.symlinkSync('/dev/full', join(walDir, segmentName(next)));

  const refused = await Promise.resolve(store.consume(batch(request(id(2), 2)))).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(refused).toBeInstanceOf(OtlpError);
  expect(refused).toMatchObject({ httpStatus: 503, grpcCode: 14, reason: 'storage_error', retryAfterSeconds: 1 });
  expect((refused as Error).message).not.toMatch(/\/dev|ENOSPC|journal/);
  expect(await metric(registry, 'sonde_trace_store_wal_errors_total')).toBe(1);
  expect(store.queuedBytes).toBe(0);
  // The failed segment is gone; the log goes on.
  expect(fs.existsSync(join(walDir, segmentName(next)))).toBe(false);
  await store.consume(batch(request(id(3), 2)));
  await store.flush();
  expect([await spans(store, id(1)), await spans(store, id(2)), await spans(store, id(3))]).toStrictEqual([2, 0, 2]);
});

test('with durability memory, a log left by a run with wal is still replayed, then removed', async () => {
  await writeLog([request(id(1), 3)], [3]);
  const { store } = await open({ durability: 'memory' });
  expect(await spans(store, id(1))).toBe(3);
  expect(fs.existsSync(walDir)).toBe(false);
  await store.consume(batch(request(id(2), 2)));
  await store.flush();
  expect(await spans(store, id(2))).toBe(2);
  expect(fs.existsSync(walDir)).toBe(false);
});

test('with durability wal_async, consume resolves once the request is written, the fdatasync follows, and a crash keeps it', async () => {
  const { store, registry } = await open({ durability: 'wal_async', flushIntervalMs: 60_000 });
  await store.consume(batch(request(id(7), 6)));
  // Answered before any fdatasync ran: the sync runs behind the write (a wal store has synced by now).
  expect(await metric(registry, 'sonde_trace_store_wal_syncs_total')).toBe(0);
  expect(await metric(registry, 'sonde_trace_store_wal_bytes_total')).toBeGreaterThan(0);
  await Promise.all(Array.from({ length: 5 }, (_, i) => store.consume(batch(request(id(8 + i), 2)))));
  const deadline = Date.now() + 5000;
  while ((await metric(registry, 'sonde_trace_store_wal_syncs_total')) === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  expect(await metric(registry, 'sonde_trace_store_wal_syncs_total')).toBeGreaterThan(0);
  // The writer holds them in memory (a 60 s batch); the data directory as a killed process leaves it.
  const crashed = join(dir, 'crashed');
  fs.cpSync(walDir, join(crashed, 'traces.db.journal'), { recursive: true });
  dbPath = join(crashed, 'traces.db');
  walDir = `${dbPath}.journal`;
  const { store: after, registry: r2 } = await open({ durability: 'wal_async' });
  expect([await spans(after, id(7)), await spans(after, id(8)), await spans(after, id(12))]).toStrictEqual([6, 2, 2]);
  expect(await metric(r2, 'sonde_trace_store_wal_replayed_spans_total')).toBe(16);
});

test('with durability wal_async, wal_sync_interval spaces the background syncs and does not delay the answers', async () => {
  const { store, registry } = await open({ durability: 'wal_async', walSyncIntervalMs: 3000 });
  const started = Date.now();
  for (let i = 0; i < 3; i++) await store.consume(batch(request(id(20 + i), 2)));
  expect(Date.now() - started).toBeLessThan(1500);
  // The first background sync waits its interval.
  expect(await metric(registry, 'sonde_trace_store_wal_syncs_total')).toBe(0);
  await store.flush();
  expect(await spans(store, id(21))).toBe(2);
});

test('with durability wal_async, a log that cannot be written (disk full) refuses the request with 503; the next segment takes the next one', async () => {
  const { store, registry } = await open({ durability: 'wal_async', walSegmentBytes: 1 });
  await store.consume(batch(request(id(1), 2)));
  await store.consume(batch(request(id(4), 2)));
  await store.flush();
  // Tiny segments: the next request begins a new one, a link to /dev/full (ENOSPC).
  const segments = fs.readdirSync(walDir).filter((f) => f.endsWith('.seg'));
  const next = Number(segments.sort().at(-1)?.slice(0, 16)) + 1;
  fs.symlinkSync('/dev/full', join(walDir, segmentName(next)));
  const refused = await Promise.resolve(store.consume(batch(request(id(2), 2)))).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(refused).toMatchObject({ httpStatus: 503, reason: 'storage_error' });
  expect(await metric(registry, 'sonde_trace_store_wal_errors_total')).toBe(1);
  await store.consume(batch(request(id(3), 2)));
  await store.flush();
  expect([await spans(store, id(1)), await spans(store, id(2)), await spans(store, id(3))]).toStrictEqual([2, 0, 2]);
});

test('with sync in the background, a write that fails (an I/O error on the segment) is refused; the log goes on in a new segment', async () => {
  const wal = TraceWal.open(walDir, { segmentBytes: 2 ** 30, syncIntervalMs: 0, sync: 'background' });
  await wal.recover(undefined, async () => {});
  const first = await wal.append(encodeRecord(request(id(1), 2), 2));
  // The segment's descriptor fails under the log (EBADF stands in for an I/O error).
  const segment = (wal as unknown as { current: { fh: { fd: number } } }).current;
  fs.closeSync(segment.fh.fd);
  await expect(wal.append(encodeRecord(request(id(2), 2), 2))).rejects.toThrow();
  const third = await wal.append(encodeRecord(request(id(3), 2), 2));
  expect(third.segment).toBeGreaterThan(first.segment);
  // The write, and possibly the background sync that ran on the failed descriptor.
  expect(wal.errors).toBeGreaterThanOrEqual(1);
  await wal.close().catch(() => {});
  // What was acknowledged comes back; the refused record does not.
  const replayed: number[] = [];
  const again = TraceWal.open(walDir, { segmentBytes: 2 ** 30, syncIntervalMs: 0 });
  await again.recover(undefined, async (records) => {
    for (const r of records) replayed.push(r.spans);
  });
  await again.close();
  expect(replayed).toStrictEqual([2, 2]);
});

test('with sync in the background, the appends of one event-loop turn are written together in order, each resolved with its own end, and all come back', async () => {
  const wal = TraceWal.open(walDir, { segmentBytes: 2 ** 30, syncIntervalMs: 0, sync: 'background' });
  await wal.recover(undefined, async () => {});
  const records = Array.from({ length: 20 }, (_, i) => encodeRecord(request(id(i + 1), (i % 5) + 1), (i % 5) + 1));
  const ends = await Promise.all(records.map((r) => wal.append(r)));
  // One segment, each record's end right after the one before: written in the order appended.
  let offset = 0;
  for (const [i, end] of ends.entries()) {
    offset += records[i].length;
    expect(end).toStrictEqual({ segment: ends[0].segment, offset });
  }
  expect(wal.bytesWritten).toBe(offset);
  // A later turn goes on after them.
  const next = await wal.append(records[0]);
  expect(next.offset).toBe(offset + records[0].length);
  await wal.close();
  const replayed: number[] = [];
  const again = TraceWal.open(walDir, { segmentBytes: 2 ** 30, syncIntervalMs: 0 });
  await again.recover(undefined, async (rs) => {
    for (const r of rs) replayed.push(r.spans);
  });
  await again.close();
  expect(replayed).toStrictEqual([...records.map((_, i) => (i % 5) + 1), 1]);
});

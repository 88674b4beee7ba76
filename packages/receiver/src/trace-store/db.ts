/**
 * The trace store's SQLite database (node:sqlite): schema, batched writes, retention and the reads
 * behind the Tempo API. One writer connection (in the writer thread) and any number of readers (the
 * admin server's): WAL mode lets them run side by side, and makes a crash mid-write lose at most the
 * transaction that was open, never corrupt the file.
 *
 * Spans are stored as they arrived, in blobs: request bodies end to end (an ExportTraceServiceRequest
 * again), about BLOB_BYTES of them, compressed. There is no row per span: the writer's cost per span
 * is one pass over its bytes (blob-index.ts) and a share of a compression, and a search reads the
 * blobs that can hold a match and checks their spans (search.ts), as Tempo does with its blocks.
 *
 * Tables:
 * - batches:  one row per written batch (arrival time, spans, bytes, the last row id it wrote in each
 *             table): retention removes whole batches, oldest first, by row-id ranges (no scans).
 * - blobs:    the compressed requests, with their spans' start-time extent and longest duration.
 * - traces:   per trace and blob, the trace's time extent in the blob and its root span's service and
 *             name when the blob holds the root: trace by id reads the blobs it names, search results
 *             aggregate a trace's rows (no per-trace row to update at random). Keyed by bucket first,
 *             then trace id: a bucket takes BUCKET_ROWS rows in arrival order, so a write inserts into
 *             the newest bucket's few pages only (one B-tree over random trace ids would have each
 *             write touches pages all over it), and a lookup seeks only in the buckets whose bloom
 *             filter may hold the trace id.
 * - buckets:  per bucket, its rows, the extent of their times (a lookup in a time window skips the
 *             buckets outside it), a bloom filter of its trace ids (a lookup skips the buckets that
 *             do not hold the id: a seek or two instead of one per bucket) and its last blob
 *             (retention removes whole buckets).
 * - postings: per searchable value (indexed attribute, service, span name, status) and batch, which
 *             of the batch's blobs hold it (a bitmap): a search through a value reads only those. Per
 *             batch, not per blob: a write adds a row per distinct value, not one per value and blob.
 * - tag_values: the distinct values of each searchable key and their type, for the tag-values API.
 * - wal_position: with `durability: wal`, the write-ahead log position (wal.ts) that the writes so far
 *             hold, written in the same transaction as them: replay after a crash starts there, so a
 *             request is stored once, never twice or not at all.
 */
import type { DatabaseSync } from 'node:sqlite';
import {
  BLOOM_BITS,
  BUCKET_ROWS,
  bloomAdd,
  bloomHas,
  openSqlite,
  packBlob,
  ROWS_PER_INSERT,
  SqliteBase,
  unpackBlob,
  WAL_POSITION_SCHEMA,
} from '../blob-store/blob-db';
import { BlobIndex, indexTraceRequest, type KeyTable, keyTable, STATUS_KEY, timeToBigInt } from './blob-index';
import { type Chunk, scanTraceRequest } from './scan';

/**
 * The schema's version (PRAGMA user_version): a store written with another version is recreated
 * (its data removed) when the writer opens it, and the writer logs it.
 */
export const SCHEMA_VERSION = 7;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, spans INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0, first_blob INTEGER NOT NULL DEFAULT 0, last_blob INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS batches_received ON batches (received_ms);
CREATE TABLE IF NOT EXISTS blobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL, spans INTEGER NOT NULL, min_start INTEGER NOT NULL,
  max_start INTEGER NOT NULL, max_duration INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS traces (
  bucket INTEGER NOT NULL, trace_id BLOB NOT NULL, blob INTEGER NOT NULL, start_ns INTEGER NOT NULL,
  end_ns INTEGER NOT NULL, root_service TEXT, root_name TEXT, PRIMARY KEY (bucket, trace_id, blob)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (
  id INTEGER PRIMARY KEY, rows INTEGER NOT NULL, min_start INTEGER NOT NULL, max_end INTEGER NOT NULL,
  last_blob INTEGER NOT NULL, bloom BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS postings (
  key TEXT NOT NULL, value TEXT NOT NULL, batch INTEGER NOT NULL, blobs BLOB NOT NULL,
  PRIMARY KEY (key, value, batch)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tag_values (
  key TEXT NOT NULL, value TEXT NOT NULL, batch INTEGER NOT NULL, type TEXT NOT NULL, PRIMARY KEY (key, value)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tag_values_batch ON tag_values (batch);
${WAL_POSITION_SCHEMA}`;

/** Uncompressed request bytes per blob (a request larger than this is a blob of its own). */
export const BLOB_BYTES = 256 * 1024;

/** Trace rows per bucket (see the traces table, and src/blob-store/blob-db.ts): 10 million spans make about 450 buckets. */
export { BUCKET_ROWS };

export interface WriteResult {
  spans: number;
  bytes: number;
  /** Requests that could not be read (not stored). */
  failed: number;
}

export interface RetentionResult {
  batches: number;
  spans: number;
}

/** A write that failed (and was rolled back): `spans` were not stored. */
export class WriteError extends Error {
  constructor(
    message: string,
    readonly spans: number,
  ) {
    super(message);
    this.name = 'WriteError';
  }
}

export class TraceDb extends SqliteBase {
  /** The attribute keys indexed for search (postings, tag values) and read by a search's scan. */
  readonly indexedAttributes: ReadonlySet<string>;
  private readonly keys: KeyTable;
  /** The writer's newest bucket (read at its first write). */
  private bucket: WriterBucket | undefined;
  /**
   * A reader's bloom filters by bucket, with the row count and last blob they were read at (the newest
   * one grows; a bucket id comes back after retention removed every bucket, blob ids never do): those
   * of the live buckets only, so at most 4 KiB per bucket in the database (traceRows).
   */
  private readonly blooms = new Map<number, { rows: number; lastBlob: number; bloom: Uint8Array }>();

  private constructor(db: DatabaseSync, indexedAttributes: Iterable<string>) {
    super(db);
    this.indexedAttributes = new Set(indexedAttributes);
    this.keys = keyTable(this.indexedAttributes);
  }

  /**
   * Opens the database at `path`: the writer creates it and its schema (and recreates a store written
   * with another schema version: `recreated` then says which); a reader only reads.
   */
  static open(path: string, options: { reader?: boolean; indexedAttributes?: Iterable<string> } = {}): TraceDb {
    const { db, recreated } = openSqlite(path, { reader: options.reader, schema: SCHEMA, version: SCHEMA_VERSION });
    const store = new TraceDb(db, options.indexedAttributes ?? []);
    store.recreated = recreated;
    return store;
  }

  /** Set by open() when it removed a store written with another schema version. */
  recreated: { fromVersion: number } | undefined;

  close(): void {
    this.db.close();
  }

  /**
   * Writes requests (protobuf ExportTraceServiceRequest bodies) in one transaction, as blobs of about
   * BLOB_BYTES, indexed for the store's indexed attributes. A body that cannot be read is counted in
   * `failed` and not stored. `walPosition`: the write-ahead log position these bodies end at, recorded
   * in the same transaction.
   */
  write(bodies: readonly Buffer[], receivedMs: number, walPosition?: { segment: number; offset: number }): WriteResult {
    const keys = this.keys;
    const result: WriteResult = { spans: 0, bytes: 0, failed: 0 };
    // Index first, outside the transaction, and a failed write knows how many spans it lost. A body
    // goes into its blob's index as it is read; one that does not read is left out whole: the blob's
    // index is then made again from the bodies before it (rare: intake decoded them).
    const blobs: { parts: Buffer[]; index: BlobIndex }[] = [];
    let current = { parts: [] as Buffer[], index: new BlobIndex(), size: 0 };
    for (const body of bodies) {
      const spansBefore = current.index.spans;
      try {
        indexTraceRequest(body, keys, current.index);
      } catch {
        result.failed++;
        current.index = new BlobIndex();
        for (const part of current.parts) indexTraceRequest(part, keys, current.index);
        continue;
      }
      current.parts.push(body);
      current.size += body.length;
      result.bytes += body.length;
      result.spans += current.index.spans - spansBefore;
      if (current.size >= BLOB_BYTES) {
        blobs.push(current);
        current = { parts: [], index: new BlobIndex(), size: 0 };
      }
    }
    if (current.parts.length > 0) blobs.push(current);
    // Per searchable value, the bitmap of the batch's blobs that hold it.
    const postings = new Map<string, Map<string, Uint8Array>>();
    const bitmapBytes = Math.ceil(blobs.length / 8);
    blobs.forEach(({ index }, i) => {
      for (const [k, set] of index.postings()) {
        const byValue = postings.get(k) ?? new Map<string, Uint8Array>();
        postings.set(k, byValue);
        for (const v of set) {
          let bits = byValue.get(v);
          if (!bits) {
            bits = new Uint8Array(bitmapBytes);
            byValue.set(v, bits);
          }
          bits[i >> 3] |= 1 << (i & 7);
        }
      }
    });
    const db = this.db;
    db.exec('BEGIN');
    try {
      const batch = Number(this.stmt('INSERT INTO batches (received_ms) VALUES (?)').run(receivedMs).lastInsertRowid);
      let firstBlob = 0;
      let lastBlob = 0;
      for (const { parts, index } of blobs) {
        lastBlob = this.writeBlob(parts, index);
        if (firstBlob === 0) firstBlob = lastBlob;
      }
      if (this.bucket) this.saveBucket(this.bucket);
      const rows: (string | number | Uint8Array)[] = [];
      for (const [k, byValue] of postings) for (const [v, bits] of byValue) rows.push(k, v, batch, bits);
      for (let at = 0; at < rows.length; at += 4 * ROWS_PER_INSERT) {
        const part = rows.slice(at, at + 4 * ROWS_PER_INSERT);
        this.multiInsert('postings', 'key, value, batch, blobs', part.length / 4).run(...part);
      }
      const upsertValue = this.stmt(
        'INSERT INTO tag_values (key, value, batch, type) VALUES (?, ?, ?, ?) ON CONFLICT (key, value) DO UPDATE SET batch = excluded.batch, type = excluded.type',
      );
      const types = new Map<string, string>();
      for (const { index } of blobs) for (const [k, t] of index.types) types.set(k, t);
      for (const [k, byValue] of postings) {
        if (k === STATUS_KEY) continue;
        const type = types.get(k) ?? 'string';
        for (const v of byValue.keys()) upsertValue.run(k, v, batch, type);
      }
      this.stmt('UPDATE batches SET spans = ?, bytes = ?, first_blob = ?, last_blob = ? WHERE id = ?').run(
        result.spans,
        result.bytes,
        firstBlob,
        lastBlob,
        batch,
      );
      if (walPosition) {
        this.saveWalPosition(walPosition);
      }
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      this.bucket = undefined; // read again from the database: it holds what was committed
      throw new WriteError((err as Error).message, result.spans);
    }
    return result;
  }

  /** One blob and its trace rows. */
  private writeBlob(parts: Buffer[], index: BlobIndex): number {
    const packed = packBlob(parts);
    const empty = index.spans === 0;
    const blob = Number(
      this.stmt('INSERT INTO blobs (data, spans, min_start, max_start, max_duration) VALUES (?, ?, ?, ?, ?)').run(
        packed,
        index.spans,
        empty ? 0n : sqlTime(index.minStart),
        empty ? 0n : sqlTime(index.maxStart),
        index.maxDuration,
      ).lastInsertRowid,
    );
    const traces = [...index.traces.values()];
    if (traces.length === 0) return blob;
    // The newest bucket, or a new one when this blob's rows would take it past BUCKET_ROWS.
    let bucket = this.bucket;
    if (!bucket) {
      const newest = this.stmt('SELECT id, rows, bloom FROM buckets ORDER BY id DESC LIMIT 1').get();
      bucket = newest
        ? { id: Number(newest.id), rows: Number(newest.rows), bloom: Uint8Array.from(newest.bloom as Uint8Array) }
        : { id: 1, rows: 0, bloom: new Uint8Array(BLOOM_BITS / 8) };
      this.bucket = bucket;
    }
    if (bucket.rows > 0 && bucket.rows + traces.length > BUCKET_ROWS) {
      this.saveBucket(bucket);
      bucket = { id: bucket.id + 1, rows: 0, bloom: new Uint8Array(BLOOM_BITS / 8) };
      this.bucket = bucket;
    }
    let minStart = 2n ** 63n - 1n;
    let maxEnd = 0n;
    for (let at = 0; at < traces.length; at += ROWS_PER_INSERT) {
      const n = Math.min(ROWS_PER_INSERT, traces.length - at);
      const params: (Uint8Array | string | number | bigint | null)[] = [];
      for (let i = at; i < at + n; i++) {
        const t = traces[i];
        const start = sqlTime(t.start);
        const end = sqlTime(t.end);
        if (start < minStart) minStart = start;
        if (end > maxEnd) maxEnd = end;
        params.push(bucket.id, t.traceId, blob, start, end, t.rootService, t.rootName);
        bloomAdd(bucket.bloom, t.traceId);
      }
      this.multiInsert('traces', 'bucket, trace_id, blob, start_ns, end_ns, root_service, root_name', n).run(...params);
    }
    bucket.rows += traces.length;
    const d = bucket.dirty;
    bucket.dirty = {
      minStart: d && d.minStart < minStart ? d.minStart : minStart,
      maxEnd: d && d.maxEnd > maxEnd ? d.maxEnd : maxEnd,
      lastBlob: blob,
    };
    return blob;
  }

  /**
   * Writes the bucket's row (count, extent, bloom filter, last blob) if blobs went into it since: once
   * per transaction and bucket, not per blob (the bloom filter is 4 KiB).
   */
  private saveBucket(bucket: WriterBucket): void {
    const d = bucket.dirty;
    if (!d) return;
    this.stmt(
      `INSERT INTO buckets (id, rows, min_start, max_end, last_blob, bloom) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE
       SET rows = excluded.rows, min_start = min(min_start, excluded.min_start), max_end = max(max_end, excluded.max_end),
       last_blob = excluded.last_blob, bloom = excluded.bloom`,
    ).run(bucket.id, bucket.rows, d.minStart, d.maxEnd, d.lastBlob, bucket.bloom);
    bucket.dirty = undefined;
  }

  /** Drops the secondary indexes (bulk loads: build them once afterwards with createIndexes). */
  dropIndexes(): void {
    for (const m of SCHEMA.matchAll(/CREATE INDEX IF NOT EXISTS (\w+)/g)) this.db.exec(`DROP INDEX IF EXISTS ${m[1]}`);
  }

  createIndexes(): void {
    this.db.exec(SCHEMA);
  }

  /**
   * Removes batches that arrived before `nowMs - retentionMs`, then, while the live pages exceed
   * `maxBytes`, the oldest batches down to 90% of it. Returns what it removed.
   */
  enforceRetention(nowMs: number, retentionMs: number, maxBytes: number): RetentionResult {
    const r = this.retain(nowMs, retentionMs, maxBytes, (batch, removed) => this.removeUpTo(batch, removed));
    return { batches: r.batches, spans: r.items };
  }

  private removeUpTo(batch: number, removed: { batches: number; items: number }): void {
    const last = this.stmt('SELECT max(last_blob) AS x, sum(spans) AS n, count(*) AS b FROM batches WHERE id <= ?').get(
      batch,
    );
    if (!last || Number(last.b) === 0) return;
    const lastBlob = Number(last.x);
    this.bucket = undefined; // the newest bucket may go too: read it again at the next write
    this.db.exec('BEGIN');
    try {
      // postings are keyed by (key, value, batch): one range per searchable value.
      const deletePostings = this.stmt('DELETE FROM postings WHERE key = ? AND value = ? AND batch <= ?');
      for (const row of this.stmt('SELECT key, value FROM tag_values').all()) {
        deletePostings.run(row.key as string, row.value as string, batch);
      }
      this.stmt('DELETE FROM postings WHERE key = ? AND batch <= ?').run(STATUS_KEY, batch);
      // Whole buckets up to the last blob removed, then the rows of the bucket it ends in.
      const whole = this.stmt('SELECT max(id) AS id FROM buckets WHERE last_blob <= ?').get(lastBlob)?.id;
      if (whole != null) {
        this.stmt('DELETE FROM traces WHERE bucket <= ?').run(Number(whole));
        this.stmt('DELETE FROM buckets WHERE id <= ?').run(Number(whole));
      }
      const partial = this.stmt('SELECT min(id) AS id FROM buckets').get()?.id;
      if (partial != null)
        this.stmt('DELETE FROM traces WHERE bucket = ? AND blob <= ?').run(Number(partial), lastBlob);
      this.stmt('DELETE FROM blobs WHERE id <= ?').run(lastBlob);
      this.stmt('DELETE FROM tag_values WHERE batch <= ?').run(batch);
      this.stmt('DELETE FROM batches WHERE id <= ?').run(batch);
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    removed.batches += Number(last.b);
    removed.items += Number(last.n ?? 0);
  }

  /** A blob's requests, decompressed (undefined when retention removed it). */
  blob(id: number): Buffer | undefined {
    const row = this.stmt('SELECT data FROM blobs WHERE id = ?').get(id);
    return row ? unpackBlob(row.data as Uint8Array) : undefined;
  }

  /**
   * A trace's spans as encoded ResourceSpans (one per resource and blob, each with only this trace's
   * spans), optionally only from the blobs where the trace overlaps [startNs, endNs].
   */
  traceChunks(traceId: Buffer, startNs?: bigint, endNs?: bigint, checkpoint: () => void = () => {}): Buffer[] {
    const blobs = new Set<number>();
    for (const r of this.traceRows(traceId, startNs, endNs)) blobs.add(r.blob);
    const trace = hex(traceId);
    const out: Buffer[] = [];
    for (const blob of [...blobs].sort((a, b) => a - b)) {
      checkpoint();
      const data = this.blob(blob);
      if (!data) continue;
      const chunks: Chunk[] = scanTraceRequest(data, { indexedAttributes: NONE, trace }).chunks;
      for (const c of chunks) out.push(c.data);
    }
    return out;
  }

  /** How many buckets' bloom filters this reader holds (4 KiB each). */
  cachedBloomFilters(): number {
    return this.blooms.size;
  }

  /** A trace's rows (one per blob that holds its spans), optionally only those overlapping [startNs, endNs]. */
  private traceRows(traceId: Uint8Array, startNs = 0n, endNs = 2n ** 63n - 1n): TraceRow[] {
    const buckets = this.stmt(
      'SELECT id, rows, last_blob FROM buckets WHERE max_end >= ? AND min_start <= ? ORDER BY id',
    );
    const bloomOf = this.stmt('SELECT bloom FROM buckets WHERE id = ?');
    const rows = this.stmt(
      'SELECT blob, start_ns, end_ns, root_service, root_name FROM traces WHERE bucket = ? AND trace_id = ? AND end_ns >= ? AND start_ns <= ?',
    );
    rows.setReadBigInts(true);
    const out: TraceRow[] = [];
    // Only the live buckets' filters are kept: retention removes buckets and ids only grow (they start
    // at 1 again once every bucket is gone), so a cache of every id seen would grow without bound.
    const live = this.stmt('SELECT min(id) AS lo, max(id) AS hi FROM buckets').get();
    if (live?.lo == null) this.blooms.clear();
    else for (const id of this.blooms.keys()) if (id < Number(live.lo) || id > Number(live.hi)) this.blooms.delete(id);
    for (const b of buckets.all(startNs, endNs)) {
      const id = Number(b.id);
      const count = Number(b.rows);
      const lastBlob = Number(b.last_blob);
      let cached = this.blooms.get(id);
      if (cached?.rows !== count || cached.lastBlob !== lastBlob) {
        cached = { rows: count, lastBlob, bloom: Uint8Array.from((bloomOf.get(id)?.bloom as Uint8Array) ?? []) };
        this.blooms.set(id, cached);
      }
      if (cached.bloom.length > 0 && !bloomHas(cached.bloom, traceId)) continue;
      for (const r of rows.all(id, traceId, startNs, endNs)) {
        out.push({
          blob: Number(r.blob),
          startNs: r.start_ns as bigint,
          endNs: r.end_ns as bigint,
          rootService: r.root_service as string | null,
          rootName: r.root_name as string | null,
        });
      }
    }
    return out;
  }

  /**
   * The batch ids that can hold spans starting in [startMs, endMs]: batches are numbered in arrival
   * order, and a span arrives after it starts (give or take `slackMs` of clock skew) and, unless an
   * exporter held it back for longer than `slackMs`, soon after it ends. Returns (lo, hi]: ids above
   * lo, up to hi.
   */
  batchIdRange(startMs: number, endMs: number, slackMs: number): { lo: number; hi: number } {
    const lo = this.stmt('SELECT max(id) AS id FROM batches WHERE received_ms < ?').get(startMs - slackMs);
    const hi = this.stmt('SELECT min(id) AS id FROM batches WHERE received_ms > ?').get(endMs + slackMs);
    return { lo: Number(lo?.id ?? 0), hi: hi?.id == null ? Number.MAX_SAFE_INTEGER : Number(hi.id) };
  }

  /** As batchIdRange, for blob ids (a batch that stored no blob has last_blob 0: not a bound). */
  blobIdRange(startMs: number, endMs: number, slackMs: number): { lo: number; hi: number } {
    const lo = this.stmt('SELECT max(last_blob) AS id FROM batches WHERE received_ms < ?').get(startMs - slackMs);
    const hi = this.stmt('SELECT min(last_blob) AS id FROM batches WHERE received_ms > ? AND last_blob > 0').get(
      endMs + slackMs,
    );
    return { lo: Number(lo?.id ?? 0), hi: hi?.id == null ? Number.MAX_SAFE_INTEGER : Number(hi.id) };
  }

  /** A trace's extent and root span's service and name, from its rows; undefined when none is stored. */
  traceSummary(
    traceId: Uint8Array,
  ): { startNs: bigint; endNs: bigint; rootService: string | null; rootName: string | null } | undefined {
    const rows = this.traceRows(traceId);
    if (rows.length === 0) return undefined;
    const summary = {
      startNs: rows[0].startNs,
      endNs: rows[0].endNs,
      rootService: null as string | null,
      rootName: null as string | null,
    };
    for (const r of rows) {
      if (r.startNs < summary.startNs) summary.startNs = r.startNs;
      if (r.endNs > summary.endNs) summary.endNs = r.endNs;
      if (r.rootService !== null) {
        summary.rootService = r.rootService;
        summary.rootName = r.rootName;
      }
    }
    return summary;
  }

  spanCount(): number {
    return Number(this.stmt('SELECT sum(spans) AS n FROM blobs').get()?.n ?? 0);
  }
}

const NONE: ReadonlySet<string> = new Set();

const MAX_SQL_TIME = 2n ** 63n - 1n;

/**
 * A time as SQLite stores it (a signed 64-bit integer, which cannot bind 2^63 or more): later times
 * (past the year 2262, so garbage) are clamped, rather than failing the whole batch's write.
 */
function sqlTime(t: Parameters<typeof timeToBigInt>[0]): bigint {
  const v = timeToBigInt(t);
  return v > MAX_SQL_TIME ? MAX_SQL_TIME : v;
}

/** The writer's newest bucket, and what its row lacks of the blobs written into it in this transaction. */
interface WriterBucket {
  id: number;
  rows: number;
  bloom: Uint8Array;
  dirty?: { minStart: bigint; maxEnd: bigint; lastBlob: number };
}

interface TraceRow {
  blob: number;
  startNs: bigint;
  endNs: bigint;
  rootService: string | null;
  rootName: string | null;
}

export function hex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

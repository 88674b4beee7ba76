/**
 * The trace store's SQLite database (node:sqlite): schema, batched writes, retention and the reads
 * behind the Tempo API. One writer connection (in the writer thread) and any number of readers (the
 * admin server's): WAL mode lets them run side by side, and makes a crash mid-write lose at most the
 * transaction that was open, never corrupt the file.
 *
 * Tables:
 * - batches: one row per written batch (arrival time, bytes, the last row id it wrote in each table):
 *   retention removes whole batches, oldest first, by row-id ranges (no scans).
 * - blobs:   a batch's chunks end to end, compressed (zstd), about 64 KiB of them per blob.
 * - chunks:  per trace and resource, where its encoded OTLP ResourceSpans sits in a blob (trace by id
 *            returns these), its time extent, and the root span's service and name when it holds the
 *            root (search results aggregate a trace's chunks: no per-trace row to update at random).
 * - spans:   per span, the searchable fields (service, name, status, duration and its class, the
 *            indexed attributes as one text column); start time is checked per row, the row ids
 *            (arrival order) bound by the time window via batches. One secondary index only (duration
 *            class: long spans are rare, and a duration search must not walk every row).
 * - postings: per searchable value (indexed attribute, service, span name, status), the blocks of
 *            BLOCK_SPANS consecutive span rows holding it: far fewer B-tree entries per span than an
 *            index entry per span and value; a search reads a candidate block's rows and checks them.
 * - blocks:  per block, the extent of its spans' start times (a search skips blocks outside its window).
 * - tag_values: the distinct values of each searchable key, for the tag-values API.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { constants as zlib, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import type { ScanResult } from './scan';

/**
 * The schema's version (PRAGMA user_version): a store written with another version is recreated
 * (its data removed) when the writer opens it, and the writer logs it.
 */
export const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, spans INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0, last_span INTEGER NOT NULL DEFAULT 0, last_chunk INTEGER NOT NULL DEFAULT 0,
  last_blob INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS batches_received ON batches (received_ms);
CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id BLOB NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
  blob INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, root_service TEXT, root_name TEXT);
CREATE INDEX IF NOT EXISTS chunks_trace ON chunks (trace_id);
CREATE TABLE IF NOT EXISTS spans (
  id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id BLOB NOT NULL, span_id BLOB NOT NULL, service TEXT NOT NULL,
  name TEXT NOT NULL, kind INTEGER NOT NULL, status INTEGER NOT NULL, start_ns INTEGER NOT NULL,
  duration_ns INTEGER NOT NULL, duration_class INTEGER NOT NULL, attrs TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spans_duration ON spans (duration_class);
CREATE TABLE IF NOT EXISTS postings (
  key TEXT NOT NULL, value TEXT NOT NULL, block INTEGER NOT NULL, PRIMARY KEY (key, value, block)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (id INTEGER PRIMARY KEY, min_start INTEGER NOT NULL, max_start INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tag_values (
  key TEXT NOT NULL, value TEXT NOT NULL, batch INTEGER NOT NULL, PRIMARY KEY (key, value)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tag_values_batch ON tag_values (batch);
`;

/**
 * Spans per posting block: the postings table lists, per searchable value (indexed attribute, service,
 * span name, status), the blocks of BLOCK_SPANS consecutive span rows that hold it at least once, not
 * each span: a write touches about one posting row per distinct value per block instead of one index
 * entry per span and value. A search through a posting reads the block's rows and checks each.
 */
export const BLOCK_SPANS = 256;

/** Posting keys of the intrinsics (attribute keys are scoped: "span.x", "resource.x"). */
export const SERVICE_KEY = 'resource.service.name';
export const NAME_KEY = 'name';
export const STATUS_KEY = 'status';
const STATUS_TEXT = ['0', '1', '2'];

/** A span's indexed attributes, as stored in spans.attrs: SEP + (key US value SEP)*. */
const SEP = '\x1e';
const US = '\x1f';
export function encodeAttrs(tags: readonly [string, string][]): string {
  let out = SEP;
  for (const [k, v] of tags) out += `${k}${US}${v}${SEP}`;
  return out;
}
/** The needle that finds key = value in spans.attrs (instr). */
export function attrNeedle(key: string, value: string): string {
  return `${SEP}${key}${US}${value}${SEP}`;
}

/**
 * The duration index holds a class, not the exact duration: floor(log2(ns)), 0-63. A handful of
 * values keeps inserts cheap (appends within each class, where exact durations land at random
 * places); the exact duration_ns is checked on the rows the index selects.
 */
export function durationClass(ns: bigint): number {
  if (ns <= 0n) return 0;
  if (ns < 2n ** 53n) {
    // Exact as a double below 2^53: the highest set bit from 32-bit halves (no BigInt to string).
    const n = Number(ns);
    const high = Math.floor(n / 2 ** 32);
    return high > 0 ? 63 - Math.clz32(high) : 31 - Math.clz32(n >>> 0);
  }
  return ns.toString(2).length - 1;
}

/** Uncompressed bytes of chunks per compressed blob. */
const BLOB_BYTES = 64 * 1024;

/** Rows per multi-row INSERT (fewer calls into SQLite; well under its 32,766 bound on parameters). */
const ROWS_PER_INSERT = 64;

export interface WriteResult {
  spans: number;
  bytes: number;
}

export interface RetentionResult {
  batches: number;
  spans: number;
}

export class TraceDb {
  readonly db: DatabaseSync;
  private readonly stmts = new Map<string, StatementSync>();

  private constructor(db: DatabaseSync) {
    this.db = db;
  }

  /**
   * Opens the database at `path`: the writer creates it and its schema (and recreates a store written
   * with another schema version: `recreated` then says which); a reader only reads.
   */
  static open(path: string, options: { reader?: boolean } = {}): TraceDb {
    if (!options.reader) mkdirSync(dirname(path), { recursive: true });
    let db = new DatabaseSync(path, { timeout: 5000 });
    let recreated: { fromVersion: number } | undefined;
    if (!options.reader) {
      const version = Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
      const tables = Number(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get()?.n ?? 0);
      if (tables > 0 && version !== SCHEMA_VERSION) {
        db.close();
        for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
        db = new DatabaseSync(path, { timeout: 5000 });
        recreated = { fromVersion: version };
      }
    }
    const store = new TraceDb(db);
    store.recreated = recreated;
    if (!options.reader) {
      // auto_vacuum must be chosen before the first table exists; it lets retention give pages back.
      db.exec('PRAGMA auto_vacuum = INCREMENTAL');
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA cache_size = -32768');
      // Checkpoints (WAL to database, with an fsync) every 16 MiB of WAL rather than every 4 MiB.
      db.exec('PRAGMA wal_autocheckpoint = 4096');
      db.exec(SCHEMA);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    }
    db.exec('PRAGMA temp_store = MEMORY');
    // Reads through the page cache of the OS, without copies (up to 1 GiB of the file mapped).
    db.exec('PRAGMA mmap_size = 1073741824');
    db.function('regexp', { deterministic: true }, (pattern, value) => {
      if (typeof pattern !== 'string' || value === null) return 0;
      return regexFor(pattern).test(String(value)) ? 1 : 0;
    });
    // tag_test(attrs, keys (US-separated), op, value, numeric): whether the span has an attribute with
    // one of the keys whose value compares to `value` with `op` (numeric: as numbers, as CAST AS REAL).
    db.function('tag_test', { deterministic: true }, (attrs, keys, op, value, numeric) =>
      tagTest(String(attrs ?? ''), String(keys), String(op), value, numeric === 1) ? 1 : 0,
    );
    return store;
  }

  /** Set by open() when it removed a store written with another schema version. */
  recreated: { fromVersion: number } | undefined;

  close(): void {
    this.db.close();
  }

  stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Writes one scanned request in one transaction. */
  write(scan: ScanResult, receivedMs: number, bytes: number): WriteResult {
    const db = this.db;
    db.exec('BEGIN');
    try {
      const batch = Number(this.stmt('INSERT INTO batches (received_ms) VALUES (?)').run(receivedMs).lastInsertRowid);
      const roots = new Map<string, { service: string; name: string }>();
      const values = new Map<string, [string, string]>();
      const spans = scan.spans;
      let lastSpan = 0;
      let firstSpan = 0;
      for (let at = 0; at < spans.length; at += ROWS_PER_INSERT) {
        const n = Math.min(ROWS_PER_INSERT, spans.length - at);
        const params: (Uint8Array | string | number | bigint)[] = [];
        for (let i = at; i < at + n; i++) {
          const s = spans[i];
          params.push(s.traceId, s.spanId, s.service, s.name, s.kind, s.status, s.startNs, s.durationNs);
          params.push(durationClass(s.durationNs), encodeAttrs(s.tags));
        }
        lastSpan = Number(this.multiInsert('spans', SPAN_COLUMNS, n).run(...params).lastInsertRowid);
        if (at === 0) firstSpan = lastSpan - n + 1;
      }
      // Postings: per block of BLOCK_SPANS rows (ids are consecutive within the transaction: one
      // writer), each distinct searchable value once.
      const postParams: (string | number)[] = [];
      for (let from = 0; from < spans.length; from += BLOCK_SPANS) {
        const block = firstSpan + from;
        // Per key, the values seen in this block (no concatenated keys: building and hashing them cost more).
        const seen = new Map<string, Set<string>>();
        const add = (k: string, v: string) => {
          let set = seen.get(k);
          if (!set) {
            set = new Set();
            seen.set(k, set);
          }
          if (set.has(v)) return;
          set.add(v);
          postParams.push(k, v, block);
        };
        for (let i = from; i < Math.min(spans.length, from + BLOCK_SPANS); i++) {
          const s = spans[i];
          add(SERVICE_KEY, s.service);
          add(NAME_KEY, s.name);
          add(STATUS_KEY, STATUS_TEXT[s.status] ?? String(s.status));
          for (const [k, v] of s.tags) add(k, v);
          if (s.root) roots.set(s.traceHex, { service: s.service, name: s.name });
        }
        for (const [k, set] of seen) {
          if (k === STATUS_KEY) continue;
          for (const v of set) {
            const key = `${k}\0${v}`;
            if (!values.has(key)) values.set(key, [k, v]);
          }
        }
      }
      // Each block's span start extent: a search skips the blocks outside its time window unread.
      const blockParams: (number | bigint)[] = [];
      for (let from = 0; from < spans.length; from += BLOCK_SPANS) {
        let min = spans[from].startNs;
        let max = min;
        for (let i = from + 1; i < Math.min(spans.length, from + BLOCK_SPANS); i++) {
          const t = spans[i].startNs;
          if (t < min) min = t;
          if (t > max) max = t;
        }
        blockParams.push(firstSpan + from, min, max);
      }
      for (let at = 0; at < blockParams.length; at += 3 * ROWS_PER_INSERT) {
        const part = blockParams.slice(at, at + 3 * ROWS_PER_INSERT);
        this.multiInsert('blocks', 'id, min_start, max_start', part.length / 3).run(...part);
      }
      for (let at = 0; at < postParams.length; at += 3 * ROWS_PER_INSERT) {
        const part = postParams.slice(at, at + 3 * ROWS_PER_INSERT);
        this.multiInsert('postings', POSTING_COLUMNS, part.length / 3).run(...part);
      }
      // Chunks end to end, compressed (zstd, level 1) in blobs of about BLOB_BYTES: reading a trace
      // decompresses only the blobs that hold its chunks.
      let lastChunk = 0;
      let lastBlob = 0;
      const chunks = scan.chunks;
      for (let from = 0; from < chunks.length; ) {
        let to = from;
        let size = 0;
        while (to < chunks.length && (to === from || size + chunks[to].data.length <= BLOB_BYTES)) {
          size += chunks[to].data.length;
          to++;
        }
        const packed = zstdCompressSync(Buffer.concat(chunks.slice(from, to).map((c) => c.data)), {
          params: { [zlib.ZSTD_c_compressionLevel]: 1 },
        });
        lastBlob = Number(this.stmt('INSERT INTO blobs (data) VALUES (?)').run(packed).lastInsertRowid);
        let offset = 0;
        for (let at = from; at < to; at += ROWS_PER_INSERT) {
          const n = Math.min(ROWS_PER_INSERT, to - at);
          const params: (Uint8Array | string | number | bigint | null)[] = [];
          for (let i = at; i < at + n; i++) {
            const c = chunks[i];
            const key = hex(c.traceId);
            const root = roots.get(key);
            roots.delete(key); // on the trace's first chunk of the batch only
            params.push(c.traceId, c.startNs, c.endNs, lastBlob, offset, c.data.length);
            params.push(root?.service ?? null, root?.name ?? null);
            offset += c.data.length;
          }
          lastChunk = Number(this.multiInsert('chunks', CHUNK_COLUMNS, n).run(...params).lastInsertRowid);
        }
        from = to;
      }
      const upsertValue = this.stmt(
        'INSERT INTO tag_values (key, value, batch) VALUES (?, ?, ?) ON CONFLICT (key, value) DO UPDATE SET batch = excluded.batch',
      );
      for (const [k, v] of values.values()) upsertValue.run(k, v, batch);
      this.stmt(
        'UPDATE batches SET spans = ?, bytes = ?, last_span = ?, last_chunk = ?, last_blob = ? WHERE id = ?',
      ).run(scan.spans.length, bytes, lastSpan, lastChunk, lastBlob, batch);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
    return { spans: scan.spans.length, bytes };
  }

  /** Drops the secondary indexes (bulk loads: build them once afterwards with createIndexes). */
  dropIndexes(): void {
    for (const m of SCHEMA.matchAll(/CREATE INDEX IF NOT EXISTS (\w+)/g)) this.db.exec(`DROP INDEX IF EXISTS ${m[1]}`);
  }

  createIndexes(): void {
    this.db.exec(SCHEMA);
  }

  private multiInsert(table: string, columns: string, rows: number): StatementSync {
    const one = `(${columns
      .split(',')
      .map(() => '?')
      .join(', ')})`;
    return this.stmt(`INSERT INTO ${table} (${columns}) VALUES ${Array(rows).fill(one).join(', ')}`);
  }

  /** Bytes the database's live pages take (freed pages not counted). */
  usedBytes(): number {
    const pages = Number(this.db.prepare('PRAGMA page_count').get()?.page_count ?? 0);
    const free = Number(this.db.prepare('PRAGMA freelist_count').get()?.freelist_count ?? 0);
    const size = Number(this.db.prepare('PRAGMA page_size').get()?.page_size ?? 4096);
    return (pages - free) * size;
  }

  /**
   * Removes batches that arrived before `nowMs - retentionMs`, then, while the live pages exceed
   * `maxBytes`, the oldest batches down to 90% of it. Returns what it removed.
   */
  enforceRetention(nowMs: number, retentionMs: number, maxBytes: number): RetentionResult {
    const removed: RetentionResult = { batches: 0, spans: 0 };
    const old = this.stmt('SELECT max(id) AS id FROM batches WHERE received_ms < ?').get(nowMs - retentionMs);
    if (old?.id != null) this.removeUpTo(Number(old.id), removed);
    // Over the size bound: remove the oldest batches, estimating their share of the file from their
    // request bytes; deleted rows free whole pages only once a page is empty, so check and repeat.
    for (let round = 0; round < 50; round++) {
      const used = this.usedBytes();
      if (used <= maxBytes) break;
      const total = Number(this.stmt('SELECT sum(bytes) AS b FROM batches').get()?.b ?? 0);
      if (total <= 0) break;
      const ratio = used / total;
      let toFree = used - maxBytes * 0.9;
      let upTo = 0;
      for (const row of this.stmt('SELECT id, bytes FROM batches ORDER BY id').iterate()) {
        upTo = Number(row.id);
        toFree -= Number(row.bytes) * ratio;
        if (toFree <= 0) break;
      }
      if (upTo === 0) break;
      this.removeUpTo(upTo, removed);
    }
    if (removed.batches > 0) this.db.exec('PRAGMA incremental_vacuum');
    return removed;
  }

  private removeUpTo(batch: number, removed: RetentionResult): void {
    const last = this.stmt(
      'SELECT max(last_span) AS s, max(last_chunk) AS c, max(last_blob) AS x, sum(spans) AS n, count(*) AS b FROM batches WHERE id <= ?',
    ).get(batch);
    if (!last || Number(last.b) === 0) return;
    this.db.exec('BEGIN');
    try {
      this.stmt('DELETE FROM spans WHERE id <= ?').run(Number(last.s));
      // postings are keyed by (key, value, block): one range per searchable value. Blocks do not
      // straddle batches (each write starts its own), so a block at or below the last span is gone.
      const deletePostings = this.stmt('DELETE FROM postings WHERE key = ? AND value = ? AND block <= ?');
      for (const row of this.stmt('SELECT key, value FROM tag_values').all()) {
        deletePostings.run(row.key as string, row.value as string, Number(last.s));
      }
      this.stmt('DELETE FROM postings WHERE key = ? AND block <= ?').run(STATUS_KEY, Number(last.s));
      this.stmt('DELETE FROM blocks WHERE id <= ?').run(Number(last.s));
      this.stmt('DELETE FROM chunks WHERE id <= ?').run(Number(last.c));
      this.stmt('DELETE FROM blobs WHERE id <= ?').run(Number(last.x));
      this.stmt('DELETE FROM tag_values WHERE batch <= ?').run(batch);
      this.stmt('DELETE FROM batches WHERE id <= ?').run(batch);
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    removed.batches += Number(last.b);
    removed.spans += Number(last.n ?? 0);
  }

  /** The stored chunks (encoded ResourceSpans) of a trace, optionally only those overlapping [startNs, endNs]. */
  traceChunks(traceId: Buffer, startNs?: bigint, endNs?: bigint): Buffer[] {
    const rows = this.stmt(
      'SELECT blob, offset, length FROM chunks WHERE trace_id = ? AND end_ns >= ? AND start_ns <= ? ORDER BY id',
    ).all(traceId, startNs ?? 0n, endNs ?? 2n ** 63n - 1n);
    const getBlob = this.stmt('SELECT data FROM blobs WHERE id = ?');
    const unpacked = new Map<number, Buffer>();
    const out: Buffer[] = [];
    for (const r of rows) {
      const id = Number(r.blob);
      let data = unpacked.get(id);
      if (!data) {
        const row = getBlob.get(id);
        if (!row) continue;
        data = zstdDecompressSync(row.data as Uint8Array);
        unpacked.set(id, data);
      }
      const offset = Number(r.offset);
      out.push(data.subarray(offset, offset + Number(r.length)));
    }
    return out;
  }

  /**
   * The span row ids that can hold spans starting in [startMs, endMs]: rows are numbered in arrival
   * order, and a span arrives after it starts (give or take `slackMs` of clock skew) and, unless an
   * exporter held it back for longer than `slackMs`, soon after it ends. Returns (lo, hi]: ids above
   * lo, up to hi.
   */
  spanIdRange(startMs: number, endMs: number, slackMs: number): { lo: number; hi: number } {
    const lo = this.stmt('SELECT max(last_span) AS id FROM batches WHERE received_ms < ?').get(startMs - slackMs);
    const hi = this.stmt('SELECT min(last_span) AS id FROM batches WHERE received_ms > ?').get(endMs + slackMs);
    return { lo: Number(lo?.id ?? 0), hi: hi?.id == null ? Number.MAX_SAFE_INTEGER : Number(hi.id) };
  }

  /** A trace's extent and root span's service and name, from its chunks; undefined when none is stored. */
  traceSummary(
    traceId: Uint8Array,
  ): { startNs: bigint; endNs: bigint; rootService: string | null; rootName: string | null } | undefined {
    const stmt = this.stmt(
      'SELECT min(start_ns) AS s, max(end_ns) AS e, max(root_service) AS rs, max(root_name) AS rn FROM chunks WHERE trace_id = ?',
    );
    stmt.setReadBigInts(true);
    const row = stmt.get(traceId);
    if (!row || row.s === null) return undefined;
    return {
      startNs: row.s as bigint,
      endNs: row.e as bigint,
      rootService: row.rs as string | null,
      rootName: row.rn as string | null,
    };
  }

  spanCount(): number {
    return Number(this.stmt('SELECT count(*) AS n FROM spans').get()?.n ?? 0);
  }
}

const SPAN_COLUMNS = 'trace_id, span_id, service, name, kind, status, start_ns, duration_ns, duration_class, attrs';
const POSTING_COLUMNS = 'key, value, block';
const CHUNK_COLUMNS = 'trace_id, start_ns, end_ns, blob, offset, length, root_service, root_name';

export function hex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

const regexCache = new Map<string, RegExp>();

/** TraceQL regexes match the whole value (as Go's regexp with ^...$). */
function regexFor(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    re = new RegExp(`^(?:${pattern})$`);
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

/** Numbers as SQLite's CAST(text AS REAL): the longest numeric prefix, else 0. */
function asReal(text: string): number {
  const n = Number.parseFloat(text);
  return Number.isNaN(n) ? 0 : n;
}

function tagTest(attrs: string, keys: string, op: string, value: unknown, numeric: boolean): boolean {
  const wanted = keys.split(US);
  for (const entry of attrs.split(SEP)) {
    const at = entry.indexOf(US);
    if (at < 0 || !wanted.includes(entry.slice(0, at))) continue;
    const v = entry.slice(at + 1);
    let ok: boolean;
    if (op === '=~' || op === '!~') ok = regexFor(String(value)).test(v) === (op === '=~');
    else {
      const a: string | number = numeric ? asReal(v) : v;
      const b: string | number = numeric ? Number(value) : String(value);
      ok =
        op === '='
          ? a === b
          : op === '!='
            ? a !== b
            : op === '>'
              ? a > b
              : op === '>='
                ? a >= b
                : op === '<'
                  ? a < b
                  : a <= b;
    }
    if (ok) return true;
  }
  return false;
}

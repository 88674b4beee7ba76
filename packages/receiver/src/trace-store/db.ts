/**
 * The trace store's SQLite database (node:sqlite): schema, batched writes, retention and the reads
 * behind the Tempo API. One writer connection (in the writer thread) and any number of readers (the
 * admin server's): WAL mode lets them run side by side, and makes a crash mid-write lose at most the
 * transaction that was open, never corrupt the file.
 *
 * Tables:
 * - batches: one row per written batch (arrival time, bytes, the last row id it wrote in each table):
 *   retention removes whole batches, oldest first, by row-id ranges (no scans).
 * - chunks:  per trace and resource, the encoded OTLP ResourceSpans (trace by id returns these).
 * - traces:  per trace, its extent and root span's service and name (search results).
 * - spans:   per span, the indexed fields (service, name, status, duration, start time).
 * - tags:    per span, the values of the indexed attribute keys ("span.http.route", "resource.x").
 * - tag_values: the distinct values of each searchable key, for the tag-values API.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { ScanResult } from './scan';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, spans INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0, last_span INTEGER NOT NULL DEFAULT 0, last_tag INTEGER NOT NULL DEFAULT 0,
  last_chunk INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY, trace_id BLOB NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_trace ON chunks (trace_id);
CREATE TABLE IF NOT EXISTS traces (
  trace_id BLOB PRIMARY KEY, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
  root_service TEXT, root_name TEXT, batch INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS traces_batch ON traces (batch);
CREATE TABLE IF NOT EXISTS spans (
  id INTEGER PRIMARY KEY, trace_id BLOB NOT NULL, span_id BLOB NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL,
  kind INTEGER NOT NULL, status INTEGER NOT NULL, start_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS spans_service ON spans (service);
CREATE INDEX IF NOT EXISTS spans_name ON spans (name);
CREATE INDEX IF NOT EXISTS spans_status ON spans (status);
CREATE INDEX IF NOT EXISTS spans_duration ON spans (duration_ns);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE TABLE IF NOT EXISTS tags (id INTEGER PRIMARY KEY, key TEXT NOT NULL, value TEXT NOT NULL, span INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tags_key_value ON tags (key, value, span);
CREATE TABLE IF NOT EXISTS tag_values (
  key TEXT NOT NULL, value TEXT NOT NULL, batch INTEGER NOT NULL, PRIMARY KEY (key, value)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tag_values_batch ON tag_values (batch);
`;

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

  /** Opens the database at `path`: the writer creates it and its schema; a reader only reads. */
  static open(path: string, options: { reader?: boolean } = {}): TraceDb {
    if (!options.reader) mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path, { timeout: 5000 });
    const store = new TraceDb(db);
    if (!options.reader) {
      // auto_vacuum must be chosen before the first table exists; it lets retention give pages back.
      db.exec('PRAGMA auto_vacuum = INCREMENTAL');
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA cache_size = -32768');
      db.exec(SCHEMA);
    }
    db.exec('PRAGMA temp_store = MEMORY');
    db.function('regexp', { deterministic: true }, (pattern, value) => {
      if (typeof pattern !== 'string' || value === null) return 0;
      return regexFor(pattern).test(String(value)) ? 1 : 0;
    });
    return store;
  }

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
      const insertChunk = this.stmt('INSERT INTO chunks (trace_id, start_ns, end_ns, data) VALUES (?, ?, ?, ?)');
      let lastChunk = 0;
      for (const c of scan.chunks) {
        lastChunk = Number(insertChunk.run(c.traceId, c.startNs, c.endNs, c.data).lastInsertRowid);
      }
      const roots = new Map<string, { service: string; name: string }>();
      const insertSpan = this.stmt(
        'INSERT INTO spans (trace_id, span_id, service, name, kind, status, start_ns, duration_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const insertTag = this.stmt('INSERT INTO tags (key, value, span) VALUES (?, ?, ?)');
      const values = new Map<string, [string, string]>();
      let lastSpan = 0;
      let lastTag = 0;
      for (const s of scan.spans) {
        lastSpan = Number(
          insertSpan.run(s.traceId, s.spanId, s.service, s.name, s.kind, s.status, s.startNs, s.durationNs)
            .lastInsertRowid,
        );
        for (const [k, v] of s.tags) {
          lastTag = Number(insertTag.run(k, v, lastSpan).lastInsertRowid);
          values.set(`${k}\0${v}`, [k, v]);
        }
        values.set(`resource.service.name\0${s.service}`, ['resource.service.name', s.service]);
        values.set(`name\0${s.name}`, ['name', s.name]);
        if (s.root) roots.set(hex(s.traceId), { service: s.service, name: s.name });
      }
      const upsertTrace = this.stmt(
        `INSERT INTO traces (trace_id, start_ns, end_ns, root_service, root_name, batch) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (trace_id) DO UPDATE SET start_ns = min(start_ns, excluded.start_ns),
           end_ns = max(end_ns, excluded.end_ns), root_service = coalesce(excluded.root_service, root_service),
           root_name = coalesce(excluded.root_name, root_name), batch = excluded.batch`,
      );
      const extents = new Map<string, { id: Uint8Array; start: bigint; end: bigint }>();
      for (const c of scan.chunks) {
        const key = hex(c.traceId);
        const e = extents.get(key);
        if (!e) extents.set(key, { id: c.traceId, start: c.startNs, end: c.endNs });
        else {
          if (c.startNs < e.start) e.start = c.startNs;
          if (c.endNs > e.end) e.end = c.endNs;
        }
      }
      for (const [key, e] of extents) {
        const root = roots.get(key);
        upsertTrace.run(e.id, e.start, e.end, root?.service ?? null, root?.name ?? null, batch);
      }
      const upsertValue = this.stmt(
        'INSERT INTO tag_values (key, value, batch) VALUES (?, ?, ?) ON CONFLICT (key, value) DO UPDATE SET batch = excluded.batch',
      );
      for (const [k, v] of values.values()) upsertValue.run(k, v, batch);
      this.stmt(
        'UPDATE batches SET spans = ?, bytes = ?, last_span = ?, last_tag = ?, last_chunk = ? WHERE id = ?',
      ).run(scan.spans.length, bytes, lastSpan, lastTag, lastChunk, batch);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
    return { spans: scan.spans.length, bytes };
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
    let used = this.usedBytes();
    if (used > maxBytes) {
      const total = Number(this.stmt('SELECT sum(bytes) AS b FROM batches').get()?.b ?? 0);
      if (total > 0) {
        // Request bytes to database bytes: the ratio over what is stored now.
        const ratio = used / total;
        let toFree = used - maxBytes * 0.9;
        let upTo = 0;
        for (const row of this.stmt('SELECT id, bytes FROM batches ORDER BY id').iterate()) {
          upTo = Number(row.id);
          toFree -= Number(row.bytes) * ratio;
          if (toFree <= 0) break;
        }
        if (upTo > 0) this.removeUpTo(upTo, removed);
      }
      used = this.usedBytes();
    }
    if (removed.batches > 0) this.db.exec('PRAGMA incremental_vacuum');
    return removed;
  }

  private removeUpTo(batch: number, removed: RetentionResult): void {
    const last = this.stmt(
      'SELECT max(last_span) AS s, max(last_tag) AS t, max(last_chunk) AS c, sum(spans) AS n, count(*) AS b FROM batches WHERE id <= ?',
    ).get(batch);
    if (!last || Number(last.b) === 0) return;
    this.db.exec('BEGIN');
    try {
      this.stmt('DELETE FROM spans WHERE id <= ?').run(Number(last.s));
      this.stmt('DELETE FROM tags WHERE id <= ?').run(Number(last.t));
      this.stmt('DELETE FROM chunks WHERE id <= ?').run(Number(last.c));
      this.stmt('DELETE FROM traces WHERE batch <= ?').run(batch);
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
    const rows =
      startNs === undefined && endNs === undefined
        ? this.stmt('SELECT data FROM chunks WHERE trace_id = ? ORDER BY id').all(traceId)
        : this.stmt('SELECT data FROM chunks WHERE trace_id = ? AND end_ns >= ? AND start_ns <= ? ORDER BY id').all(
            traceId,
            startNs ?? 0n,
            endNs ?? 2n ** 63n - 1n,
          );
    return rows.map((r) => Buffer.from(r.data as Uint8Array));
  }

  spanCount(): number {
    return Number(this.stmt('SELECT count(*) AS n FROM spans').get()?.n ?? 0);
  }
}

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

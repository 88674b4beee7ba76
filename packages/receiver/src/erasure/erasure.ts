/**
 * Erasure of one pseudonymous subject from the embedded stores, by tombstones applied on every read
 * (the stores keep whole compressed blobs; rewriting them would take the writer thread for as long as
 * the blobs are large, and the bytes would linger in the free pages of SQLite anyway):
 *
 * - traces: every trace with a span (or resource) carrying the subject under one of the subject keys
 *   (`erasure.subject_keys`, indexed by the trace store for this), found when the erasure is called,
 *   is tombstoned by trace id: the Tempo API answers 404 for it and leaves it out of search results,
 *   and spans of it arriving later are hidden as well;
 * - logs: records carrying the subject under a subject key with a time up to the erasure, and records
 *   of the tombstoned traces (their `trace_id`), are left out of every Loki API answer (log queries,
 *   metric queries, detected fields);
 * - tag values: the subject is left out of the trace store's tag values.
 *
 * Tombstones are kept in `<data_dir>/erasure.json` (written to a temporary file, fsynced, renamed),
 * so they survive a restart, holding the SHA-256 of each subject (not the subject) and the trace ids;
 * each is dropped once the stores' retention has deleted everything older than it. The bytes of
 * erased data stay on disk, unreadable through the receiver, until retention deletes their blobs.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ErasureOptions {
  /** The tombstone file. */
  file: string;
  /** Attribute keys whose value identifies a subject (e.g. enduser.pseudo.id). */
  subjectKeys: string[];
  /** The longest retention of the stores: a tombstone older than this (plus an hour) is dropped. */
  retentionMs: number;
  /** Most traces one erasure may tombstone. */
  maxTraces: number;
  now?: () => number;
}

interface SubjectTombstone {
  /** SHA-256 hex of the subject value. */
  hash: string;
  /** The keys it is erased under; absent = the configured subject keys. */
  keys?: string[];
  erasedAtMs: number;
}

interface TombstoneFile {
  version: 1;
  subjects: SubjectTombstone[];
  /** trace id (hex) → erasure time, ms. */
  traces: Record<string, number>;
}

export class ErasureError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function subjectHash(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

export class Erasure {
  private subjects: SubjectTombstone[] = [];
  private readonly byHash = new Map<string, SubjectTombstone[]>();
  private readonly traces = new Map<string, number>();
  private readonly now: () => number;

  constructor(readonly options: ErasureOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Reads the tombstone file (none yet: no tombstone). A file that cannot be parsed stops the start-up. */
  load(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.options.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let parsed: TombstoneFile;
    try {
      parsed = JSON.parse(text) as TombstoneFile;
      if (parsed.version !== 1 || !Array.isArray(parsed.subjects) || typeof parsed.traces !== 'object')
        throw new Error('not an erasure tombstone file of version 1');
    } catch (err) {
      throw new Error(
        `the erasure tombstones ${this.options.file} cannot be read (${(err as Error).message}); erased data would become readable again, so the receiver does not start: restore the file from a backup`,
      );
    }
    for (const s of parsed.subjects) this.addSubject(s);
    for (const [id, at] of Object.entries(parsed.traces)) this.traces.set(id, at);
    this.expire();
  }

  get tombstones(): { subjects: number; traces: number } {
    return { subjects: this.subjects.length, traces: this.traces.size };
  }

  get active(): boolean {
    return this.subjects.length > 0 || this.traces.size > 0;
  }

  /** Records the tombstones of one erasure and writes the file before returning. */
  record(subject: string, keys: string[] | undefined, traceIds: Iterable<string>): void {
    const at = this.now();
    this.addSubject({ hash: subjectHash(subject), ...(keys ? { keys } : {}), erasedAtMs: at });
    for (const id of traceIds) this.traces.set(id, at);
    this.expire();
    this.save();
  }

  isTraceErased(traceIdHex: string): boolean {
    return this.traces.size > 0 && this.traces.has(traceIdHex);
  }

  /** Whether a value is an erased subject (under any key): for tag values. */
  isErasedValue(value: string): boolean {
    return this.byHash.size > 0 && this.byHash.has(subjectHash(value));
  }

  /**
   * Whether a record (attributes as a key → string map, normalized or not) at `timeMs` is erased: it
   * carries an erased subject under one of its keys with a time up to the erasure, or belongs to an
   * erased trace. `keyOf` maps an attribute key to the map's key (Loki metadata names are normalized).
   */
  isRecordErased(values: Record<string, string>, timeMs: number, keyOf: (key: string) => string): boolean {
    if (this.traces.size > 0) {
      const traceId = values.trace_id;
      if (traceId && this.traces.has(traceId)) return true;
    }
    if (this.byHash.size === 0) return false;
    const seen = new Set<string>();
    for (const key of this.allKeys()) {
      const name = keyOf(key);
      if (seen.has(name)) continue;
      seen.add(name);
      const value = values[name];
      if (value === undefined) continue;
      const tombstones = this.byHash.get(subjectHash(value));
      if (!tombstones) continue;
      for (const t of tombstones)
        if (timeMs <= t.erasedAtMs && (t.keys ?? this.options.subjectKeys).some((k) => keyOf(k) === name)) return true;
    }
    return false;
  }

  private allKeys(): string[] {
    const keys = new Set(this.options.subjectKeys);
    for (const s of this.subjects) for (const k of s.keys ?? []) keys.add(k);
    return [...keys];
  }

  private addSubject(s: SubjectTombstone): void {
    this.subjects.push(s);
    const list = this.byHash.get(s.hash) ?? [];
    list.push(s);
    this.byHash.set(s.hash, list);
  }

  /** Drops tombstones older than the retention (plus an hour): what they hid has been deleted. */
  private expire(): void {
    const before = this.now() - this.options.retentionMs - 3_600_000;
    if (this.subjects.some((s) => s.erasedAtMs < before)) {
      const kept = this.subjects.filter((s) => s.erasedAtMs >= before);
      this.subjects = [];
      this.byHash.clear();
      for (const s of kept) this.addSubject(s);
    }
    for (const [id, at] of this.traces) if (at < before) this.traces.delete(id);
  }

  private save(): void {
    const data: TombstoneFile = { version: 1, subjects: this.subjects, traces: Object.fromEntries(this.traces) };
    const dir = path.dirname(this.options.file);
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${this.options.file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(data));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.options.file);
    try {
      const dfd = fs.openSync(dir, 'r');
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch {
      // a directory that cannot be opened for fsync (some file systems): the rename is done
    }
  }
}

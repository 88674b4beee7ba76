/**
 * The log store's SQLite database, on the blob store engine's SQLite side (src/blob-store/blob-db.ts):
 * export requests stored whole, as arrived, in zstd-compressed blobs of about BLOB_BYTES, indexed
 * so that a query reads only the blobs that can hold its entries:
 *
 * - batches:   one row per written batch (arrival time, records, bytes, its blob id range): retention
 *              removes whole batches, oldest first (as the trace store).
 * - blobs:     the compressed requests with their entries' time extent (indexed by its end), their batch, their arrival time (the time
 *              of an entry that has none) and whether every body is a string (`plain`: a line
 *              filter's substring can then be looked for in the blob's bytes before decoding it).
 * - streams:   each stream's labels (Loki 3's OTLP mapping, loki-entry.ts), its time extent and the
 *              last batch that wrote it: label names and values, series, and the streams a selector
 *              matches (regexes included) are answered here without reading blobs.
 * - postings:  per stream and batch, which of the batch's blobs hold the stream's entries (a bitmap),
 *              with its entries and line bytes there: the label postings, at stream grain (a label
 *              matcher selects streams, their postings name the blobs).
 * - stream_labels: the label-value postings: per label name and value, the streams that have it. A
 *              selector with a matcher an absent label cannot satisfy (`name="x"`, `name=~"a|b"`)
 *              reads only the streams it names, not every stream (an equality through the index, a
 *              regex over the name's values); other selectors read every stream, as before.
 *              Written when the writer first meets a stream; filled from `streams` for a store
 *              written before the table existed.
 * - blob_traces: per blob, a bloom filter of the trace ids of its records (the `trace_id` structured
 *              metadata), as Loki's blooms over structured metadata: a `| trace_id="…"` lookup over
 *              24 h checks the blooms of the blobs in the window (cached by the reader: blobs do not
 *              change) and reads the one or two that may hold it. A row per trace id and blob (the
 *              trace store's bucketed trace rows) cost the writer 70% of its time with a trace id on
 *              every record; a bloom costs it a few hashes.
 * - level_times: per blob, stream, `level` and `detected_level` (the labels the log-volume query groups
 *              by, log-index.ts), the entries' count, time extent and times (delta varints): a
 *              `sum by (level, detected_level) (count_over_time({…} [1m]))` counts from these rows
 *              without reading a blob: a row wholly inside its step windows adds its count, another
 *              one its times. A blob without rows (written before they were) is read.
 * - wal_position: the write-ahead log position the writes hold (durability: wal, wal_async).
 */
import type { DatabaseSync } from 'node:sqlite';
import {
  blobBloomAdd,
  blobBloomHas,
  newBlobBloom,
  openSqlite,
  packBlob,
  ROWS_PER_INSERT,
  SqliteBase,
  unpackBlob,
  WAL_POSITION_SCHEMA,
} from '../blob-store/blob-db';
import type { Checkpoint } from '../blob-store/reader-protocol';
import type { ResourceLogs } from '../model';
import { decodeLogsRequest } from '../otlp/protobuf/decode-logs';
import { type IndexedRecord, indexLogsRequest, requestParts } from './log-index';
import { intervalOf, type LabelMatcher, type LokiEntry, type StreamVolume, toLokiEntries } from './loki-entry';
import { checkMatchers, matches, streamKey } from './matchers';

export const LOG_SCHEMA_VERSION = 3;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, records INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0, first_blob INTEGER NOT NULL DEFAULT 0, last_blob INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS batches_received ON batches (received_ms);
CREATE TABLE IF NOT EXISTS blobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, records INTEGER NOT NULL, min_ns INTEGER NOT NULL, max_ns INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, plain INTEGER NOT NULL, batch INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS blobs_max ON blobs (max_ns);
CREATE TABLE IF NOT EXISTS streams (
  id INTEGER PRIMARY KEY, labels TEXT NOT NULL UNIQUE, min_ns INTEGER NOT NULL, max_ns INTEGER NOT NULL,
  batch INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS streams_batch ON streams (batch);
CREATE TABLE IF NOT EXISTS postings (
  stream INTEGER NOT NULL, batch INTEGER NOT NULL, blobs BLOB NOT NULL, entries INTEGER NOT NULL,
  bytes INTEGER NOT NULL, PRIMARY KEY (stream, batch)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_traces (blob INTEGER PRIMARY KEY, bloom BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS stream_labels (
  name TEXT NOT NULL, value TEXT NOT NULL, stream INTEGER NOT NULL, PRIMARY KEY (name, value, stream)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stream_labels_stream ON stream_labels (stream);
CREATE TABLE IF NOT EXISTS level_times (
  stream INTEGER NOT NULL, blob INTEGER NOT NULL, level TEXT NOT NULL, detected_level TEXT NOT NULL,
  entries INTEGER NOT NULL, min_ns INTEGER NOT NULL, max_ns INTEGER NOT NULL, times BLOB,
  PRIMARY KEY (stream, blob, level, detected_level)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS level_times_blob ON level_times (blob);
${WAL_POSITION_SCHEMA}`;

/** Uncompressed request bytes per blob (a request larger than this is a blob of its own). */
export const BLOB_BYTES = 256 * 1024;

const MAX_NS = 2n ** 63n - 1n;
const TRACE_ID = /^[0-9a-f]{32}$/;

/** A blob's entries of one stream, level and detected_level. */
interface LevelGroup {
  stream: string;
  level: string;
  detectedLevel: string;
  entries: number;
  bytes: number;
  /** The first entry's time (high and low 32 bits): the others' are offsets from it. */
  hi0: number;
  lo0: number;
  /** The entries' times as offsets from the first (exact while `wide` is false), in order. */
  times: number[];
  minOff: number;
  maxOff: number;
  /** An offset is beyond 2^53 ns: the extent is kept in `wideMin`/`wideMax`, no times. */
  wide: boolean;
  wideMin: bigint;
  wideMax: bigint;
  /** The extent, once the blob is complete (`finish`). */
  min: bigint;
  max: bigint;
}

const TWO_32 = 2 ** 32;
const nsOf = (hi: number, lo: number) => (BigInt(hi) << 32n) | BigInt(lo);

/** Sets a group's extent from its offsets. */
function finish(g: LevelGroup): void {
  if (g.wide) {
    g.min = g.wideMin;
    g.max = g.wideMax;
    return;
  }
  const first = nsOf(g.hi0, g.lo0);
  g.min = first + BigInt(g.minOff);
  g.max = first + BigInt(g.maxOff);
}

/** What the writer gathers of one blob's requests. */
interface BlobIndex {
  parts: Buffer[];
  size: number;
  records: number;
  /** The entries' extent, as (high, low) 32-bit halves. */
  minHi: number;
  minLo: number;
  maxHi: number;
  maxLo: number;
  plain: boolean;
  /** Per stream key, its groups (by level and detected level). */
  groups: Map<string, StreamGroups>;
  /** The trace ids in the blob's requests (repeats included): the body and where in it each starts. */
  traceBodies: Buffer[];
  traceAts: number[];
  /** The group of the record added last, and its stream's. */
  last: LevelGroup | undefined;
  lastStream: StreamGroups | undefined;
}

/**
 * A stream's groups in a blob: a list (a stream has a few levels: found by comparing them), and past
 * GROUPS_SCANNED of them a map by level and detected level (levels taken from attributes may be many).
 */
interface StreamGroups {
  groups: LevelGroup[];
  /** By level, then detected level. */
  byLevels: Map<string, Map<string, LevelGroup>> | undefined;
}

const GROUPS_SCANNED = 8;

function findGroup(s: StreamGroups, level: string, detectedLevel: string): LevelGroup | undefined {
  if (s.byLevels) return s.byLevels.get(level)?.get(detectedLevel);
  for (const g of s.groups) if (g.level === level && g.detectedLevel === detectedLevel) return g;
  return undefined;
}

function addGroup(s: StreamGroups, g: LevelGroup): void {
  s.groups.push(g);
  if (s.byLevels) mapGroup(s.byLevels, g);
  else if (s.groups.length > GROUPS_SCANNED) {
    const byLevels = new Map<string, Map<string, LevelGroup>>();
    for (const each of s.groups) mapGroup(byLevels, each);
    s.byLevels = byLevels;
  }
}

function mapGroup(byLevels: Map<string, Map<string, LevelGroup>>, g: LevelGroup): void {
  let detected = byLevels.get(g.level);
  if (!detected) {
    detected = new Map();
    byLevels.set(g.level, detected);
  }
  detected.set(g.detectedLevel, g);
}

function newBlob(): BlobIndex {
  return {
    parts: [],
    size: 0,
    records: 0,
    minHi: 0x7fffffff,
    minLo: 0xffffffff,
    maxHi: 0,
    maxLo: 0,
    plain: true,
    groups: new Map(),
    traceBodies: [],
    traceAts: [],
    last: undefined,
    lastStream: undefined,
  };
}

/** A blob's groups, one after the other. */
function* groupsOf(b: BlobIndex): Generator<LevelGroup> {
  for (const stream of b.groups.values()) yield* stream.groups;
}

/** Per stream key of a blob: its entries, line bytes and time extent (summed over its groups). */
function streamsOf(b: BlobIndex): Map<string, { entries: number; bytes: number; min: bigint; max: bigint }> {
  const out = new Map<string, { entries: number; bytes: number; min: bigint; max: bigint }>();
  for (const [stream, { groups }] of b.groups) {
    let s: { entries: number; bytes: number; min: bigint; max: bigint } | undefined;
    for (const g of groups) {
      if (!s) s = { entries: g.entries, bytes: g.bytes, min: g.min, max: g.max };
      else {
        s.entries += g.entries;
        s.bytes += g.bytes;
        if (g.min < s.min) s.min = g.min;
        if (g.max > s.max) s.max = g.max;
      }
    }
    if (s) out.set(stream, s);
  }
  return out;
}

/** Adds a record that the index pass met in `body` to the blob's index. */
function addRecord(b: BlobIndex, body: Buffer, e: IndexedRecord): void {
  if (!e.plain) b.plain = false;
  let hi = e.timeHi;
  let lo = e.timeLo;
  if (hi > 0x7fffffff) {
    // Past SQLite's largest integer: kept at it.
    hi = 0x7fffffff;
    lo = 0xffffffff;
  }
  // Records in a row mostly share stream and levels: the last one's group first.
  let g = b.last;
  if (!g || g.stream !== e.stream || g.level !== e.level || g.detectedLevel !== e.detectedLevel) {
    let stream = g !== undefined && g.stream === e.stream ? b.lastStream : b.groups.get(e.stream);
    if (!stream) {
      stream = { groups: [], byLevels: undefined };
      b.groups.set(e.stream, stream);
    }
    b.lastStream = stream;
    g = findGroup(stream, e.level, e.detectedLevel);
    if (!g) {
      g = {
        stream: e.stream,
        level: e.level,
        detectedLevel: e.detectedLevel,
        entries: 0,
        bytes: 0,
        hi0: hi,
        lo0: lo,
        times: [],
        minOff: 0,
        maxOff: 0,
        wide: false,
        wideMin: 0n,
        wideMax: 0n,
        min: 0n,
        max: 0n,
      };
      addGroup(stream, g);
    }
    b.last = g;
  }
  g.entries++;
  g.bytes += e.lineBytes;
  const off = (hi - g.hi0) * TWO_32 + (lo - g.lo0);
  if (!g.wide && (off > MAX_OFFSET || off < -MAX_OFFSET)) {
    // Not exact as a double: this group keeps its extent in BigInt, and no times.
    g.wide = true;
    finish(g);
    g.wideMin = g.min;
    g.wideMax = g.max;
  }
  if (g.wide) {
    const t = nsOf(hi, lo);
    if (t < g.wideMin) g.wideMin = t;
    if (t > g.wideMax) g.wideMax = t;
  } else {
    g.times.push(off);
    if (off < g.minOff) g.minOff = off;
    if (off > g.maxOff) g.maxOff = off;
  }
  if (hi < b.minHi || (hi === b.minHi && lo < b.minLo)) {
    b.minHi = hi;
    b.minLo = lo;
  }
  if (hi > b.maxHi || (hi === b.maxHi && lo > b.maxLo)) {
    b.maxHi = hi;
    b.maxLo = lo;
  }
  if (e.traceAt >= 0) {
    b.traceBodies.push(body);
    b.traceAts.push(e.traceAt);
  }
}

/** The index of a blob of `parts` (each read before: none throws). */
function blobOf(parts: readonly Buffer[], receivedNs: bigint): BlobIndex {
  const b = newBlob();
  for (const body of parts) {
    b.records += indexLogsRequest(body, receivedNs, (e) => addRecord(b, body, e));
    b.parts.push(body);
    b.size += body.length;
  }
  return b;
}

/** Beyond this, a time offset is not exact as a double: the row keeps no times (its blob is read). */
const MAX_OFFSET = 2 ** 53;

/** Beyond this, a difference between two times is not exact once zigzag-encoded (doubled). */
const MAX_DELTA = 2 ** 52;

/** packTimes' output before its copy (grown as needed). */
let packScratch = new Uint8Array(8 * 1024);

/**
 * A group's times as varints: the first one's offset from `min`, then each one's difference from
 * the one before (zigzag: times need not be in order); undefined when a difference is not exact
 * (beyond 2^52 ns, 52 days: the row then keeps no times and its blob is read).
 */
export function packTimes(times: readonly number[], min: number): Uint8Array | undefined {
  // At most 8 bytes a time (a zigzag value below 2^55); written into a scratch buffer, then copied.
  if (packScratch.length < times.length * 8)
    packScratch = new Uint8Array(Math.max(times.length * 8, 2 * packScratch.length));
  const out = packScratch;
  let n = 0;
  let prev = min;
  for (let i = 0; i < times.length; i++) {
    const t = times[i];
    const d = t - prev;
    prev = t;
    if (d >= 0 && d < 0x40000000) {
      // The common case (successive times within a second or so): zigzag and varint in 32-bit integers.
      let z = d * 2;
      while (z >= 128) {
        out[n++] = (z & 127) | 128;
        z >>>= 7;
      }
      out[n++] = z;
      continue;
    }
    // zigzag doubles it: exact while |d| ≤ 2^52.
    if (d > MAX_DELTA || d < -MAX_DELTA) return undefined;
    // zigzag, in doubles (beyond 32 bits)
    let z = d >= 0 ? d * 2 : -d * 2 - 1;
    while (z >= 128) {
      out[n++] = (z % 128) | 128;
      z = Math.floor(z / 128);
    }
    out[n++] = z;
  }
  return out.slice(0, n);
}

/** The times packTimes packed, as offsets from `min` (exact doubles), in order. */
export function unpackTimes(data: Uint8Array, each: (offset: number) => void): void {
  let at = 0;
  let offset = 0;
  while (at < data.length) {
    let z = 0;
    let scale = 1;
    let b: number;
    do {
      b = data[at++];
      z += (b & 127) * scale;
      scale *= 128;
    } while (b & 128 && at < data.length);
    offset += z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    each(offset);
  }
}

/** A write that failed (and was rolled back): `items` records were not stored. */
export class LogWriteError extends Error {
  constructor(
    message: string,
    readonly items: number,
  ) {
    super(message);
    this.name = 'LogWriteError';
  }
}

/** A position in a selection's order, past which the next page starts. */
export interface SelectCursor {
  timeNs: bigint;
  blob: number;
  index: number;
}

/** One page of a selection (LogSource.select reads pages until `next` is undefined). */
export interface SelectPage {
  entries: LokiEntry[];
  next?: SelectCursor;
}

export interface SelectQuery {
  matchers: LabelMatcher[];
  startNs: bigint;
  endNs: bigint;
  direction: 'forward' | 'backward';
  lineContains?: string[];
  traceId?: string;
  after?: SelectCursor;
  /** Entries per page at most. */
  max: number;
}

/** Labels a volume query may group by: those the level_times rows hold. */
export const VOLUME_LABELS: readonly string[] = ['level', 'detected_level'];

/**
 * Counts of the entries of the streams matching `matchers`, grouped by `by` (of VOLUME_LABELS), in
 * step windows: window k holds the entries whose time t has baseNs + k·stepNs < t ≤ baseNs + k·stepNs +
 * rangeNs, for k < count (count_over_time's windows, as the LogQL engine computes them).
 */
export interface VolumeQuery {
  matchers: LabelMatcher[];
  by: string[];
  baseNs: bigint;
  rangeNs: number;
  stepNs: number;
  count: number;
}

/** A group's counts: its labels (the `by` labels with a value), the windows with entries and their counts. */
export interface VolumeGroup {
  labels: Record<string, string>;
  steps: number[];
  values: number[];
  /** Entries counted (each once). */
  entries: number;
}

interface Keyed {
  entry: LokiEntry;
  blob: number;
  index: number;
}

const decodeLimits = { maxAnyValueDepth: 64 };

/** The requests of a blob (or one body), as Loki entries; `receivedMs` is the time of an entry that has none. */
function entriesOf(data: Buffer, receivedMs: number): { entries: LokiEntry[]; resourceLogs: ResourceLogs[] } {
  const resourceLogs = decodeLogsRequest(data, decodeLimits);
  // Whole milliseconds (a replayed request's arrival is its log segment's mtime, a fraction).
  return { entries: toLokiEntries(resourceLogs, BigInt(Math.trunc(receivedMs)) * 1_000_000n), resourceLogs };
}

function sqlTime(t: bigint): bigint {
  return t > MAX_NS ? MAX_NS : t < 0n ? 0n : t;
}

export class LogDb extends SqliteBase {
  /** Set by open() when it removed a store written with another schema version. */
  recreated: { fromVersion: number } | undefined;
  /** A reader's blobs' trace-id bloom filters (a blob never changes; retention removes the oldest). */
  private readonly blooms = new Map<number, Uint8Array>();
  private bloomBytes = 0;
  /** The writer's streams whose label postings are written (cleared when retention removes streams: ids may be reused). */
  private readonly labelled = new Set<number>();
  /** Stream rows whose labels a read parsed and matched (tests: the label postings spare the others). */
  streamsExamined = 0;
  /** Blobs known to have no bloom filter (none of their records has a trace id). */
  private readonly noBloom = new Set<number>();

  private constructor(db: DatabaseSync) {
    super(db);
  }

  static open(path: string, options: { reader?: boolean } = {}): LogDb {
    const { db, recreated } = openSqlite(path, { reader: options.reader, schema: SCHEMA, version: LOG_SCHEMA_VERSION });
    const store = new LogDb(db);
    store.recreated = recreated;
    if (!options.reader) store.fillLabelPostings();
    return store;
  }

  close(): void {
    this.db.close();
  }

  /**
   * Writes requests (protobuf ExportLogsServiceRequest bodies) in one transaction. A body that cannot
   * be read is counted in `failed` and not stored (whole: never half of it).
   */
  write(
    bodies: readonly Buffer[],
    receivedMs: number,
    walPosition?: { segment: number; offset: number },
  ): { items: number; bytes: number; failed: number } {
    receivedMs = Math.trunc(receivedMs);
    const result = { items: 0, bytes: 0, failed: 0 };
    const blobs: BlobIndex[] = [];
    let current = newBlob();
    const receivedNs = BigInt(receivedMs) * 1_000_000n;
    for (const body of bodies) {
      // Records go into the blob as the pass meets them; a body that does not read is left out whole:
      // the blob's index is then made again from the bodies before it (rare: intake decoded them).
      let records: number;
      try {
        records = indexLogsRequest(body, receivedNs, (e) => addRecord(current, body, e));
      } catch {
        result.failed++;
        current = blobOf(current.parts, receivedNs);
        continue;
      }
      current.parts.push(body);
      current.size += body.length;
      current.records += records;
      result.bytes += body.length;
      result.items += records;
      if (current.size >= BLOB_BYTES) {
        blobs.push(current);
        current = newBlob();
      }
    }
    if (current.parts.length > 0) blobs.push(current);
    for (const b of blobs) for (const g of groupsOf(b)) finish(g);
    const db = this.db;
    db.exec('BEGIN');
    try {
      const batch = Number(this.stmt('INSERT INTO batches (received_ms) VALUES (?)').run(receivedMs).lastInsertRowid);
      let firstBlob = 0;
      let lastBlob = 0;
      // Per stream: the bitmap of the batch's blobs that hold it, its entries and bytes, its extent.
      const postings = new Map<
        string,
        { bits: Uint8Array; entries: number; bytes: number; min: bigint; max: bigint }
      >();
      const bitmapBytes = Math.ceil(blobs.length / 8);
      const blobIds: number[] = [];
      blobs.forEach((b, i) => {
        lastBlob = this.writeBlob(b, receivedMs, batch);
        blobIds.push(lastBlob);
        if (firstBlob === 0) firstBlob = lastBlob;
        for (const [key, s] of streamsOf(b)) {
          let p = postings.get(key);
          if (!p) {
            p = { bits: new Uint8Array(bitmapBytes), entries: 0, bytes: 0, min: s.min, max: s.max };
            postings.set(key, p);
          }
          p.bits[i >> 3] |= 1 << (i & 7);
          p.entries += s.entries;
          p.bytes += s.bytes;
          if (s.min < p.min) p.min = s.min;
          if (s.max > p.max) p.max = s.max;
        }
      });
      const upsertStream = this.stmt(
        `INSERT INTO streams (labels, min_ns, max_ns, batch) VALUES (?, ?, ?, ?) ON CONFLICT (labels) DO UPDATE
         SET min_ns = min(min_ns, excluded.min_ns), max_ns = max(max_ns, excluded.max_ns), batch = excluded.batch RETURNING id`,
      );
      const insertPosting = this.stmt(
        'INSERT INTO postings (stream, batch, blobs, entries, bytes) VALUES (?, ?, ?, ?, ?)',
      );
      const ids = new Map<string, number>();
      for (const [key, p] of postings) {
        const id = Number(upsertStream.get(key, p.min, p.max, batch)?.id);
        ids.set(key, id);
        insertPosting.run(id, batch, p.bits, p.entries, p.bytes);
        if (!this.labelled.has(id)) this.writeLabelPostings(id, key);
      }
      // ROWS_PER_INSERT rows a statement: a batch writes a row per blob, stream and levels (thousands).
      const columns = 'blob, stream, level, detected_level, entries, min_ns, max_ns, times';
      const levelRows: (number | string | bigint | Uint8Array | null)[] = [];
      const flushLevels = (rows: number) => {
        this.multiInsert('level_times', columns, rows).run(...levelRows);
        levelRows.length = 0;
      };
      blobs.forEach((b, i) => {
        for (const g of groupsOf(b)) {
          levelRows.push(
            blobIds[i],
            ids.get(g.stream) ?? 0,
            g.level,
            g.detectedLevel,
            g.entries,
            g.min,
            g.max,
            (g.wide ? undefined : packTimes(g.times, g.minOff)) ?? null,
          );
          if (levelRows.length === 8 * ROWS_PER_INSERT) flushLevels(ROWS_PER_INSERT);
        }
      });
      if (levelRows.length > 0) flushLevels(levelRows.length / 8);
      this.stmt('UPDATE batches SET records = ?, bytes = ?, first_blob = ?, last_blob = ? WHERE id = ?').run(
        result.items,
        result.bytes,
        firstBlob,
        lastBlob,
        batch,
      );
      if (walPosition) this.saveWalPosition(walPosition);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw new LogWriteError((err as Error).message, result.items);
    }
    return result;
  }

  /** A stream's label postings (idempotent: a stream met again after a restart is written again, ignored). */
  private writeLabelPostings(id: number, key: string): void {
    const insert = this.stmt('INSERT OR IGNORE INTO stream_labels (name, value, stream) VALUES (?, ?, ?)');
    for (const [name, value] of Object.entries(JSON.parse(key) as Record<string, string>)) insert.run(name, value, id);
    if (this.labelled.size >= 1_000_000) this.labelled.clear();
    this.labelled.add(id);
  }

  /** A store written before stream_labels existed: its postings from the streams table, once. */
  private fillLabelPostings(): void {
    if (this.stmt('SELECT 1 FROM stream_labels LIMIT 1').get() || !this.stmt('SELECT 1 FROM streams LIMIT 1').get())
      return;
    this.db.exec(
      'INSERT OR IGNORE INTO stream_labels (name, value, stream) SELECT j.key, j.value, s.id FROM streams s, json_each(s.labels) j',
    );
  }

  private writeBlob(b: BlobIndex, receivedMs: number, batch: number): number {
    const empty = b.records === 0;
    const blob = Number(
      this.stmt(
        'INSERT INTO blobs (records, min_ns, max_ns, received_ms, plain, batch, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(
        b.records,
        empty ? 0n : nsOf(b.minHi, b.minLo),
        empty ? 0n : nsOf(b.maxHi, b.maxLo),
        receivedMs,
        b.plain ? 1 : 0,
        batch,
        packBlob(b.parts),
      ).lastInsertRowid,
    );
    if (b.traceAts.length === 0) return blob;
    const bloom = newBlobBloom(b.traceAts.length);
    for (let i = 0; i < b.traceAts.length; i++) blobBloomAdd(bloom, b.traceBodies[i], b.traceAts[i]);
    this.stmt('INSERT INTO blob_traces (blob, bloom) VALUES (?, ?)').run(blob, bloom);
    return blob;
  }

  enforceRetention(nowMs: number, retentionMs: number, maxBytes: number): { batches: number; items: number } {
    return this.retain(nowMs, retentionMs, maxBytes, (batch, removed) => this.removeUpTo(batch, removed));
  }

  private removeUpTo(batch: number, removed: { batches: number; items: number }): void {
    const last = this.stmt(
      'SELECT max(last_blob) AS x, sum(records) AS n, count(*) AS b FROM batches WHERE id <= ?',
    ).get(batch);
    if (!last || Number(last.b) === 0) return;
    const lastBlob = Number(last.x);
    this.db.exec('BEGIN');
    try {
      // postings are keyed by (stream, batch): one range per stream.
      const deletePostings = this.stmt('DELETE FROM postings WHERE stream = ? AND batch <= ?');
      for (const row of this.stmt('SELECT id FROM streams').all()) deletePostings.run(Number(row.id), batch);
      this.stmt('DELETE FROM stream_labels WHERE stream IN (SELECT id FROM streams WHERE batch <= ?)').run(batch);
      this.stmt('DELETE FROM streams WHERE batch <= ?').run(batch);
      this.labelled.clear();
      this.stmt('DELETE FROM blob_traces WHERE blob <= ?').run(lastBlob);
      this.stmt('DELETE FROM level_times WHERE blob <= ?').run(lastBlob);
      this.stmt('DELETE FROM blobs WHERE id <= ?').run(lastBlob);
      this.stmt('DELETE FROM batches WHERE id <= ?').run(batch);
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    removed.batches += Number(last.b);
    removed.items += Number(last.n ?? 0);
  }

  /** Records stored. */
  recordCount(): number {
    return Number(this.stmt('SELECT sum(records) AS n FROM blobs').get()?.n ?? 0);
  }

  // --- reads ---

  /** The streams overlapping [startNs, endNs) whose labels match `matchers` (all streams when none). */
  streams(startNs: bigint, endNs: bigint, matchers: readonly LabelMatcher[] = []): Map<number, Record<string, string>> {
    checkMatchers(matchers);
    const out = new Map<number, Record<string, string>>();
    const add = (id: number, text: string) => {
      this.streamsExamined++;
      const labels = JSON.parse(text) as Record<string, string>;
      if (matches(labels, matchers)) out.set(id, labels);
    };
    const candidates = this.labelCandidates(matchers);
    if (candidates) {
      const one = this.stmt('SELECT labels FROM streams WHERE id = ? AND max_ns >= ? AND min_ns < ?');
      for (const id of candidates) {
        const row = one.get(id, sqlTime(startNs), sqlTime(endNs));
        if (row) add(id, row.labels as string);
      }
      return out;
    }
    for (const row of this.stmt('SELECT id, labels FROM streams WHERE max_ns >= ? AND min_ns < ?').iterate(
      sqlTime(startNs),
      sqlTime(endNs),
    )) {
      add(Number(row.id), row.labels as string);
    }
    return out;
  }

  /**
   * The streams that may match, from the label-value postings, when a matcher needs its label (an
   * absent label, the empty string, does not satisfy it): through the equalities' postings if there
   * are any (intersected), else through the values of the first such matcher's label. Undefined when
   * no matcher needs its label (every stream must be read).
   */
  private labelCandidates(matchers: readonly LabelMatcher[]): Set<number> | undefined {
    const needed = matchers.filter((m) => !matches({}, [m]));
    if (needed.length === 0) return undefined;
    const equal = needed.filter((m) => m.op === '=');
    let result: Set<number> | undefined;
    if (equal.length > 0) {
      const byValue = this.stmt('SELECT stream FROM stream_labels WHERE name = ? AND value = ?');
      for (const m of equal) {
        const ids = new Set<number>();
        for (const row of byValue.iterate(m.name, m.value)) {
          const id = Number(row.stream);
          if (!result || result.has(id)) ids.add(id);
        }
        result = ids;
        if (result.size === 0) break;
      }
      return result;
    }
    const m = needed[0];
    const verdicts = new Map<string, boolean>();
    result = new Set<number>();
    for (const row of this.stmt('SELECT value, stream FROM stream_labels WHERE name = ?').iterate(m.name)) {
      const value = row.value as string;
      let ok = verdicts.get(value);
      if (ok === undefined) {
        ok = matches({ [m.name]: value }, [m]);
        verdicts.set(value, ok);
      }
      if (ok) result.add(Number(row.stream));
    }
    return result;
  }

  /** Per posting of these streams in batches [lo, hi]: its blob ids, entries and bytes. */
  private postingsOf(
    streams: Iterable<number>,
    range: { lo: number; hi: number },
    each: (blobs: number[], entries: number, bytes: number, stream: number) => void,
  ): void {
    const rows = this.stmt(
      'SELECT batch, blobs, entries, bytes FROM postings WHERE stream = ? AND batch >= ? AND batch <= ?',
    );
    const firstOf = this.stmt('SELECT first_blob FROM batches WHERE id = ?');
    const firsts = new Map<number, number>();
    for (const stream of streams) {
      for (const row of rows.iterate(stream, range.lo, range.hi)) {
        const batch = Number(row.batch);
        let first = firsts.get(batch);
        if (first === undefined) {
          first = Number(firstOf.get(batch)?.first_blob ?? 0);
          firsts.set(batch, first);
        }
        const bits = row.blobs as Uint8Array;
        const ids: number[] = [];
        for (let i = 0; i < bits.length * 8; i++) if (bits[i >> 3] & (1 << (i & 7))) ids.push(first + i);
        each(ids, Number(row.entries), Number(row.bytes), stream);
      }
    }
  }

  /**
   * The blobs whose time extent overlaps [startNs, endNs) (through the index on their end), and the
   * range of batches that wrote them (the postings to read).
   */
  private window(
    startNs: bigint,
    endNs: bigint,
    keep?: (id: number) => boolean,
  ): { blobs: Map<number, { min: bigint; max: bigint; plain: boolean; receivedMs: number }>; lo: number; hi: number } {
    const x = this.extents.refresh(this);
    const blobs = new Map<number, { min: bigint; max: bigint; plain: boolean; receivedMs: number }>();
    let lo = Number.MAX_SAFE_INTEGER;
    let hi = 0;
    const start = sqlTime(startNs);
    const end = sqlTime(endNs);
    // Doubles first (within a few hundred ns of the times), then the exact times of those near.
    const startF = Number(start) - 4096;
    const endF = Number(end) + 4096;
    for (let i = x.from; i < x.length; i++) {
      if (x.maxF[i] < startF || x.minF[i] >= endF) continue;
      const min = x.min[i];
      const max = x.max[i];
      if (max < start || min >= end) continue;
      if (keep && !keep(x.id[i])) continue;
      const batch = x.batch[i];
      if (batch < lo) lo = batch;
      if (batch > hi) hi = batch;
      blobs.set(x.id[i], { min, max, plain: x.plain[i] === 1, receivedMs: x.receivedMs[i] });
    }
    return { blobs, lo, hi };
  }

  /** Every blob's extent (a reader's cache: blobs do not change; new ones are read, removed ones dropped). */
  private readonly extents = new BlobExtents();

  /** Blobs with an id above `after` (and records), in id order; the lowest blob id left. */
  loadExtents(after: number, each: (row: Record<string, unknown>) => void): number {
    const rows = this.stmt(
      'SELECT id, min_ns, max_ns, plain, received_ms, batch FROM blobs WHERE id > ? AND records > 0 ORDER BY id',
    );
    rows.setReadBigInts(true);
    for (const row of rows.iterate(after)) each(row);
    return Number(this.stmt('SELECT min(id) AS m FROM blobs').get()?.m ?? 0);
  }

  /**
   * Whether a blob may hold a trace id's records, through its bloom filter (cached: a blob never
   * changes). The filters of the blobs in [startNs, endNs) not cached yet, when many (a reader's
   * first lookups), are read first in one range scan.
   */
  private traceFilter(startNs: bigint, endNs: bigint, checkpoint: Checkpoint): (blob: number, id: Buffer) => boolean {
    if (this.bloomBytes > 256 * 2 ** 20 || this.noBloom.size > 1_000_000) {
      this.blooms.clear();
      this.noBloom.clear();
      this.bloomBytes = 0;
    }
    const missing: number[] = [];
    this.window(startNs, endNs, (blob) => {
      if (!this.blooms.has(blob) && !this.noBloom.has(blob)) missing.push(blob);
      return false;
    });
    if (missing.length > 32) {
      const want = new Set(missing);
      let lo = Number.MAX_SAFE_INTEGER;
      let hi = 0;
      for (const id of missing) {
        if (id < lo) lo = id;
        if (id > hi) hi = id;
      }
      const range = this.stmt('SELECT blob, bloom FROM blob_traces WHERE blob >= ? AND blob <= ?');
      let n = 0;
      for (const row of range.iterate(lo, hi)) {
        if (++n % 1024 === 0) checkpoint();
        const id = Number(row.blob);
        if (!want.has(id)) continue;
        const bloom = Uint8Array.from(row.bloom as Uint8Array);
        this.blooms.set(id, bloom);
        this.bloomBytes += bloom.length;
        want.delete(id);
      }
      for (const id of want) this.noBloom.add(id);
    }
    const bloomOf = this.stmt('SELECT bloom FROM blob_traces WHERE blob = ?');
    let n = 0;
    return (blob, id) => {
      if (++n % 1024 === 0) checkpoint();
      let bloom = this.blooms.get(blob);
      if (!bloom) {
        if (this.noBloom.has(blob)) return false;
        const b = bloomOf.get(blob)?.bloom as Uint8Array | undefined;
        if (!b) {
          // No record of the blob has a trace id (blobs do not change).
          this.noBloom.add(blob);
          return false;
        }
        bloom = Uint8Array.from(b);
        this.blooms.set(blob, bloom);
        this.bloomBytes += bloom.length;
      }
      return blobBloomHas(bloom, id);
    };
  }

  /**
   * A page of the entries of the streams matching `q.matchers` in [startNs, endNs), in the
   * selection's direction (by time; ties in arrival order, reversed for backward), after `q.after`.
   * Reads only the blobs the postings (or, with `traceId`, the trace-id index) name and whose time
   * extent overlaps the window; a blob of string bodies without a `lineContains` substring is not
   * decoded. `checkpoint` runs before each blob (the query's budget).
   */
  selectPage(q: SelectQuery, checkpoint: Checkpoint = () => {}): SelectPage {
    const streams = this.streams(q.startNs, q.endNs, q.matchers);
    if (streams.size === 0 || q.endNs <= q.startNs) return { entries: [] };
    const keys = new Set<string>();
    for (const labels of streams.values()) keys.add(streamKey(labels));
    const traceId = q.traceId?.toLowerCase();
    if (traceId !== undefined && !TRACE_ID.test(traceId)) return { entries: [] };
    let window: ReturnType<LogDb['window']>;
    let candidates: Set<number>;
    if (traceId !== undefined) {
      // Only the blobs whose bloom filter may hold the trace id (no entry made for the others).
      const id = Buffer.from(traceId, 'hex');
      const may = this.traceFilter(q.startNs, q.endNs, checkpoint);
      window = this.window(q.startNs, q.endNs, (blob) => may(blob, id));
      candidates = new Set(window.blobs.keys());
    } else {
      window = this.window(q.startNs, q.endNs);
      if (window.blobs.size === 0) return { entries: [] };
      candidates = new Set();
      this.postingsOf(streams.keys(), window, (ids) => {
        for (const id of ids) candidates.add(id);
      });
    }
    if (candidates.size === 0) return { entries: [] };
    const forward = q.direction === 'forward';
    const after = q.after;
    const blobs: { id: number; min: bigint; max: bigint; plain: boolean; receivedMs: number }[] = [];
    for (const id of candidates) {
      const b = window.blobs.get(id);
      if (!b) continue;
      if (after && (forward ? b.max < after.timeNs : b.min > after.timeNs)) continue;
      blobs.push({ id, ...b });
    }
    blobs.sort(forward ? (a, b) => cmpBig(a.min, b.min) || a.id - b.id : (a, b) => cmpBig(b.max, a.max) || b.id - a.id);
    // Forward order of two entries: time, then arrival (blob, index in it).
    const order = (a: Keyed, b: Keyed) =>
      cmpBig(a.entry.timeNs, b.entry.timeNs) || a.blob - b.blob || a.index - b.index;
    const cmp = forward ? order : (a: Keyed, b: Keyed) => order(b, a);
    const afterKey = after
      ? { entry: { timeNs: after.timeNs } as LokiEntry, blob: after.blob, index: after.index }
      : undefined;
    const needles = (q.lineContains ?? []).filter((s) => s !== '');
    const needleBytes = needles.map((s) => Buffer.from(s));
    // A trace id is in a request as its 16 bytes (or, in an attribute, as its hex): a blob holding
    // neither (a bloom filter's false positive) is not decoded.
    const traceBytes =
      traceId !== undefined
        ? [Buffer.from(traceId, 'hex'), Buffer.from(traceId), Buffer.from(traceId.toUpperCase())]
        : undefined;
    const data = this.stmt('SELECT data FROM blobs WHERE id = ?');
    let buffer: Keyed[] = [];
    const out: LokiEntry[] = [];
    let last: Keyed | undefined;
    for (let i = 0; i < blobs.length; i++) {
      checkpoint();
      const b = blobs[i];
      const row = data.get(b.id);
      if (row) {
        const raw = unpackBlob(row.data as Uint8Array);
        // Only the blob's requests (ResourceLogs) that can hold a matching entry are decoded: of a
        // matching stream, holding every substring (string bodies) and the trace id's bytes.
        // Entries are numbered across the whole blob (the cursor's `index`).
        let base = 0;
        for (const part of requestParts(raw)) {
          const first = base;
          base += part.records;
          if (!keys.has(part.stream)) continue;
          const bytes = raw.subarray(part.start, part.end);
          if (b.plain && needleBytes.some((n) => bytes.indexOf(n) < 0)) continue;
          if (traceBytes?.every((t) => bytes.indexOf(t) < 0)) continue;
          entriesOf(bytes, b.receivedMs).entries.forEach((entry, i) => {
            if (entry.timeNs < q.startNs || entry.timeNs >= q.endNs) return;
            if (traceId !== undefined && entry.metadata.trace_id?.toLowerCase() !== traceId) return;
            for (const n of needles) if (!entry.line.includes(n)) return;
            const k = { entry, blob: b.id, index: first + i };
            if (afterKey && cmp(k, afterKey) <= 0) return;
            buffer.push(k);
          });
        }
      }
      // Entries before the next blob's first (forward; after its last, backward) are final.
      const next = blobs[i + 1];
      buffer.sort(cmp);
      let n = buffer.length;
      if (next) {
        n = 0;
        while (n < buffer.length && (forward ? buffer[n].entry.timeNs < next.min : buffer[n].entry.timeNs > next.max))
          n++;
      }
      const take = Math.min(n, q.max - out.length);
      for (let j = 0; j < take; j++) out.push(buffer[j].entry);
      if (take > 0) last = buffer[take - 1];
      buffer = buffer.slice(take);
      if (out.length >= q.max) {
        const more = buffer.length > 0 || i + 1 < blobs.length;
        return {
          entries: out,
          next: more && last ? { timeNs: last.entry.timeNs, blob: last.blob, index: last.index } : undefined,
        };
      }
    }
    return { entries: out };
  }

  /**
   * A volume query (see VolumeQuery) from the level_times rows: a row whose entries all fall in the
   * same windows adds its count to them; another one adds each of its times; a blob in the window
   * without rows is read.
   */
  countVolume(q: VolumeQuery, checkpoint: Checkpoint = () => {}): VolumeGroup[] {
    for (const name of q.by) {
      if (!VOLUME_LABELS.includes(name))
        throw new Error(`a volume query groups by ${VOLUME_LABELS.join(', ')}, not ${name}`);
    }
    const { baseNs, rangeNs: range, stepNs: step, count } = q;
    const startNs = baseNs + 1n;
    const endNs = baseNs + BigInt(range) + BigInt(count - 1) * BigInt(step) + 1n;
    const groups = new Map<string, { labels: Record<string, string>; counts: Float64Array; entries: number }>();
    const groupOf = (level: string, detectedLevel: string) => {
      const labels: Record<string, string> = {};
      let key = '';
      for (const name of q.by) {
        const v = name === 'level' ? level : detectedLevel;
        key += `${v}\u0000`;
        if (v !== '') labels[name] = v;
      }
      let g = groups.get(key);
      if (!g) {
        g = { labels, counts: new Float64Array(count), entries: 0 };
        groups.set(key, g);
      }
      return g;
    };
    // The windows of an offset t from baseNs: k·step < t ≤ k·step + range.
    const lo = (t: number) => Math.max(0, Math.ceil((t - range) / step));
    const hi = (t: number) => Math.min(count - 1, Math.ceil(t / step) - 1);
    const streams = this.streams(startNs, endNs, q.matchers);
    if (streams.size === 0 || count <= 0) return [];
    const window = this.window(startNs, endNs);
    if (window.blobs.size === 0) return [];
    let first = Number.MAX_SAFE_INTEGER;
    let last = 0;
    for (const id of window.blobs.keys()) {
      if (id < first) first = id;
      if (id > last) last = id;
    }
    // Blobs have rows from the first one written with them on (ids only grow): older ones are read.
    const withRows = Number(this.stmt('SELECT min(blob) AS b FROM level_times').get()?.b ?? Number.MAX_SAFE_INTEGER);
    // Offsets from baseNs computed by SQLite (no BigInt per row); a row reaching further than a
    // double holds exactly (2^53 ns, 104 days) has its blob read.
    const L = Number.MAX_SAFE_INTEGER;
    const rows = this.stmt(
      `SELECT blob, level, detected_level, entries, max(min(min_ns - ?1, ${L}), -${L}) AS mn,
       max(min(max_ns - ?1, ${L}), -${L}) AS mx, (min_ns - ?1 <= -${L} OR max_ns - ?1 >= ${L}) AS far
       FROM level_times WHERE stream = ?2 AND blob >= ?3 AND blob <= ?4`,
    );
    const timesOf = this.stmt(
      'SELECT times FROM level_times WHERE stream = ? AND blob = ? AND level = ? AND detected_level = ?',
    );
    // Rows of the matching streams in the window; blobs to read instead (no rows, or a row to split
    // without exact times).
    const found: {
      blob: number;
      stream: number;
      level: string;
      detectedLevel: string;
      entries: number;
      mn: number;
      mx: number;
    }[] = [];
    const read = new Set<number>();
    let n = 0;
    for (const stream of streams.keys()) {
      for (const row of rows.iterate(baseNs, stream, Math.max(first, withRows), last)) {
        if (++n % 4096 === 0) checkpoint();
        const blob = row.blob as number;
        if (!window.blobs.has(blob)) continue;
        if (row.far) {
          read.add(blob);
          continue;
        }
        found.push({
          blob,
          stream,
          level: row.level as string,
          detectedLevel: row.detected_level as string,
          entries: row.entries as number,
          mn: row.mn as number,
          mx: row.mx as number,
        });
      }
    }
    for (const id of window.blobs.keys()) if (id < withRows) read.add(id);
    const split: { row: (typeof found)[number]; times: Uint8Array }[] = [];
    for (const row of found) {
      const a = lo(row.mn);
      const b = hi(row.mx);
      if (a > b || (lo(row.mx) === a && hi(row.mn) === b)) continue;
      const times = timesOf.get(row.stream, row.blob, row.level, row.detectedLevel)?.times as
        | Uint8Array
        | null
        | undefined;
      if (times) split.push({ row, times });
      else read.add(Number(row.blob));
    }
    const splitOf = new Map(split.map((x) => [x.row, x.times]));
    for (const row of found) {
      if (read.has(Number(row.blob))) continue;
      const a = lo(row.mn);
      const b = hi(row.mx);
      if (a > b) continue; // in no window
      const g = groupOf(row.level, row.detectedLevel);
      const times = splitOf.get(row);
      if (!times) {
        // Every entry is in windows a..b.
        for (let k = a; k <= b; k++) g.counts[k] += row.entries;
        g.entries += row.entries;
        continue;
      }
      unpackTimes(times, (offset) => {
        const t = row.mn + offset;
        const from = lo(t);
        const to = hi(t);
        if (from > to) return;
        for (let k = from; k <= to; k++) g.counts[k]++;
        g.entries++;
      });
    }
    if (read.size > 0) {
      const keys = new Set<string>();
      for (const labels of streams.values()) keys.add(streamKey(labels));
      const data = this.stmt('SELECT data FROM blobs WHERE id = ?');
      for (const id of read) {
        checkpoint();
        const b = window.blobs.get(id);
        const row = b && data.get(id);
        if (!b || !row) continue;
        const raw = unpackBlob(row.data as Uint8Array);
        const entries = requestParts(raw)
          .filter((part) => keys.has(part.stream))
          .flatMap((part) => entriesOf(raw.subarray(part.start, part.end), b.receivedMs).entries);
        for (const e of entries) {
          const t = Number(e.timeNs - baseNs);
          const from = lo(t);
          const to = hi(t);
          if (from > to || t <= 0) continue;
          const label = (name: string) =>
            Object.hasOwn(e.metadata, name) ? e.metadata[name] : Object.hasOwn(e.stream, name) ? e.stream[name] : '';
          const g = groupOf(label('level'), label('detected_level'));
          for (let k = from; k <= to; k++) g.counts[k]++;
          g.entries++;
        }
      }
    }
    const out: VolumeGroup[] = [];
    for (const g of groups.values()) {
      const steps: number[] = [];
      const values: number[] = [];
      g.counts.forEach((v, k) => {
        if (v > 0) {
          steps.push(k);
          values.push(v);
        }
      });
      if (steps.length > 0) out.push({ labels: g.labels, steps, values, entries: g.entries });
    }
    return out;
  }

  labelNames(startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): string[] {
    const names = new Set<string>();
    for (const labels of this.streams(startNs, endNs, matchers).values())
      for (const n of Object.keys(labels)) names.add(n);
    return [...names].sort();
  }

  labelValues(name: string, startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): string[] {
    const values = new Set<string>();
    for (const labels of this.streams(startNs, endNs, matchers).values()) {
      const v = labels[name];
      if (v !== undefined) values.add(v);
    }
    return [...values].sort();
  }

  series(selectors: LabelMatcher[][], startNs: bigint, endNs: bigint): Record<string, string>[] {
    for (const m of selectors) checkMatchers(m);
    const all = this.streams(startNs, endNs);
    const out: Record<string, string>[] = [];
    for (const labels of all.values()) {
      if (selectors.length === 0 || selectors.some((m) => matches(labels, m))) out.push(labels);
    }
    return out;
  }

  /** Streams, chunks (blobs), line bytes and entries of the matching streams' postings overlapping the window. */
  stats(
    matchers: LabelMatcher[],
    startNs: bigint,
    endNs: bigint,
    checkpoint: Checkpoint = () => {},
  ): { streams: number; chunks: number; bytes: number; entries: number } {
    const streams = this.streams(startNs, endNs, matchers);
    const window = this.window(startNs, endNs);
    checkpoint();
    const chunks = new Set<number>();
    const seen = new Set<number>();
    let bytes = 0;
    let entries = 0;
    this.postingsOf(streams.keys(), window, (ids, n, b, stream) => {
      const hit = ids.filter((id) => window.blobs.has(id));
      if (hit.length === 0) return;
      for (const id of hit) chunks.add(id);
      seen.add(stream);
      entries += n;
      bytes += b;
    });
    return { streams: seen.size, chunks: chunks.size, bytes, entries };
  }

  /**
   * Line bytes of the matching streams per interval of `bounds` (LogSource.volume), from the postings
   * without reading blobs: a posting's bytes are shared evenly by its blobs, and a blob's share spread
   * over its time extent (as Loki's ingester spreads a chunk's size, GetFactorOfTime); what falls
   * outside [bounds[0], bounds[last]) is left out. An estimate at blob grain, exact when each blob
   * lies in one interval.
   */
  volume(matchers: LabelMatcher[], bounds: bigint[], checkpoint: Checkpoint = () => {}): StreamVolume[] {
    const startNs = bounds[0];
    const endNs = bounds[bounds.length - 1];
    const streams = this.streams(startNs, endNs, matchers);
    const window = this.window(startNs, endNs);
    checkpoint();
    const per = new Map<number, Map<number, number>>();
    let n = 0;
    this.postingsOf(streams.keys(), window, (ids, _entries, bytes, stream) => {
      if (++n % 1024 === 0) checkpoint();
      const share = bytes / ids.length;
      let out = per.get(stream);
      for (const id of ids) {
        const b = window.blobs.get(id);
        if (!b) continue;
        if (!out) {
          out = new Map();
          per.set(stream, out);
        }
        spread(out, bounds, b.min, b.max, share);
      }
    });
    const result: StreamVolume[] = [];
    for (const [stream, out] of per) {
      const labels = streams.get(stream);
      if (labels && out.size > 0) result.push({ labels, bytes: [...out].sort((a, b) => a[0] - b[0]) });
    }
    return result;
  }
}

/** Adds `bytes` spread evenly over [min, max] to the intervals of `bounds` it overlaps. */
function spread(out: Map<number, number>, bounds: readonly bigint[], min: bigint, max: bigint, bytes: number): void {
  if (min === max) {
    const i = intervalOf(bounds, min);
    if (i >= 0) out.set(i, (out.get(i) ?? 0) + bytes);
    return;
  }
  const span = Number(max - min);
  let i = Math.max(0, intervalOf(bounds, min < bounds[0] ? bounds[0] : min));
  for (; i < bounds.length - 1 && bounds[i] <= max; i++) {
    const lo = bounds[i] > min ? bounds[i] : min;
    const hi = bounds[i + 1] < max ? bounds[i + 1] : max;
    if (hi <= lo) continue;
    out.set(i, (out.get(i) ?? 0) + (bytes * Number(hi - lo)) / span);
  }
}

/** The blobs' extents, in columns (a few dozen bytes per blob), in id order. */
class BlobExtents {
  id = new Float64Array(1024);
  min = new BigInt64Array(1024);
  max = new BigInt64Array(1024);
  minF = new Float64Array(1024);
  maxF = new Float64Array(1024);
  plain = new Uint8Array(1024);
  receivedMs = new Float64Array(1024);
  batch = new Float64Array(1024);
  /** The first live entry (those before it were removed by retention), and the end. */
  from = 0;
  length = 0;

  refresh(db: LogDb): this {
    const last = this.length > 0 ? this.id[this.length - 1] : 0;
    const lowest = db.loadExtents(last, (row) => {
      if (this.length === this.id.length) this.grow();
      const i = this.length++;
      this.id[i] = Number(row.id);
      this.min[i] = row.min_ns as bigint;
      this.max[i] = row.max_ns as bigint;
      this.minF[i] = Number(row.min_ns);
      this.maxF[i] = Number(row.max_ns);
      this.plain[i] = Number(row.plain);
      this.receivedMs[i] = Number(row.received_ms);
      this.batch[i] = Number(row.batch);
    });
    while (this.from < this.length && this.id[this.from] < lowest) this.from++;
    if (this.from > 4096 && this.from * 2 > this.length) this.compact();
    return this;
  }

  private columns(): (keyof this & ('id' | 'min' | 'max' | 'minF' | 'maxF' | 'plain' | 'receivedMs' | 'batch'))[] {
    return ['id', 'min', 'max', 'minF', 'maxF', 'plain', 'receivedMs', 'batch'];
  }

  private grow(): void {
    for (const c of this.columns()) {
      const old = this[c] as Float64Array | BigInt64Array | Uint8Array;
      const next = new (old.constructor as new (n: number) => typeof old)(old.length * 2);
      next.set(old as never);
      (this as Record<string, unknown>)[c] = next;
    }
  }

  private compact(): void {
    for (const c of this.columns()) {
      const col = this[c] as Float64Array | BigInt64Array | Uint8Array;
      col.copyWithin(0, this.from, this.length);
    }
    this.length -= this.from;
    this.from = 0;
  }
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

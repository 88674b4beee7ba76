/**
 * The SQLite side of the blob store engine, shared by the trace and log databases: opening (schema
 * version check: a store written with another version is recreated), the pragmas (WAL mode,
 * incremental auto-vacuum, mmap), compressed blobs, the write-ahead log position row, the size of the
 * live pages, retention by age then by size over arrival-ordered batches, and the bloom filters of the
 * id buckets (trace ids, in spans and in log records).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { constants as zlib, zstdCompressSync, zstdDecompressSync } from 'node:zlib';

/** The write-ahead log position table (see wal.ts): written in the same transaction as the data. */
export const WAL_POSITION_SCHEMA = `
CREATE TABLE IF NOT EXISTS wal_position (
  id INTEGER PRIMARY KEY CHECK (id = 1), segment INTEGER NOT NULL, byte_offset INTEGER NOT NULL);
`;

/**
 * Opens a store's database: the writer creates it and its schema, recreating a store written with
 * another schema version (`recreated` then says which); a reader only reads.
 */
export function openSqlite(
  path: string,
  options: { reader?: boolean; schema: string; version: number },
): { db: DatabaseSync; recreated: { fromVersion: number } | undefined } {
  if (!options.reader) mkdirSync(dirname(path), { recursive: true });
  let db = new DatabaseSync(path, { timeout: 5000 });
  let recreated: { fromVersion: number } | undefined;
  if (!options.reader) {
    const version = Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
    const tables = Number(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get()?.n ?? 0);
    if (tables > 0 && version !== options.version) {
      db.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
      db = new DatabaseSync(path, { timeout: 5000 });
      recreated = { fromVersion: version };
    }
    // auto_vacuum must be chosen before the first table exists; it lets retention give pages back.
    db.exec('PRAGMA auto_vacuum = INCREMENTAL');
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec('PRAGMA cache_size = -32768');
    // Checkpoints (WAL to database, with an fsync) every 16 MiB of WAL rather than every 4 MiB.
    db.exec('PRAGMA wal_autocheckpoint = 16384');
    db.exec(options.schema);
    db.exec(`PRAGMA user_version = ${options.version}`);
  }
  db.exec('PRAGMA temp_store = MEMORY');
  // Reads through the page cache of the OS, without copies (up to 1 GiB of the file mapped).
  db.exec('PRAGMA mmap_size = 1073741824');
  return { db, recreated };
}

/** A prepared-statement cache over a connection, and the helpers every store's database uses. */
export class SqliteBase {
  private readonly stmts = new Map<string, StatementSync>();

  constructor(readonly db: DatabaseSync) {}

  stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  multiInsert(table: string, columns: string, rows: number): StatementSync {
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

  /** The write-ahead log position the stored writes end at, if any. */
  walPosition(): { segment: number; offset: number } | undefined {
    const row = this.stmt('SELECT segment, byte_offset FROM wal_position WHERE id = 1').get();
    return row ? { segment: Number(row.segment), offset: Number(row.byte_offset) } : undefined;
  }

  /** Records the write-ahead log position (inside the write's transaction). */
  saveWalPosition(walPosition: { segment: number; offset: number }): void {
    this.stmt(
      'INSERT INTO wal_position (id, segment, byte_offset) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET segment = excluded.segment, byte_offset = excluded.byte_offset',
    ).run(walPosition.segment, walPosition.offset);
  }

  /**
   * Removes batches (table `batches`, with `received_ms` and `bytes`) that arrived before
   * `nowMs - retentionMs`, then, while the live pages exceed `maxBytes`, the oldest batches down to
   * 90% of it, through `removeUpTo` (the store's: its tables differ). Returns what it removed.
   */
  retain(
    nowMs: number,
    retentionMs: number,
    maxBytes: number,
    removeUpTo: (batch: number, removed: { batches: number; items: number }) => void,
  ): { batches: number; items: number } {
    const removed = { batches: 0, items: 0 };
    const old = this.stmt('SELECT max(id) AS id FROM batches WHERE received_ms < ?').get(nowMs - retentionMs);
    if (old?.id != null) removeUpTo(Number(old.id), removed);
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
      removeUpTo(upTo, removed);
    }
    if (removed.batches > 0) this.db.exec('PRAGMA incremental_vacuum');
    return removed;
  }
}

/**
 * zstd's parameters for a blob: level 1 (the writer's cost matters more than the ratio), a window of
 * 256 KiB (a blob's size, BLOB_BYTES, rather than level 1's 512 KiB: less to set up per blob) and
 * matches from 5 bytes (level 1's are 6: protobuf's short repeats, field tags and lengths around the
 * same strings, are found). Measured on the benchmark payloads against level 1 alone: 10-20% less
 * CPU, and a ratio of 4.24 rather than 3.97 (log requests), 9.5 rather than 9.3 (trace requests).
 */
const PACK_PARAMS = {
  [zlib.ZSTD_c_compressionLevel]: 1,
  [zlib.ZSTD_c_windowLog]: 18,
  [zlib.ZSTD_c_minMatch]: 5,
};

/**
 * The requests of a blob are copied end to end into this buffer, reused from blob to blob (per thread:
 * each has its own module), then compressed: a new 256 KiB buffer per blob (Buffer.concat) cost its
 * pages' faults every time, about a quarter of the compression's CPU. Kept up to PACK_SCRATCH_MAX.
 */
let packScratch = Buffer.allocUnsafe(0);
const PACK_SCRATCH_MAX = 1024 * 1024;

/**
 * Output in chunks of 64 KiB rather than zlib's 16 KiB: a blob's compressed bytes (30-70 KiB) come out
 * in one or two chunks, not four or five to be concatenated.
 */
const PACK_CHUNK = 64 * 1024;

/** Compresses a blob's requests. */
export function packBlob(parts: readonly Buffer[]): Buffer {
  let input: Buffer;
  if (parts.length === 1) input = parts[0];
  else {
    let size = 0;
    for (const p of parts) size += p.length;
    if (size > PACK_SCRATCH_MAX) input = Buffer.concat(parts, size);
    else {
      if (packScratch.length < size)
        packScratch = Buffer.allocUnsafe(Math.min(PACK_SCRATCH_MAX, Math.max(size, 2 * packScratch.length)));
      let at = 0;
      for (const p of parts) at += p.copy(packScratch, at);
      input = packScratch.subarray(0, size);
    }
  }
  return zstdCompressSync(input, { params: PACK_PARAMS, chunkSize: PACK_CHUNK });
}

/** Output chunks of 128 KiB rather than zlib's 16 KiB: a blob of ~256 KiB decompresses in a third less time. */
const UNPACK_CHUNK = 128 * 1024;

export function unpackBlob(data: Uint8Array): Buffer {
  return zstdDecompressSync(data, { chunkSize: UNPACK_CHUNK });
}

/** Id rows per bucket (see the trace and log databases' buckets tables). */
export const BUCKET_ROWS = 4096;

/**
 * A bucket's bloom filter of 16-byte ids: BLOOM_BITS bits, BLOOM_HASHES bits per id. With BUCKET_ROWS
 * ids, about 2% of the buckets that do not hold an id answer that they may.
 */
export const BLOOM_BITS = 8 * BUCKET_ROWS;
const BLOOM_HASHES = 5;

/**
 * The bloom filter's bits for an id: double hashing over its bytes (trace ids are random). Both
 * halves of the id go in: a 64-bit id from an older system, padded with zeros to 16 bytes, is random
 * in its second half only.
 */
function bloomBits(id: Uint8Array, each: (bit: number) => void): void {
  const h1 =
    ((id[0] | (id[1] << 8) | (id[2] << 16) | (id[3] << 24)) ^
      (id[8] | (id[9] << 8) | (id[10] << 16) | (id[11] << 24))) >>>
    0;
  const h2 =
    (((id[4] | (id[5] << 8) | (id[6] << 16) | (id[7] << 24)) ^
      (id[12] | (id[13] << 8) | (id[14] << 16) | (id[15] << 24))) |
      1) >>>
    0;
  for (let i = 0; i < BLOOM_HASHES; i++) each((h1 + i * h2) % BLOOM_BITS);
}

export function bloomAdd(bloom: Uint8Array, id: Uint8Array): void {
  bloomBits(id, (bit) => {
    bloom[bit >> 3] |= 1 << (bit & 7);
  });
}

export function bloomHas(bloom: Uint8Array, id: Uint8Array): boolean {
  let all = true;
  bloomBits(id, (bit) => {
    if ((bloom[bit >> 3] & (1 << (bit & 7))) === 0) all = false;
  });
  return all;
}

/** Rows per multi-row INSERT (fewer calls into SQLite; well under its 32,766 bound on parameters). */
export const ROWS_PER_INSERT = 64;

/**
 * A bloom filter sized for `ids` 16-byte ids (a blob's: the log store's trace ids), BITS_PER_ID bits
 * and BLOB_BLOOM_HASHES hashes per id: about 0.06% false positives. Stored as is (its size gives m).
 */
const BITS_PER_ID = 16;
const BLOB_BLOOM_HASHES = 8;

export function newBlobBloom(ids: number): Uint8Array {
  return new Uint8Array(Math.max(8, Math.ceil((ids * BITS_PER_ID) / 8)));
}

/**
 * Adds the 16-byte id at `id[at…at+16)` (at 0: the whole of `id`): BLOB_BLOOM_HASHES bits by double
 * hashing over its two halves (as bloomBits), inline (the log store's writer adds an id per record).
 */
export function blobBloomAdd(bloom: Uint8Array, id: Uint8Array, at = 0): void {
  const m = bloom.length * 8;
  const h1 =
    ((id[at] | (id[at + 1] << 8) | (id[at + 2] << 16) | (id[at + 3] << 24)) ^
      (id[at + 8] | (id[at + 9] << 8) | (id[at + 10] << 16) | (id[at + 11] << 24))) >>>
    0;
  const h2 =
    (((id[at + 4] | (id[at + 5] << 8) | (id[at + 6] << 16) | (id[at + 7] << 24)) ^
      (id[at + 12] | (id[at + 13] << 8) | (id[at + 14] << 16) | (id[at + 15] << 24))) |
      1) >>>
    0;
  // Bit i is (h1 + i·h2) mod m, stepped in small integers (no division per bit).
  const step = h2 % m;
  let bit = h1 % m;
  for (let i = 0; i < BLOB_BLOOM_HASHES; i++) {
    bloom[bit >> 3] |= 1 << (bit & 7);
    bit += step;
    if (bit >= m) bit -= m;
  }
}

export function blobBloomHas(bloom: Uint8Array, id: Uint8Array): boolean {
  // The bits blobBloomAdd sets, inline: a 24 h trace id lookup checks thousands of filters.
  const m = bloom.length * 8;
  const h1 =
    ((id[0] | (id[1] << 8) | (id[2] << 16) | (id[3] << 24)) ^
      (id[8] | (id[9] << 8) | (id[10] << 16) | (id[11] << 24))) >>>
    0;
  const h2 =
    (((id[4] | (id[5] << 8) | (id[6] << 16) | (id[7] << 24)) ^
      (id[12] | (id[13] << 8) | (id[14] << 16) | (id[15] << 24))) |
      1) >>>
    0;
  const step = h2 % m;
  let bit = h1 % m;
  for (let i = 0; i < BLOB_BLOOM_HASHES; i++) {
    if ((bloom[bit >> 3] & (1 << (bit & 7))) === 0) return false;
    bit += step;
    if (bit >= m) bit -= m;
  }
  return true;
}

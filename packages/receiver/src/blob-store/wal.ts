/**
 * A blob store's write-ahead log (`trace_store.durability: wal`, `log_store.durability: wal`): every
 * request the store takes is
 * appended here, and made durable (fdatasync), before the request is acknowledged; the writer thread
 * writes it to SQLite afterwards, and records there, in the same transaction, the log position it
 * has written up to. A process killed at any moment (kill -9, OOM, crash) therefore loses no
 * acknowledged request: at the next start, the records past the committed position are replayed
 * into SQLite before the receiver listens.
 *
 * Format: record-log.ts's (segments `<seq>.seg` of CRC-checked records; the tag is the request's span
 * count), shared with the Tempo exporter's persistent queue.
 *
 * Group commit: appends that arrive while a write and fdatasync are under way wait for it to finish,
 * then go together in one `writev` and one `fdatasync`, so concurrent requests share a sync (with
 * `syncIntervalMs`, the log also waits that long before each group, to gather larger ones). A write
 * or sync that fails (disk full, I/O error) rejects every append of its group: those requests are
 * refused, never acknowledged. The partial write is cut off and the log goes on in a new segment.
 *
 * With `sync: 'background'` (durability: wal_async) the appends of one turn of the event loop are
 * written together at its end, synchronously, in one `writev` (a copy into the kernel's page cache: a
 * killed receiver loses nothing; through the thread pool, the hop cost the answer more than the write;
 * one write per append cost the intake thread several times the copy, in the file system's work per
 * write), and resolve; the fdatasyncs run behind the writes,
 * back to back (`syncIntervalMs` apart): a machine crash or power loss can lose what was acknowledged since the last
 * sync began (a few milliseconds of requests). A background sync that fails is counted in `errors`
 * and told through `onSyncError` (its requests were answered already); a segment is synced before it
 * is closed (rotation, shutdown).
 *
 * Segments are deleted once everything in them is committed to SQLite (`committed`). Recovery cuts a
 * segment at its first torn or corrupt record (nothing after it can be trusted).
 *
 * Runs on the intake's thread with asynchronous file operations (libuv's thread pool does the I/O).
 */
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { HEADER_BYTES, listSegments, scanRecords, segmentName } from '../record-log';

/** A position in the log: the end of a record (its segment, and the offset just past it). */
export interface WalPosition {
  segment: number;
  offset: number;
}

export interface WalOptions {
  /** A new segment is begun once the current one holds this many bytes. */
  segmentBytes: number;
  /**
   * Before its fdatasync: how long to wait, before writing and syncing a group, for more appends to
   * join it. In the background: how long to wait between two fdatasyncs (0: none either way).
   */
  syncIntervalMs: number;
  /**
   * Where the fdatasync happens. `before` (durability: wal): an append resolves once its record is
   * written and synced. `background` (durability: wal_async): once it is written (the kernel holds
   * it: a killed process loses nothing); the syncs run back to back (`syncIntervalMs` apart) behind
   * the writes, so a machine crash loses at most what was written since the last one began.
   */
  sync?: 'before' | 'background';
}

/** A record found by recovery past the committed position, to write to SQLite again. */
export interface ReplayRecord {
  /** The request body, in an ArrayBuffer of its own (transferable). */
  body: Uint8Array;
  /** The record's tag: the request's item count (spans, log records). */
  spans: number;
  end: WalPosition;
}

export interface WalRecovery {
  /** Records replayed (past the committed position). */
  records: number;
  bytes: number;
  spans: number;
  /** Bytes cut off the tail of the last segment (a torn or corrupt record). */
  truncatedBytes: number;
  /** Earlier segments cut at a corrupt record. */
  corruptSegments: number;
}

interface Segment {
  seq: number;
  fh: FileHandle;
  size: number;
}

interface Pending {
  record: Buffer;
  resolve: (end: WalPosition) => void;
  reject: (err: Error) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class BlobWal {
  /** Segments before the current one, oldest first (sizes as written). */
  private readonly old: { seq: number; size: number }[] = [];
  private current: Segment | undefined;
  private nextSeq = 1;
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;
  /** Appends of this turn of the event loop, written together at its end (sync: background; writeTurn). */
  private turn: Pending[] = [];
  /** The background fdatasync loop (sync: background), while it runs. */
  private syncing: Promise<void> | undefined;
  /** Bytes written to the current segment since its last fdatasync began (sync: background). */
  private unsynced = false;
  private closed = false;

  /** Bytes written (record headers included) and fdatasyncs done, since open. */
  bytesWritten = 0;
  syncs = 0;
  /** Failed group writes (each refused its requests), and failed background syncs. */
  errors = 0;
  /** Called when a background fdatasync fails (its records were acknowledged already). */
  onSyncError: ((err: Error) => void) | undefined;

  private constructor(
    readonly dir: string,
    private readonly options: WalOptions,
  ) {}

  /** Opens the log in `dir` (created if needed); call `recover` before appending. */
  static open(dir: string, options: WalOptions): BlobWal {
    fs.mkdirSync(dir, { recursive: true });
    return new BlobWal(dir, options);
  }

  /** Bytes of the log's segments on disk. */
  get diskBytes(): number {
    let n = this.current?.size ?? 0;
    for (const s of this.old) n += s.size;
    return n;
  }

  /**
   * Reads the segments in order, cuts each at its first torn or corrupt record, and hands the records
   * past `committed` (what SQLite holds) to `replay`, a segment at a time (with the segment's
   * modification time as their arrival), waiting for it. Then begins a new segment for appends.
   */
  async recover(
    committed: WalPosition | undefined,
    replay: (records: ReplayRecord[], receivedMs: number) => Promise<void>,
  ): Promise<WalRecovery> {
    const recovery: WalRecovery = { records: 0, bytes: 0, spans: 0, truncatedBytes: 0, corruptSegments: 0 };
    const seqs = listSegments(this.dir);
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i];
      const file = path.join(this.dir, segmentName(seq));
      const stat = fs.lstatSync(file);
      if (!stat.isFile()) {
        // Not a segment this log wrote (a link, a device): not read.
        fs.rmSync(file, { force: true });
        continue;
      }
      const data = fs.readFileSync(file);
      const records: ReplayRecord[] = [];
      const { end, bad } = scanRecords(data, (offset, length, spans) => {
        const stop = offset + HEADER_BYTES + length;
        if (committed && (seq < committed.segment || (seq === committed.segment && stop <= committed.offset))) return;
        // A copy with its own ArrayBuffer, to be moved to the writer thread.
        const body = new Uint8Array(data.subarray(offset + HEADER_BYTES, stop));
        records.push({ body, spans, end: { segment: seq, offset: stop } });
        recovery.records++;
        recovery.bytes += length;
        recovery.spans += spans;
      });
      if (bad) {
        if (i === seqs.length - 1) recovery.truncatedBytes += data.length - end;
        else recovery.corruptSegments++;
        fs.truncateSync(file, end);
      }
      if (end === 0) {
        fs.rmSync(file, { force: true });
        continue;
      }
      // What a killed process left in the page cache is made durable now.
      const fd = fs.openSync(file, 'r+');
      try {
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      this.old.push({ seq, size: end });
      if (records.length > 0) await replay(records, stat.mtimeMs);
    }
    const last = seqs.length > 0 ? seqs[seqs.length - 1] : 0;
    this.nextSeq = Math.max(last, committed?.segment ?? 0) + 1;
    if (committed) this.committed(committed);
    await this.begin();
    return recovery;
  }

  /**
   * Appends a record (from `encodeRecord`); resolves with its end position once it is durable (written
   * and fdatasynced), rejects when it could not be written.
   */
  append(record: Buffer): Promise<WalPosition> {
    if (this.closed) return Promise.reject(new Error('the write-ahead log is closed'));
    if (this.background && (this.turn.length > 0 || (!this.running && this.current))) {
      // sync: background: written at the end of this turn, with the turn's other appends, in order.
      return new Promise<WalPosition>((resolve, reject) => {
        if (this.turn.push({ record, resolve, reject }) === 1) setImmediate(this.writeTurn);
      });
    }
    return new Promise<WalPosition>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      this.running ??= this.run();
    });
  }

  /**
   * Writes the turn's appends (sync: background) in one synchronous `writev` and resolves them; a
   * turn that needs a new segment, or finds a group under way, goes through `run`, in order. A failed
   * write rejects the turn's appends (refused, never acknowledged) and cuts the log back.
   */
  private readonly writeTurn = (): void => {
    const group = this.turn;
    if (group.length === 0) return;
    this.turn = [];
    const current = this.current;
    let bytes = 0;
    for (const p of group) bytes += p.record.length;
    if (this.running || !current || (current.size > 0 && current.size + bytes > this.options.segmentBytes)) {
      for (const p of group) this.queue.push(p);
      this.running ??= this.run();
      return;
    }
    const at = current.size;
    try {
      writeAllSync(
        current.fh.fd,
        group.map((p) => p.record),
        at,
      );
    } catch (err) {
      this.errors++;
      this.running = (async () => {
        try {
          await this.abandon(at);
        } finally {
          this.running = undefined;
          if (this.queue.length > 0) this.running = this.run();
        }
      })();
      for (const p of group) p.reject(err as Error);
      return;
    }
    current.size = at + bytes;
    this.bytesWritten += bytes;
    this.unsynced = true;
    this.syncSoon();
    let end = at;
    for (const p of group) {
      end += p.record.length;
      p.resolve({ segment: current.seq, offset: end });
    }
  };

  /** SQLite holds everything up to `position`: segments wholly before it are deleted. */
  committed(position: WalPosition): void {
    while (this.old.length > 0) {
      const s = this.old[0];
      if (s.seq > position.segment || (s.seq === position.segment && position.offset < s.size)) break;
      this.old.shift();
      fs.promises.rm(path.join(this.dir, segmentName(s.seq)), { force: true }).catch(() => {});
    }
  }

  /** Waits for the appends under way, then closes the current segment. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.writeTurn();
    while (this.running) await this.running;
    await this.settle();
    const current = this.current;
    this.current = undefined;
    if (current) {
      await current.fh.close().catch(() => {});
      if (current.size === 0) await fs.promises.rm(path.join(this.dir, segmentName(current.seq)), { force: true });
      else this.old.push({ seq: current.seq, size: current.size });
    }
  }

  /**
   * Writes groups until the queue is empty. `running` is cleared in the same step as the queue is
   * found empty (not a microtask later), so an append never finds a run that will not take it.
   */
  private async run(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // The gather window is for syncs before the answer; in the background the syncs wait instead.
        if (this.options.syncIntervalMs > 0 && !this.background) await sleep(this.options.syncIntervalMs);
        const group = this.queue;
        this.queue = [];
        let bytes = 0;
        for (const p of group) bytes += p.record.length;
        let at = 0;
        try {
          if (this.current && this.current.size > 0 && this.current.size + bytes > this.options.segmentBytes) {
            await this.rotate();
          }
          const current = this.current ?? (await this.begin());
          at = current.size;
          await writeAll(
            current.fh,
            group.map((p) => p.record),
            at,
          );
          if (this.background) this.unsynced = true;
          else {
            await current.fh.datasync();
            this.syncs++;
          }
          current.size = at + bytes;
          this.bytesWritten += bytes;
          let end = at;
          for (const p of group) {
            end += p.record.length;
            p.resolve({ segment: current.seq, offset: end });
          }
          if (this.background) this.syncSoon();
        } catch (err) {
          this.errors++;
          await this.abandon(at);
          for (const p of group) p.reject(err as Error);
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  private get background(): boolean {
    return this.options.sync === 'background';
  }

  /**
   * Starts the background fdatasync loop unless it runs (it then takes the new writes with its next
   * sync). `syncing` is cleared in the same step as `unsynced` is found false, so no write is left
   * unsynced by a loop that is ending.
   */
  private syncSoon(): void {
    this.syncing ??= (async () => {
      try {
        while (this.unsynced) {
          if (this.options.syncIntervalMs > 0) await sleep(this.options.syncIntervalMs);
          this.unsynced = false;
          const current = this.current;
          if (!current) break;
          await this.syncAcknowledged(current);
        }
      } finally {
        this.syncing = undefined;
      }
    })();
  }

  /** Waits for the background syncs, then syncs what the current segment holds unsynced (rotation, close). */
  private async settle(): Promise<void> {
    while (this.syncing) await this.syncing;
    const current = this.current;
    if (!this.unsynced || !current) return;
    this.unsynced = false;
    await this.syncAcknowledged(current);
  }

  /**
   * fdatasyncs a segment whose records were acknowledged already (sync: background): a failure is
   * counted and told (the store logs it), and the next write syncs again.
   */
  private async syncAcknowledged(segment: Segment): Promise<void> {
    try {
      await segment.fh.datasync();
      this.syncs++;
    } catch (err) {
      this.errors++;
      this.onSyncError?.(err as Error);
    }
  }

  /** Begins a new segment (the current one, if any, is left as it is). */
  private async begin(): Promise<Segment> {
    const seq = this.nextSeq++;
    const fh = await fs.promises.open(path.join(this.dir, segmentName(seq)), 'w');
    const segment = { seq, fh, size: 0 };
    this.current = segment;
    await syncDir(this.dir);
    return segment;
  }

  private async rotate(): Promise<void> {
    await this.settle();
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    this.old.push({ seq: current.seq, size: current.size });
    await current.fh.close();
    await this.begin();
  }

  /**
   * After a failed write or sync: cuts what was written of the group off the segment (so no refused
   * request comes back at recovery) and leaves it (after a failed fdatasync, what the page cache holds
   * of the file cannot be trusted); the next group begins a new segment.
   */
  private async abandon(at: number): Promise<void> {
    while (this.syncing) await this.syncing;
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    let size = at;
    try {
      await current.fh.truncate(at);
    } catch {
      // The refused records may stay on disk, to be stored at recovery (as a retried request would be).
      size = Number.MAX_SAFE_INTEGER;
    }
    if (this.unsynced) {
      // Acknowledged records before the failed write (sync: background): best effort.
      this.unsynced = false;
      await current.fh.datasync().catch(() => {});
    }
    await current.fh.close().catch(() => {});
    if (at === 0) await fs.promises.rm(path.join(this.dir, segmentName(current.seq)), { force: true }).catch(() => {});
    else this.old.push({ seq: current.seq, size });
  }
}

/** Writes `buffers` at `position`, going on after partial writes; throws on a write that makes no progress. */
async function writeAll(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, at);
    if (bytesWritten <= 0) throw new Error('the write-ahead log write made no progress');
    at += bytesWritten;
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) skip -= b.length;
      else {
        next.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    rest = next;
  }
}

/** Writes `data` at `position` in order, going on after partial writes; throws on a write that makes no progress. */
function writeAllSync(fd: number, data: Buffer[], position: number): void {
  let rest = data;
  let at = position;
  while (rest.length > 0) {
    let n = fs.writevSync(fd, rest, at);
    if (n <= 0) throw new Error('the write-ahead log write made no progress');
    at += n;
    // Past the buffers written whole; the one written in part goes on from where it stopped.
    let i = 0;
    while (i < rest.length && n >= rest[i].length) n -= rest[i++].length;
    rest = rest.slice(i);
    if (n > 0) rest[0] = rest[0].subarray(n);
  }
}

/** fsyncs a directory, so that a created segment survives a machine crash (best effort). */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, 'r');
    await fh.sync();
  } catch {
    // Not supported on every platform / filesystem.
  } finally {
    await fh?.close();
  }
}

/**
 * A persistent FIFO queue of payloads on local disk: an append-only log cut into segment files, and
 * a small `ack` file holding the position of the oldest record not yet acknowledged.
 *
 * On-disk format (all integers unsigned 32-bit little-endian; the record format is record-log.ts's,
 * shared with the trace store's write-ahead log):
 *
 * - `<dir>/<seq>.seg` (`seq` a 16-digit zero-padded decimal, increasing): records back to back, each
 *   `[length][crc32 of payload][spanCount][payload]` (12-byte header + `length` bytes).
 *   A record of a payload sent for a tenant has the top bit of `spanCount` set (TENANT_FLAG; span
 *   counts stay far below 2^31) and its payload begins with the tenant: `[n: u8][n bytes]`, then the
 *   export request. Records without the bit (older queues too) have no tenant.
 * - `<dir>/ack`: JSON `{"segment": seq, "offset": byteOffset}`, the first unacknowledged record
 *   (records before it, and whole segments with a lower seq, are acknowledged). Written to
 *   `ack.tmp`, fsynced, then renamed over `ack`, so it is always either the old or the new position.
 *   A missing or unreadable `ack` means "nothing acknowledged" (records are sent again: at least once).
 *
 * Durability:
 *
 * - `append` writes each record with a single `write` at the end of the current segment. Once it has
 *   returned, the record is in the OS page cache and survives the death of the process (kill -9, OOM,
 *   crash): nothing appended is lost then.
 * - Segments are fsynced on a timer (`syncIntervalMs`, 100 ms by default), before a segment is left
 *   for the next one, and at `close`. A machine crash or power loss can therefore lose the records
 *   appended in the last `syncIntervalMs` at most, and can leave a torn or garbled record at the tail.
 * - Recovery (`open`) reads every segment, checks each record's length and CRC, and at the first
 *   torn or corrupt record of the last segment truncates the file there (what came before survives;
 *   `recovery.truncatedBytes`). A bad record in an earlier segment (fsynced whole before it was left,
 *   so only media corruption can cause it) cuts that segment there too (`recovery.corruptSegments`).
 *   Recovered segments are fsynced, so what a killed process left in the page cache is durable from
 *   the next start on.
 * - Acknowledgement is persisted after the fact: a crash between a successful send and the `ack`
 *   write re-sends those records (at-least-once, never at-most-once). Appends after a restart go to a
 *   new segment, so a persisted position can never point past a record that has yet to be written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRecord, HEADER_BYTES, listSegments, scanRecords, segmentName, syncDir } from '../record-log';

export { HEADER_BYTES };

export interface DiskQueueOptions {
  /** Bound of the unacknowledged payload bytes (record headers not counted). */
  maxBytes: number;
  /** A segment is closed and a new one begun once it holds this many bytes (default 8 MiB). */
  segmentBytes?: number;
  /** Interval of the batched fsync (ms, default 100). */
  syncIntervalMs?: number;
}

/** Thrown by `append` when the record would take the queue past `maxBytes`. */
export class DiskQueueFullError extends Error {
  override readonly name = 'DiskQueueFullError';
  constructor(
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(`the disk queue is full (${bytes} of ${maxBytes} bytes)`);
  }
}

/** The top bit of a record's span count: its payload begins with a tenant (see the format above). */
export const TENANT_FLAG = 0x8000_0000;

export interface DiskRecord {
  payload: Buffer;
  spanCount: number;
  /** The tenant it is sent for, if any. */
  tenant: string | undefined;
  /** When it was appended (ms since epoch), or when the queue was opened for a recovered record. */
  appendedAt: number;
  /** The queue's handle on the record, for `ackRecords`. */
  readonly handle: unknown;
}

/** What `open` found on disk. */
export interface DiskQueueRecovery {
  /** Unacknowledged records recovered. */
  records: number;
  bytes: number;
  spans: number;
  /** Bytes cut off the tail of the last segment (a torn or corrupt record). */
  truncatedBytes: number;
  /** Earlier segments whose tail was skipped because a record in it was corrupt. */
  corruptSegments: number;
}

interface Segment {
  seq: number;
  fd: number;
  size: number;
  /** Records of this segment still in `records` (acknowledged or not). */
  live: number;
}

interface RecordRef {
  segment: Segment;
  /** Of the record's header. */
  offset: number;
  /** Of the export request (the payload less its tenant prefix). */
  length: number;
  /** Bytes of the tenant prefix at the start of the payload (0: none). */
  prefix: number;
  tenant: string | undefined;
  spanCount: number;
  appendedAt: number;
  /** Acknowledged out of order (see `ack`'s `skip`): gone from the queue, its position not yet persisted. */
  done: boolean;
}

const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;

export class DiskQueue {
  readonly recovery: DiskQueueRecovery;
  private readonly segments: Segment[] = [];
  /** Records from the persisted ack position on; `done` ones are acknowledged but not yet persisted. */
  private readonly records: RecordRef[] = [];
  private unackedBytes = 0;
  private unackedCount = 0;
  private unackedSpans = 0;
  private dirty = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly segmentBytes: number;
  private readonly maxBytes: number;

  private constructor(
    readonly dir: string,
    options: DiskQueueOptions,
  ) {
    this.maxBytes = options.maxBytes;
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.recovery = { records: 0, bytes: 0, spans: 0, truncatedBytes: 0, corruptSegments: 0 };
    this.recover();
    this.timer = setInterval(() => this.sync(), options.syncIntervalMs ?? 100);
    this.timer.unref();
  }

  /** Opens (creating it if needed) the queue in `dir` and recovers what it holds. */
  static open(dir: string, options: DiskQueueOptions): DiskQueue {
    return new DiskQueue(dir, options);
  }

  /** Unacknowledged payload bytes. */
  get bytes(): number {
    return this.unackedBytes;
  }

  /** Spans of the unacknowledged records. */
  get spans(): number {
    return this.unackedSpans;
  }

  /** Unacknowledged records. */
  get length(): number {
    return this.unackedCount;
  }

  /** Appends a record (for `tenant`, if given); throws DiskQueueFullError when it would pass `maxBytes`. */
  append(payload: Buffer, spanCount: number, tenant?: string): void {
    this.checkOpen();
    if (this.unackedBytes + payload.length > this.maxBytes) {
      throw new DiskQueueFullError(this.unackedBytes, this.maxBytes);
    }
    const prefix = tenant === undefined ? undefined : tenantPrefix(tenant);
    let segment = this.segments[this.segments.length - 1];
    const size = HEADER_BYTES + (prefix?.length ?? 0) + payload.length;
    if (segment.size > 0 && segment.size + size > this.segmentBytes) {
      segment = this.rotate();
    }
    const record = prefix
      ? encodeRecord(Buffer.concat([prefix, payload]), (spanCount | TENANT_FLAG) >>> 0)
      : encodeRecord(payload, spanCount);
    const offset = segment.size;
    let written = 0;
    try {
      written = fs.writeSync(segment.fd, record, 0, record.length, offset);
    } catch (err) {
      this.cutBack(segment, offset);
      throw err;
    }
    if (written !== record.length) {
      // A short write (disk full): the partial record must not stay to be read back as torn data.
      this.cutBack(segment, offset);
      throw new Error(`short write to the disk queue (${written} of ${record.length} bytes)`);
    }
    segment.size += record.length;
    segment.live++;
    this.records.push({
      segment,
      offset,
      length: payload.length,
      prefix: prefix?.length ?? 0,
      tenant,
      spanCount,
      appendedAt: Date.now(),
      done: false,
    });
    this.unackedBytes += payload.length;
    this.unackedCount++;
    this.unackedSpans += spanCount;
    this.dirty = true;
  }

  /**
   * The oldest unacknowledged records, after the first `skip` of them, up to `maxBytes` of payload
   * (at least one, if there is any), all of the first one's tenant (stopping before another's). They
   * stay in the queue until acknowledged.
   */
  peek(maxBytes: number, skip = 0): DiskRecord[] {
    this.checkOpen();
    const out: DiskRecord[] = [];
    let bytes = 0;
    let skipped = 0;
    for (const ref of this.records) {
      if (ref.done) continue;
      if (skipped < skip) {
        skipped++;
        continue;
      }
      if (out.length > 0 && (bytes + ref.length > maxBytes || ref.tenant !== out[0].tenant)) break;
      const payload = Buffer.allocUnsafe(ref.length);
      const n = fs.readSync(ref.segment.fd, payload, 0, ref.length, ref.offset + HEADER_BYTES + ref.prefix);
      if (n !== ref.length) throw new Error(`short read from the disk queue (${n} of ${ref.length} bytes)`);
      out.push({ payload, spanCount: ref.spanCount, tenant: ref.tenant, appendedAt: ref.appendedAt, handle: ref });
      bytes += ref.length;
    }
    return out;
  }

  /** When the oldest unacknowledged record (after `skip`) was appended; undefined when there is none. */
  oldestAppendedAt(skip = 0): number | undefined {
    let skipped = 0;
    for (const ref of this.records) {
      if (ref.done) continue;
      if (skipped++ < skip) continue;
      return ref.appendedAt;
    }
    return undefined;
  }

  /**
   * Acknowledges `count` unacknowledged records, after the first `skip` of them (0: the oldest).
   * Returns their payload bytes and spans. The persisted position moves past every acknowledged
   * record at the head; records acknowledged behind an unacknowledged one (skip > 0) come back after
   * a restart if the ones before them were never acknowledged (at least once). Fully acknowledged
   * segments are deleted.
   */
  ack(count: number, skip = 0): { records: number; bytes: number; spans: number } {
    this.checkOpen();
    const result = { records: 0, bytes: 0, spans: 0 };
    let skipped = 0;
    for (const ref of this.records) {
      if (result.records >= count) break;
      if (ref.done) continue;
      if (skipped < skip) {
        skipped++;
        continue;
      }
      this.markDone(ref, result);
    }
    this.advance();
    return result;
  }

  /**
   * Acknowledges the given records (from `peek`; ones already acknowledged are skipped), wherever they
   * are in the queue: senders that work concurrently finish out of order. The persisted position
   * moves as in `ack`.
   */
  ackRecords(records: readonly DiskRecord[]): { records: number; bytes: number; spans: number } {
    this.checkOpen();
    const result = { records: 0, bytes: 0, spans: 0 };
    for (const r of records) {
      const ref = r.handle as RecordRef;
      if (!ref.done) this.markDone(ref, result);
    }
    this.advance();
    return result;
  }

  private markDone(ref: RecordRef, result: { records: number; bytes: number; spans: number }): void {
    ref.done = true;
    result.records++;
    result.bytes += ref.length;
    result.spans += ref.spanCount;
    this.unackedBytes -= ref.length;
    this.unackedCount--;
    this.unackedSpans -= ref.spanCount;
  }

  /** Drops the acknowledged records at the head, persisting the new position if it moved. */
  private advance(): void {
    let advanced = false;
    while (this.records.length > 0 && this.records[0].done) {
      const ref = this.records.shift() as RecordRef;
      ref.segment.live--;
      advanced = true;
    }
    if (advanced) {
      this.persistPosition();
      this.deleteAckedSegments();
    }
  }

  /** fsyncs what was appended since the last sync. */
  sync(): void {
    if (!this.dirty || this.closed) return;
    this.dirty = false;
    // Segments left behind were fsynced when they were left: only the current one can be dirty.
    fs.fsyncSync(this.segments[this.segments.length - 1].fd);
  }

  /** fsyncs and closes the files. Idempotent. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    this.sync();
    this.closed = true;
    for (const segment of this.segments) fs.closeSync(segment.fd);
    this.segments.length = 0;
    this.records.length = 0;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the disk queue is closed');
  }

  private recover(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const position = this.readPosition();
    const seqs = listSegments(this.dir);
    const openedAt = Date.now();
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i];
      const file = path.join(this.dir, segmentName(seq));
      if (position && seq < position.segment) {
        fs.rmSync(file, { force: true });
        continue;
      }
      const last = i === seqs.length - 1;
      const data = fs.readFileSync(file);
      const segment: Segment = { seq, fd: -1, size: data.length, live: 0 };
      const start = position && seq === position.segment ? position.offset : 0;
      const { end: offset, bad } = scanRecords(data, (offset, recordLength, tag) => {
        if (offset >= start) {
          let tenant: string | undefined;
          let prefix = 0;
          let spanCount = tag;
          if (tag & TENANT_FLAG) {
            const n = data[offset + HEADER_BYTES];
            tenant = data.toString('latin1', offset + HEADER_BYTES + 1, offset + HEADER_BYTES + 1 + n);
            prefix = 1 + n;
            spanCount = (tag & ~TENANT_FLAG) >>> 0;
          }
          const length = recordLength - prefix;
          this.records.push({ segment, offset, length, prefix, tenant, spanCount, appendedAt: openedAt, done: false });
          segment.live++;
          this.unackedBytes += length;
          this.unackedCount++;
          this.unackedSpans += spanCount;
        }
      });
      if (bad) {
        // Nothing after a bad record can be trusted (there are no sync markers): it is cut off.
        if (last) this.recovery.truncatedBytes += data.length - offset;
        else this.recovery.corruptSegments++;
        fs.truncateSync(file, offset);
        segment.size = offset;
      }
      if (segment.live === 0) {
        // Nothing left to send in it: it goes (a new segment is begun for appends below).
        fs.rmSync(file, { force: true });
        continue;
      }
      segment.fd = fs.openSync(file, 'r+');
      // What a killed process left in the page cache is made durable now.
      fs.fsyncSync(segment.fd);
      this.segments.push(segment);
    }
    this.recovery.records = this.unackedCount;
    this.recovery.bytes = this.unackedBytes;
    this.recovery.spans = this.unackedSpans;
    // Appends always go to a fresh segment: a persisted position never lies beyond a future record.
    const next = seqs.length > 0 ? seqs[seqs.length - 1] + 1 : position ? position.segment + 1 : 1;
    this.createSegment(next);
    if (this.records.length === 0) this.persistPosition();
  }

  private readPosition(): { segment: number; offset: number } | undefined {
    try {
      const value = JSON.parse(fs.readFileSync(path.join(this.dir, 'ack'), 'utf8')) as unknown;
      if (typeof value === 'object' && value !== null) {
        const { segment, offset } = value as Record<string, unknown>;
        if (Number.isSafeInteger(segment) && Number.isSafeInteger(offset)) {
          return { segment: segment as number, offset: offset as number };
        }
      }
    } catch {
      // Missing or unreadable: nothing is acknowledged.
    }
    return undefined;
  }

  private persistPosition(): void {
    const head = this.records[0];
    const current = this.segments[this.segments.length - 1];
    const position = head
      ? { segment: head.segment.seq, offset: head.offset }
      : { segment: current.seq, offset: current.size };
    const tmp = path.join(this.dir, 'ack.tmp');
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(position));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(this.dir, 'ack'));
  }

  private deleteAckedSegments(): void {
    while (this.segments.length > 1 && this.segments[0].live === 0) {
      const segment = this.segments.shift() as Segment;
      fs.closeSync(segment.fd);
      fs.rmSync(path.join(this.dir, segmentName(segment.seq)), { force: true });
    }
  }

  private rotate(): Segment {
    const current = this.segments[this.segments.length - 1];
    fs.fsyncSync(current.fd);
    this.dirty = false;
    const segment = this.createSegment(current.seq + 1);
    if (current.live === 0 && this.segments.length > 1) this.deleteAckedSegments();
    return segment;
  }

  private createSegment(seq: number): Segment {
    const fd = fs.openSync(path.join(this.dir, segmentName(seq)), 'w+');
    const segment: Segment = { seq, fd, size: 0, live: 0 };
    this.segments.push(segment);
    syncDir(this.dir);
    return segment;
  }

  /** Removes a failed partial write, so that the next record starts where this one should have. */
  private cutBack(segment: Segment, offset: number): void {
    try {
      fs.ftruncateSync(segment.fd, offset);
    } catch {
      // Recovery cuts a torn tail anyway.
    }
  }
}

/** A record's tenant prefix: its length (one byte) and its bytes (tokens.ts allows 1-150 ASCII characters). */
function tenantPrefix(tenant: string): Buffer {
  const bytes = Buffer.from(tenant, 'latin1');
  if (bytes.length > 255) throw new Error('a tenant longer than 255 bytes cannot be queued');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

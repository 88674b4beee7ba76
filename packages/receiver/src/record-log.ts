/**
 * The on-disk record format shared by the append-only logs of the receiver: the Tempo exporter's
 * persistent queue (export/disk-queue.ts) and the trace store's write-ahead log (trace-store/wal.ts).
 *
 * A log is a directory of segment files `<seq>.seg` (`seq` a 16-digit zero-padded decimal,
 * increasing), each holding records back to back: `[length][crc32 of payload][tag][payload]`, all
 * integers unsigned 32-bit little-endian (a 12-byte header, then `length` bytes). `tag` is the
 * log's own (the span count for both logs today).
 *
 * There are no sync markers: nothing after a torn or corrupt record can be trusted, so a reader stops
 * at the first one (`scanRecords`) and the log is cut there.
 */
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';

export const HEADER_BYTES = 12;

export const SEGMENT_RE = /^(\d{16})\.seg$/;

export function segmentName(seq: number): string {
  return `${String(seq).padStart(16, '0')}.seg`;
}

/** The sequence numbers of the segments in `dir`, in increasing order. */
export function listSegments(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .map((name) => SEGMENT_RE.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/**
 * One record (header and payload) in a buffer with an ArrayBuffer of its own (never Node's shared pool
 * of small buffers): it can be transferred to another thread.
 */
export function encodeRecord(payload: Uint8Array, tag: number): Buffer {
  const record = Buffer.allocUnsafeSlow(HEADER_BYTES + payload.length);
  record.writeUInt32LE(payload.length, 0);
  record.writeUInt32LE(crc32(payload), 4);
  record.writeUInt32LE(tag >>> 0, 8);
  record.set(payload, HEADER_BYTES);
  return record;
}

/**
 * Reads the records of a segment's bytes in order, calling `each` with each one's offset (of its
 * header), payload length and tag; stops at the first torn (past the end) or corrupt (CRC) record.
 * Returns the offset where the valid records end, and whether a bad record was found there (when
 * not, the end is `data.length`).
 */
export function scanRecords(
  data: Buffer,
  each: (offset: number, length: number, tag: number) => void,
): { end: number; bad: boolean } {
  let offset = 0;
  while (offset < data.length) {
    if (offset + HEADER_BYTES > data.length) return { end: offset, bad: true };
    const length = data.readUInt32LE(offset);
    const crc = data.readUInt32LE(offset + 4);
    const tag = data.readUInt32LE(offset + 8);
    const end = offset + HEADER_BYTES + length;
    if (end > data.length || crc32(data.subarray(offset + HEADER_BYTES, end)) !== crc)
      return { end: offset, bad: true };
    each(offset, length, tag);
    offset = end;
  }
  return { end: offset, bad: false };
}

/** fsyncs a directory, so that a created or renamed entry survives a machine crash (best effort). */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Not supported on every platform / filesystem.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

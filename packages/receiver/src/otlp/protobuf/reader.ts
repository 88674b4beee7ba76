/**
 * A protobuf wire-format reader over one request buffer. The OTLP decoders drive it field by field
 * and build the internal model directly, with no generic message tree in between.
 *
 * Every read is bounds-checked: a truncated or corrupt payload raises MalformedPayloadError, never a
 * RangeError or an out-of-bounds read.
 */
import { MalformedPayloadError, TooManyStructuresError } from '../errors';

export const WireType = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

const TWO_POW_32 = 4294967296;

export class ProtoReader {
  readonly buf: Buffer;
  readonly view: DataView;
  pos: number;
  /** The longest string decoded so far, in bytes (lets the attribute-limits processor skip its walk). */
  longestString = 0;
  /** The most attributes seen on one item so far (set by the decoders). */
  mostAttributes = 0;
  /** Structures that may still be built (limits.max_decoded_structures); see `take`. */
  structuresLeft = Number.MAX_SAFE_INTEGER;
  /** The limit `structuresLeft` started from (none: MAX_SAFE_INTEGER, which a buffer cannot reach). */
  maxStructures = Number.MAX_SAFE_INTEGER;
  /** Where the previous 16-byte id sits in `buf`, and its hex: spans of one trace come together. */
  private lastIdAt = -1;
  private lastIdHex = '';

  constructor(buf: Buffer, pos = 0) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = pos;
  }

  /** Starts counting structures against `limit` (undefined: no limit). */
  limitStructures(limit: number | undefined): void {
    if (limit === undefined) return;
    this.maxStructures = limit;
    this.structuresLeft = limit;
  }

  /** Counts `n` structures about to be built against the limit; throws TooManyStructuresError over it. */
  take(n: number): void {
    this.structuresLeft -= n;
    if (this.structuresLeft < 0) throw new TooManyStructuresError(this.maxStructures);
  }

  /** Structures counted so far. */
  get structures(): number {
    return this.maxStructures - this.structuresLeft;
  }

  /** A varint that fits in 32 bits (tags, lengths, enums, int32). Larger varints are truncated to their low 32 bits. */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    const end = buf.length;
    if (pos < end) {
      const b = buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw truncated('varint');
      const b = buf[pos++];
      if (shift < 32) result |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
      if (shift > 63) throw new MalformedPayloadError('varint longer than 10 bytes');
    }
    this.pos = pos;
    return result >>> 0;
  }

  /** An int32 varint (sign-extended when negative). */
  int32(): number {
    return this.uint32() | 0;
  }

  /** A uint64 varint as a number (exact up to 2^53; counts and sizes never reach that). */
  uint64Number(): number {
    const buf = this.buf;
    let pos = this.pos;
    const end = buf.length;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw truncated('varint');
      const b = buf[pos++];
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      if (b < 0x80) break;
      shift += 7;
      if (shift > 63) throw new MalformedPayloadError('varint longer than 10 bytes');
    }
    this.pos = pos;
    return (hi >>> 0) * TWO_POW_32 + (lo >>> 0);
  }

  /** An int64 varint as a bigint (two's complement, as AnyValue.int_value is encoded). */
  int64(): bigint {
    const start = this.pos;
    const small = this.uint64Number();
    if (small <= Number.MAX_SAFE_INTEGER) return BigInt(small);
    // Rare: large or negative values. Re-read exactly with bigint arithmetic.
    this.pos = start;
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7n;
    }
    return BigInt.asIntN(64, result);
  }

  bool(): boolean {
    return this.uint32() !== 0;
  }

  /** fixed64 as a bigint (timestamps in nanoseconds). */
  fixed64(): bigint {
    const pos = this.pos;
    if (pos + 8 > this.buf.length) throw truncated('fixed64');
    this.pos = pos + 8;
    return this.view.getBigUint64(pos, true);
  }

  /** fixed64 as a number (counts). */
  fixed64Number(): number {
    const pos = this.pos;
    if (pos + 8 > this.buf.length) throw truncated('fixed64');
    this.pos = pos + 8;
    return this.view.getUint32(pos + 4, true) * TWO_POW_32 + this.view.getUint32(pos, true);
  }

  /** sfixed64 as a number (exemplar and data point `as_int`). */
  sfixed64Number(): number {
    const pos = this.pos;
    if (pos + 8 > this.buf.length) throw truncated('sfixed64');
    this.pos = pos + 8;
    return this.view.getInt32(pos + 4, true) * TWO_POW_32 + this.view.getUint32(pos, true);
  }

  fixed32(): number {
    const pos = this.pos;
    if (pos + 4 > this.buf.length) throw truncated('fixed32');
    this.pos = pos + 4;
    return this.view.getUint32(pos, true);
  }

  double(): number {
    const pos = this.pos;
    if (pos + 8 > this.buf.length) throw truncated('double');
    this.pos = pos + 8;
    return this.view.getFloat64(pos, true);
  }

  /** Reads a length prefix and returns the end offset of the delimited bytes. */
  delimitedEnd(): number {
    const len = this.uint32();
    const end = this.pos + len;
    if (end > this.buf.length) throw truncated('length-delimited field');
    return end;
  }

  string(): string {
    const end = this.delimitedEnd();
    const start = this.pos;
    this.pos = end;
    if (end - start > this.longestString) this.longestString = end - start;
    return utf8(this.buf, this.view, start, end);
  }

  /** A bytes field as a copy (the request buffer is not retained). */
  bytes(): Uint8Array {
    const end = this.delimitedEnd();
    const out = Uint8Array.prototype.slice.call(this.buf, this.pos, end);
    this.pos = end;
    return out;
  }

  /** A trace or span id as lowercase hex; `size` is the only valid non-zero length in bytes. */
  id(size: 8 | 16, what: string): string {
    const end = this.delimitedEnd();
    const len = end - this.pos;
    if (len !== size && len !== 0) {
      throw new MalformedPayloadError(`${what} must be ${size} bytes, got ${len}`);
    }
    const start = this.pos;
    this.pos = end;
    if (len !== 16) return len === 0 ? '' : hex8(this.buf, start);
    const last = this.lastIdAt;
    if (last >= 0) {
      const buf = this.buf;
      let same = true;
      for (let i = 0; i < 16; i++) {
        if (buf[start + i] !== buf[last + i]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastIdHex;
    }
    this.lastIdAt = start;
    this.lastIdHex = hex16(this.buf, start);
    return this.lastIdHex;
  }

  /** Skips a field of the given wire type (unknown fields are ignored, as proto3 requires). */
  skip(wireType: number): void {
    switch (wireType) {
      case WireType.VARINT:
        this.uint64Number();
        return;
      case WireType.I64:
        if (this.pos + 8 > this.buf.length) throw truncated('fixed64');
        this.pos += 8;
        return;
      case WireType.LEN:
        this.pos = this.delimitedEnd();
        return;
      case WireType.I32:
        if (this.pos + 4 > this.buf.length) throw truncated('fixed32');
        this.pos += 4;
        return;
      default:
        throw new MalformedPayloadError(`unsupported wire type ${wireType}`);
    }
  }
}

/**
 * Lowercase hex of the 8 or 16 bytes at `at`, made in JavaScript: `String.fromCharCode` of the
 * digits from two tables, unrolled, rather than `Buffer#hexSlice`, a call into C++ that costs more
 * than the conversion for so few bytes. With it, decodeTraceRequest took 1.375 rather than 1.475 µs
 * a span at 500 spans/request (`node bench/decode-ab.ts 500 <checkout of the build before>`).
 */
const HEX_HIGH = new Uint8Array(256);
const HEX_LOW = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  HEX_HIGH[i] = '0123456789abcdef'.charCodeAt(i >> 4);
  HEX_LOW[i] = '0123456789abcdef'.charCodeAt(i & 15);
}

function hex8(b: Buffer, at: number): string {
  const b0 = b[at];
  const b1 = b[at + 1];
  const b2 = b[at + 2];
  const b3 = b[at + 3];
  const b4 = b[at + 4];
  const b5 = b[at + 5];
  const b6 = b[at + 6];
  const b7 = b[at + 7];
  const H = HEX_HIGH;
  const L = HEX_LOW;
  // biome-ignore format: eight bytes to a line
  return String.fromCharCode(
    H[b0], L[b0], H[b1], L[b1], H[b2], L[b2], H[b3], L[b3], H[b4], L[b4], H[b5], L[b5], H[b6], L[b6], H[b7], L[b7],
  );
}

function hex16(b: Buffer, at: number): string {
  const b0 = b[at];
  const b1 = b[at + 1];
  const b2 = b[at + 2];
  const b3 = b[at + 3];
  const b4 = b[at + 4];
  const b5 = b[at + 5];
  const b6 = b[at + 6];
  const b7 = b[at + 7];
  const c0 = b[at + 8];
  const c1 = b[at + 9];
  const c2 = b[at + 10];
  const c3 = b[at + 11];
  const c4 = b[at + 12];
  const c5 = b[at + 13];
  const c6 = b[at + 14];
  const c7 = b[at + 15];
  const H = HEX_HIGH;
  const L = HEX_LOW;
  // biome-ignore format: eight bytes to a line
  return String.fromCharCode(
    H[b0], L[b0], H[b1], L[b1], H[b2], L[b2], H[b3], L[b3], H[b4], L[b4], H[b5], L[b5], H[b6], L[b6], H[b7], L[b7],
    H[c0], L[c0], H[c1], L[c1], H[c2], L[c2], H[c3], L[c3], H[c4], L[c4], H[c5], L[c5], H[c6], L[c6], H[c7], L[c7],
  );
}

function truncated(what: string): MalformedPayloadError {
  return new MalformedPayloadError(`truncated protobuf: ${what} runs past the end of the message`);
}

/**
 * UTF-8 to string. Telemetry repeats itself: attribute keys, span names, methods, routes and service
 * names recur in every request. Short strings therefore go through a direct-mapped cache keyed by
 * their bytes (an FNV-1a hash of a sample of the bytes, then a full comparison), which returns the same string without creating
 * a new one; a miss decodes natively and takes the slot. Longer strings are decoded natively.
 * Strings up to 160 bytes are cached, so that user agents, URLs and routes also come back as the same
 * string: measured in process (bench/redaction-cpu.ts, 100 spans per request), decoding took
 * 3.0–3.5 µs per span instead of 3.7–4.0 with a 32-byte bound, and redaction, whose memo of clean
 * values then finds them by identity, 0.66–0.82 µs instead of 1.04–1.34.
 */
const CACHE_MAX_LENGTH = 160;
const CACHE_SLOTS = 4096;
const cacheBytes = new Uint8Array(CACHE_SLOTS * CACHE_MAX_LENGTH);
const cacheView = new DataView(cacheBytes.buffer);
const cacheLengths = new Int16Array(CACHE_SLOTS).fill(-1);
const cacheStrings: string[] = new Array<string>(CACHE_SLOTS).fill('');

export function utf8(buf: Buffer, view: DataView, start: number, end: number): string {
  const len = end - start;
  if (len === 0) return '';
  if (len > CACHE_MAX_LENGTH) return buf.utf8Slice(start, end);
  // The slot comes from the length and a sample of at most 9 bytes (all of them when short); a hit is
  // then confirmed in full, four bytes at a time, so the sample only chooses where to look.
  let hash = Math.imul(0x811c9dc5 ^ len, 0x01000193);
  if (len <= 9) {
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ buf[i], 0x01000193);
  } else {
    hash = Math.imul(hash ^ view.getUint32(start, true), 0x01000193);
    hash = Math.imul(hash ^ buf[start + (len >> 1)], 0x01000193);
    hash = Math.imul(hash ^ view.getUint32(end - 4, true), 0x01000193);
  }
  const slot = (hash ^ (hash >>> 15)) & (CACHE_SLOTS - 1);
  const base = slot * CACHE_MAX_LENGTH;
  const words = len & ~3;
  if (cacheLengths[slot] === len && sameBytes(view, start, base, len, words)) return cacheStrings[slot];
  let high = 0;
  for (let i = 0; i < words; i += 4) {
    const w = view.getUint32(start + i, true);
    cacheView.setUint32(base + i, w, true);
    high |= w;
  }
  for (let i = words; i < len; i++) {
    const b = buf[start + i];
    cacheBytes[base + i] = b;
    high |= b;
  }
  const str = (high & 0x80808080) === 0 ? buf.latin1Slice(start, end) : buf.utf8Slice(start, end);
  cacheLengths[slot] = len;
  cacheStrings[slot] = str;
  return str;
}

function sameBytes(view: DataView, start: number, base: number, len: number, words: number): boolean {
  for (let i = 0; i < words; i += 4) {
    if (view.getUint32(start + i, true) !== cacheView.getUint32(base + i, true)) return false;
  }
  for (let i = words; i < len; i++) {
    if (view.getUint8(start + i) !== cacheBytes[base + i]) return false;
  }
  return true;
}

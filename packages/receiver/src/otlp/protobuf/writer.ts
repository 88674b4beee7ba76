/**
 * A small protobuf wire-format writer. Sub-messages are written with `message(field, build)` into the
 * same buffer: one byte is reserved for the length prefix, and when the body turns out 128 bytes or
 * longer it is moved up by the prefix's extra bytes (one memmove, no buffer per sub-message).
 */
/** Below this many chars (a one-byte length prefix) a string is tried as ASCII first. */
const SHORT_STRING = 128;

/** Hex digit values by char code; -1 for a char that is not one. */
const HEX = Int8Array.from({ length: 128 }, (_, c) =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1,
);

export class ProtoWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(value: number | bigint): this {
    this.ensure(10);
    if (typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
      // Tags, lengths, counts and enums: plain arithmetic, no BigInt.
      let n = value;
      while (n >= 0x80) {
        this.buf[this.pos++] = (n % 0x80) | 0x80;
        n = Math.floor(n / 0x80);
      }
      this.buf[this.pos++] = n;
      return this;
    }
    // Negative numbers (two's complement over 64 bits) and bigints.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  tag(field: number, wireType: number): this {
    return this.varint((field << 3) | wireType);
  }

  /** A varint field (int32, int64, uint64, enum, bool); zero values are omitted as proto3 does. */
  varintField(field: number, value: number | bigint | boolean): this {
    const v = typeof value === 'boolean' ? (value ? 1 : 0) : value;
    if (v === 0 || v === 0n) return this;
    return this.tag(field, 0).varint(v);
  }

  stringField(field: number, value: string): this {
    if (value === '') return this;
    return this.stringAlways(field, value);
  }

  /** A string field written even when empty (a oneof member), encoded straight into the buffer. */
  stringAlways(field: number, value: string): this {
    const n = value.length;
    if (n < SHORT_STRING) {
      // Short strings (keys, levels, most values) copied char by char while ASCII: a native call costs more.
      this.tag(field, 2).ensure(1 + n);
      const buf = this.buf;
      const at = this.pos;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + 1 + i] = c;
      }
      if (i === n) {
        buf[at] = n;
        this.pos = at + 1 + n;
        return this;
      }
      // Not ASCII: the tag stays, the length and bytes are written below.
    } else this.tag(field, 2);
    const length = Buffer.byteLength(value, 'utf8');
    this.varint(length);
    this.ensure(length);
    this.pos += this.buf.write(value, this.pos, length, 'utf8');
    return this;
  }

  bytesField(field: number, value: Uint8Array): this {
    this.tag(field, 2).varint(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    return this;
  }

  /**
   * A bytes field given as hex (trace and span ids), decoded straight into the buffer; as
   * Buffer.from(hex, 'hex'), decoding stops at the first character that is not a hex digit pair.
   */
  hexField(field: number, hex: string): this {
    const most = hex.length >>> 1;
    if (most >= 0x80) return this.bytesField(field, Buffer.from(hex, 'hex'));
    this.tag(field, 2).ensure(1 + most);
    const at = this.pos;
    const buf = this.buf;
    let length = 0;
    // Decoded here (a native call costs more for an id); a character that is not hex ends it, as Buffer's decoding.
    for (; length < most; length++) {
      const hi = HEX[hex.charCodeAt(2 * length)];
      const lo = HEX[hex.charCodeAt(2 * length + 1)];
      if (hi === undefined || lo === undefined || hi < 0 || lo < 0) break;
      buf[at + 1 + length] = (hi << 4) | lo;
    }
    this.buf[at] = length;
    this.pos = at + 1 + length;
    return this;
  }

  /** A fixed64 field, always written (the caller decides whether a zero is worth sending). */
  fixed64Field(field: number, value: bigint): this {
    this.tag(field, 1).ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, value), this.pos);
    this.pos += 8;
    return this;
  }

  doubleField(field: number, value: number): this {
    this.tag(field, 1).ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
    return this;
  }

  fixed32Field(field: number, value: number): this {
    this.tag(field, 5).ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** Copies `src[start, end)` as it is (bytes already in protobuf: a patch's unchanged fields). */
  raw(src: Buffer, start: number, end: number): this {
    const n = end - start;
    if (n <= 0) return this;
    this.ensure(n);
    if (n < 32) {
      // A few bytes (a tag and length between two edits): a native call costs more.
      const buf = this.buf;
      let p = this.pos;
      for (let i = start; i < end; i++) buf[p++] = src[i];
    } else src.copy(this.buf, this.pos, start, end);
    this.pos += n;
    return this;
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const at = this.begin(field);
    build(this);
    return this.end(at);
  }

  /**
   * Starts a sub-message (hot paths: no closure per message); returns where `end` writes its length.
   * `reserve`: the bytes kept for the length prefix (1, or as many as the length is expected to need).
   */
  begin(field: number, reserve = 1): number {
    this.tag(field, 2).ensure(reserve);
    const at = this.pos;
    this.pos += reserve;
    return at;
  }

  /**
   * Ends the sub-message `begin` started at `at` with `reserved` bytes for its length: writes the
   * length prefix, moving the content when the prefix needs another number of bytes.
   */
  end(at: number, reserved = 1): this {
    const length = this.pos - at - reserved;
    if (length < 0x80 && reserved === 1) {
      this.buf[at] = length;
      return this;
    }
    const needed = length < 0x80 ? 1 : length < 2 ** 14 ? 2 : length < 2 ** 21 ? 3 : length < 2 ** 28 ? 4 : 5;
    if (needed !== reserved) {
      this.ensure(needed - reserved);
      this.buf.copyWithin(at + needed, at + reserved, this.pos);
      this.pos += needed - reserved;
    }
    let n = length;
    let p = at;
    while (n >= 0x80) {
      this.buf[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[p] = n;
    return this;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

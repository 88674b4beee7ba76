/**
 * Lean decoding (issue 15, "decode only what is used"): the attributes of spans and span events stay
 * the request's bytes until something reads them. Most of a span's bytes are its attributes, and
 * span metrics, the trace store, the recent buffer and the exporters read none of them (they take
 * ids, names, kinds, times and status, or forward the bytes received).
 *
 * The decoder still walks every attribute's bytes (skimKeyValue): it checks their structure, depth
 * and count exactly as the full decoder does, so that a malformed request is refused as a whole, at
 * intake, with the full decoder's error; only the strings and objects are not made. Then:
 * - reading `attributes` of a LeanSpan or LeanEvent decodes them, once, into exactly what the full
 *   decoder builds (`at` offsets included), so code that reads the model works unchanged;
 * - the service graph finds the few attributes it reads by their key's bytes (`firstValues`).
 *
 * The intake decodes lean only when no processor reads every attribute (Processor.readsEveryAttribute:
 * redaction, on by default). Measured, a processor that reads every value costs more over the bytes
 * than over the decoded model, whose strings come from the decoder's cache (docs/performance-history.md).
 */
import type { AnyValue, KeyValue, Span, SpanEvent, SpanLink, SpanStatus } from '../../model';
import { TooDeepError } from '../errors';
import { type DecodeLimits, STRUCTURES } from '../limits';
import { checkEnd, decodeAnyValue, decodeKeyValue } from './decode-common';
import { ProtoReader, utf8, WireType } from './reader';
import type { ProtoWriter } from './writer';

const LEN = WireType.LEN;
const VARINT = WireType.VARINT;
const I64 = WireType.I64;

/** No limits: attributes are decoded lazily only after the skim checked them against the request's. */
const CHECKED: DecodeLimits = { maxAnyValueDepth: Number.MAX_SAFE_INTEGER };

/** The attributes field's tag in a Span (field 9) and in a Span.Event (field 3). */
export const SPAN_ATTRIBUTES = (9 << 3) | LEN;
export const EVENT_ATTRIBUTES = (3 << 3) | LEN;

/**
 * An item whose attributes are the request's bytes until read: `source[attrFrom, attrTo)` holds
 * every field of the item tagged `attrTag` (and perhaps other fields between them, skipped).
 */
export abstract class LazyAttributes {
  /** The decoded attributes, once read (undefined while they are still bytes). */
  decodedAttributes: KeyValue[] | undefined = undefined;
  /** Where the first attribute field's tag is in `source`, and where the last one ends (equal: none). */
  attrFrom = 0;
  attrTo = 0;

  constructor(readonly source: Buffer) {}

  /** The attributes field's tag in this kind of item. */
  abstract get attrTag(): number;

  get attributes(): KeyValue[] {
    return this.decodedAttributes ?? this.decodeAttributes();
  }

  set attributes(attributes: KeyValue[]) {
    this.decodedAttributes = attributes;
  }

  /** The model's fields, attributes decoded (JSON.stringify would otherwise write the request's bytes, not them). */
  toJSON(): Record<string, unknown> {
    const { source, attrFrom, attrTo, decodedAttributes, ...fields } = this;
    return { ...fields, attributes: this.attributes };
  }

  private decodeAttributes(): KeyValue[] {
    const out: KeyValue[] = [];
    const to = this.attrTo;
    if (this.attrFrom < to) {
      const tag = this.attrTag;
      const r = new ProtoReader(this.source, this.attrFrom);
      while (r.pos < to) {
        const t = r.uint32();
        // Attribute fields are numbered below 16: the tag is the byte before (as decodeAttributeInto).
        if (t === tag) out.push(decodeKeyValue(r, CHECKED, 1, r.pos - 1));
        else r.skip(t & 7);
      }
    }
    this.decodedAttributes = out;
    return out;
  }
}

/**
 * Writes the attributes of a lean item still in bytes as field `field` of the message `w` writes: each
 * attribute's bytes copied as received (the model they decode to is the one writeAttributes would
 * write), so that encoding a lean batch anew decodes none of them.
 */
export function writeAttributeBytes(w: ProtoWriter, field: number, item: LazyAttributes): void {
  const source = item.source;
  const to = item.attrTo;
  const tag = item.attrTag;
  const r = new ProtoReader(source, item.attrFrom);
  while (r.pos < to) {
    const t = r.uint32();
    if (t !== tag) {
      r.skip(t & 7);
      continue;
    }
    const end = r.delimitedEnd();
    w.tag(field, LEN)
      .varint(end - r.pos)
      .raw(source, r.pos, end);
    r.pos = end;
  }
}

/** Whether `item` is lean and its attributes are still bytes. */
export function attributesInBytes(item: object): item is LazyAttributes {
  return item instanceof LazyAttributes && item.decodedAttributes === undefined;
}

/**
 * What a span without a status gets: one shared, frozen status rather than an object per span (most
 * spans have none). Frozen, so that code changing a span's own status in place fails loudly instead
 * of changing every span's. (Shared frozen empty arrays for events and links were tried: consumers'
 * `for...of` over them then allocated an iterator per loop, 10 KiB more per 100-span request.)
 */
export const NO_STATUS: SpanStatus = Object.freeze({ message: '', code: 0 });

/** A span from the lean decoder: the model's Span, its attributes decoded when first read. */
export class LeanSpan extends LazyAttributes implements Span {
  traceId = '';
  spanId = '';
  traceState = '';
  parentSpanId = '';
  flags = 0;
  name = '';
  kind = 0;
  startTimeUnixNano = 0n;
  endTimeUnixNano = 0n;
  droppedAttributesCount = 0;
  events: SpanEvent[] = [];
  droppedEventsCount = 0;
  links: SpanLink[] = [];
  droppedLinksCount = 0;
  status: SpanStatus = NO_STATUS;
  at = -1;

  get attrTag(): number {
    return SPAN_ATTRIBUTES;
  }
}

/** A span event from the lean decoder. */
export class LeanEvent extends LazyAttributes implements SpanEvent {
  timeUnixNano = 0n;
  name = '';
  droppedAttributesCount = 0;

  get attrTag(): number {
    return EVENT_ATTRIBUTES;
  }
}

/**
 * Walks one attribute (a length-delimited KeyValue, right after its tag) as decodeKeyValue would
 * decode it, making nothing: the same structures counted, the same depth and bounds checked, the
 * longest string noted. Throws where decodeKeyValue would (the caller then decodes the request in
 * full for the error's path).
 */
export function skimKeyValue(r: ProtoReader, limits: DecodeLimits, depth: number): void {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.value);
  const b = r.buf;
  while (r.pos < end) {
    // Fast paths, for the usual shapes written in the fewest bytes: a key; a value that is one string,
    // varint or double filling its AnyValue. Anything else goes the general way below.
    const p = r.pos;
    const t = b[p];
    const n = b[p + 1]; // undefined past the end of the buffer: no fast path then
    if (n < 0x80 && p + 2 + n <= b.length) {
      const fieldEnd = p + 2 + n;
      if (t === ((1 << 3) | LEN)) {
        if (n > r.longestString) r.longestString = n;
        r.pos = fieldEnd;
        continue;
      }
      if (t === ((2 << 3) | LEN) && n >= 2 && depth <= limits.maxAnyValueDepth) {
        const f = b[p + 2];
        if (f === VALUE.STRING) {
          const length = b[p + 3];
          if (length < 0x80 && p + 4 + length === fieldEnd) {
            if (length > r.longestString) r.longestString = length;
            r.pos = fieldEnd;
            continue;
          }
        } else if (f === VALUE.DOUBLE) {
          if (n === 9) {
            r.pos = fieldEnd;
            continue;
          }
        } else if (f === VALUE.INT || f === VALUE.BOOL) {
          // One varint of at most 10 bytes, ending exactly at the end of the AnyValue.
          let q = p + 3;
          while (q < fieldEnd && b[q] >= 0x80) q++;
          if (q === fieldEnd - 1 && fieldEnd - (p + 3) <= 10) {
            r.pos = fieldEnd;
            continue;
          }
        }
      }
    }
    const tag = r.uint32();
    if (tag === ((1 << 3) | LEN)) skimString(r);
    else if (tag === ((2 << 3) | LEN)) skimAnyValue(r, limits, depth);
    else r.skip(tag & 7);
  }
  checkEnd(r, end);
}

function skimString(r: ProtoReader): void {
  const end = r.delimitedEnd();
  if (end - r.pos > r.longestString) r.longestString = end - r.pos;
  r.pos = end;
}

function skimAnyValue(r: ProtoReader, limits: DecodeLimits, depth: number): void {
  if (depth > limits.maxAnyValueDepth) throw new TooDeepError(limits.maxAnyValueDepth);
  const end = r.delimitedEnd();
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        skimString(r);
        break;
      case (2 << 3) | VARINT:
        r.uint32();
        break;
      case (3 << 3) | VARINT:
        r.uint64Number();
        break;
      case (4 << 3) | I64:
        r.double();
        break;
      case (5 << 3) | LEN: {
        const listEnd = r.delimitedEnd();
        r.take(STRUCTURES.list);
        while (r.pos < listEnd) {
          const t = r.uint32();
          if (t === ((1 << 3) | LEN)) {
            r.take(STRUCTURES.value);
            skimAnyValue(r, limits, depth + 1);
          } else r.skip(t & 7);
        }
        checkEnd(r, listEnd);
        break;
      }
      case (6 << 3) | LEN: {
        const listEnd = r.delimitedEnd();
        r.take(STRUCTURES.list);
        while (r.pos < listEnd) {
          const t = r.uint32();
          if (t === ((1 << 3) | LEN)) skimKeyValue(r, limits, depth + 1);
          else r.skip(t & 7);
        }
        checkEnd(r, listEnd);
        break;
      }
      default:
        // bytes_value (7) included: skipped as the length-delimited field it is.
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
}

/** AnyValue's field tags, as AttributeCursor.valueTag gives them (0: no value). */
const VALUE = {
  STRING: (1 << 3) | LEN,
  BOOL: (2 << 3) | VARINT,
  INT: (3 << 3) | VARINT,
  DOUBLE: (4 << 3) | I64,
  ARRAY: (5 << 3) | LEN,
  KVLIST: (6 << 3) | LEN,
  BYTES: (7 << 3) | LEN,
} as const;

/**
 * Reads the attributes of a lean item in place, one at a time, without decoding them: where its key
 * and value are in the request's bytes. Only for items the decoder skimmed: their bytes are well
 * formed, so it reads them directly. `open`, then `next` until false; `readValue` when the value's
 * type or bytes are wanted; `close` when done with the request (it holds its bytes until then).
 */
class AttributeCursor {
  private buf: Buffer = EMPTY;
  /** A view of `buf`, made when a string is first read from it. */
  private view: DataView | undefined;
  private pos = 0;
  private to = 0;
  private tag = 0;
  keyStart = 0;
  keyEnd = 0;
  /** Where the value's AnyValue (its length prefix) is; -1 when the attribute has none. */
  private valueAt = -1;
  /** After readValue: the value's AnyValue field tag (a VALUE; 0 when it has none). */
  valueTag = 0;
  /** After readValue: a string's or bytes' first byte and end; a number's first byte. */
  valueStart = 0;
  valueEnd = 0;

  open(item: LazyAttributes): void {
    if (item.source !== this.buf) {
      this.buf = item.source;
      this.view = undefined;
    }
    this.pos = item.attrFrom;
    this.to = item.attrTo;
    this.tag = item.attrTag;
  }

  close(): void {
    this.buf = EMPTY;
    this.view = undefined;
  }

  /** Moves to the next attribute; false after the last. */
  next(): boolean {
    const b = this.buf;
    let p = this.pos;
    while (p < this.to) {
      const t = varint(b, p);
      p = varintEnd;
      if (t !== this.tag) {
        p = skipField(b, p, t & 7);
        continue;
      }
      const len = varint(b, p);
      p = varintEnd;
      const end = p + len;
      // The last key and the last value win, as in decodeKeyValue.
      this.keyStart = this.keyEnd = 0;
      this.valueAt = -1;
      while (p < end) {
        const f = varint(b, p);
        p = varintEnd;
        if (f === ((1 << 3) | LEN)) {
          const n = varint(b, p);
          this.keyStart = varintEnd;
          this.keyEnd = p = varintEnd + n;
        } else if (f === ((2 << 3) | LEN)) {
          this.valueAt = p;
          p = skipField(b, p, LEN);
        } else p = skipField(b, p, f & 7);
      }
      this.pos = end;
      return true;
    }
    this.pos = p;
    return false;
  }

  /** Reads the current attribute's value: sets valueTag, valueStart and valueEnd (the last field of the oneof wins). */
  readValue(): void {
    this.valueTag = 0;
    if (this.valueAt < 0) return;
    const b = this.buf;
    const len = varint(b, this.valueAt);
    let p = varintEnd;
    const end = p + len;
    while (p < end) {
      const f = varint(b, p);
      p = varintEnd;
      switch (f) {
        case VALUE.STRING:
        case VALUE.ARRAY:
        case VALUE.KVLIST:
        case VALUE.BYTES: {
          const n = varint(b, p);
          this.valueTag = f;
          this.valueStart = varintEnd;
          this.valueEnd = p = varintEnd + n;
          break;
        }
        case VALUE.BOOL:
        case VALUE.INT:
        case VALUE.DOUBLE:
          this.valueTag = f;
          this.valueStart = p;
          this.valueEnd = p = skipField(b, p, f & 7);
          break;
        default:
          p = skipField(b, p, f & 7);
      }
    }
  }

  /** A string value (valueTag STRING), as the decoder would make it (the same string object for one seen before). */
  string(): string {
    const b = this.buf;
    this.view ??= new DataView(b.buffer, b.byteOffset, b.byteLength);
    return utf8(b, this.view, this.valueStart, this.valueEnd);
  }

  /** Whether the key's bytes are `key` (UTF-8). */
  keyIs(key: Uint8Array): boolean {
    const len = this.keyEnd - this.keyStart;
    if (len !== key.length) return false;
    const b = this.buf;
    for (let i = 0; i < len; i++) if (b[this.keyStart + i] !== key[i]) return false;
    return true;
  }

  /** The value, decoded as the full decoder decodes it (any type; undefined when it has none). */
  value(): AnyValue {
    if (this.valueAt < 0) return undefined;
    this.readValue();
    if (this.valueTag === VALUE.STRING) return this.string();
    return decodeAnyValue(new ProtoReader(this.buf, this.valueAt), CHECKED, 1);
  }
}

const EMPTY = Buffer.alloc(0);

/** Where the last varint read ended (varint's second result). */
let varintEnd = 0;

/** The varint at `p` (of bytes known to be well formed), truncated to 32 bits as ProtoReader.uint32; sets varintEnd. */
function varint(b: Buffer, p: number): number {
  let byte = b[p++];
  if (byte < 0x80) {
    varintEnd = p;
    return byte;
  }
  let result = byte & 0x7f;
  let shift = 7;
  do {
    byte = b[p++];
    if (shift < 32) result |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte >= 0x80);
  varintEnd = p;
  return result >>> 0;
}

/** Where a field of `wireType` whose tag ends at `p` ends (bytes known to be well formed). */
function skipField(b: Buffer, p: number, wireType: number): number {
  switch (wireType) {
    case WireType.VARINT:
      while (b[p++] >= 0x80);
      return p;
    case WireType.I64:
      return p + 8;
    case WireType.LEN: {
      const n = varint(b, p);
      return varintEnd + n;
    }
    default:
      // I32: the skim refused every other wire type.
      return p + 4;
  }
}

/** Attribute keys to find with `firstValues`: encoded once, and indexed by their length. */
export class KeySet {
  readonly encoded: Uint8Array[];
  /** The indexes of the keys of each length in bytes (most lengths have none). */
  private readonly byLength = new Map<number, number[]>();

  constructor(readonly keys: readonly string[]) {
    this.encoded = keys.map((k) => Buffer.from(k, 'utf8'));
    this.encoded.forEach((bytes, i) => {
      const same = this.byLength.get(bytes.length);
      if (same) same.push(i);
      else this.byLength.set(bytes.length, [i]);
    });
  }

  /** The indexes of the keys `length` bytes long, if any. */
  ofLength(length: number): number[] | undefined {
    return this.byLength.get(length);
  }
}

/**
 * Puts into `into[i]` the value of the first attribute whose key is `keys.keys[i]` (undefined when
 * there is none), as attributeValue would find it in the decoded attributes, without decoding the others.
 * Call endLookups when done with the batch.
 */
export function firstValues(item: LazyAttributes, keys: KeySet, into: AnyValue[]): void {
  const n = keys.keys.length;
  if (n > SEEN.length) throw new Error(`firstValues: at most ${SEEN.length} keys`);
  into.fill(undefined);
  SEEN.fill(0, 0, n);
  const c = CURSOR;
  c.open(item);
  while (c.next()) {
    const candidates = keys.ofLength(c.keyEnd - c.keyStart);
    if (candidates === undefined) continue;
    for (const i of candidates) {
      if (SEEN[i] === 0 && c.keyIs(keys.encoded[i])) {
        SEEN[i] = 1;
        into[i] = c.value();
      }
    }
  }
}

/** Lets go of the request `firstValues` last read (call when done with a batch). */
export function endLookups(): void {
  CURSOR.close();
}

const SEEN = new Uint8Array(64);
const CURSOR = new AttributeCursor();

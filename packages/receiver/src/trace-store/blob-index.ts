/**
 * The writer's one pass over the requests that go into a blob: what the store indexes about them,
 * without building a row per span. Per blob: its spans' start-time extent and longest duration (a
 * search skips blobs outside its window or without a span long enough), the searchable values it
 * holds (postings: service, span name, status, indexed attributes), and per trace its time extent and
 * root span (trace by id finds the blobs through these, search results name the root from them).
 *
 * This is the hot path of the store, so it reads only the fields it needs and skips the rest by their
 * lengths: attribute keys are compared as bytes and only indexed ones decoded; times are read as two
 * 32-bit halves and compared as such (BigInt only for the few extremes kept).
 */
import { ProtoReader } from '../otlp/protobuf/reader';

/** Posting keys of the intrinsics (attribute keys are scoped: "span.x", "resource.x"). */
export const SERVICE_KEY = 'resource.service.name';
export const NAME_KEY = 'name';
export const STATUS_KEY = 'status';
export const STATUS_TEXT = ['0', '1', '2'];

/** A time in ns as its two 32-bit halves (exact, and compared without BigInt). */
interface Time {
  hi: number;
  lo: number;
}

export interface TraceEntry {
  /** 16 bytes (a view of the request body, which lives until the blob is written). */
  traceId: Uint8Array;
  start: Time;
  end: Time;
  rootService: string | null;
  rootName: string | null;
}

const FAR_FUTURE: Time = { hi: 0xffffffff, lo: 0xffffffff };

export class BlobIndex {
  spans = 0;
  minStart: Time = FAR_FUTURE;
  maxStart: Time = { hi: 0, lo: 0 };
  /** The longest span duration, in ns (exact below 2^53). */
  maxDuration = 0;
  /** By trace id (as latin1 text: cheap to make, one char per byte). */
  readonly traces = new Map<string, TraceEntry>();
  /** Searchable values by posting key (span names and statuses: see names, statuses). */
  readonly values = new Map<string, Set<string>>();
  /** Span names (NAME_KEY), kept apart: one set lookup per span instead of two. */
  readonly names = new Set<string>();
  /** Statuses 0-2 seen, as bits (STATUS_KEY). */
  statuses = 0;
  /** The value type of the attribute keys seen with a value that is not a string (Tempo's: int, float, bool). */
  readonly types = new Map<string, ValueType>();

  /** All searchable values by posting key, names and statuses included. */
  postings(): Map<string, Set<string>> {
    const all = new Map(this.values);
    if (this.names.size > 0) all.set(NAME_KEY, this.names);
    const statuses = new Set(this.values.get(STATUS_KEY));
    for (let s = 0; s < 3; s++) if (this.statuses & (1 << s)) statuses.add(STATUS_TEXT[s]);
    if (statuses.size > 0) all.set(STATUS_KEY, statuses);
    return all;
  }

  add(key: string, value: string): void {
    let set = this.values.get(key);
    if (!set) {
      set = new Set();
      this.values.set(key, set);
    }
    set.add(value);
  }
}

export function timeToBigInt(t: Time): bigint {
  return (BigInt(t.hi) << 32n) | BigInt(t.lo);
}

function before(a: Time, b: Time): boolean {
  return a.hi < b.hi || (a.hi === b.hi && a.lo < b.lo);
}

/** Wanted attribute keys as UTF-8 bytes, indexed by byte length. */
export type KeyTable = { bytes: Buffer; key: string; spanKey: string }[][];

export function keyTable(keys: Iterable<string>): KeyTable {
  const table: KeyTable = [];
  for (const key of keys) {
    const bytes = Buffer.from(key);
    const list = table[bytes.length] ?? [];
    list.push({ bytes, key, spanKey: `span.${key}` });
    table[bytes.length] = list;
  }
  return table;
}

const keyTables = new WeakMap<ReadonlySet<string>, KeyTable>();

/** keyTable of a set, made once per set. */
export function keyTableOf(keys: ReadonlySet<string>): KeyTable {
  let table = keyTables.get(keys);
  if (!table) {
    table = keyTable(keys);
    keyTables.set(keys, table);
  }
  return table;
}

/** The wanted key whose UTF-8 bytes are buf[start, end), if any (compared as bytes: nothing decoded). */
export function matchKey(
  keys: KeyTable,
  buf: Buffer,
  start: number,
  end: number,
): KeyTable[number][number] | undefined {
  const list = keys[end - start];
  if (list === undefined) return undefined;
  for (const k of list) {
    const bytes = k.bytes;
    let i = 0;
    while (i < bytes.length && bytes[i] === buf[start + i]) i++;
    if (i === bytes.length) return k;
  }
  return undefined;
}

/**
 * Indexes one ExportTraceServiceRequest into `into`. Throws MalformedPayloadError on bytes that are
 * not one (intake validated them, so only a bug or a torn buffer gets there).
 */
export function indexTraceRequest(buf: Buffer, keys: KeyTable, into: BlobIndex): void {
  const c = new ProtoReader(buf);
  const end = buf.length;
  while (c.pos < end) {
    const tag = c.uint32();
    if (tag === 0x0a) {
      const rsEnd = c.delimitedEnd();
      indexResourceSpans(c, rsEnd, keys, into);
      c.pos = rsEnd;
    } else c.skip(tag & 7);
  }
}

function indexResourceSpans(c: ProtoReader, end: number, keys: KeyTable, into: BlobIndex): void {
  const buf = c.buf;
  // The resource comes first in every SDK's encoding, but protobuf allows any order: find it first.
  let service = '';
  let scopesAt = -1;
  const resourceTags: [string, string][] = [];
  while (c.pos < end) {
    const at = c.pos;
    const tag = c.uint32();
    if (tag === 0x0a) {
      const resEnd = c.delimitedEnd();
      while (c.pos < resEnd) {
        const t = c.uint32();
        if (t === 0x0a) {
          const kvEnd = c.delimitedEnd();
          const found = readAttribute(c, kvEnd, undefined);
          c.pos = kvEnd;
          if (!found) continue;
          if (lastKey === 'service.name') service = lastValue;
          else if (wanted(keys, lastKey)) {
            resourceTags.push([`resource.${lastKey}`, lastValue]);
            if (lastType !== 'string') into.types.set(`resource.${lastKey}`, lastType);
          }
        } else c.skip(t & 7);
      }
      c.pos = resEnd;
    } else {
      if (tag === 0x12 && scopesAt < 0) scopesAt = at;
      c.skip(tag & 7);
    }
  }
  into.add(SERVICE_KEY, service);
  for (const [k, v] of resourceTags) into.add(k, v);
  if (scopesAt < 0) return;
  c.pos = scopesAt;
  let lastTrace: TraceEntry | undefined;
  let lastTraceAt = -1;
  const start: Time = { hi: 0, lo: 0 };
  const stop: Time = { hi: 0, lo: 0 };
  // The span's indexed attributes (key, value, key, value…), added once the span turns out to have a
  // trace id (as the scan).
  const tags: string[] = [];
  while (c.pos < end) {
    const tag = c.uint32();
    if (tag !== 0x12) {
      c.skip(tag & 7);
      continue;
    }
    const ssEnd = c.delimitedEnd();
    while (c.pos < ssEnd) {
      const t = c.uint32();
      if (t !== 0x12) {
        c.skip(t & 7);
        continue;
      }
      const spanEnd = c.delimitedEnd();
      // One span: trace id, parent, name, times, status, attributes.
      let traceAt = -1;
      let root = true;
      let name = '';
      let status = 0;
      start.hi = start.lo = stop.hi = stop.lo = 0;
      tags.length = 0;
      while (c.pos < spanEnd) {
        const f = c.uint32();
        switch (f) {
          case 0x0a: {
            const e = c.delimitedEnd();
            if (e - c.pos === 16) traceAt = c.pos;
            c.pos = e;
            break;
          }
          case 0x22: {
            const e = c.delimitedEnd();
            root = e === c.pos;
            c.pos = e;
            break;
          }
          case 0x2a:
            // Span names repeat: the reader's string cache returns the same string, nothing decoded.
            name = c.string();
            break;
          case 0x39:
            start.lo = c.fixed32();
            start.hi = c.fixed32();
            break;
          case 0x41:
            stop.lo = c.fixed32();
            stop.hi = c.fixed32();
            break;
          case 0x4a: {
            const kvEnd = c.delimitedEnd();
            if (readAttribute(c, kvEnd, keys)) {
              tags.push(lastKey, lastValue);
              if (lastType !== 'string') into.types.set(lastKey, lastType);
            }
            c.pos = kvEnd;
            break;
          }
          case 0x7a: {
            const sEnd = c.delimitedEnd();
            while (c.pos < sEnd) {
              const st = c.uint32();
              if (st === 0x18) status = c.uint32();
              else c.skip(st & 7);
            }
            c.pos = sEnd;
            break;
          }
          default:
            c.skip(f & 7);
        }
      }
      c.pos = spanEnd;
      if (traceAt < 0) continue; // no valid trace id: the scan skips it too
      into.spans++;
      into.names.add(name);
      for (let i = 0; i < tags.length; i += 2) into.add(tags[i], tags[i + 1]);
      if (status < 3) into.statuses |= 1 << status;
      else into.add(STATUS_KEY, String(status));
      if (before(start, into.minStart)) into.minStart = { hi: start.hi, lo: start.lo };
      if (before(into.maxStart, start)) into.maxStart = { hi: start.hi, lo: start.lo };
      const end = before(start, stop) ? stop : start;
      const duration = (end.hi - start.hi) * 4294967296 + (end.lo - start.lo);
      if (duration > into.maxDuration) into.maxDuration = duration;
      // The trace: spans of one trace often come one after another; compare with the last one's id.
      let entry = lastTrace;
      if (!entry || !sameId(buf, traceAt, lastTraceAt)) {
        const key = buf.latin1Slice(traceAt, traceAt + 16);
        entry = into.traces.get(key);
        if (!entry) {
          entry = {
            traceId: buf.subarray(traceAt, traceAt + 16),
            start: { hi: start.hi, lo: start.lo },
            end: { hi: end.hi, lo: end.lo },
            rootService: null,
            rootName: null,
          };
          into.traces.set(key, entry);
        }
        lastTrace = entry;
        lastTraceAt = traceAt;
      }
      if (before(start, entry.start)) entry.start = { hi: start.hi, lo: start.lo };
      if (before(entry.end, end)) entry.end = { hi: end.hi, lo: end.lo };
      if (root) {
        entry.rootService = service;
        entry.rootName = name;
      }
    }
    c.pos = ssEnd;
  }
}

function sameId(buf: Buffer, a: number, b: number): boolean {
  if (b < 0) return false;
  for (let i = 0; i < 16; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}

function wanted(keys: KeyTable, key: string): boolean {
  const list = keys[Buffer.byteLength(key)];
  return list?.some((k) => k.key === key) ?? false;
}

export type ValueType = 'string' | 'int' | 'float' | 'bool';

/** The key, value and value type readAttribute read last (variables, not an array: no allocation per attribute). */
let lastKey = '';
let lastValue = '';
let lastType: ValueType = 'string';

/**
 * Reads a KeyValue whose value is a string, int, double or bool into lastKey, lastValue (as text) and
 * lastType, and says so; false for other kinds and, when `keys` is given, for keys not in it (compared
 * as bytes: their value is not read), the key then scoped to the span ("span.x"). Strings come from
 * the reader's cache (keys and values repeat).
 */
function readAttribute(c: ProtoReader, end: number, keys: KeyTable | undefined): boolean {
  const buf = c.buf;
  let key: string | undefined;
  let value: string | undefined;
  while (c.pos < end) {
    const t = c.uint32();
    if (t === 0x0a) {
      if (keys) {
        const kEnd = c.delimitedEnd();
        key = matchKey(keys, buf, c.pos, kEnd)?.spanKey;
        if (key === undefined) return false;
        c.pos = kEnd;
      } else key = c.string();
    } else if (t === 0x12) {
      const vEnd = c.delimitedEnd();
      while (c.pos < vEnd) {
        const vt = c.uint32();
        switch (vt) {
          case 0x0a:
            value = c.string();
            lastType = 'string';
            break;
          case 0x10:
            value = c.uint32() !== 0 ? 'true' : 'false';
            lastType = 'bool';
            break;
          case 0x18: {
            // int64: up to 4 bytes is a small non-negative number (most are: status codes, sizes);
            // longer, read as the scan does (two's complement over 64 bits).
            const at = c.pos;
            const n = c.uint32();
            if (c.pos - at <= 4) value = String(n);
            else {
              c.pos = at;
              value = c.int64().toString();
            }
            lastType = 'int';
            break;
          }
          case 0x21:
            value = String(c.double());
            lastType = 'float';
            break;
          default:
            c.skip(vt & 7);
        }
      }
      c.pos = vEnd;
    } else c.skip(t & 7);
  }
  if (value === undefined || key === undefined || key === '') return false;
  lastKey = key;
  lastValue = value;
  return true;
}

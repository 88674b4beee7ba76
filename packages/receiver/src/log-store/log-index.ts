/**
 * The log store writer's index pass over a request (protobuf ExportLogsServiceRequest): per record,
 * its stream (the resource's stream labels, as `toLokiEntries` maps them), its time (time, else
 * observed time, else arrival), its line's size, its trace id and whether its body is a string, in
 * one pass over the bytes: resources are decoded (they are few), records are not (no model objects,
 * no structured metadata built). It also finds each record's `level` and `detected_level` labels
 * (what the log-volume query groups by): of a record's attributes, only those whose name may be a
 * level key are read. What it finds agrees with `toLokiEntries` on the same bytes
 * (test/log-store.test.ts checks it); the reads decode blobs fully.
 */

import type { KeyValue } from '../model/common';
import { DEFAULT_DECODE_LIMITS } from '../otlp/limits';
import { checkEnd, decodeKeyValue, decodeResource, decodeScope } from '../otlp/protobuf/decode-common';
import { ProtoReader, WireType } from '../otlp/protobuf/reader';
import { labelName, labelValue } from '../series/naming';
import { foldLevel, LEVEL_KEYS, levelOf, severityLevel, streamOf } from './loki-entry';
import { streamKey } from './matchers';

const LEN = WireType.LEN;
const I64 = WireType.I64;
const VARINT = WireType.VARINT;

/** Structured metadata names that decide `level` and `detected_level`. */
const LEVEL_NAMES = new Set([...LEVEL_KEYS, 'detected_level']);
/**
 * First bytes of the attribute keys that may be named one of LEVEL_NAMES: a key whose first byte is
 * a letter or digit keeps it in its label name, any other first byte becomes `_` (none starts so).
 */
const LEVEL_FIRST = new Set([...LEVEL_NAMES].map((n) => n.charCodeAt(0)));

/** The level names among attributes, as structured metadata gets them (a later attribute wins); undefined when none. */
function levelAttributes(
  attributes: readonly KeyValue[],
  into?: Record<string, string>,
): Record<string, string> | undefined {
  for (const kv of attributes) {
    const name = labelName(kv.key);
    if (!LEVEL_NAMES.has(name)) continue;
    into ??= {};
    into[name] = labelValue(kv.value);
  }
  return into;
}

/** What decides a resource's (and scope's) records' levels before their own attributes. */
interface LevelContext {
  /** The level the stream labels name (they come first), if any. */
  stream: string | undefined;
  /** Level names in the resource's and scope's metadata. */
  metadata: Record<string, string> | undefined;
}

export interface IndexedRecord {
  /** The stream's key (streamKey of its labels). */
  stream: string;
  /** The time in ns, as its high and low 32 bits (no BigInt per record: `indexedTime` makes one). */
  timeHi: number;
  timeLo: number;
  /** The line's UTF-8 bytes (a string body's; other bodies: their encoded size, an estimate). */
  lineBytes: number;
  /** Where in the body the record's 16-byte trace id starts; -1 when it has none. */
  traceAt: number;
  /** The body is a string (or absent): the line is its bytes, verbatim in the request. */
  plain: boolean;
  /** The `level` label (structured metadata), '' when the record has none. */
  level: string;
  /** The `detected_level` label. */
  detectedLevel: string;
}

/** A record's time in ns. */
export function indexedTime(r: Pick<IndexedRecord, 'timeHi' | 'timeLo'>): bigint {
  return (BigInt(r.timeHi) << 32n) | BigInt(r.timeLo);
}

/**
 * Calls `each` for every record of the request, in order, and returns their count; throws on a body
 * that does not read (after calling `each` for the records before). `each` gets the same object
 * every time, filled with the record's fields: read them in the call, do not keep it.
 */
export function indexLogsRequest(body: Buffer, receivedNs: bigint, each: (r: IndexedRecord) => void): number {
  const r = new ProtoReader(body);
  const received = { hi: Number(receivedNs >> 32n), lo: Number(receivedNs & 0xffffffffn) };
  let n = 0;
  while (r.pos < body.length) {
    const tag = r.uint32();
    if (tag !== ((1 << 3) | LEN)) {
      r.skip(tag & 7);
      continue;
    }
    const end = r.delimitedEnd();
    let stream = '';
    const scopes: { start: number; end: number }[] = [];
    let sawResource = false;
    let context: LevelContext = { stream: undefined, metadata: undefined };
    while (r.pos < end) {
      const t = r.uint32();
      if (t === ((1 << 3) | LEN)) {
        const { stream: labels, resourceMetadata } = streamOf(decodeResource(r, DEFAULT_DECODE_LIMITS).attributes);
        stream = streamKey(labels);
        context = { stream: levelOf(labels), metadata: pick(resourceMetadata) };
        sawResource = true;
      } else if (t === ((2 << 3) | LEN)) {
        // Scopes may come before the resource on the wire: read them once it is known.
        const e = r.delimitedEnd();
        scopes.push({ start: r.pos, end: e });
        r.pos = e;
      } else r.skip(t & 7);
    }
    checkEnd(r, end);
    if (!sawResource) stream = streamKey(streamOf([]).stream);
    for (const s of scopes) {
      // The scope (field 1) may come after its records on the wire: found first.
      let scoped = context;
      r.pos = s.start;
      while (r.pos < s.end) {
        const t = r.uint32();
        if (t === ((1 << 3) | LEN)) {
          const scope = decodeScope(r, DEFAULT_DECODE_LIMITS);
          if (scope.attributes.length > 0) {
            const metadata = levelAttributes(scope.attributes, context.metadata && { ...context.metadata });
            scoped = { stream: context.stream, metadata };
          }
        } else r.skip(t & 7);
      }
      r.pos = s.start;
      while (r.pos < s.end) {
        const t = r.uint32();
        if (t === ((2 << 3) | LEN)) {
          each(record(r, stream, received, scoped));
          n++;
        } else r.skip(t & 7);
      }
      checkEnd(r, s.end);
    }
    r.pos = end;
  }
  return n;
}

/** The level names of a resource's metadata, undefined when none. */
function pick(metadata: Record<string, string>): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const name in metadata) {
    if (!LEVEL_NAMES.has(name)) continue;
    out ??= {};
    out[name] = metadata[name];
  }
  return out;
}

function record(
  r: ProtoReader,
  stream: string,
  received: { hi: number; lo: number },
  context: LevelContext,
): IndexedRecord {
  const end = r.delimitedEnd();
  let timeHi = 0;
  let timeLo = 0;
  let observedHi = 0;
  let observedLo = 0;
  let lineBytes = 0;
  let plain = true;
  let traceAt = -1;
  let severityNumber = 0;
  let severityText = '';
  // The level names among the metadata: copied from the context's on the record's first one.
  let metadata = context.metadata;
  let own = false;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (2 << 3) | VARINT:
        severityNumber = r.uint32();
        break;
      case (3 << 3) | LEN:
        severityText = r.string();
        break;
      case (6 << 3) | LEN: {
        // An attribute: read only when its key may name a level (its first byte tells).
        const at = r.pos;
        const e = r.delimitedEnd();
        const first = firstKeyByte(r, e);
        if (first !== 0 && !LEVEL_FIRST.has(first)) {
          r.pos = e;
          break;
        }
        r.pos = at;
        const kv = decodeKeyValue(r, DEFAULT_DECODE_LIMITS);
        const name = labelName(kv.key);
        if (LEVEL_NAMES.has(name)) {
          if (!own) {
            metadata = { ...metadata };
            own = true;
          }
          (metadata as Record<string, string>)[name] = labelValue(kv.value);
        }
        break;
      }
      case (1 << 3) | I64:
        if (r.pos + 8 > r.buf.length) r.fixed64(); // throws: truncated
        timeLo = r.view.getUint32(r.pos, true);
        timeHi = r.view.getUint32(r.pos + 4, true);
        r.pos += 8;
        break;
      case (11 << 3) | I64:
        if (r.pos + 8 > r.buf.length) r.fixed64();
        observedLo = r.view.getUint32(r.pos, true);
        observedHi = r.view.getUint32(r.pos + 4, true);
        r.pos += 8;
        break;
      case (5 << 3) | LEN: {
        const e = r.delimitedEnd();
        // AnyValue: string_value is field 1; any other member makes a JSON (or number) line.
        plain = true;
        lineBytes = e - r.pos;
        if (r.pos < e) {
          const inner = r.uint32();
          if (inner === ((1 << 3) | LEN)) {
            const se = r.delimitedEnd();
            lineBytes = se - r.pos;
          } else plain = false;
        }
        r.pos = e;
        break;
      }
      case (9 << 3) | LEN: {
        const e = r.delimitedEnd();
        traceAt = e - r.pos === 16 ? r.pos : -1;
        r.pos = e;
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  let detectedLevel: string;
  if (metadata === undefined) {
    // No level name among the metadata but severity_text (the common case): no object built.
    detectedLevel = context.stream ?? (severityText ? foldLevel(severityText) : severityLevel(severityNumber));
  } else {
    if (severityText) {
      if (!own) metadata = { ...metadata };
      metadata.severity_text = severityText;
    }
    if (metadata.detected_level !== undefined) detectedLevel = metadata.detected_level;
    else detectedLevel = context.stream ?? levelOf(metadata) ?? severityLevel(severityNumber);
  }
  // The time, else the observed time, else the arrival.
  if (timeHi === 0 && timeLo === 0) {
    timeHi = observedHi;
    timeLo = observedLo;
    if (timeHi === 0 && timeLo === 0) {
      timeHi = received.hi;
      timeLo = received.lo;
    }
  }
  const out = scratch;
  out.stream = stream;
  out.timeHi = timeHi;
  out.timeLo = timeLo;
  out.lineBytes = lineBytes;
  out.traceAt = traceAt;
  out.plain = plain;
  out.level = metadata?.level ?? '';
  out.detectedLevel = detectedLevel;
  return out;
}

/** The record `each` gets, filled again for every record (no object per record). */
const scratch: IndexedRecord = {
  stream: '',
  timeHi: 0,
  timeLo: 0,
  lineBytes: 0,
  traceAt: -1,
  plain: true,
  level: '',
  detectedLevel: '',
};

/** The first byte of a KeyValue's key when the key comes first and is not empty (else 0: read it whole). */
function firstKeyByte(r: ProtoReader, end: number): number {
  // Tag 0x0a, then the key's length as a varint (one byte when below 128), then its bytes.
  const at = r.pos;
  if (at + 2 >= end || r.buf[at] !== ((1 << 3) | LEN)) return 0;
  const len = r.buf[at + 1];
  if (len === 0 || len >= 128) return 0;
  return r.buf[at + 2];
}

/** One ResourceLogs of a blob (or request): its bytes as a request of its own, its stream and record count. */
export interface RequestPart {
  /** From its tag to its end: decodes as an ExportLogsServiceRequest of this one ResourceLogs. */
  start: number;
  end: number;
  /** The stream's key (streamKey of its labels). */
  stream: string;
  records: number;
}

/**
 * The ResourceLogs of a request (or of a blob of requests, which concatenated are one request), in
 * order, without decoding their records: a read decodes only the parts it needs (their stream
 * matches, their bytes hold a line filter's substring or a trace id), and numbers entries across the
 * whole blob from the parts' record counts.
 */
export function requestParts(body: Buffer): RequestPart[] {
  const r = new ProtoReader(body);
  const out: RequestPart[] = [];
  while (r.pos < body.length) {
    const start = r.pos;
    const tag = r.uint32();
    if (tag !== ((1 << 3) | LEN)) {
      r.skip(tag & 7);
      continue;
    }
    const end = r.delimitedEnd();
    let labels: Record<string, string> | undefined;
    let records = 0;
    while (r.pos < end) {
      const t = r.uint32();
      if (t === ((1 << 3) | LEN)) {
        labels = streamOf(decodeResource(r, DEFAULT_DECODE_LIMITS).attributes).stream;
      } else if (t === ((2 << 3) | LEN)) {
        const e = r.delimitedEnd();
        while (r.pos < e) {
          const u = r.uint32();
          if (u === ((2 << 3) | LEN)) records++;
          r.skip(u & 7);
        }
        r.pos = e;
      } else r.skip(t & 7);
    }
    r.pos = end;
    out.push({ start, end, stream: streamKey(labels ?? streamOf([]).stream), records });
  }
  return out;
}

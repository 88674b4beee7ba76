/**
 * One pass over an `ExportTraceServiceRequest` (protobuf: a stored blob) that yields what the trace
 * store's reads need: a row per span (ids, name, kind, status, times, service, indexed attributes),
 * which a search checks against its query, and, per trace and resource, a chunk: an encoded
 * `ResourceSpans` holding that trace's spans, assembled from slices of the blob (no decode to the
 * model and no re-encode), which trace by id returns. Resource and scope bytes are copied into every
 * chunk that needs them, so a chunk is self-contained. (The writer's own pass is blob-index.ts.)
 */
import { ProtoReader, WireType } from '../otlp/protobuf/reader';
import { keyTableOf, matchKey } from './blob-index';

const LEN = WireType.LEN;

export interface SpanRow {
  /** 16 bytes. */
  traceId: Uint8Array;
  /** The same, as hex. */
  traceHex: string;
  /** 8 bytes (empty when absent). */
  spanId: Uint8Array;
  root: boolean;
  name: string;
  kind: number;
  /** 0 unset, 1 ok, 2 error. */
  status: number;
  startNs: bigint;
  durationNs: bigint;
  service: string;
  /** Indexed attributes present on the span or its resource: scoped key ("span.http.route", "resource.x") and value as text. */
  tags: [string, string][];
}

export interface Chunk {
  traceId: Uint8Array;
  startNs: bigint;
  endNs: bigint;
  /** An encoded ResourceSpans message (its fields, without the outer tag and length). */
  data: Buffer;
}

export interface ScanResult {
  spans: SpanRow[];
  chunks: Chunk[];
}

/** Which attribute keys are indexed, looked up on spans and on resources. */
export interface ScanOptions {
  indexedAttributes: ReadonlySet<string>;
  /** Build the per-trace chunks (default true; a search only needs the rows). */
  chunks?: boolean;
  /** Only this trace's chunks (hex): trace by id. */
  trace?: string;
}

interface PendingScope {
  /** The ScopeSpans' `scope` and `schema_url` fields, raw (tag included). */
  head: Buffer[];
  /** Spans (raw, tag included) by trace id (hex). */
  spans: Map<string, Buffer[]>;
}

interface TraceExtent {
  traceId: Uint8Array;
  startNs: bigint;
  endNs: bigint;
}

export function scanTraceRequest(buf: Buffer, options: ScanOptions): ScanResult {
  const out: ScanResult = { spans: [], chunks: [] };
  const r = new ProtoReader(buf);
  while (r.pos < buf.length) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | LEN)) {
      const end = r.delimitedEnd();
      scanResourceSpans(r, end, options, out);
      r.pos = end;
    } else r.skip(tag & 7);
  }
  return out;
}

function scanResourceSpans(r: ProtoReader, end: number, options: ScanOptions, out: ScanResult): void {
  const buf = r.buf;
  const head: Buffer[] = [];
  const scopes: PendingScope[] = [];
  let service = '';
  const resourceTags: [string, string][] = [];
  const firstSpan = out.spans.length;
  const extents = new Map<string, TraceExtent>();
  while (r.pos < end) {
    const start = r.pos;
    const tag = r.uint32();
    if (tag === ((1 << 3) | LEN)) {
      const resEnd = r.delimitedEnd();
      while (r.pos < resEnd) {
        const t = r.uint32();
        if (t === ((1 << 3) | LEN)) {
          const kvEnd = r.delimitedEnd();
          const kv = readStringAttribute(r, kvEnd);
          r.pos = kvEnd;
          if (!kv) continue;
          if (kv[0] === 'service.name') service = kv[1];
          if (options.indexedAttributes.has(kv[0])) resourceTags.push([`resource.${kv[0]}`, kv[1]]);
        } else r.skip(t & 7);
      }
      r.pos = resEnd;
      head.push(buf.subarray(start, resEnd));
    } else if (tag === ((2 << 3) | LEN)) {
      const ssEnd = r.delimitedEnd();
      const scope: PendingScope = { head: [], spans: new Map() };
      while (r.pos < ssEnd) {
        const fieldStart = r.pos;
        const t = r.uint32();
        if (t === ((2 << 3) | LEN)) {
          const spanEnd = r.delimitedEnd();
          const row = scanSpan(r, spanEnd, options);
          r.pos = spanEnd;
          if (row.traceId.length !== 16) continue;
          const hex = row.traceHex;
          let list = scope.spans.get(hex);
          if (!list) {
            list = [];
            scope.spans.set(hex, list);
          }
          list.push(buf.subarray(fieldStart, spanEnd));
          out.spans.push(row);
          const endNs = row.startNs + row.durationNs;
          const ext = extents.get(hex);
          if (!ext) extents.set(hex, { traceId: row.traceId, startNs: row.startNs, endNs });
          else {
            if (row.startNs < ext.startNs) ext.startNs = row.startNs;
            if (endNs > ext.endNs) ext.endNs = endNs;
          }
        } else {
          r.skip(t & 7);
          scope.head.push(buf.subarray(fieldStart, r.pos));
        }
      }
      r.pos = ssEnd;
      scopes.push(scope);
    } else {
      r.skip(tag & 7);
      head.push(buf.subarray(start, r.pos));
    }
  }
  for (let i = firstSpan; i < out.spans.length; i++) {
    const row = out.spans[i];
    row.service = service;
    if (resourceTags.length > 0) row.tags.push(...resourceTags);
  }
  if (options.chunks === false) return;
  for (const [hex, ext] of extents) {
    if (options.trace !== undefined && hex !== options.trace) continue;
    const parts: Buffer[] = [...head];
    for (const scope of scopes) {
      const spans = scope.spans.get(hex);
      if (!spans) continue;
      let len = 0;
      for (const b of scope.head) len += b.length;
      for (const b of spans) len += b.length;
      parts.push(lengthPrefix(2, len), ...scope.head, ...spans);
    }
    out.chunks.push({ traceId: ext.traceId, startNs: ext.startNs, endNs: ext.endNs, data: Buffer.concat(parts) });
  }
}

function scanSpan(r: ProtoReader, end: number, options: ScanOptions): SpanRow {
  const buf = r.buf;
  const row: SpanRow = {
    traceId: EMPTY,
    traceHex: '',
    spanId: EMPTY,
    root: true,
    name: '',
    kind: 0,
    status: 0,
    startNs: 0n,
    durationNs: 0n,
    service: '',
    tags: [],
  };
  let endNs = 0n;
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case (1 << 3) | LEN: {
        row.traceHex = r.id(16, 'traceId');
        row.traceId = buf.subarray(r.pos - row.traceHex.length / 2, r.pos);
        break;
      }
      case (2 << 3) | LEN: {
        const e = r.delimitedEnd();
        row.spanId = buf.subarray(r.pos, e);
        r.pos = e;
        break;
      }
      case (4 << 3) | LEN: {
        const e = r.delimitedEnd();
        row.root = e === r.pos;
        r.pos = e;
        break;
      }
      case (5 << 3) | LEN:
        row.name = r.string();
        break;
      case (6 << 3) | WireType.VARINT:
        row.kind = r.uint32();
        break;
      case (7 << 3) | WireType.I64:
        row.startNs = r.fixed64();
        break;
      case (8 << 3) | WireType.I64:
        endNs = r.fixed64();
        break;
      case (9 << 3) | LEN: {
        const kvEnd = r.delimitedEnd();
        if (options.indexedAttributes.size > 0) {
          const kv = readStringAttribute(r, kvEnd, options.indexedAttributes);
          if (kv) row.tags.push([`span.${kv[0]}`, kv[1]]);
        }
        r.pos = kvEnd;
        break;
      }
      case (15 << 3) | LEN: {
        const sEnd = r.delimitedEnd();
        while (r.pos < sEnd) {
          const st = r.uint32();
          if (st === ((3 << 3) | WireType.VARINT)) row.status = r.uint32();
          else r.skip(st & 7);
        }
        r.pos = sEnd;
        break;
      }
      default:
        r.skip(t & 7);
    }
  }
  row.durationNs = endNs > row.startNs ? endNs - row.startNs : 0n;
  return row;
}

/**
 * A KeyValue whose value is a string, int, double or bool, as [key, text]; undefined for other kinds,
 * and, when `wanted` is given, for keys not in it (their value is not read).
 */
function readStringAttribute(r: ProtoReader, end: number, wanted?: ReadonlySet<string>): [string, string] | undefined {
  let key = '';
  let value: string | undefined;
  while (r.pos < end) {
    const t = r.uint32();
    if (t === ((1 << 3) | LEN)) {
      if (wanted) {
        // Compared as bytes: most attributes are not indexed, and their keys are not decoded.
        const kEnd = r.delimitedEnd();
        const match = matchKey(keyTableOf(wanted), r.buf, r.pos, kEnd)?.key;
        r.pos = kEnd;
        if (match === undefined) return undefined;
        key = match;
      } else key = r.string();
    } else if (t === ((2 << 3) | LEN)) {
      const vEnd = r.delimitedEnd();
      while (r.pos < vEnd) {
        const vt = r.uint32();
        switch (vt) {
          case (1 << 3) | LEN:
            value = r.string();
            break;
          case (2 << 3) | WireType.VARINT:
            value = r.uint32() !== 0 ? 'true' : 'false';
            break;
          case (3 << 3) | WireType.VARINT:
            value = r.int64().toString();
            break;
          case (4 << 3) | WireType.I64:
            value = String(r.double());
            break;
          default:
            r.skip(vt & 7);
        }
      }
      r.pos = vEnd;
    } else r.skip(t & 7);
  }
  return value === undefined || key === '' ? undefined : [key, value];
}

const EMPTY = new Uint8Array(0);

/** The tag and length of a length-delimited field. */
function lengthPrefix(field: number, len: number): Buffer {
  const bytes = [(field << 3) | LEN];
  let n = len;
  while (n >= 0x80) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

export { lengthPrefix };

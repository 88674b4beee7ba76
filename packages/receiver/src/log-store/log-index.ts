/**
 * The log store writer's index pass over a request (protobuf ExportLogsServiceRequest): per record,
 * its stream (the resource's stream labels, as `toLokiEntries` maps them), its time (time, else
 * observed time, else arrival), its line's size, its trace id and whether its body is a string, in
 * one pass over the bytes: resources are decoded (they are few), records are not (no model objects,
 * no structured metadata built). What it finds agrees with `toLokiEntries` on the same bytes
 * (test/log-store.test.ts checks it); the reads decode blobs fully.
 */
import { DEFAULT_DECODE_LIMITS } from '../otlp/limits';
import { checkEnd, decodeResource } from '../otlp/protobuf/decode-common';
import { ProtoReader, WireType } from '../otlp/protobuf/reader';
import { streamOf } from './loki-entry';
import { streamKey } from './matchers';

const LEN = WireType.LEN;
const I64 = WireType.I64;

export interface IndexedRecord {
  /** The stream's key (streamKey of its labels). */
  stream: string;
  timeNs: bigint;
  /** The line's UTF-8 bytes (a string body's; other bodies: their encoded size, an estimate). */
  lineBytes: number;
  /** The 16-byte trace id (a view into the body), if the record has one. */
  traceId: Buffer | undefined;
  /** The body is a string (or absent): the line is its bytes, verbatim in the request. */
  plain: boolean;
}

/** Calls `each` for every record of the request, in order; throws on a body that does not read. */
export function indexLogsRequest(body: Buffer, receivedNs: bigint, each: (r: IndexedRecord) => void): number {
  const r = new ProtoReader(body);
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
    while (r.pos < end) {
      const t = r.uint32();
      if (t === ((1 << 3) | LEN)) {
        const { stream: labels } = streamOf(decodeResource(r, DEFAULT_DECODE_LIMITS).attributes);
        stream = streamKey(labels);
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
      r.pos = s.start;
      while (r.pos < s.end) {
        const t = r.uint32();
        if (t === ((2 << 3) | LEN)) {
          each(record(r, stream, receivedNs));
          n++;
        } else r.skip(t & 7);
      }
      checkEnd(r, s.end);
    }
    r.pos = end;
  }
  return n;
}

function record(r: ProtoReader, stream: string, receivedNs: bigint): IndexedRecord {
  const end = r.delimitedEnd();
  let time = 0n;
  let observed = 0n;
  let lineBytes = 0;
  let plain = true;
  let traceId: Buffer | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | I64:
        time = r.fixed64();
        break;
      case (11 << 3) | I64:
        observed = r.fixed64();
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
        traceId = e - r.pos === 16 ? r.buf.subarray(r.pos, e) : undefined;
        r.pos = e;
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { stream, timeNs: time || observed || receivedNs, lineBytes, traceId, plain };
}

/**
 * Protobuf decoding of `ExportLogsServiceRequest` (opentelemetry-proto logs.proto, v1) into the model.
 */
import {
  type AnyValue,
  emptyResource,
  emptyScope,
  type InstrumentationScope,
  type KeyValue,
  type LogRecord,
  type Resource,
  type ResourceLogs,
  type ScopeLogs,
} from '../../model';
import { type DecodeLimits, type DecodeStats, STRUCTURES } from '../limits';
import { atPath, checkEnd, decodeAnyValue, decodeAttributeInto, decodeResource, decodeScope } from './decode-common';
import { ProtoReader, WireType } from './reader';

const LEN = WireType.LEN;
const VARINT = WireType.VARINT;
const I64 = WireType.I64;
const I32 = WireType.I32;

/** Decodes a request body; `stats`, when given, receives what the decoder saw (see DecodeStats). */
export function decodeLogsRequest(buf: Buffer, limits: DecodeLimits, stats?: DecodeStats): ResourceLogs[] {
  const r = new ProtoReader(buf);
  r.limitStructures(limits.maxDecodedStructures);
  const out: ResourceLogs[] = [];
  while (r.pos < buf.length) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | LEN)) {
      try {
        out.push(decodeResourceLogs(r, limits));
      } catch (err) {
        throw atPath(err, `resourceLogs[${out.length}]`);
      }
    } else r.skip(tag & 7);
  }
  if (stats) {
    stats.longestString = r.longestString;
    stats.mostAttributes = r.mostAttributes;
    stats.structures = r.structures;
  }
  return out;
}

function decodeResourceLogs(r: ProtoReader, limits: DecodeLimits): ResourceLogs {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.resource);
  let resource: Resource | undefined;
  const scopeLogs: ScopeLogs[] = [];
  let schemaUrl = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        try {
          resource = decodeResource(r, limits);
        } catch (err) {
          throw atPath(err, 'resource');
        }
        break;
      case (2 << 3) | LEN:
        try {
          scopeLogs.push(decodeScopeLogs(r, limits));
        } catch (err) {
          throw atPath(err, `scopeLogs[${scopeLogs.length}]`);
        }
        break;
      case (3 << 3) | LEN:
        schemaUrl = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { resource: resource ?? emptyResource(), scopeLogs, schemaUrl };
}

function decodeScopeLogs(r: ProtoReader, limits: DecodeLimits): ScopeLogs {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.scope);
  let scope: InstrumentationScope | undefined;
  const logRecords: LogRecord[] = [];
  let schemaUrl = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        try {
          scope = decodeScope(r, limits);
        } catch (err) {
          throw atPath(err, 'scope');
        }
        break;
      case (2 << 3) | LEN:
        try {
          logRecords.push(decodeLogRecord(r, limits, r.pos - 1));
        } catch (err) {
          throw atPath(err, `logRecords[${logRecords.length}]`);
        }
        break;
      case (3 << 3) | LEN:
        schemaUrl = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { scope: scope ?? emptyScope(), logRecords, schemaUrl };
}

/** Decodes a log record whose field starts at `at` (the tag, one byte, before the reader's position). */
function decodeLogRecord(r: ProtoReader, limits: DecodeLimits, at: number): LogRecord {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.logRecord);
  let timeUnixNano = 0n;
  let observedTimeUnixNano = 0n;
  let severityNumber = 0;
  let severityText = '';
  let body: AnyValue;
  const attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  let flags = 0;
  let traceId = '';
  let spanId = '';
  let eventName = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | I64:
        timeUnixNano = r.fixed64();
        break;
      case (2 << 3) | VARINT:
        severityNumber = r.int32();
        break;
      case (3 << 3) | LEN:
        severityText = r.string();
        break;
      case (5 << 3) | LEN:
        try {
          body = decodeAnyValue(r, limits, 1);
        } catch (err) {
          throw atPath(err, 'body');
        }
        break;
      case (6 << 3) | LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (7 << 3) | VARINT:
        droppedAttributesCount = r.uint32();
        break;
      case (8 << 3) | I32:
        flags = r.fixed32();
        break;
      case (9 << 3) | LEN:
        traceId = r.id(16, 'traceId');
        break;
      case (10 << 3) | LEN:
        spanId = r.id(8, 'spanId');
        break;
      case (11 << 3) | I64:
        observedTimeUnixNano = r.fixed64();
        break;
      case (12 << 3) | LEN:
        eventName = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return {
    timeUnixNano,
    observedTimeUnixNano,
    severityNumber,
    severityText,
    body,
    attributes,
    droppedAttributesCount,
    flags,
    traceId,
    spanId,
    eventName,
    at,
  };
}

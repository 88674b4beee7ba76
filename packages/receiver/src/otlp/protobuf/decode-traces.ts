/**
 * Protobuf decoding of `ExportTraceServiceRequest` (opentelemetry-proto trace.proto, v1) into the model.
 */
import {
  emptyResource,
  emptyScope,
  type InstrumentationScope,
  type KeyValue,
  type Resource,
  type ResourceSpans,
  type ScopeSpans,
  type Span,
  type SpanEvent,
  type SpanLink,
  type SpanStatus,
} from '../../model';
import { type DecodeLimits, type DecodeStats, STRUCTURES } from '../limits';
import { atPath, checkEnd, decodeAttributeInto, decodeResource, decodeScope } from './decode-common';
import { EVENT_ATTRIBUTES, LeanEvent, LeanSpan, NO_STATUS, SPAN_ATTRIBUTES, skimKeyValue } from './lean';
import { ProtoReader, WireType } from './reader';

const LEN = WireType.LEN;
const VARINT = WireType.VARINT;
const I64 = WireType.I64;
const I32 = WireType.I32;

/**
 * Decodes a request body into the full model; `stats`, when given, receives what the decoder saw
 * (see DecodeStats).
 */
export function decodeTraceRequest(buf: Buffer, limits: DecodeLimits, stats?: DecodeStats): ResourceSpans[] {
  return decode(buf, limits, stats, false);
}

/**
 * Decodes a request body as decodeTraceRequest does, except that the attributes of spans and span
 * events stay bytes until read (lean.ts): the same model for every reader, made only as far as it is
 * read. A malformed request is refused with decodeTraceRequest's error.
 */
export function decodeTraceRequestLean(buf: Buffer, limits: DecodeLimits, stats?: DecodeStats): ResourceSpans[] {
  try {
    return decode(buf, limits, stats, true);
  } catch {
    // The error, with its path, as the full decoder gives it.
    return decode(buf, limits, stats, false);
  }
}

function decode(buf: Buffer, limits: DecodeLimits, stats: DecodeStats | undefined, lean: boolean): ResourceSpans[] {
  const r = new ProtoReader(buf);
  r.limitStructures(limits.maxDecodedStructures);
  const out: ResourceSpans[] = [];
  while (r.pos < buf.length) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | LEN)) {
      try {
        out.push(decodeResourceSpans(r, limits, lean));
      } catch (err) {
        throw atPath(err, `resourceSpans[${out.length}]`);
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

function decodeResourceSpans(r: ProtoReader, limits: DecodeLimits, lean: boolean): ResourceSpans {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.resource);
  let resource: Resource | undefined;
  const scopeSpans: ScopeSpans[] = [];
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
          scopeSpans.push(decodeScopeSpans(r, limits, lean));
        } catch (err) {
          throw atPath(err, `scopeSpans[${scopeSpans.length}]`);
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
  return { resource: resource ?? emptyResource(), scopeSpans, schemaUrl };
}

function decodeScopeSpans(r: ProtoReader, limits: DecodeLimits, lean: boolean): ScopeSpans {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.scope);
  let scope: InstrumentationScope | undefined;
  const spans: Span[] = [];
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
          spans.push(lean ? decodeLeanSpan(r, limits, r.pos - 1) : decodeSpan(r, limits, r.pos - 1));
        } catch (err) {
          throw atPath(err, `spans[${spans.length}]`);
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
  return { scope: scope ?? emptyScope(), spans, schemaUrl };
}

/** Decodes a span whose field starts at `at` (the tag, one byte, before the reader's position). */
function decodeSpan(r: ProtoReader, limits: DecodeLimits, at: number): Span {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.span);
  let traceId = '';
  let spanId = '';
  let traceState = '';
  let parentSpanId = '';
  let flags = 0;
  let name = '';
  let kind = 0;
  let startTimeUnixNano = 0n;
  let endTimeUnixNano = 0n;
  const attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  const events: SpanEvent[] = [];
  let droppedEventsCount = 0;
  const links: SpanLink[] = [];
  let droppedLinksCount = 0;
  let status: SpanStatus | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        traceId = r.id(16, 'traceId');
        break;
      case (2 << 3) | LEN:
        spanId = r.id(8, 'spanId');
        break;
      case (3 << 3) | LEN:
        traceState = r.string();
        break;
      case (4 << 3) | LEN:
        parentSpanId = r.id(8, 'parentSpanId');
        break;
      case (5 << 3) | LEN:
        name = r.string();
        break;
      case (6 << 3) | VARINT:
        kind = r.int32();
        break;
      case (7 << 3) | I64:
        startTimeUnixNano = r.fixed64();
        break;
      case (8 << 3) | I64:
        endTimeUnixNano = r.fixed64();
        break;
      case (9 << 3) | LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (10 << 3) | VARINT:
        droppedAttributesCount = r.uint32();
        break;
      case (11 << 3) | LEN:
        try {
          events.push(decodeEvent(r, limits));
        } catch (err) {
          throw atPath(err, `events[${events.length}]`);
        }
        break;
      case (12 << 3) | VARINT:
        droppedEventsCount = r.uint32();
        break;
      case (13 << 3) | LEN:
        try {
          links.push(decodeLink(r, limits));
        } catch (err) {
          throw atPath(err, `links[${links.length}]`);
        }
        break;
      case (14 << 3) | VARINT:
        droppedLinksCount = r.uint32();
        break;
      case (15 << 3) | LEN:
        status = decodeStatus(r);
        break;
      case (16 << 3) | I32:
        flags = r.fixed32();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return {
    traceId,
    spanId,
    traceState,
    parentSpanId,
    flags,
    name,
    kind,
    startTimeUnixNano,
    endTimeUnixNano,
    attributes,
    droppedAttributesCount,
    events,
    droppedEventsCount,
    links,
    droppedLinksCount,
    status: status ?? NO_STATUS,
    at,
  };
}

function decodeEvent(r: ProtoReader, limits: DecodeLimits): SpanEvent {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.eventOrLink);
  let timeUnixNano = 0n;
  let name = '';
  const attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | I64:
        timeUnixNano = r.fixed64();
        break;
      case (2 << 3) | LEN:
        name = r.string();
        break;
      case (3 << 3) | LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (4 << 3) | VARINT:
        droppedAttributesCount = r.uint32();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { timeUnixNano, name, attributes, droppedAttributesCount };
}

function decodeLink(r: ProtoReader, limits: DecodeLimits): SpanLink {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.eventOrLink);
  let traceId = '';
  let spanId = '';
  let traceState = '';
  const attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  let flags = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        traceId = r.id(16, 'traceId');
        break;
      case (2 << 3) | LEN:
        spanId = r.id(8, 'spanId');
        break;
      case (3 << 3) | LEN:
        traceState = r.string();
        break;
      case (4 << 3) | LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (5 << 3) | VARINT:
        droppedAttributesCount = r.uint32();
        break;
      case (6 << 3) | I32:
        flags = r.fixed32();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { traceId, spanId, traceState, attributes, droppedAttributesCount, flags };
}

function decodeStatus(r: ProtoReader): SpanStatus {
  const end = r.delimitedEnd();
  let message = '';
  let code = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((2 << 3) | LEN)) message = r.string();
    else if (tag === ((3 << 3) | VARINT)) code = r.int32();
    else r.skip(tag & 7);
  }
  checkEnd(r, end);
  return { message, code };
}

/**
 * decodeSpan's lean twin (lean.ts): the same fields, except that the attributes of the span and its
 * events are skimmed, not decoded. Errors need no path here: decodeTraceRequestLean decodes the
 * request again in full for it.
 */
function decodeLeanSpan(r: ProtoReader, limits: DecodeLimits, at: number): Span {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.span);
  const span = new LeanSpan(r.buf);
  span.at = at;
  let attributes = 0;
  while (r.pos < end) {
    const fieldAt = r.pos;
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        span.traceId = r.id(16, 'traceId');
        break;
      case (2 << 3) | LEN:
        span.spanId = r.id(8, 'spanId');
        break;
      case (3 << 3) | LEN:
        span.traceState = r.string();
        break;
      case (4 << 3) | LEN:
        span.parentSpanId = r.id(8, 'parentSpanId');
        break;
      case (5 << 3) | LEN:
        span.name = r.string();
        break;
      case (6 << 3) | VARINT:
        span.kind = r.int32();
        break;
      case (7 << 3) | I64:
        span.startTimeUnixNano = r.fixed64();
        break;
      case (8 << 3) | I64:
        span.endTimeUnixNano = r.fixed64();
        break;
      case SPAN_ATTRIBUTES:
        if (attributes++ === 0) span.attrFrom = fieldAt;
        skimKeyValue(r, limits, 1);
        span.attrTo = r.pos;
        break;
      case (10 << 3) | VARINT:
        span.droppedAttributesCount = r.uint32();
        break;
      case (11 << 3) | LEN:
        span.events.push(decodeLeanEvent(r, limits));
        break;
      case (12 << 3) | VARINT:
        span.droppedEventsCount = r.uint32();
        break;
      case (13 << 3) | LEN:
        span.links.push(decodeLink(r, limits));
        break;
      case (14 << 3) | VARINT:
        span.droppedLinksCount = r.uint32();
        break;
      case (15 << 3) | LEN:
        span.status = decodeStatus(r);
        break;
      case (16 << 3) | I32:
        span.flags = r.fixed32();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  if (attributes > r.mostAttributes) r.mostAttributes = attributes;
  return span;
}

function decodeLeanEvent(r: ProtoReader, limits: DecodeLimits): SpanEvent {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.eventOrLink);
  const event = new LeanEvent(r.buf);
  let attributes = 0;
  while (r.pos < end) {
    const fieldAt = r.pos;
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | I64:
        event.timeUnixNano = r.fixed64();
        break;
      case (2 << 3) | LEN:
        event.name = r.string();
        break;
      case EVENT_ATTRIBUTES:
        if (attributes++ === 0) event.attrFrom = fieldAt;
        skimKeyValue(r, limits, 1);
        event.attrTo = r.pos;
        break;
      case (4 << 3) | VARINT:
        event.droppedAttributesCount = r.uint32();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  if (attributes > r.mostAttributes) r.mostAttributes = attributes;
  return event;
}

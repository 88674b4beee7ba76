/**
 * OTLP/JSON decoding of `ExportTraceServiceRequest` (opentelemetry-proto trace.proto, v1) into the model.
 */
import type { ResourceSpans, ScopeSpans, Span, SpanEvent, SpanLink, SpanStatus } from '../../model';
import { STRUCTURES } from '../limits';
import {
  at,
  enumNames,
  itemObject,
  optionalObject,
  readAttributes,
  readEnum,
  readList,
  readResource,
  readScope,
  readSpanId,
  readString,
  readTimestamp,
  readTraceId,
  readUint32,
  take,
} from './decode-common';

const SPAN_KIND_NAMES = enumNames('SPAN_KIND_', [
  'UNSPECIFIED',
  'INTERNAL',
  'SERVER',
  'CLIENT',
  'PRODUCER',
  'CONSUMER',
]);

const STATUS_CODE_NAMES = enumNames('STATUS_CODE_', ['UNSET', 'OK', 'ERROR']);

export function readResourceSpans(item: unknown, maxDepth: number): ResourceSpans {
  take(STRUCTURES.resource);
  const o = itemObject(item);
  return {
    resource: readResource(o.resource, maxDepth),
    scopeSpans:
      o.scopeSpans == null && o.instrumentationLibrarySpans != null
        ? readList(o.instrumentationLibrarySpans, 'instrumentationLibrarySpans', maxDepth, readScopeSpans)
        : readList(o.scopeSpans, 'scopeSpans', maxDepth, readScopeSpans),
    schemaUrl: readString(o.schemaUrl, 'schemaUrl'),
  };
}

function readScopeSpans(item: unknown, maxDepth: number): ScopeSpans {
  take(STRUCTURES.scope);
  const o = itemObject(item);
  return {
    scope: readScope(o.scope ?? o.instrumentationLibrary, maxDepth),
    spans: readList(o.spans, 'spans', maxDepth, readSpan),
    schemaUrl: readString(o.schemaUrl, 'schemaUrl'),
  };
}

function readSpan(item: unknown, maxDepth: number): Span {
  take(STRUCTURES.span);
  const o = itemObject(item);
  return {
    traceId: readTraceId(o.traceId, 'traceId'),
    spanId: readSpanId(o.spanId, 'spanId'),
    traceState: readString(o.traceState, 'traceState'),
    parentSpanId: readSpanId(o.parentSpanId, 'parentSpanId'),
    flags: readUint32(o.flags, 'flags'),
    name: readString(o.name, 'name'),
    kind: readEnum(o.kind, 'kind', SPAN_KIND_NAMES),
    startTimeUnixNano: readTimestamp(o.startTimeUnixNano, 'startTimeUnixNano'),
    endTimeUnixNano: readTimestamp(o.endTimeUnixNano, 'endTimeUnixNano'),
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
    events: readList(o.events, 'events', maxDepth, readSpanEvent),
    droppedEventsCount: readUint32(o.droppedEventsCount, 'droppedEventsCount'),
    links: readList(o.links, 'links', maxDepth, readSpanLink),
    droppedLinksCount: readUint32(o.droppedLinksCount, 'droppedLinksCount'),
    status: readStatus(o.status),
  };
}

function readSpanEvent(item: unknown, maxDepth: number): SpanEvent {
  take(STRUCTURES.eventOrLink);
  const o = itemObject(item);
  return {
    timeUnixNano: readTimestamp(o.timeUnixNano, 'timeUnixNano'),
    name: readString(o.name, 'name'),
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
  };
}

function readSpanLink(item: unknown, maxDepth: number): SpanLink {
  take(STRUCTURES.eventOrLink);
  const o = itemObject(item);
  return {
    traceId: readTraceId(o.traceId, 'traceId'),
    spanId: readSpanId(o.spanId, 'spanId'),
    traceState: readString(o.traceState, 'traceState'),
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
    flags: readUint32(o.flags, 'flags'),
  };
}

function readStatus(value: unknown): SpanStatus {
  try {
    const o = optionalObject(value);
    if (o === undefined) return { message: '', code: 0 };
    return {
      message: readString(o.message, 'message'),
      code: readEnum(o.code, 'code', STATUS_CODE_NAMES),
    };
  } catch (e) {
    throw at(e, 'status');
  }
}

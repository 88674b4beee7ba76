/**
 * OTLP/JSON encoding of trace data (opentelemetry-proto trace.proto, v1).
 */
import type { ResourceSpans, ScopeSpans, Span, SpanEvent, SpanLink } from '../../model';
import {
  type JsonObject,
  putAttributes,
  putInt64,
  putInteger,
  putList,
  putResource,
  putScope,
  putString,
} from './encode-common';

export function encodeResourceSpans(rs: ResourceSpans): JsonObject {
  const json: JsonObject = {};
  putResource(json, rs.resource);
  putList(json, 'scopeSpans', rs.scopeSpans, encodeScopeSpans);
  putString(json, 'schemaUrl', rs.schemaUrl);
  return json;
}

function encodeScopeSpans(ss: ScopeSpans): JsonObject {
  const json: JsonObject = {};
  putScope(json, ss.scope);
  putList(json, 'spans', ss.spans, encodeSpan);
  putString(json, 'schemaUrl', ss.schemaUrl);
  return json;
}

function encodeSpan(span: Span): JsonObject {
  const json: JsonObject = {};
  putString(json, 'traceId', span.traceId);
  putString(json, 'spanId', span.spanId);
  putString(json, 'traceState', span.traceState);
  putString(json, 'parentSpanId', span.parentSpanId);
  putInteger(json, 'flags', span.flags);
  putString(json, 'name', span.name);
  putInteger(json, 'kind', span.kind);
  putInt64(json, 'startTimeUnixNano', span.startTimeUnixNano);
  putInt64(json, 'endTimeUnixNano', span.endTimeUnixNano);
  putAttributes(json, 'attributes', span.attributes);
  putInteger(json, 'droppedAttributesCount', span.droppedAttributesCount);
  putList(json, 'events', span.events, encodeSpanEvent);
  putInteger(json, 'droppedEventsCount', span.droppedEventsCount);
  putList(json, 'links', span.links, encodeSpanLink);
  putInteger(json, 'droppedLinksCount', span.droppedLinksCount);
  const status: JsonObject = {};
  putString(status, 'message', span.status.message);
  putInteger(status, 'code', span.status.code);
  if (Object.keys(status).length > 0) json.status = status;
  return json;
}

function encodeSpanEvent(event: SpanEvent): JsonObject {
  const json: JsonObject = {};
  putInt64(json, 'timeUnixNano', event.timeUnixNano);
  putString(json, 'name', event.name);
  putAttributes(json, 'attributes', event.attributes);
  putInteger(json, 'droppedAttributesCount', event.droppedAttributesCount);
  return json;
}

function encodeSpanLink(link: SpanLink): JsonObject {
  const json: JsonObject = {};
  putString(json, 'traceId', link.traceId);
  putString(json, 'spanId', link.spanId);
  putString(json, 'traceState', link.traceState);
  putAttributes(json, 'attributes', link.attributes);
  putInteger(json, 'droppedAttributesCount', link.droppedAttributesCount);
  putInteger(json, 'flags', link.flags);
  return json;
}

/**
 * Protobuf encoding of the model into `ExportTraceServiceRequest` (opentelemetry-proto trace.proto,
 * common.proto, resource.proto, v1): the mirror image of decode-traces.ts / decode-common.ts.
 *
 * Lossless for everything the decoder keeps. Proto3 zero values are omitted (empty strings, 0
 * counts, 0 timestamps, empty ids), except inside an AnyValue, whose set field is always written
 * so that `false`, `0`, `""` and an empty array keep their kind.
 */
import {
  type AnyValue,
  type InstrumentationScope,
  type KeyValue,
  KeyValueList,
  type Resource,
  type ResourceSpans,
  type ScopeSpans,
  type Span,
  type SpanEvent,
  type SpanLink,
} from '../../model';
import { attributesInBytes, writeAttributeBytes } from './lean';
import { ProtoWriter } from './writer';

/** Encodes `data` as an ExportTraceServiceRequest. */
export function encodeTraceRequest(data: readonly ResourceSpans[]): Buffer {
  const w = new ProtoWriter(4096);
  for (const rs of data) w.message(1, (m) => writeResourceSpans(m, rs));
  return w.finish();
}

function writeResourceSpans(w: ProtoWriter, rs: ResourceSpans): void {
  w.message(1, (m) => writeResource(m, rs.resource));
  for (const ss of rs.scopeSpans) w.message(2, (m) => writeScopeSpans(m, ss));
  w.stringField(3, rs.schemaUrl);
}

function writeScopeSpans(w: ProtoWriter, ss: ScopeSpans): void {
  w.message(1, (m) => writeScope(m, ss.scope));
  for (const span of ss.spans) w.message(2, (m) => writeSpan(m, span));
  w.stringField(3, ss.schemaUrl);
}

export function writeSpan(w: ProtoWriter, s: Span): void {
  idField(w, 1, s.traceId);
  idField(w, 2, s.spanId);
  w.stringField(3, s.traceState);
  idField(w, 4, s.parentSpanId);
  w.stringField(5, s.name);
  w.varintField(6, s.kind);
  if (s.startTimeUnixNano !== 0n) w.fixed64Field(7, s.startTimeUnixNano);
  if (s.endTimeUnixNano !== 0n) w.fixed64Field(8, s.endTimeUnixNano);
  if (attributesInBytes(s)) writeAttributeBytes(w, 9, s);
  else writeAttributes(w, 9, s.attributes);
  w.varintField(10, s.droppedAttributesCount);
  for (const e of s.events) w.message(11, (m) => writeEvent(m, e));
  w.varintField(12, s.droppedEventsCount);
  for (const l of s.links) w.message(13, (m) => writeLink(m, l));
  w.varintField(14, s.droppedLinksCount);
  if (s.status.message !== '' || s.status.code !== 0) {
    w.message(15, (m) => {
      m.stringField(2, s.status.message);
      m.varintField(3, s.status.code);
    });
  }
  if (s.flags !== 0) w.fixed32Field(16, s.flags);
}

function writeEvent(w: ProtoWriter, e: SpanEvent): void {
  if (e.timeUnixNano !== 0n) w.fixed64Field(1, e.timeUnixNano);
  w.stringField(2, e.name);
  if (attributesInBytes(e)) writeAttributeBytes(w, 3, e);
  else writeAttributes(w, 3, e.attributes);
  w.varintField(4, e.droppedAttributesCount);
}

function writeLink(w: ProtoWriter, l: SpanLink): void {
  idField(w, 1, l.traceId);
  idField(w, 2, l.spanId);
  w.stringField(3, l.traceState);
  writeAttributes(w, 4, l.attributes);
  w.varintField(5, l.droppedAttributesCount);
  if (l.flags !== 0) w.fixed32Field(6, l.flags);
}

/** resource.proto Resource. */
export function writeResource(w: ProtoWriter, r: Resource): void {
  writeAttributes(w, 1, r.attributes);
  w.varintField(2, r.droppedAttributesCount);
}

/** common.proto InstrumentationScope. */
export function writeScope(w: ProtoWriter, s: InstrumentationScope): void {
  w.stringField(1, s.name);
  w.stringField(2, s.version);
  writeAttributes(w, 3, s.attributes);
  w.varintField(4, s.droppedAttributesCount);
}

export function writeAttributes(w: ProtoWriter, field: number, attributes: readonly KeyValue[]): void {
  for (const kv of attributes) {
    const at = w.begin(field);
    writeKeyValue(w, kv);
    w.end(at);
  }
}

export function writeKeyValue(w: ProtoWriter, kv: KeyValue): void {
  w.stringField(1, kv.key);
  // An unset AnyValue is still sent as an empty message, as the decoder reads it back as undefined.
  const at = w.begin(2);
  writeAnyValue(w, kv.value);
  w.end(at);
}

/** common.proto AnyValue (the oneof member is always written, zero or not). */
export function writeAnyValue(w: ProtoWriter, v: AnyValue): void {
  switch (typeof v) {
    case 'undefined':
      return;
    case 'string':
      w.stringAlways(1, v);
      return;
    case 'boolean':
      w.tag(2, 0).varint(v ? 1 : 0);
      return;
    case 'bigint':
      w.tag(3, 0).varint(v);
      return;
    case 'number':
      w.doubleField(4, v);
      return;
  }
  if (Array.isArray(v)) {
    w.message(5, (arr) => {
      for (const item of v) arr.message(1, (m) => writeAnyValue(m, item));
    });
  } else if (v instanceof KeyValueList) {
    w.message(6, (list) => {
      for (const kv of v.values) list.message(1, (m) => writeKeyValue(m, kv));
    });
  } else if (v instanceof Uint8Array) {
    w.bytesField(7, v);
  }
}

function idField(w: ProtoWriter, field: number, hex: string): void {
  if (hex === '') return;
  w.hexField(field, hex);
}

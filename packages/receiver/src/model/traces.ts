import type { InstrumentationScope, KeyValue, Resource } from './common';

/** OTLP Span.SpanKind, as its integer. */
export const SpanKind = {
  UNSPECIFIED: 0,
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const;

/** OTLP Status.StatusCode, as its integer. */
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface ResourceSpans {
  resource: Resource;
  scopeSpans: ScopeSpans[];
  schemaUrl: string;
}

export interface ScopeSpans {
  scope: InstrumentationScope;
  spans: Span[];
  schemaUrl: string;
}

export interface Span {
  traceId: string;
  spanId: string;
  traceState: string;
  parentSpanId: string;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  events: SpanEvent[];
  droppedEventsCount: number;
  links: SpanLink[];
  droppedLinksCount: number;
  status: SpanStatus;
  /**
   * Where this item's field starts in the request's protobuf body (the offset of its tag), when the
   * protobuf decoder built it (-1 for one nested in a value): the edits of a patch name items by it
   * (otlp/protobuf/patch.ts).
   */
  at?: number;
}

export interface SpanEvent {
  timeUnixNano: bigint;
  name: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  traceState: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  flags: number;
}

export interface SpanStatus {
  message: string;
  code: number;
}

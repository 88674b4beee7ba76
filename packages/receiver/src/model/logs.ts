import type { AnyValue, InstrumentationScope, KeyValue, Resource } from './common';

export interface ResourceLogs {
  resource: Resource;
  scopeLogs: ScopeLogs[];
  schemaUrl: string;
}

export interface ScopeLogs {
  scope: InstrumentationScope;
  logRecords: LogRecord[];
  schemaUrl: string;
}

export interface LogRecord {
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  body: AnyValue;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  flags: number;
  traceId: string;
  spanId: string;
  /** OTLP 1.5+: the name of the event this record represents ('' for a plain log). */
  eventName: string;
  /**
   * Where this item's field starts in the request's protobuf body (the offset of its tag), when the
   * protobuf decoder built it (-1 for one nested in a value): the edits of a patch name items by it
   * (otlp/protobuf/patch.ts).
   */
  at?: number;
}

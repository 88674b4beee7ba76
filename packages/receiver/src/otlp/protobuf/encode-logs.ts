/**
 * Protobuf encoding of the model into `ExportLogsServiceRequest` (opentelemetry-proto logs.proto v1):
 * the mirror image of decode-logs.ts, with the same rules as encode-traces.ts (proto3 zero values
 * omitted; an AnyValue's set member always written).
 */
import type { LogRecord, ResourceLogs, ScopeLogs } from '../../model';
import { writeAnyValue, writeAttributes, writeResource, writeScope } from './encode-traces';
import { ProtoWriter } from './writer';

/** Encodes `data` as an ExportLogsServiceRequest; `sizeHint`: the bytes expected (the buffer's first size). */
export function encodeLogsRequest(data: readonly ResourceLogs[], sizeHint = 4096): Buffer {
  const w = new ProtoWriter(sizeHint);
  for (const rl of data) w.message(1, (m) => writeResourceLogs(m, rl));
  return w.finish();
}

function writeResourceLogs(w: ProtoWriter, rl: ResourceLogs): void {
  w.message(1, (m) => writeResource(m, rl.resource));
  for (const sl of rl.scopeLogs) w.message(2, (m) => writeScopeLogs(m, sl));
  w.stringField(3, rl.schemaUrl);
}

function writeScopeLogs(w: ProtoWriter, sl: ScopeLogs): void {
  w.message(1, (m) => writeScope(m, sl.scope));
  for (const record of sl.logRecords) {
    const at = w.begin(2);
    writeLogRecord(w, record);
    w.end(at);
  }
  w.stringField(3, sl.schemaUrl);
}

export function writeLogRecord(w: ProtoWriter, r: LogRecord): void {
  if (r.timeUnixNano !== 0n) w.fixed64Field(1, r.timeUnixNano);
  w.varintField(2, r.severityNumber);
  w.stringField(3, r.severityText);
  if (r.body !== undefined) {
    const at = w.begin(5);
    writeAnyValue(w, r.body);
    w.end(at);
  }
  writeAttributes(w, 6, r.attributes);
  w.varintField(7, r.droppedAttributesCount);
  if (r.flags !== 0) w.fixed32Field(8, r.flags);
  if (r.traceId !== '') w.hexField(9, r.traceId);
  if (r.spanId !== '') w.hexField(10, r.spanId);
  if (r.observedTimeUnixNano !== 0n) w.fixed64Field(11, r.observedTimeUnixNano);
  w.stringField(12, r.eventName);
}

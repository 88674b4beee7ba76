/**
 * OTLP/JSON encoding of log data (opentelemetry-proto logs.proto, v1).
 */
import type { LogRecord, ResourceLogs, ScopeLogs } from '../../model';
import {
  encodeAnyValue,
  type JsonObject,
  putAttributes,
  putInt64,
  putInteger,
  putList,
  putResource,
  putScope,
  putString,
} from './encode-common';

export function encodeResourceLogs(rl: ResourceLogs): JsonObject {
  const json: JsonObject = {};
  putResource(json, rl.resource);
  putList(json, 'scopeLogs', rl.scopeLogs, encodeScopeLogs);
  putString(json, 'schemaUrl', rl.schemaUrl);
  return json;
}

function encodeScopeLogs(sl: ScopeLogs): JsonObject {
  const json: JsonObject = {};
  putScope(json, sl.scope);
  putList(json, 'logRecords', sl.logRecords, encodeLogRecord);
  putString(json, 'schemaUrl', sl.schemaUrl);
  return json;
}

function encodeLogRecord(record: LogRecord): JsonObject {
  const json: JsonObject = {};
  putInt64(json, 'timeUnixNano', record.timeUnixNano);
  putInt64(json, 'observedTimeUnixNano', record.observedTimeUnixNano);
  putInteger(json, 'severityNumber', record.severityNumber);
  putString(json, 'severityText', record.severityText);
  if (record.body !== undefined) json.body = encodeAnyValue(record.body);
  putAttributes(json, 'attributes', record.attributes);
  putInteger(json, 'droppedAttributesCount', record.droppedAttributesCount);
  putInteger(json, 'flags', record.flags);
  putString(json, 'traceId', record.traceId);
  putString(json, 'spanId', record.spanId);
  putString(json, 'eventName', record.eventName);
  return json;
}

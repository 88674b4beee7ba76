/**
 * OTLP/JSON decoding of `ExportLogsServiceRequest` (opentelemetry-proto logs.proto, v1) into the model.
 */
import type { AnyValue, LogRecord, ResourceLogs, ScopeLogs } from '../../model';
import { STRUCTURES } from '../limits';
import {
  at,
  enumNames,
  itemObject,
  readAnyValue,
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

const SEVERITY_NAMES = enumNames('SEVERITY_NUMBER_', [
  'UNSPECIFIED',
  ...['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'].flatMap((level) => [
    level,
    `${level}2`,
    `${level}3`,
    `${level}4`,
  ]),
]);

export function readResourceLogs(item: unknown, maxDepth: number): ResourceLogs {
  take(STRUCTURES.resource);
  const o = itemObject(item);
  return {
    resource: readResource(o.resource, maxDepth),
    scopeLogs:
      o.scopeLogs == null && o.instrumentationLibraryLogs != null
        ? readList(o.instrumentationLibraryLogs, 'instrumentationLibraryLogs', maxDepth, readScopeLogs)
        : readList(o.scopeLogs, 'scopeLogs', maxDepth, readScopeLogs),
    schemaUrl: readString(o.schemaUrl, 'schemaUrl'),
  };
}

function readScopeLogs(item: unknown, maxDepth: number): ScopeLogs {
  take(STRUCTURES.scope);
  const o = itemObject(item);
  return {
    scope: readScope(o.scope ?? o.instrumentationLibrary, maxDepth),
    logRecords: readList(o.logRecords, 'logRecords', maxDepth, readLogRecord),
    schemaUrl: readString(o.schemaUrl, 'schemaUrl'),
  };
}

function readLogRecord(item: unknown, maxDepth: number): LogRecord {
  take(STRUCTURES.logRecord);
  const o = itemObject(item);
  return {
    timeUnixNano: readTimestamp(o.timeUnixNano, 'timeUnixNano'),
    observedTimeUnixNano: readTimestamp(o.observedTimeUnixNano, 'observedTimeUnixNano'),
    severityNumber: readEnum(o.severityNumber, 'severityNumber', SEVERITY_NAMES),
    severityText: readString(o.severityText, 'severityText'),
    body: readBody(o.body, maxDepth),
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
    flags: readUint32(o.flags, 'flags'),
    traceId: readTraceId(o.traceId, 'traceId'),
    spanId: readSpanId(o.spanId, 'spanId'),
    eventName: readString(o.eventName, 'eventName'),
  };
}

function readBody(value: unknown, maxDepth: number): AnyValue {
  try {
    return readAnyValue(value, 1, maxDepth);
  } catch (e) {
    throw at(e, 'body');
  }
}

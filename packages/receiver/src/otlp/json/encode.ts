/**
 * OTLP/JSON encoder: the inverse of decode.ts, for the debug endpoint and for round-trip tests.
 *
 * It writes what a protobuf JSON printer writes under the OTLP rules: lowerCamelCase keys, hex ids,
 * 64-bit integers as decimal strings, enums as integers, bytes as base64, non-finite doubles as
 * "NaN"/"Infinity"/"-Infinity", and fields equal to their zero value left out (except the members
 * of a oneof and the optional histogram sum/min/max, whose presence is meaningful). Not a hot path:
 * it favours plainness over speed.
 */
import {
  type AnyValue,
  type Exemplar,
  type ExponentialBuckets,
  type ExponentialHistogramDataPoint,
  type HistogramDataPoint,
  type InstrumentationScope,
  type KeyValue,
  KeyValueList,
  type LogRecord,
  type Metric,
  type MetricData,
  type NumberDataPoint,
  type Resource,
  type ResourceLogs,
  type ResourceMetrics,
  type ResourceSpans,
  type ScopeLogs,
  type ScopeMetrics,
  type ScopeSpans,
  type Signal,
  type SignalData,
  type Span,
  type SpanEvent,
  type SpanLink,
  type SummaryDataPoint,
} from '../../model';

type JsonObject = Record<string, unknown>;

/** The OTLP JSON export request (`{resourceSpans: [...]}` etc.) carrying `data`. */
export function encodeJsonRequest<S extends Signal>(signal: S, data: SignalData[S]): Record<string, unknown> {
  switch (signal) {
    case 'traces':
      return { resourceSpans: (data as ResourceSpans[]).map(encodeResourceSpans) };
    case 'metrics':
      return { resourceMetrics: (data as ResourceMetrics[]).map(encodeResourceMetrics) };
    case 'logs':
      return { resourceLogs: (data as ResourceLogs[]).map(encodeResourceLogs) };
  }
  throw new Error(`unknown signal ${String(signal)}`);
}

/** The request's one field: the list of resources (`resourceSpans`, ...). */
export const JSON_RESOURCES_FIELD = {
  traces: 'resourceSpans',
  metrics: 'resourceMetrics',
  logs: 'resourceLogs',
} as const;

/** One item of that list (a request encoded resource by resource: /debug/recent's render in pieces). */
export function encodeJsonResource<S extends Signal>(signal: S, resource: SignalData[S][number]): JsonObject {
  switch (signal) {
    case 'traces':
      return encodeResourceSpans(resource as ResourceSpans);
    case 'metrics':
      return encodeResourceMetrics(resource as ResourceMetrics);
    case 'logs':
      return encodeResourceLogs(resource as ResourceLogs);
  }
  throw new Error(`unknown signal ${String(signal)}`);
}

// ---------------------------------------------------------------------------------------------
// Fields: each `put` leaves out a zero value.

function putString(out: JsonObject, key: string, value: string): void {
  if (value !== '') out[key] = value;
}

function putInteger(out: JsonObject, key: string, value: number): void {
  if (value !== 0) out[key] = value;
}

/** A 64-bit integer field (timestamps, counts): a decimal string. */
function putInt64(out: JsonObject, key: string, value: bigint | number): void {
  if (value !== 0n && value !== 0) out[key] = int64String(value);
}

function putDouble(out: JsonObject, key: string, value: number): void {
  if (value !== 0) out[key] = double(value);
}

/** An optional double: written whenever present, even when zero. */
function putOptionalDouble(out: JsonObject, key: string, value: number | undefined): void {
  if (value !== undefined) out[key] = double(value);
}

function putBool(out: JsonObject, key: string, value: boolean): void {
  if (value) out[key] = true;
}

function putList<T>(out: JsonObject, key: string, items: readonly T[], encodeItem: (item: T) => unknown): void {
  if (items.length > 0) out[key] = items.map(encodeItem);
}

function putAttributes(out: JsonObject, key: string, attributes: readonly KeyValue[]): void {
  putList(out, key, attributes, encodeKeyValue);
}

function int64String(value: bigint | number): string {
  if (typeof value === 'bigint' || Number.isSafeInteger(value)) return value.toString();
  return Number.isFinite(value) ? BigInt(Math.trunc(value)).toString() : '0';
}

/** A double as proto3 JSON writes it: a number, or a string for the non-finite values. */
function double(value: number): number | string {
  if (Number.isFinite(value)) return value;
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? 'Infinity' : '-Infinity';
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

// ---------------------------------------------------------------------------------------------
// Common messages

function putResource(out: JsonObject, resource: Resource): void {
  const json: JsonObject = {};
  putAttributes(json, 'attributes', resource.attributes);
  putInteger(json, 'droppedAttributesCount', resource.droppedAttributesCount);
  if (Object.keys(json).length > 0) out.resource = json;
}

function putScope(out: JsonObject, scope: InstrumentationScope): void {
  const json: JsonObject = {};
  putString(json, 'name', scope.name);
  putString(json, 'version', scope.version);
  putAttributes(json, 'attributes', scope.attributes);
  putInteger(json, 'droppedAttributesCount', scope.droppedAttributesCount);
  if (Object.keys(json).length > 0) out.scope = json;
}

function encodeKeyValue(kv: KeyValue): JsonObject {
  return { key: kv.key, value: encodeAnyValue(kv.value) };
}

/** An AnyValue: the oneof member is always written, even when its value is a zero value. */
function encodeAnyValue(value: AnyValue): JsonObject {
  switch (typeof value) {
    case 'string':
      return { stringValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'bigint':
      return { intValue: value.toString() };
    case 'number':
      return { doubleValue: double(value) };
    case 'undefined':
      return {};
  }
  if (value instanceof Uint8Array) return { bytesValue: base64(value) };
  if (value instanceof KeyValueList) return { kvlistValue: { values: value.values.map(encodeKeyValue) } };
  return { arrayValue: { values: value.map(encodeAnyValue) } };
}

// ---------------------------------------------------------------------------------------------
// Traces

function encodeResourceSpans(rs: ResourceSpans): JsonObject {
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

// ---------------------------------------------------------------------------------------------
// Metrics

function encodeResourceMetrics(rm: ResourceMetrics): JsonObject {
  const json: JsonObject = {};
  putResource(json, rm.resource);
  putList(json, 'scopeMetrics', rm.scopeMetrics, encodeScopeMetrics);
  putString(json, 'schemaUrl', rm.schemaUrl);
  return json;
}

function encodeScopeMetrics(sm: ScopeMetrics): JsonObject {
  const json: JsonObject = {};
  putScope(json, sm.scope);
  putList(json, 'metrics', sm.metrics, encodeMetric);
  putString(json, 'schemaUrl', sm.schemaUrl);
  return json;
}

function encodeMetric(metric: Metric): JsonObject {
  const json: JsonObject = {};
  putString(json, 'name', metric.name);
  putString(json, 'description', metric.description);
  putString(json, 'unit', metric.unit);
  putMetricData(json, metric.data);
  putAttributes(json, 'metadata', metric.metadata);
  return json;
}

/** The `data` oneof: its member is written even when empty, so that the metric type survives. */
function putMetricData(out: JsonObject, data: MetricData): void {
  const json: JsonObject = {};
  switch (data.type) {
    case 'gauge':
      putList(json, 'dataPoints', data.dataPoints, encodeNumberDataPoint);
      out.gauge = json;
      return;
    case 'sum':
      putList(json, 'dataPoints', data.dataPoints, encodeNumberDataPoint);
      putInteger(json, 'aggregationTemporality', data.aggregationTemporality);
      putBool(json, 'isMonotonic', data.isMonotonic);
      out.sum = json;
      return;
    case 'histogram':
      putList(json, 'dataPoints', data.dataPoints, encodeHistogramDataPoint);
      putInteger(json, 'aggregationTemporality', data.aggregationTemporality);
      out.histogram = json;
      return;
    case 'exponentialHistogram':
      putList(json, 'dataPoints', data.dataPoints, encodeExponentialHistogramDataPoint);
      putInteger(json, 'aggregationTemporality', data.aggregationTemporality);
      out.exponentialHistogram = json;
      return;
    case 'summary':
      putList(json, 'dataPoints', data.dataPoints, encodeSummaryDataPoint);
      out.summary = json;
      return;
    case 'none':
      return;
  }
}

/** The fields common to the number, histogram and exponential histogram points. */
function encodePointBase(point: NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint): JsonObject {
  const json: JsonObject = {};
  putAttributes(json, 'attributes', point.attributes);
  putInt64(json, 'startTimeUnixNano', point.startTimeUnixNano);
  putInt64(json, 'timeUnixNano', point.timeUnixNano);
  putList(json, 'exemplars', point.exemplars, encodeExemplar);
  putInteger(json, 'flags', point.flags);
  return json;
}

function encodeNumberDataPoint(point: NumberDataPoint): JsonObject {
  const json = encodePointBase(point);
  putNumberValue(json, point.value, point.isInt);
  return json;
}

/** The `value` oneof of a number point or an exemplar. */
function putNumberValue(out: JsonObject, value: number, isInt: boolean): void {
  if (isInt) out.asInt = int64String(value);
  else out.asDouble = double(value);
}

function encodeHistogramDataPoint(point: HistogramDataPoint): JsonObject {
  const json = encodePointBase(point);
  putInt64(json, 'count', point.count);
  putOptionalDouble(json, 'sum', point.sum);
  putList(json, 'bucketCounts', point.bucketCounts, int64String);
  putList(json, 'explicitBounds', point.explicitBounds, double);
  putOptionalDouble(json, 'min', point.min);
  putOptionalDouble(json, 'max', point.max);
  return json;
}

function encodeExponentialHistogramDataPoint(point: ExponentialHistogramDataPoint): JsonObject {
  const json = encodePointBase(point);
  putInt64(json, 'count', point.count);
  putOptionalDouble(json, 'sum', point.sum);
  putInteger(json, 'scale', point.scale);
  putInt64(json, 'zeroCount', point.zeroCount);
  putBuckets(json, 'positive', point.positive);
  putBuckets(json, 'negative', point.negative);
  putOptionalDouble(json, 'min', point.min);
  putOptionalDouble(json, 'max', point.max);
  putDouble(json, 'zeroThreshold', point.zeroThreshold);
  return json;
}

function putBuckets(out: JsonObject, key: string, buckets: ExponentialBuckets): void {
  const json: JsonObject = {};
  putInteger(json, 'offset', buckets.offset);
  putList(json, 'bucketCounts', buckets.bucketCounts, int64String);
  if (Object.keys(json).length > 0) out[key] = json;
}

function encodeSummaryDataPoint(point: SummaryDataPoint): JsonObject {
  const json: JsonObject = {};
  putAttributes(json, 'attributes', point.attributes);
  putInt64(json, 'startTimeUnixNano', point.startTimeUnixNano);
  putInt64(json, 'timeUnixNano', point.timeUnixNano);
  putInt64(json, 'count', point.count);
  putDouble(json, 'sum', point.sum);
  putList(json, 'quantileValues', point.quantileValues, encodeQuantile);
  putInteger(json, 'flags', point.flags);
  return json;
}

function encodeQuantile(q: { quantile: number; value: number }): JsonObject {
  const json: JsonObject = {};
  putDouble(json, 'quantile', q.quantile);
  putDouble(json, 'value', q.value);
  return json;
}

function encodeExemplar(exemplar: Exemplar): JsonObject {
  const json: JsonObject = {};
  putAttributes(json, 'filteredAttributes', exemplar.filteredAttributes);
  putInt64(json, 'timeUnixNano', exemplar.timeUnixNano);
  putNumberValue(json, exemplar.value, exemplar.isInt);
  putString(json, 'spanId', exemplar.spanId);
  putString(json, 'traceId', exemplar.traceId);
  return json;
}

// ---------------------------------------------------------------------------------------------
// Logs

function encodeResourceLogs(rl: ResourceLogs): JsonObject {
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

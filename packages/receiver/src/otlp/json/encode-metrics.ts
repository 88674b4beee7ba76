/**
 * OTLP/JSON encoding of metric data (opentelemetry-proto metrics.proto, v1).
 */
import type {
  Exemplar,
  ExponentialBuckets,
  ExponentialHistogramDataPoint,
  HistogramDataPoint,
  Metric,
  MetricData,
  NumberDataPoint,
  ResourceMetrics,
  ScopeMetrics,
  SummaryDataPoint,
} from '../../model';
import {
  double,
  int64String,
  type JsonObject,
  putAttributes,
  putBool,
  putDouble,
  putInt64,
  putInteger,
  putList,
  putOptionalDouble,
  putResource,
  putScope,
  putString,
} from './encode-common';

export function encodeResourceMetrics(rm: ResourceMetrics): JsonObject {
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

/**
 * OTLP/JSON decoding of `ExportMetricsServiceRequest` (opentelemetry-proto metrics.proto, v1) into the model,
 * with the metric types of OTLP before 0.9 read as the types that replaced them.
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
import { MalformedPayloadError } from '../errors';
import { STRUCTURES } from '../limits';
import {
  at,
  enumNames,
  itemObject,
  type JsonObject,
  listOf,
  optionalObject,
  readAttributes,
  readBool,
  readCount,
  readDouble,
  readEnum,
  readInt32,
  readInt64AsNumber,
  readList,
  readOptionalDouble,
  readResource,
  readScope,
  readSpanId,
  readString,
  readTimestamp,
  readTraceId,
  readUint32,
  take,
} from './decode-common';

const TEMPORALITY_NAMES = enumNames('AGGREGATION_TEMPORALITY_', ['UNSPECIFIED', 'DELTA', 'CUMULATIVE']);

export function readResourceMetrics(item: unknown, maxDepth: number): ResourceMetrics {
  take(STRUCTURES.resource);
  const o = itemObject(item);
  return {
    resource: readResource(o.resource, maxDepth),
    scopeMetrics:
      o.scopeMetrics == null && o.instrumentationLibraryMetrics != null
        ? readList(o.instrumentationLibraryMetrics, 'instrumentationLibraryMetrics', maxDepth, readScopeMetrics)
        : readList(o.scopeMetrics, 'scopeMetrics', maxDepth, readScopeMetrics),
    schemaUrl: readString(o.schemaUrl, 'schemaUrl'),
  };
}

function readScopeMetrics(item: unknown, maxDepth: number): ScopeMetrics {
  take(STRUCTURES.scope);
  const o = itemObject(item);
  return {
    scope: readScope(o.scope ?? o.instrumentationLibrary, maxDepth),
    metrics: readList(o.metrics, 'metrics', maxDepth, readMetric),
    schemaUrl: readString(o.schemaUrl, 'schemaUrl'),
  };
}

function readMetric(item: unknown, maxDepth: number): Metric {
  take(STRUCTURES.metric);
  const o = itemObject(item);
  return {
    name: readString(o.name, 'name'),
    description: readString(o.description, 'description'),
    unit: readString(o.unit, 'unit'),
    data: readMetricData(o, maxDepth),
    metadata: readAttributes(o.metadata, 'metadata', maxDepth),
  };
}

/** The `data` oneof of a Metric: at most one of its five members; none is the type 'none'. */
function readMetricData(metric: JsonObject, maxDepth: number): MetricData {
  const { gauge, sum, histogram, exponentialHistogram, summary } = metric;
  const members =
    (gauge == null ? 0 : 1) +
    (sum == null ? 0 : 1) +
    (histogram == null ? 0 : 1) +
    (exponentialHistogram == null ? 0 : 1) +
    (summary == null ? 0 : 1);
  if (members > 1) {
    throw new MalformedPayloadError('expected at most one of gauge, sum, histogram, exponentialHistogram, summary');
  }
  if (gauge != null) return readGauge(gauge, maxDepth);
  if (sum != null) return readSum(sum, maxDepth);
  if (histogram != null) return readHistogram(histogram, maxDepth);
  if (exponentialHistogram != null) return readExponentialHistogram(exponentialHistogram, maxDepth);
  if (summary != null) return readSummary(summary, maxDepth);
  return readLegacyMetricData(metric, maxDepth) ?? { type: 'none', dataPoints: [] };
}

/**
 * The metric types of OTLP before 0.9 (intGauge, doubleGauge, intSum, doubleSum, intHistogram,
 * doubleHistogram), as OpenTelemetry JS 0.27 and other exporters of 2021 send them: their points carry
 * `labels` (string key/value pairs) and `value`. Read as the types that replaced them; only looked
 * for when a metric has none of the current ones.
 */
function readLegacyMetricData(metric: JsonObject, maxDepth: number): MetricData | undefined {
  let field: string | undefined;
  let members = 0;
  for (const k of LEGACY_METRIC_TYPES) {
    if (metric[k] == null) continue;
    field ??= k;
    members++;
  }
  if (field === undefined) return undefined;
  if (members > 1) throw new MalformedPayloadError(`expected at most one of ${LEGACY_METRIC_TYPES.join(', ')}`);
  try {
    const o = itemObject(metric[field]);
    if (field.endsWith('Histogram')) {
      return {
        type: 'histogram',
        dataPoints: readList(o.dataPoints, 'dataPoints', maxDepth, (p, d) =>
          readHistogramDataPoint(legacyHistogramPoint(p), d),
        ),
        aggregationTemporality: readTemporality(o.aggregationTemporality),
      };
    }
    const isInt = field.startsWith('int');
    const dataPoints = readList(o.dataPoints, 'dataPoints', maxDepth, (p, d) =>
      readNumberDataPoint(legacyNumberPoint(p, isInt), d),
    );
    if (field.endsWith('Gauge')) return { type: 'gauge', dataPoints };
    return {
      type: 'sum',
      dataPoints,
      aggregationTemporality: readTemporality(o.aggregationTemporality),
      isMonotonic: readBool(o.isMonotonic, 'isMonotonic'),
    };
  } catch (e) {
    throw at(e, field);
  }
}

const LEGACY_METRIC_TYPES = ['intGauge', 'doubleGauge', 'intSum', 'doubleSum', 'intHistogram', 'doubleHistogram'];

/** `labels` (StringKeyValue: a string value) as attributes, when the point has no attributes. */
function legacyAttributes(o: JsonObject): unknown {
  if (o.attributes != null || !Array.isArray(o.labels)) return o.attributes;
  return o.labels.map((l) => {
    const label = itemObject(l);
    return { key: label.key, value: { stringValue: label.value } };
  });
}

function legacyNumberPoint(item: unknown, isInt: boolean): JsonObject {
  const o = itemObject(item);
  return { ...o, attributes: legacyAttributes(o), [isInt ? 'asInt' : 'asDouble']: o.value };
}

/**
 * A legacy histogram point. Its bounds may end in `null`: an infinite bound that JSON.stringify could
 * not write (OpenTelemetry JS 0.27's default boundaries are [Infinity]); the bucket above an infinite
 * bound is empty, so such a bound is dropped and the bucket merged with the one below.
 */
function legacyHistogramPoint(item: unknown): JsonObject {
  const o = itemObject(item);
  let bounds = o.explicitBounds;
  let counts = o.bucketCounts;
  if (Array.isArray(bounds) && Array.isArray(counts) && counts.length === bounds.length + 1) {
    bounds = [...bounds];
    counts = [...counts];
    const b = bounds as unknown[];
    const c = counts as unknown[];
    while (b.length > 0 && (b[b.length - 1] === null || b[b.length - 1] === 'Infinity')) {
      b.pop();
      const top = c.pop();
      c[c.length - 1] = Number(c[c.length - 1]) + Number(top);
    }
  }
  return { ...o, attributes: legacyAttributes(o), explicitBounds: bounds, bucketCounts: counts };
}

function readGauge(value: unknown, maxDepth: number): MetricData {
  try {
    const o = itemObject(value);
    return {
      type: 'gauge',
      dataPoints: readList(o.dataPoints, 'dataPoints', maxDepth, readNumberDataPoint),
    };
  } catch (e) {
    throw at(e, 'gauge');
  }
}

function readSum(value: unknown, maxDepth: number): MetricData {
  try {
    const o = itemObject(value);
    return {
      type: 'sum',
      dataPoints: readList(o.dataPoints, 'dataPoints', maxDepth, readNumberDataPoint),
      aggregationTemporality: readTemporality(o.aggregationTemporality),
      isMonotonic: readBool(o.isMonotonic, 'isMonotonic'),
    };
  } catch (e) {
    throw at(e, 'sum');
  }
}

function readHistogram(value: unknown, maxDepth: number): MetricData {
  try {
    const o = itemObject(value);
    return {
      type: 'histogram',
      dataPoints: readList(o.dataPoints, 'dataPoints', maxDepth, readHistogramDataPoint),
      aggregationTemporality: readTemporality(o.aggregationTemporality),
    };
  } catch (e) {
    throw at(e, 'histogram');
  }
}

function readExponentialHistogram(value: unknown, maxDepth: number): MetricData {
  try {
    const o = itemObject(value);
    return {
      type: 'exponentialHistogram',
      dataPoints: readList(o.dataPoints, 'dataPoints', maxDepth, readExponentialHistogramDataPoint),
      aggregationTemporality: readTemporality(o.aggregationTemporality),
    };
  } catch (e) {
    throw at(e, 'exponentialHistogram');
  }
}

function readSummary(value: unknown, maxDepth: number): MetricData {
  try {
    const o = itemObject(value);
    return {
      type: 'summary',
      dataPoints: readList(o.dataPoints, 'dataPoints', maxDepth, readSummaryDataPoint),
    };
  } catch (e) {
    throw at(e, 'summary');
  }
}

function readTemporality(value: unknown): number {
  return readEnum(value, 'aggregationTemporality', TEMPORALITY_NAMES);
}

function readNumberDataPoint(item: unknown, maxDepth: number): NumberDataPoint {
  take(STRUCTURES.point);
  const o = itemObject(item);
  const asDouble = o.asDouble;
  const isInt = asDouble == null && o.asInt != null;
  return {
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    startTimeUnixNano: readTimestamp(o.startTimeUnixNano, 'startTimeUnixNano'),
    timeUnixNano: readTimestamp(o.timeUnixNano, 'timeUnixNano'),
    exemplars: readList(o.exemplars, 'exemplars', maxDepth, readExemplar),
    flags: readUint32(o.flags, 'flags'),
    value: isInt ? readInt64AsNumber(o.asInt, 'asInt') : readDouble(asDouble, 'asDouble'),
    isInt,
  };
}

function readHistogramDataPoint(item: unknown, maxDepth: number): HistogramDataPoint {
  take(STRUCTURES.point);
  const o = itemObject(item);
  return {
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    startTimeUnixNano: readTimestamp(o.startTimeUnixNano, 'startTimeUnixNano'),
    timeUnixNano: readTimestamp(o.timeUnixNano, 'timeUnixNano'),
    exemplars: readList(o.exemplars, 'exemplars', maxDepth, readExemplar),
    flags: readUint32(o.flags, 'flags'),
    count: readCount(o.count, 'count'),
    sum: readOptionalDouble(o.sum, 'sum'),
    bucketCounts: readCounts(o.bucketCounts, 'bucketCounts'),
    explicitBounds: readDoubles(o.explicitBounds, 'explicitBounds'),
    min: readOptionalDouble(o.min, 'min'),
    max: readOptionalDouble(o.max, 'max'),
  };
}

function readExponentialHistogramDataPoint(item: unknown, maxDepth: number): ExponentialHistogramDataPoint {
  take(STRUCTURES.point);
  const o = itemObject(item);
  return {
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    startTimeUnixNano: readTimestamp(o.startTimeUnixNano, 'startTimeUnixNano'),
    timeUnixNano: readTimestamp(o.timeUnixNano, 'timeUnixNano'),
    exemplars: readList(o.exemplars, 'exemplars', maxDepth, readExemplar),
    flags: readUint32(o.flags, 'flags'),
    count: readCount(o.count, 'count'),
    sum: readOptionalDouble(o.sum, 'sum'),
    scale: readInt32(o.scale, 'scale'),
    zeroCount: readCount(o.zeroCount, 'zeroCount'),
    positive: readBuckets(o.positive, 'positive'),
    negative: readBuckets(o.negative, 'negative'),
    min: readOptionalDouble(o.min, 'min'),
    max: readOptionalDouble(o.max, 'max'),
    zeroThreshold: readDouble(o.zeroThreshold, 'zeroThreshold'),
  };
}

function readBuckets(value: unknown, field: string): ExponentialBuckets {
  take(STRUCTURES.small);
  try {
    const o = optionalObject(value);
    if (o === undefined) return { offset: 0, bucketCounts: [] };
    return {
      offset: readInt32(o.offset, 'offset'),
      bucketCounts: readCounts(o.bucketCounts, 'bucketCounts'),
    };
  } catch (e) {
    throw at(e, field);
  }
}

function readSummaryDataPoint(item: unknown, maxDepth: number): SummaryDataPoint {
  take(STRUCTURES.point);
  const o = itemObject(item);
  return {
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    startTimeUnixNano: readTimestamp(o.startTimeUnixNano, 'startTimeUnixNano'),
    timeUnixNano: readTimestamp(o.timeUnixNano, 'timeUnixNano'),
    count: readCount(o.count, 'count'),
    sum: readDouble(o.sum, 'sum'),
    quantileValues: readList(o.quantileValues, 'quantileValues', maxDepth, readQuantile),
    flags: readUint32(o.flags, 'flags'),
  };
}

function readQuantile(item: unknown): { quantile: number; value: number } {
  take(STRUCTURES.small);
  const o = itemObject(item);
  return { quantile: readDouble(o.quantile, 'quantile'), value: readDouble(o.value, 'value') };
}

function readExemplar(item: unknown, maxDepth: number): Exemplar {
  take(STRUCTURES.small);
  const o = itemObject(item);
  const asDouble = o.asDouble;
  const isInt = asDouble == null && o.asInt != null;
  return {
    filteredAttributes: readAttributes(o.filteredAttributes, 'filteredAttributes', maxDepth),
    timeUnixNano: readTimestamp(o.timeUnixNano, 'timeUnixNano'),
    value: isInt ? readInt64AsNumber(o.asInt, 'asInt') : readDouble(asDouble, 'asDouble'),
    isInt,
    spanId: readSpanId(o.spanId, 'spanId'),
    traceId: readTraceId(o.traceId, 'traceId'),
  };
}

/** A repeated uint64 count (histogram buckets). */
function readCounts(value: unknown, field: string): number[] {
  const items = listOf(value, field);
  take(Math.ceil(items.length / 8));
  const out: number[] = [];
  let i = 0;
  try {
    for (; i < items.length; i++) out.push(readCount(items[i], undefined));
  } catch (e) {
    throw at(e, field, i);
  }
  return out;
}

/** A repeated double (histogram bounds). */
function readDoubles(value: unknown, field: string): number[] {
  const items = listOf(value, field);
  take(Math.ceil(items.length / 8));
  const out: number[] = [];
  let i = 0;
  try {
    for (; i < items.length; i++) out.push(readDouble(items[i], undefined));
  } catch (e) {
    throw at(e, field, i);
  }
  return out;
}

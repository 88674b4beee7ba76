/**
 * Protobuf decoding of `ExportMetricsServiceRequest` (opentelemetry-proto metrics.proto, v1) into the model.
 * Repeated scalars (bucket counts, bounds) are accepted packed and unpacked, as proto3 parsers must.
 */
import {
  type Exemplar,
  type ExponentialBuckets,
  type ExponentialHistogramDataPoint,
  emptyResource,
  emptyScope,
  type HistogramDataPoint,
  type InstrumentationScope,
  type KeyValue,
  type Metric,
  type MetricData,
  type NumberDataPoint,
  type Resource,
  type ResourceMetrics,
  type ScopeMetrics,
  type SummaryDataPoint,
} from '../../model';
import { MalformedPayloadError } from '../errors';
import { type DecodeLimits, type DecodeStats, STRUCTURES } from '../limits';
import { atPath, checkEnd, decodeAttributeInto, decodeResource, decodeScope } from './decode-common';
import { ProtoReader, WireType } from './reader';

const LEN = WireType.LEN;
const VARINT = WireType.VARINT;
const I64 = WireType.I64;

/** Decodes a request body; `stats`, when given, receives what the decoder saw (see DecodeStats). */
export function decodeMetricsRequest(buf: Buffer, limits: DecodeLimits, stats?: DecodeStats): ResourceMetrics[] {
  const r = new ProtoReader(buf);
  r.limitStructures(limits.maxDecodedStructures);
  const out: ResourceMetrics[] = [];
  while (r.pos < buf.length) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | LEN)) {
      try {
        out.push(decodeResourceMetrics(r, limits));
      } catch (err) {
        throw atPath(err, `resourceMetrics[${out.length}]`);
      }
    } else r.skip(tag & 7);
  }
  if (stats) {
    stats.longestString = r.longestString;
    stats.mostAttributes = r.mostAttributes;
    stats.structures = r.structures;
  }
  return out;
}

function decodeResourceMetrics(r: ProtoReader, limits: DecodeLimits): ResourceMetrics {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.resource);
  let resource: Resource | undefined;
  const scopeMetrics: ScopeMetrics[] = [];
  let schemaUrl = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        try {
          resource = decodeResource(r, limits);
        } catch (err) {
          throw atPath(err, 'resource');
        }
        break;
      case (2 << 3) | LEN:
        try {
          scopeMetrics.push(decodeScopeMetrics(r, limits));
        } catch (err) {
          throw atPath(err, `scopeMetrics[${scopeMetrics.length}]`);
        }
        break;
      case (3 << 3) | LEN:
        schemaUrl = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { resource: resource ?? emptyResource(), scopeMetrics, schemaUrl };
}

function decodeScopeMetrics(r: ProtoReader, limits: DecodeLimits): ScopeMetrics {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.scope);
  let scope: InstrumentationScope | undefined;
  const metrics: Metric[] = [];
  let schemaUrl = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        try {
          scope = decodeScope(r, limits);
        } catch (err) {
          throw atPath(err, 'scope');
        }
        break;
      case (2 << 3) | LEN:
        try {
          metrics.push(decodeMetric(r, limits));
        } catch (err) {
          throw atPath(err, `metrics[${metrics.length}]`);
        }
        break;
      case (3 << 3) | LEN:
        schemaUrl = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { scope: scope ?? emptyScope(), metrics, schemaUrl };
}

function decodeMetric(r: ProtoReader, limits: DecodeLimits): Metric {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.metric);
  let name = '';
  let description = '';
  let unit = '';
  let data: MetricData = { type: 'none', dataPoints: [] };
  const metadata: KeyValue[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        name = r.string();
        break;
      case (2 << 3) | LEN:
        description = r.string();
        break;
      case (3 << 3) | LEN:
        unit = r.string();
        break;
      case (5 << 3) | LEN:
        data = withPath(() => decodeGauge(r, limits), 'gauge');
        break;
      case (7 << 3) | LEN:
        data = withPath(() => decodeSum(r, limits), 'sum');
        break;
      case (9 << 3) | LEN:
        data = withPath(() => decodeHistogram(r, limits), 'histogram');
        break;
      // OTLP before 0.9 (OpenTelemetry JS 0.27): int_gauge, int_sum, int_histogram, whose values and
      // histogram sums are sfixed64; their double_ namesakes are fields 5, 7 and 9 above.
      case (4 << 3) | LEN:
        data = withPath(() => decodeGauge(r, limits, true), 'intGauge');
        break;
      case (6 << 3) | LEN:
        data = withPath(() => decodeSum(r, limits, true), 'intSum');
        break;
      case (8 << 3) | LEN:
        data = withPath(() => decodeHistogram(r, limits, true), 'intHistogram');
        break;
      case (10 << 3) | LEN:
        data = withPath(() => decodeExponentialHistogram(r, limits), 'exponentialHistogram');
        break;
      case (11 << 3) | LEN:
        data = withPath(() => decodeSummary(r, limits), 'summary');
        break;
      case (12 << 3) | LEN:
        decodeAttributeInto(r, limits, metadata, 'metadata');
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { name, description, unit, data, metadata };
}

/**
 * A label of a data point of OTLP before 0.9 (field 1, StringKeyValue: key 1, value 2), as OpenTelemetry
 * JS 0.27 sends them: appended as an attribute with a string value, counted as one.
 */
function decodeLegacyLabelInto(r: ProtoReader, into: KeyValue[]): void {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.value);
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | LEN)) key = r.string();
    else if (tag === ((2 << 3) | LEN)) value = r.string();
    else r.skip(tag & 7);
  }
  checkEnd(r, end);
  into.push({ key, value });
  if (into.length > r.mostAttributes) r.mostAttributes = into.length;
}

/** Runs a sub-decoder and names `segment` in its error path. Used once per metric, not per point. */
function withPath<T>(decode: () => T, segment: string): T {
  try {
    return decode();
  } catch (err) {
    throw atPath(err, segment);
  }
}

/** Decodes the repeated `data_points` (field 1) of a metric body, and hands other fields to `other`. */
function decodePoints<P>(
  r: ProtoReader,
  end: number,
  decodePoint: (r: ProtoReader, limits: DecodeLimits) => P,
  limits: DecodeLimits,
  other: (tag: number) => void,
): P[] {
  const points: P[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | LEN)) {
      try {
        points.push(decodePoint(r, limits));
      } catch (err) {
        throw atPath(err, `dataPoints[${points.length}]`);
      }
    } else other(tag);
  }
  checkEnd(r, end);
  return points;
}

function decodeGauge(r: ProtoReader, limits: DecodeLimits, legacyInt = false): MetricData {
  const end = r.delimitedEnd();
  const decodePoint = legacyInt ? decodeLegacyIntPoint : decodeNumberPoint;
  const dataPoints = decodePoints(r, end, decodePoint, limits, (tag) => r.skip(tag & 7));
  return { type: 'gauge', dataPoints };
}

function decodeSum(r: ProtoReader, limits: DecodeLimits, legacyInt = false): MetricData {
  const end = r.delimitedEnd();
  let aggregationTemporality = 0;
  let isMonotonic = false;
  const decodePoint = legacyInt ? decodeLegacyIntPoint : decodeNumberPoint;
  const dataPoints = decodePoints(r, end, decodePoint, limits, (tag) => {
    if (tag === ((2 << 3) | VARINT)) aggregationTemporality = r.int32();
    else if (tag === ((3 << 3) | VARINT)) isMonotonic = r.bool();
    else r.skip(tag & 7);
  });
  return { type: 'sum', dataPoints, aggregationTemporality, isMonotonic };
}

function decodeHistogram(r: ProtoReader, limits: DecodeLimits, legacyInt = false): MetricData {
  const end = r.delimitedEnd();
  let aggregationTemporality = 0;
  const decodePoint = legacyInt ? decodeLegacyIntHistogramPoint : decodeHistogramPoint;
  const dataPoints = decodePoints(r, end, decodePoint, limits, (tag) => {
    if (tag === ((2 << 3) | VARINT)) aggregationTemporality = r.int32();
    else r.skip(tag & 7);
  });
  return { type: 'histogram', dataPoints, aggregationTemporality };
}

function decodeExponentialHistogram(r: ProtoReader, limits: DecodeLimits): MetricData {
  const end = r.delimitedEnd();
  let aggregationTemporality = 0;
  const dataPoints = decodePoints(r, end, decodeExponentialPoint, limits, (tag) => {
    if (tag === ((2 << 3) | VARINT)) aggregationTemporality = r.int32();
    else r.skip(tag & 7);
  });
  return { type: 'exponentialHistogram', dataPoints, aggregationTemporality };
}

function decodeSummary(r: ProtoReader, limits: DecodeLimits): MetricData {
  const end = r.delimitedEnd();
  const dataPoints = decodePoints(r, end, decodeSummaryPoint, limits, (tag) => r.skip(tag & 7));
  return { type: 'summary', dataPoints };
}

const decodeLegacyIntPoint = (r: ProtoReader, limits: DecodeLimits) => decodeNumberPoint(r, limits, true);
const decodeLegacyIntHistogramPoint = (r: ProtoReader, limits: DecodeLimits) => decodeHistogramPoint(r, limits, true);

/** `legacyInt`: an IntDataPoint of OTLP before 0.9, whose value (field 4) is sfixed64. */
function decodeNumberPoint(r: ProtoReader, limits: DecodeLimits, legacyInt = false): NumberDataPoint {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.point);
  const attributes: KeyValue[] = [];
  let startTimeUnixNano = 0n;
  let timeUnixNano = 0n;
  const exemplars: Exemplar[] = [];
  let flags = 0;
  let value = 0;
  let isInt = false;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (2 << 3) | I64:
        startTimeUnixNano = r.fixed64();
        break;
      case (3 << 3) | I64:
        timeUnixNano = r.fixed64();
        break;
      case (4 << 3) | I64:
        isInt = legacyInt;
        value = legacyInt ? r.sfixed64Number() : r.double();
        break;
      case (5 << 3) | LEN:
        decodeExemplarInto(r, limits, exemplars);
        break;
      case (6 << 3) | I64:
        value = r.sfixed64Number();
        isInt = true;
        break;
      case (7 << 3) | LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (8 << 3) | VARINT:
        flags = r.uint32();
        break;
      case (1 << 3) | LEN: // labels, OTLP before 0.9
        decodeLegacyLabelInto(r, attributes);
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { attributes, startTimeUnixNano, timeUnixNano, exemplars, flags, value, isInt };
}

/** `legacyInt`: an IntHistogramDataPoint of OTLP before 0.9, whose sum (field 5) is sfixed64. */
function decodeHistogramPoint(r: ProtoReader, limits: DecodeLimits, legacyInt = false): HistogramDataPoint {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.point);
  const attributes: KeyValue[] = [];
  let startTimeUnixNano = 0n;
  let timeUnixNano = 0n;
  const exemplars: Exemplar[] = [];
  let flags = 0;
  let count = 0;
  let sum: number | undefined;
  const bucketCounts: number[] = [];
  const explicitBounds: number[] = [];
  let min: number | undefined;
  let max: number | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (2 << 3) | I64:
        startTimeUnixNano = r.fixed64();
        break;
      case (3 << 3) | I64:
        timeUnixNano = r.fixed64();
        break;
      case (4 << 3) | I64:
        count = r.fixed64Number();
        break;
      case (5 << 3) | I64:
        sum = legacyInt ? r.sfixed64Number() : r.double();
        break;
      case (6 << 3) | LEN:
        readPacked(r, bucketCounts, 8, () => r.fixed64Number());
        break;
      case (6 << 3) | I64:
        bucketCounts.push(r.fixed64Number());
        break;
      case (7 << 3) | LEN:
        readPacked(r, explicitBounds, 8, () => r.double());
        break;
      case (7 << 3) | I64:
        explicitBounds.push(r.double());
        break;
      case (8 << 3) | LEN:
        decodeExemplarInto(r, limits, exemplars);
        break;
      case (9 << 3) | LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (10 << 3) | VARINT:
        flags = r.uint32();
        break;
      case (11 << 3) | I64:
        min = r.double();
        break;
      case (12 << 3) | I64:
        max = r.double();
        break;
      case (1 << 3) | LEN: // labels, OTLP before 0.9
        decodeLegacyLabelInto(r, attributes);
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return {
    attributes,
    startTimeUnixNano,
    timeUnixNano,
    exemplars,
    flags,
    count,
    sum,
    bucketCounts,
    explicitBounds,
    min,
    max,
  };
}

function decodeExponentialPoint(r: ProtoReader, limits: DecodeLimits): ExponentialHistogramDataPoint {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.point);
  const attributes: KeyValue[] = [];
  let startTimeUnixNano = 0n;
  let timeUnixNano = 0n;
  const exemplars: Exemplar[] = [];
  let flags = 0;
  let count = 0;
  let sum: number | undefined;
  let scale = 0;
  let zeroCount = 0;
  let positive: ExponentialBuckets = { offset: 0, bucketCounts: [] };
  let negative: ExponentialBuckets = { offset: 0, bucketCounts: [] };
  let min: number | undefined;
  let max: number | undefined;
  let zeroThreshold = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (2 << 3) | I64:
        startTimeUnixNano = r.fixed64();
        break;
      case (3 << 3) | I64:
        timeUnixNano = r.fixed64();
        break;
      case (4 << 3) | I64:
        count = r.fixed64Number();
        break;
      case (5 << 3) | I64:
        sum = r.double();
        break;
      case (6 << 3) | VARINT:
        scale = zigzag32(r.uint32());
        break;
      case (7 << 3) | I64:
        zeroCount = r.fixed64Number();
        break;
      case (8 << 3) | LEN:
        positive = decodeBuckets(r);
        break;
      case (9 << 3) | LEN:
        negative = decodeBuckets(r);
        break;
      case (10 << 3) | VARINT:
        flags = r.uint32();
        break;
      case (11 << 3) | LEN:
        decodeExemplarInto(r, limits, exemplars);
        break;
      case (12 << 3) | I64:
        min = r.double();
        break;
      case (13 << 3) | I64:
        max = r.double();
        break;
      case (14 << 3) | I64:
        zeroThreshold = r.double();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return {
    attributes,
    startTimeUnixNano,
    timeUnixNano,
    exemplars,
    flags,
    count,
    sum,
    scale,
    zeroCount,
    positive,
    negative,
    min,
    max,
    zeroThreshold,
  };
}

function decodeBuckets(r: ProtoReader): ExponentialBuckets {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.small);
  let offset = 0;
  const bucketCounts: number[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | VARINT)) offset = zigzag32(r.uint32());
    else if (tag === ((2 << 3) | LEN)) readPacked(r, bucketCounts, 0, () => r.uint64Number());
    else if (tag === ((2 << 3) | VARINT)) bucketCounts.push(r.uint64Number());
    else r.skip(tag & 7);
  }
  checkEnd(r, end);
  return { offset, bucketCounts };
}

function decodeSummaryPoint(r: ProtoReader, limits: DecodeLimits): SummaryDataPoint {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.point);
  const attributes: KeyValue[] = [];
  let startTimeUnixNano = 0n;
  let timeUnixNano = 0n;
  let count = 0;
  let sum = 0;
  const quantileValues: { quantile: number; value: number }[] = [];
  let flags = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (2 << 3) | I64:
        startTimeUnixNano = r.fixed64();
        break;
      case (3 << 3) | I64:
        timeUnixNano = r.fixed64();
        break;
      case (4 << 3) | I64:
        count = r.fixed64Number();
        break;
      case (5 << 3) | I64:
        sum = r.double();
        break;
      case (6 << 3) | LEN:
        quantileValues.push(decodeValueAtQuantile(r));
        break;
      case (7 << 3) | LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (8 << 3) | VARINT:
        flags = r.uint32();
        break;
      case (1 << 3) | LEN: // labels, OTLP before 0.9
        decodeLegacyLabelInto(r, attributes);
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { attributes, startTimeUnixNano, timeUnixNano, count, sum, quantileValues, flags };
}

function decodeValueAtQuantile(r: ProtoReader): { quantile: number; value: number } {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.small);
  let quantile = 0;
  let value = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | I64)) quantile = r.double();
    else if (tag === ((2 << 3) | I64)) value = r.double();
    else r.skip(tag & 7);
  }
  checkEnd(r, end);
  return { quantile, value };
}

function decodeExemplarInto(r: ProtoReader, limits: DecodeLimits, into: Exemplar[]): void {
  const index = into.length;
  try {
    const end = r.delimitedEnd();
    r.take(STRUCTURES.small);
    const filteredAttributes: KeyValue[] = [];
    let timeUnixNano = 0n;
    let value = 0;
    let isInt = false;
    let spanId = '';
    let traceId = '';
    while (r.pos < end) {
      const tag = r.uint32();
      switch (tag) {
        case (2 << 3) | I64:
          timeUnixNano = r.fixed64();
          break;
        case (3 << 3) | I64:
          value = r.double();
          isInt = false;
          break;
        case (4 << 3) | LEN:
          spanId = r.id(8, 'spanId');
          break;
        case (5 << 3) | LEN:
          traceId = r.id(16, 'traceId');
          break;
        case (6 << 3) | I64:
          value = r.sfixed64Number();
          isInt = true;
          break;
        case (7 << 3) | LEN:
          decodeAttributeInto(r, limits, filteredAttributes, 'filteredAttributes');
          break;
        default:
          r.skip(tag & 7);
      }
    }
    checkEnd(r, end);
    into.push({ filteredAttributes, timeUnixNano, value, isInt, spanId, traceId });
  } catch (err) {
    throw atPath(err, `exemplars[${index}]`);
  }
}

/** Reads a packed repeated scalar; `width` is the element size in bytes, 0 for varints. */
function readPacked(r: ProtoReader, into: number[], width: number, read: () => number): void {
  const end = r.delimitedEnd();
  // At most one value per byte (varints) or per `width` bytes, 8 to a structure: counted before the list grows.
  r.take(Math.ceil((end - r.pos) / (width || 1) / 8));
  if (width > 0 && (end - r.pos) % width !== 0) {
    r.pos = end;
    throw new MalformedPayloadError(
      `packed field of ${width}-byte values has a length that is not a multiple of ${width}`,
    );
  }
  while (r.pos < end) into.push(read());
  checkEnd(r, end);
}

function zigzag32(n: number): number {
  return (n >>> 1) ^ -(n & 1);
}

/**
 * OTLP/JSON decoder: turns the body of an OTLP/HTTP JSON export request into the receiver's model.
 *
 * It follows the proto3 JSON mapping with the OTLP deviations (opentelemetry-proto
 * docs/specification.md, "JSON Protobuf Encoding"): hex trace and span ids, integer enums,
 * lowerCamelCase keys, unknown fields ignored. 64-bit integers come as decimal strings or numbers,
 * doubles as numbers or "NaN"/"Infinity"/"-Infinity", bytes as base64. Two courtesies beyond the
 * spec, as the OpenTelemetry Collector grants them: enum names ("SPAN_KIND_SERVER") and snake_case
 * keys (noticed at the top of the request, then handled by the slow parse below). And, as the
 * Collector did for years, the names of OTLP before 0.15 that exporters before OpenTelemetry JS 0.29
 * send: `instrumentationLibrarySpans`/`…Metrics`/`…Logs` for the scope lists and
 * `instrumentationLibrary` for the scope (read when the new name is absent).
 *
 * Hot path: one plain JSON.parse, then one small reader per message, building each model object in
 * one literal in the field order of the model interfaces. Only a request using snake_case keys, or
 * holding a timestamp or intValue as a JSON number beyond 2^53 (which JSON.parse rounds), is parsed
 * again with a reviver, several times slower.
 *
 * Errors: a reader throws a MalformedPayloadError (or TooDeepError) naming its field; each enclosing
 * reader prefixes its own path segment as the error unwinds (a try/catch costs nothing until something
 * throws), giving paths such as `resourceSpans[0].scopeSpans[0].spans[2].traceId`.
 */
import {
  type AnyValue,
  type Exemplar,
  type ExponentialBuckets,
  type ExponentialHistogramDataPoint,
  emptyResource,
  emptyScope,
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
  type SpanStatus,
  type SummaryDataPoint,
} from '../../model';
import { MalformedPayloadError, TooDeepError, TooManyStructuresError } from '../errors';
import { type DecodeLimits, type DecodeStats, STRUCTURES } from '../limits';

type JsonObject = Record<string, unknown>;

/**
 * Decodes an OTLP/HTTP JSON export request of `signal`. An empty body or `{}` is an empty request.
 * `stats`, when given, receives the structures counted (DecodeStats.structures), and nothing else.
 */
export function decodeJsonRequest<S extends Signal>(
  signal: S,
  body: Buffer,
  limits: DecodeLimits,
  stats?: DecodeStats,
): SignalData[S] {
  if (body.length === 0) return [] as SignalData[S];
  const maxStructures = limits.maxDecodedStructures ?? Number.MAX_SAFE_INTEGER;
  // JSON.parse builds a tree of the whole text, unknown fields included: bounded before it runs. (A
  // body can count no more than one per byte, so a small one needs no scan.)
  if (body.length > maxStructures && jsonStructures(body) > maxStructures) {
    throw new TooManyStructuresError(maxStructures);
  }
  const text = requestText(body);
  const maxDepth = limits.maxAnyValueDepth;
  const root = parseRoot(text, false);
  let data: SignalData[Signal] | undefined;
  if (!usesSnakeCase(signal, root)) {
    try {
      data = readCounted(signal, root, maxDepth, maxStructures);
    } catch (e) {
      if (e !== ROUNDED_INTEGER) throw e;
    }
  }
  // The slow path, for snake_case keys or an integer that JSON.parse rounded: parse again, exactly.
  data ??= readCounted(signal, parseRoot(text, true), maxDepth, maxStructures);
  if (stats) stats.structures = maxStructures - structuresLeft;
  return data as SignalData[S];
}

/**
 * Structures the model may still be built into (limits.max_decoded_structures), counted down by
 * `take` as the readers go: module state, as decoding is synchronous and never nested.
 */
let structuresLeft = 0;
let structuresLimit = 0;

function take(n: number): void {
  structuresLeft -= n;
  if (structuresLeft < 0) throw new TooManyStructuresError(structuresLimit);
}

function readCounted(signal: Signal, root: JsonObject, maxDepth: number, maxStructures: number): SignalData[Signal] {
  structuresLeft = maxStructures;
  structuresLimit = maxStructures;
  return readRequest(signal, root, maxDepth);
}

/**
 * What JSON.parse would build from `body`, counted on its bytes before it runs: each object and
 * array, and each value or member after a comma at half weight. Quotes, backslashes, braces,
 * brackets and commas are ASCII, never part of a multi-byte UTF-8 sequence, so bytes are enough.
 */
function jsonStructures(body: Buffer): number {
  let containers = 0;
  let commas = 0;
  const n = body.length;
  for (let i = 0; i < n; i++) {
    const c = body[i];
    if (c === 0x22) {
      // A string: skip to its closing quote (one not escaped).
      for (i++; i < n; i++) {
        const d = body[i];
        if (d === 0x22) break;
        if (d === 0x5c) i++;
      }
    } else if (c === 0x7b || c === 0x5b) containers++;
    else if (c === 0x2c) commas++;
  }
  return containers + commas / 2;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Thrown when a timestamp or an AnyValue intValue came as a JSON number beyond 2^53, which
 * JSON.parse may have rounded: the request is then parsed again with a reviver that keeps every
 * digit. Detecting it where it matters keeps the plain JSON.parse free of any pre-scan of the text.
 */
const ROUNDED_INTEGER = new Error('JSON.parse rounded an integer beyond 2^53');

const ROOT_KEY: Record<Signal, string> = {
  traces: 'resourceSpans',
  metrics: 'resourceMetrics',
  logs: 'resourceLogs',
};
const SNAKE_ROOT_KEY: Record<Signal, string> = {
  traces: 'resource_spans',
  metrics: 'resource_metrics',
  logs: 'resource_logs',
};

const INTEGER_SOURCE = /^-?\d+$/;

function requestText(body: Buffer): string {
  const text = body.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // without a byte order mark
}

/** The request object; `exactly` selects the slow parse (see `reviveExactly`). */
function parseRoot(text: string, exactly: boolean): JsonObject {
  let root: unknown;
  try {
    root = exactly ? JSON.parse(text, reviveExactly) : JSON.parse(text);
  } catch (e) {
    throw new MalformedPayloadError(`invalid JSON: ${(e as Error).message}`);
  }
  if (typeof root === 'object' && root !== null && !Array.isArray(root)) return root as JsonObject;
  throw new MalformedPayloadError(`expected a JSON object, got ${describe(root)}`);
}

/** A sender that writes the original proto field names does so everywhere: the top key tells. */
function usesSnakeCase(signal: Signal, root: JsonObject): boolean {
  return root[ROOT_KEY[signal]] === undefined && root[SNAKE_ROOT_KEY[signal]] !== undefined;
}

/**
 * The reviver of the slow parse. An integer beyond 2^53 becomes a bigint: exact, from its source
 * text (Node 24 passes it as `context.source`), when written as digits; so no number left in the
 * tree can be a rounded integer. And snake_case keys become lowerCamelCase.
 */
function reviveExactly(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) || !Number.isInteger(value)) return value;
    const source = context?.source;
    return source !== undefined && INTEGER_SOURCE.test(source) ? BigInt(source) : BigInt(value);
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return withCamelCaseKeys(value as JsonObject);
  }
  return value;
}

function withCamelCaseKeys(object: JsonObject): JsonObject {
  const keys = Object.keys(object);
  if (!keys.some((key) => key.includes('_'))) return object;
  const renamed: JsonObject = {};
  for (const key of keys) renamed[camelCase(key)] = object[key];
  return renamed;
}

function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

function readRequest(signal: Signal, root: JsonObject, maxDepth: number): SignalData[Signal] {
  switch (signal) {
    case 'traces':
      return readList(root.resourceSpans, 'resourceSpans', maxDepth, readResourceSpans);
    case 'metrics':
      return readList(root.resourceMetrics, 'resourceMetrics', maxDepth, readResourceMetrics);
    case 'logs':
      return readList(root.resourceLogs, 'resourceLogs', maxDepth, readResourceLogs);
  }
}

// ---------------------------------------------------------------------------------------------
// Errors and their paths

function invalid(field: string | undefined, expected: string, got: unknown): MalformedPayloadError {
  return new MalformedPayloadError(`expected ${expected}, got ${describe(got)}`, field);
}

/** Prefixes a path segment (`field` or `field[index]`) to an error unwinding; returns the error to rethrow. */
function at(e: unknown, field: string, index?: number): unknown {
  if (e instanceof MalformedPayloadError) e.prefixPath(index === undefined ? field : `${field}[${index}]`);
  return e;
}

/** A short description of a JSON value for an error message. */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

// ---------------------------------------------------------------------------------------------
// Objects and lists

const NO_ITEMS: readonly unknown[] = [];

/** A list item, which must be an object. */
function itemObject(value: unknown): JsonObject {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as JsonObject;
  throw invalid(undefined, 'an object', value);
}

/** An optional message field: undefined when absent or null. */
function optionalObject(value: unknown): JsonObject | undefined {
  if (value == null) return undefined;
  return itemObject(value);
}

function listOf(value: unknown, field: string): readonly unknown[] {
  if (Array.isArray(value)) return value;
  if (value == null) return NO_ITEMS;
  throw invalid(field, 'an array', value);
}

/** A repeated message field, each item read by `readItem`. */
function readList<T>(
  value: unknown,
  field: string,
  maxDepth: number,
  readItem: (item: unknown, maxDepth: number) => T,
): T[] {
  const items = listOf(value, field);
  const out: T[] = [];
  let i = 0;
  try {
    for (; i < items.length; i++) out.push(readItem(items[i], maxDepth));
  } catch (e) {
    throw at(e, field, i);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scalars. `field` is undefined for the items of a repeated field (the list adds `field[i]`).

const MAX_UINT32 = 0xffffffff;
const MIN_INT32 = -0x80000000;
const MAX_INT32 = 0x7fffffff;
const TWO_POW_63 = 2 ** 63;
const TWO_POW_64 = 2 ** 64;
const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;
const MAX_UINT64 = 2n ** 64n - 1n;
const OUT_OF_RANGE = 2n ** 64n;

const DECIMAL = /^-?\d+$/;
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const TRACE_ID = /^[0-9a-fA-F]{32}$/;
const SPAN_ID = /^[0-9a-fA-F]{16}$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function readString(value: unknown, field: string): string {
  if (typeof value === 'string') return value;
  if (value == null) return '';
  throw invalid(field, 'a string', value);
}

function readBool(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value == null) return false;
  throw invalid(field, 'a boolean', value);
}

/** An integer as a number: a JSON number, a decimal string, or a bigint from the slow parse. */
function integerAsNumber(value: unknown, field: string | undefined): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value;
  } else if (typeof value === 'string') {
    if (DECIMAL.test(value)) return Number(value);
  } else if (typeof value === 'bigint') {
    return Number(value);
  }
  throw invalid(field, 'an integer', value);
}

/** An integer as an exact bigint: a JSON number, a decimal string, or a bigint from the slow parse. */
function integerAsBigInt(value: unknown, field: string): bigint {
  if (typeof value === 'string') {
    // Beyond 21 characters ('-' and 20 digits) it is out of every 64-bit range, which the caller
    // reports; and BigInt would take long over a huge string.
    if (DECIMAL.test(value)) return value.length <= 21 ? BigInt(value) : OUT_OF_RANGE;
  } else if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return BigInt(value);
    if (Number.isInteger(value)) throw ROUNDED_INTEGER;
  } else if (typeof value === 'bigint') {
    return value;
  }
  throw invalid(field, 'an integer', value);
}

/** uint32 and fixed32 fields: counts of dropped items, flags. */
function readUint32(value: unknown, field: string): number {
  if (value == null) return 0;
  const n = integerAsNumber(value, field);
  if (n < 0 || n > MAX_UINT32) throw invalid(field, 'an unsigned 32-bit integer', value);
  return n;
}

/** int32 and sint32 fields: exponential histogram scale and offset. */
function readInt32(value: unknown, field: string): number {
  if (value == null) return 0;
  const n = integerAsNumber(value, field);
  if (n < MIN_INT32 || n > MAX_INT32) throw invalid(field, 'a 32-bit integer', value);
  return n;
}

/** uint64 and fixed64 counts, kept as numbers by the model (exact up to 2^53; 2^64 - 1 rounds to 2^64). */
function readCount(value: unknown, field: string | undefined): number {
  if (value == null) return 0;
  const n = integerAsNumber(value, field);
  if (n < 0 || n > TWO_POW_64) throw invalid(field, 'an unsigned 64-bit integer', value);
  return n;
}

/** NumberDataPoint and Exemplar `asInt`, an int64 kept as a number by the model (2^63 - 1 rounds to 2^63). */
function readInt64AsNumber(value: unknown, field: string): number {
  const n = integerAsNumber(value, field);
  if (n < -TWO_POW_63 || n > TWO_POW_63) throw invalid(field, 'a 64-bit integer', value);
  return n;
}

/** fixed64 timestamps in nanoseconds. */
function readTimestamp(value: unknown, field: string): bigint {
  if (value == null) return 0n;
  const n = integerAsBigInt(value, field);
  if (n < 0n || n > MAX_UINT64) throw invalid(field, 'an unsigned 64-bit integer', value);
  return n;
}

/** AnyValue `intValue`. */
function readInt64(value: unknown, field: string): bigint {
  const n = integerAsBigInt(value, field);
  if (n < MIN_INT64 || n > MAX_INT64) throw invalid(field, 'a 64-bit integer', value);
  return n;
}

function readDouble(value: unknown, field: string | undefined): number {
  if (typeof value === 'number') return value;
  if (value == null) return 0;
  if (typeof value === 'string') {
    const n = doubleFromString(value);
    if (n !== undefined) return n;
  } else if (typeof value === 'bigint') {
    return Number(value);
  }
  throw invalid(field, 'a number', value);
}

/** An optional double (histogram sum, min, max): undefined when absent. */
function readOptionalDouble(value: unknown, field: string): number | undefined {
  return value == null ? undefined : readDouble(value, field);
}

/** Proto3 JSON accepts doubles as strings too, among which the special values. */
function doubleFromString(s: string): number | undefined {
  if (s === 'NaN') return Number.NaN;
  if (s === 'Infinity') return Number.POSITIVE_INFINITY;
  if (s === '-Infinity') return Number.NEGATIVE_INFINITY;
  return JSON_NUMBER.test(s) ? Number(s) : undefined;
}

/** An enum: its integer, or (a courtesy, as the Collector grants it) one of its names. */
function readEnum(value: unknown, field: string, names: ReadonlyMap<string, number>): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= MIN_INT32 && value <= MAX_INT32) return value;
  } else if (value == null) {
    return 0;
  } else if (typeof value === 'string') {
    const n = names.get(value);
    if (n !== undefined) return n;
  }
  throw invalid(field, 'an enum integer', value);
}

function readTraceId(value: unknown, field: string): string {
  return readHexId(value, field, TRACE_ID, 32);
}

function readSpanId(value: unknown, field: string): string {
  return readHexId(value, field, SPAN_ID, 16);
}

function readHexId(value: unknown, field: string, pattern: RegExp, length: number): string {
  if (typeof value === 'string') {
    if (value === '') return '';
    if (pattern.test(value)) return value.toLowerCase();
  } else if (value == null) {
    return '';
  }
  throw new MalformedPayloadError(`expected ${length} hex characters, got ${describe(value)}`, field);
}

/** A bytes field: standard or URL-safe base64, padded or not. */
function readBytes(value: unknown, field: string): Uint8Array {
  if (typeof value === 'string' && value.length % 4 !== 1 && BASE64.test(value)) {
    const bytes = new Uint8Array(Buffer.byteLength(value, 'base64'));
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).write(value, 'base64');
    return bytes;
  }
  if (value == null) return new Uint8Array(0);
  throw invalid(field, 'a base64 string', value);
}

// ---------------------------------------------------------------------------------------------
// Enum names, accepted as a courtesy

function enumNames(prefix: string, names: readonly string[]): ReadonlyMap<string, number> {
  return new Map(names.map((name, i) => [`${prefix}${name}`, i]));
}

const SPAN_KIND_NAMES = enumNames('SPAN_KIND_', [
  'UNSPECIFIED',
  'INTERNAL',
  'SERVER',
  'CLIENT',
  'PRODUCER',
  'CONSUMER',
]);
const STATUS_CODE_NAMES = enumNames('STATUS_CODE_', ['UNSET', 'OK', 'ERROR']);
const TEMPORALITY_NAMES = enumNames('AGGREGATION_TEMPORALITY_', ['UNSPECIFIED', 'DELTA', 'CUMULATIVE']);
const SEVERITY_NAMES = enumNames('SEVERITY_NUMBER_', [
  'UNSPECIFIED',
  ...['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'].flatMap((level) => [
    level,
    `${level}2`,
    `${level}3`,
    `${level}4`,
  ]),
]);

// ---------------------------------------------------------------------------------------------
// Common messages

function readResource(value: unknown, maxDepth: number): Resource {
  try {
    const o = optionalObject(value);
    if (o === undefined) return emptyResource();
    return {
      attributes: readAttributes(o.attributes, 'attributes', maxDepth),
      droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
    };
  } catch (e) {
    throw at(e, 'resource');
  }
}

function readScope(value: unknown, maxDepth: number): InstrumentationScope {
  try {
    const o = optionalObject(value);
    if (o === undefined) return emptyScope();
    return {
      name: readString(o.name, 'name'),
      version: readString(o.version, 'version'),
      attributes: readAttributes(o.attributes, 'attributes', maxDepth),
      droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
    };
  } catch (e) {
    throw at(e, 'scope');
  }
}

/** A list of KeyValue whose values are at AnyValue depth 1. */
function readAttributes(value: unknown, field: string, maxDepth: number): KeyValue[] {
  return readKeyValues(value, field, 1, maxDepth);
}

function readKeyValues(value: unknown, field: string, depth: number, maxDepth: number): KeyValue[] {
  const items = listOf(value, field);
  const out: KeyValue[] = [];
  let i = 0;
  try {
    for (; i < items.length; i++) out.push(readKeyValue(items[i], depth, maxDepth));
  } catch (e) {
    throw at(e, field, i);
  }
  return out;
}

function readKeyValue(item: unknown, depth: number, maxDepth: number): KeyValue {
  take(STRUCTURES.value);
  const o = itemObject(item);
  const key = readString(o.key, 'key');
  let value: AnyValue;
  try {
    value = readAnyValue(o.value, depth, maxDepth);
  } catch (e) {
    throw at(e, 'value');
  }
  return { key, value };
}

/** An AnyValue at nesting `depth` (1 for an attribute value or a log body). */
function readAnyValue(value: unknown, depth: number, maxDepth: number): AnyValue {
  if (depth > maxDepth) throw new TooDeepError(maxDepth);
  const o = optionalObject(value);
  if (o === undefined) return undefined;
  // The oneof members, the most frequent first; an object with none of them is an empty AnyValue.
  if (o.stringValue !== undefined) return readString(o.stringValue, 'stringValue');
  if (o.intValue !== undefined) return readInt64(o.intValue, 'intValue');
  if (o.boolValue !== undefined) return readBool(o.boolValue, 'boolValue');
  if (o.doubleValue !== undefined) return readDouble(o.doubleValue, 'doubleValue');
  if (o.arrayValue !== undefined) return readArrayValue(o.arrayValue, depth, maxDepth);
  if (o.kvlistValue !== undefined) return readKvlistValue(o.kvlistValue, depth, maxDepth);
  if (o.bytesValue !== undefined) return readBytes(o.bytesValue, 'bytesValue');
  return undefined;
}

function readArrayValue(value: unknown, depth: number, maxDepth: number): AnyValue[] {
  take(STRUCTURES.list);
  try {
    const o = optionalObject(value);
    const items = listOf(o?.values, 'values');
    const out: AnyValue[] = [];
    let i = 0;
    try {
      for (; i < items.length; i++) {
        take(STRUCTURES.value);
        out.push(readAnyValue(items[i], depth + 1, maxDepth));
      }
    } catch (e) {
      throw at(e, 'values', i);
    }
    return out;
  } catch (e) {
    throw at(e, 'arrayValue');
  }
}

function readKvlistValue(value: unknown, depth: number, maxDepth: number): KeyValueList {
  take(STRUCTURES.list);
  try {
    const o = optionalObject(value);
    return new KeyValueList(readKeyValues(o?.values, 'values', depth + 1, maxDepth));
  } catch (e) {
    throw at(e, 'kvlistValue');
  }
}

// ---------------------------------------------------------------------------------------------
// Traces

function readResourceSpans(item: unknown, maxDepth: number): ResourceSpans {
  take(STRUCTURES.resource);
  const o = itemObject(item);
  return {
    resource: readResource(o.resource, maxDepth),
    scopeSpans:
      o.scopeSpans == null && o.instrumentationLibrarySpans != null
        ? readList(o.instrumentationLibrarySpans, 'instrumentationLibrarySpans', maxDepth, readScopeSpans)
        : readList(o.scopeSpans, 'scopeSpans', maxDepth, readScopeSpans),
    schemaUrl: readString(o.schemaUrl, 'schemaUrl'),
  };
}

function readScopeSpans(item: unknown, maxDepth: number): ScopeSpans {
  take(STRUCTURES.scope);
  const o = itemObject(item);
  return {
    scope: readScope(o.scope ?? o.instrumentationLibrary, maxDepth),
    spans: readList(o.spans, 'spans', maxDepth, readSpan),
    schemaUrl: readString(o.schemaUrl, 'schemaUrl'),
  };
}

function readSpan(item: unknown, maxDepth: number): Span {
  take(STRUCTURES.span);
  const o = itemObject(item);
  return {
    traceId: readTraceId(o.traceId, 'traceId'),
    spanId: readSpanId(o.spanId, 'spanId'),
    traceState: readString(o.traceState, 'traceState'),
    parentSpanId: readSpanId(o.parentSpanId, 'parentSpanId'),
    flags: readUint32(o.flags, 'flags'),
    name: readString(o.name, 'name'),
    kind: readEnum(o.kind, 'kind', SPAN_KIND_NAMES),
    startTimeUnixNano: readTimestamp(o.startTimeUnixNano, 'startTimeUnixNano'),
    endTimeUnixNano: readTimestamp(o.endTimeUnixNano, 'endTimeUnixNano'),
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
    events: readList(o.events, 'events', maxDepth, readSpanEvent),
    droppedEventsCount: readUint32(o.droppedEventsCount, 'droppedEventsCount'),
    links: readList(o.links, 'links', maxDepth, readSpanLink),
    droppedLinksCount: readUint32(o.droppedLinksCount, 'droppedLinksCount'),
    status: readStatus(o.status),
  };
}

function readSpanEvent(item: unknown, maxDepth: number): SpanEvent {
  take(STRUCTURES.eventOrLink);
  const o = itemObject(item);
  return {
    timeUnixNano: readTimestamp(o.timeUnixNano, 'timeUnixNano'),
    name: readString(o.name, 'name'),
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
  };
}

function readSpanLink(item: unknown, maxDepth: number): SpanLink {
  take(STRUCTURES.eventOrLink);
  const o = itemObject(item);
  return {
    traceId: readTraceId(o.traceId, 'traceId'),
    spanId: readSpanId(o.spanId, 'spanId'),
    traceState: readString(o.traceState, 'traceState'),
    attributes: readAttributes(o.attributes, 'attributes', maxDepth),
    droppedAttributesCount: readUint32(o.droppedAttributesCount, 'droppedAttributesCount'),
    flags: readUint32(o.flags, 'flags'),
  };
}

function readStatus(value: unknown): SpanStatus {
  try {
    const o = optionalObject(value);
    if (o === undefined) return { message: '', code: 0 };
    return {
      message: readString(o.message, 'message'),
      code: readEnum(o.code, 'code', STATUS_CODE_NAMES),
    };
  } catch (e) {
    throw at(e, 'status');
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics

function readResourceMetrics(item: unknown, maxDepth: number): ResourceMetrics {
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

// ---------------------------------------------------------------------------------------------
// Logs

function readResourceLogs(item: unknown, maxDepth: number): ResourceLogs {
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

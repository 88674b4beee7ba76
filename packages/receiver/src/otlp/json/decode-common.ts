/**
 * OTLP/JSON decoding shared by the three signals (see decode.ts for the mapping and its courtesies):
 * the count of structures built, errors and their paths, lists, scalars, enum names, and the
 * `common` and `resource` messages (AnyValue, KeyValue, Resource, InstrumentationScope).
 */
import {
  type AnyValue,
  emptyResource,
  emptyScope,
  type InstrumentationScope,
  type KeyValue,
  KeyValueList,
  type Resource,
} from '../../model';
import { MalformedPayloadError, TooDeepError, TooManyStructuresError } from '../errors';
import { STRUCTURES } from '../limits';

export type JsonObject = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// The count of structures built

/**
 * Structures the model may still be built into (limits.max_decoded_structures), counted down by
 * `take` as the readers go: module state, as decoding is synchronous and never nested.
 */
let structuresLeftToBuild = 0;
let structuresLimit = 0;

export function take(n: number): void {
  structuresLeftToBuild -= n;
  if (structuresLeftToBuild < 0) throw new TooManyStructuresError(structuresLimit);
}

/** Starts the count of one request: `maxStructures` may be built. */
export function startCounting(maxStructures: number): void {
  structuresLeftToBuild = maxStructures;
  structuresLimit = maxStructures;
}

/** What is left of the count started last. */
export function structuresLeft(): number {
  return structuresLeftToBuild;
}

/**
 * Thrown when a timestamp or an AnyValue intValue came as a JSON number beyond 2^53, which
 * JSON.parse may have rounded: the request is then parsed again with a reviver that keeps every
 * digit. Detecting it where it matters keeps the plain JSON.parse free of any pre-scan of the text.
 */
export const ROUNDED_INTEGER = new Error('JSON.parse rounded an integer beyond 2^53');

// ---------------------------------------------------------------------------------------------
// Errors and their paths

export function invalid(field: string | undefined, expected: string, got: unknown): MalformedPayloadError {
  return new MalformedPayloadError(`expected ${expected}, got ${describe(got)}`, field);
}

/** Prefixes a path segment (`field` or `field[index]`) to an error unwinding; returns the error to rethrow. */
export function at(e: unknown, field: string, index?: number): unknown {
  if (e instanceof MalformedPayloadError) e.prefixPath(index === undefined ? field : `${field}[${index}]`);
  return e;
}

/** A short description of a JSON value for an error message. */
export function describe(value: unknown): string {
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
export function itemObject(value: unknown): JsonObject {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as JsonObject;
  throw invalid(undefined, 'an object', value);
}

/** An optional message field: undefined when absent or null. */
export function optionalObject(value: unknown): JsonObject | undefined {
  if (value == null) return undefined;
  return itemObject(value);
}

export function listOf(value: unknown, field: string): readonly unknown[] {
  if (Array.isArray(value)) return value;
  if (value == null) return NO_ITEMS;
  throw invalid(field, 'an array', value);
}

/** A repeated message field, each item read by `readItem`. */
export function readList<T>(
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

export function readString(value: unknown, field: string): string {
  if (typeof value === 'string') return value;
  if (value == null) return '';
  throw invalid(field, 'a string', value);
}

export function readBool(value: unknown, field: string): boolean {
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
export function readUint32(value: unknown, field: string): number {
  if (value == null) return 0;
  const n = integerAsNumber(value, field);
  if (n < 0 || n > MAX_UINT32) throw invalid(field, 'an unsigned 32-bit integer', value);
  return n;
}

/** int32 and sint32 fields: exponential histogram scale and offset. */
export function readInt32(value: unknown, field: string): number {
  if (value == null) return 0;
  const n = integerAsNumber(value, field);
  if (n < MIN_INT32 || n > MAX_INT32) throw invalid(field, 'a 32-bit integer', value);
  return n;
}

/** uint64 and fixed64 counts, kept as numbers by the model (exact up to 2^53; 2^64 - 1 rounds to 2^64). */
export function readCount(value: unknown, field: string | undefined): number {
  if (value == null) return 0;
  const n = integerAsNumber(value, field);
  if (n < 0 || n > TWO_POW_64) throw invalid(field, 'an unsigned 64-bit integer', value);
  return n;
}

/** NumberDataPoint and Exemplar `asInt`, an int64 kept as a number by the model (2^63 - 1 rounds to 2^63). */
export function readInt64AsNumber(value: unknown, field: string): number {
  const n = integerAsNumber(value, field);
  if (n < -TWO_POW_63 || n > TWO_POW_63) throw invalid(field, 'a 64-bit integer', value);
  return n;
}

/** fixed64 timestamps in nanoseconds. */
export function readTimestamp(value: unknown, field: string): bigint {
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

export function readDouble(value: unknown, field: string | undefined): number {
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
export function readOptionalDouble(value: unknown, field: string): number | undefined {
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
export function readEnum(value: unknown, field: string, names: ReadonlyMap<string, number>): number {
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

export function readTraceId(value: unknown, field: string): string {
  return readHexId(value, field, TRACE_ID, 32);
}

export function readSpanId(value: unknown, field: string): string {
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
// Enum names, accepted as a courtesy; each signal's maps are in its file.

export function enumNames(prefix: string, names: readonly string[]): ReadonlyMap<string, number> {
  return new Map(names.map((name, i) => [`${prefix}${name}`, i]));
}

// ---------------------------------------------------------------------------------------------
// Common messages

export function readResource(value: unknown, maxDepth: number): Resource {
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

export function readScope(value: unknown, maxDepth: number): InstrumentationScope {
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
export function readAttributes(value: unknown, field: string, maxDepth: number): KeyValue[] {
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
export function readAnyValue(value: unknown, depth: number, maxDepth: number): AnyValue {
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

/**
 * OTLP/JSON encoding shared by the three signals (see encode.ts): fields and the `common` and
 * `resource` messages.
 */
import { type AnyValue, type InstrumentationScope, type KeyValue, KeyValueList, type Resource } from '../../model';

export type JsonObject = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Fields: each `put` leaves out a zero value.

export function putString(out: JsonObject, key: string, value: string): void {
  if (value !== '') out[key] = value;
}

export function putInteger(out: JsonObject, key: string, value: number): void {
  if (value !== 0) out[key] = value;
}

/** A 64-bit integer field (timestamps, counts): a decimal string. */
export function putInt64(out: JsonObject, key: string, value: bigint | number): void {
  if (value !== 0n && value !== 0) out[key] = int64String(value);
}

export function putDouble(out: JsonObject, key: string, value: number): void {
  if (value !== 0) out[key] = double(value);
}

/** An optional double: written whenever present, even when zero. */
export function putOptionalDouble(out: JsonObject, key: string, value: number | undefined): void {
  if (value !== undefined) out[key] = double(value);
}

export function putBool(out: JsonObject, key: string, value: boolean): void {
  if (value) out[key] = true;
}

export function putList<T>(out: JsonObject, key: string, items: readonly T[], encodeItem: (item: T) => unknown): void {
  if (items.length > 0) out[key] = items.map(encodeItem);
}

export function putAttributes(out: JsonObject, key: string, attributes: readonly KeyValue[]): void {
  putList(out, key, attributes, encodeKeyValue);
}

export function int64String(value: bigint | number): string {
  if (typeof value === 'bigint' || Number.isSafeInteger(value)) return value.toString();
  return Number.isFinite(value) ? BigInt(Math.trunc(value)).toString() : '0';
}

/** A double as proto3 JSON writes it: a number, or a string for the non-finite values. */
export function double(value: number): number | string {
  if (Number.isFinite(value)) return value;
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? 'Infinity' : '-Infinity';
}

export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

// ---------------------------------------------------------------------------------------------
// Common messages

export function putResource(out: JsonObject, resource: Resource): void {
  const json: JsonObject = {};
  putAttributes(json, 'attributes', resource.attributes);
  putInteger(json, 'droppedAttributesCount', resource.droppedAttributesCount);
  if (Object.keys(json).length > 0) out.resource = json;
}

export function putScope(out: JsonObject, scope: InstrumentationScope): void {
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
export function encodeAnyValue(value: AnyValue): JsonObject {
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

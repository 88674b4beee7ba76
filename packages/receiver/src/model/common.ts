/**
 * The receiver's internal telemetry model. It mirrors OTLP (opentelemetry-proto v1) so that every
 * consumer reads one shape whatever the transport, and so that it encodes back to OTLP losslessly.
 *
 * Representation choices (made for the decode hot path and for exactness):
 * - trace and span ids are lowercase hex strings ('' when absent);
 * - timestamps are unsigned nanoseconds since the Unix epoch as `bigint` (0n when absent);
 * - an AnyValue `int_value` is a `bigint`, a `double_value` a `number`, so the two never mix up;
 * - metric values and counts (`as_int`, histogram counts, bucket counts) are `number`s: exact up to
 *   2^53, beyond which they round, as they do in Prometheus (float64) anyway;
 * - a data point or exemplar with neither `as_double` nor `as_int` reads as the double 0.
 */

/** OTLP AnyValue. `undefined` stands for an AnyValue with no value set. */
export type AnyValue = string | boolean | number | bigint | Uint8Array | AnyValue[] | KeyValueList | undefined;

/** OTLP KeyValueList: kept as a class so it can be told apart from an ArrayValue (a plain array). */
export class KeyValueList {
  constructor(public values: KeyValue[]) {}
}

export interface KeyValue {
  key: string;
  value: AnyValue;
  /**
   * Where this item's field starts in the request's protobuf body (the offset of its tag), when the
   * protobuf decoder built it (-1 for one nested in a value): the edits of a patch name items by it
   * (otlp/protobuf/patch.ts).
   */
  at?: number;
}

export interface Resource {
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface InstrumentationScope {
  name: string;
  version: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export function emptyResource(): Resource {
  return { attributes: [], droppedAttributesCount: 0 };
}

export function emptyScope(): InstrumentationScope {
  return { name: '', version: '', attributes: [], droppedAttributesCount: 0 };
}

/** The first value of `key` in a set of attributes, or undefined. */
export function attributeValue(attributes: readonly KeyValue[], key: string): AnyValue {
  for (const kv of attributes) if (kv.key === key) return kv.value;
  return undefined;
}

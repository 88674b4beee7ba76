/**
 * A span's adjusted count: how many spans it stands for after sampling, so that span metrics and the
 * service graph count calls, not samples.
 *
 * 1. The OpenTelemetry sampling threshold in the W3C `tracestate` (`ot=th:<hex>`, OpenTelemetry's
 *    "TraceState: Probability Sampling"): the threshold T is 1 to 14 hex digits, padded on the right
 *    with zeros to 56 bits; a span was kept with probability (2^56 − T) / 2^56, so its adjusted count
 *    is 2^56 / (2^56 − T). `th:0` is 100% sampling (1).
 * 2. Otherwise, the number in a configured span attribute, else resource attribute (Tempo's
 *    `span_multiplier_key`), e.g. set by the service next to a TraceIdRatioBased sampler.
 * 3. Otherwise 1.
 *
 * A malformed threshold, and a multiplier that is not a finite number ≥ 1 (a numeric string counts),
 * are ignored (the next source applies). Counts are at most 2^56, the spec's largest.
 */
import { type AnyValue, attributeValue, type KeyValue } from '../model';
import { attributesInBytes, firstValues, KeySet } from '../otlp/protobuf/lean';

const TWO_56 = 2n ** 56n;
export const MAX_ADJUSTED_COUNT = 2 ** 56;
const HEX_THRESHOLD = /^[0-9a-f]{1,14}$/;

/** The adjusted count of a `th` value (1 to 14 lowercase hex digits); undefined when malformed. */
export function adjustedCountOfThreshold(th: string): number | undefined {
  if (!HEX_THRESHOLD.test(th)) return undefined;
  const threshold = BigInt(`0x${th.padEnd(14, '0')}`);
  return MAX_ADJUSTED_COUNT / Number(TWO_56 - threshold);
}

/** The adjusted count that a `tracestate` header value gives (its `ot` member's `th`); undefined without one. */
export function adjustedCountOfTraceState(traceState: string): number | undefined {
  if (!traceState.includes('th:')) return undefined;
  for (const member of traceState.split(',')) {
    const eq = member.indexOf('=');
    if (eq < 0 || member.slice(0, eq).trim() !== 'ot') continue;
    for (const field of member
      .slice(eq + 1)
      .trim()
      .split(';')) {
      if (field.startsWith('th:')) return adjustedCountOfThreshold(field.slice(3));
    }
    return undefined;
  }
  return undefined;
}

/** A multiplier attribute's value as an adjusted count; undefined unless a finite number ≥ 1. */
export function adjustedCountOfValue(value: AnyValue): number | undefined {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'bigint') n = Number(value);
  else if (typeof value === 'string' && value.trim() !== '') n = Number(value);
  else return undefined;
  if (!Number.isFinite(n) || n < 1) return undefined;
  return Math.min(n, MAX_ADJUSTED_COUNT);
}

/** Computes adjusted counts; remembers the last tracestate parsed (the spans of a trace share it). */
export class AdjustedCounter {
  private lastTraceState = '';
  private lastCount: number | undefined;

  private readonly multiplierKeys: KeySet;
  private readonly found: AnyValue[] = [undefined];

  /** @param multiplierKey the span/resource attribute holding a multiplier ('' for none). */
  constructor(private readonly multiplierKey: string) {
    this.multiplierKeys = new KeySet([multiplierKey]);
  }

  /**
   * The adjusted count of a span (its trace state, and `item`'s attributes, read only when a
   * multiplier key is set: a lean span's attributes are then not decoded for nothing).
   */
  of(traceState: string, item: { readonly attributes: readonly KeyValue[] }, resource: readonly KeyValue[]): number {
    if (traceState !== '') {
      if (traceState !== this.lastTraceState) {
        this.lastTraceState = traceState;
        this.lastCount = adjustedCountOfTraceState(traceState);
      }
      if (this.lastCount !== undefined) return this.lastCount;
    }
    const key = this.multiplierKey;
    if (key === '') return 1;
    let fromSpan: AnyValue;
    if (attributesInBytes(item)) {
      // A lean span's attributes still in bytes: the key found there (the caller ends the lookups).
      firstValues(item, this.multiplierKeys, this.found);
      fromSpan = this.found[0];
    } else fromSpan = attributeValue(item.attributes, key);
    const value = fromSpan === undefined ? attributeValue(resource, key) : fromSpan;
    return value === undefined ? 1 : (adjustedCountOfValue(value) ?? 1);
  }
}

/**
 * HyperLogLog: a fixed-size sketch that estimates how many distinct values were added, with a
 * relative standard error of about 1.04/√m for m = 2^precision registers (precision 14: 16,384
 * one-byte registers, 16 KiB, standard error 0.81%). The values themselves are never kept: each
 * one is hashed (SHA-256, first 64 bits) and only the register it falls in keeps the largest
 * "number of leading zeros + 1" seen, so nothing in a sketch can be turned back into a value.
 *
 * The estimate is Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
 * sketches", 2017, algorithm 6): unbiased from zero to far beyond any number of people, without the
 * empirical bias tables of HyperLogLog++ and without the switch to linear counting of the original.
 *
 * No npm package was taken: the maintained ones bring a dependency tree for a 100-line structure, or
 * hash with a non-cryptographic hash of their own choosing; this one is tested here for its error
 * bound (test/consent-hll.test.ts).
 */
import { createHash } from 'node:crypto';

export const MIN_PRECISION = 4;
export const MAX_PRECISION = 18;
/** The precision when none is given (and consent_people.precision's default): 16,384 registers, 0.81%. */
export const DEFAULT_PRECISION = 14;

/** The relative standard error of the estimate at a precision (1.04/√m). */
export function standardError(precision: number): number {
  return 1.04 / Math.sqrt(2 ** precision);
}

/** The 64-bit hash of a value, as two 32-bit halves [high, low]. */
export function hash64(value: string): [number, number] {
  const d = createHash('sha256').update(value, 'utf8').digest();
  return [d.readUInt32BE(0), d.readUInt32BE(4)];
}

export class HyperLogLog {
  readonly precision: number;
  readonly registers: Uint8Array;

  constructor(precision = DEFAULT_PRECISION) {
    if (!Number.isInteger(precision) || precision < MIN_PRECISION || precision > MAX_PRECISION)
      throw new RangeError(`HyperLogLog precision must be an integer from ${MIN_PRECISION} to ${MAX_PRECISION}`);
    this.precision = precision;
    this.registers = new Uint8Array(2 ** precision);
  }

  /** Bytes held by the sketch (fixed at construction). */
  get bytes(): number {
    return this.registers.byteLength;
  }

  add(value: string): void {
    this.addHash(hash64(value));
  }

  /** Adds a 64-bit hash: the first `precision` bits pick the register, the rest give the rank. */
  addHash([high, low]: [number, number]): void {
    const p = this.precision;
    const index = high >>> (32 - p);
    // The remaining 64 - p bits, and the position of their first 1 (64 - p + 1 when all are zero).
    const restHigh = (high << p) >>> 0; // the low 32 - p bits of `high`, shifted to the top
    let rank: number;
    if (restHigh !== 0) rank = Math.clz32(restHigh) + 1;
    else if (low !== 0) rank = 32 - p + Math.clz32(low) + 1;
    else rank = 64 - p + 1;
    if (rank > this.registers[index]) this.registers[index] = rank;
  }

  /** Folds another sketch of the same precision into this one (the union of both sets). */
  merge(other: HyperLogLog): void {
    if (other.precision !== this.precision)
      throw new RangeError('cannot merge HyperLogLog sketches of different precisions');
    const a = this.registers;
    const b = other.registers;
    for (let i = 0; i < a.length; i++) if (b[i] > a[i]) a[i] = b[i];
  }

  clear(): void {
    this.registers.fill(0);
  }

  estimate(): number {
    return estimateFrom(this.registers, this.precision);
  }
}

/** Ertl's improved estimator over the registers' histogram. */
export function estimateFrom(registers: Uint8Array, precision: number): number {
  const m = registers.length;
  const q = 64 - precision;
  const counts = new Array<number>(q + 2).fill(0);
  for (let i = 0; i < m; i++) counts[registers[i]]++;
  if (counts[0] === m) return 0;
  let z = m * tau(1 - counts[q + 1] / m);
  for (let k = q; k >= 1; k--) z = 0.5 * (z + counts[k]);
  z += m * sigma(counts[0] / m);
  const alphaInf = 1 / (2 * Math.LN2);
  return (alphaInf * m * m) / z;
}

function sigma(x: number): number {
  if (x === 1) return Number.POSITIVE_INFINITY;
  let y = 1;
  let z = x;
  for (;;) {
    x *= x;
    const previous = z;
    z += x * y;
    y += y;
    if (z === previous) return z;
  }
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  for (;;) {
    x = Math.sqrt(x);
    const previous = z;
    y *= 0.5;
    z -= (1 - x) ** 2 * y;
    if (z === previous) return z / 3;
  }
}

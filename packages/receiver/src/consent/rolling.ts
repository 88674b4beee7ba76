/**
 * Distinct values over a rolling window: the window is cut into `windowMs / bucketMs` buckets, each a
 * HyperLogLog sketch of the values added in it; the estimate merges the buckets of the window (the
 * current bucket and those before it, so the window spans between `windowMs - bucketMs` and
 * `windowMs`). A bucket's sketch is reused, cleared, when its slot comes round again, so memory is
 * fixed: at most `windowMs / bucketMs` sketches of 2^precision bytes, whatever is added.
 */
import { HyperLogLog, hash64 } from './hll';

export class RollingSketch {
  private readonly slots: ({ bucket: number; sketch: HyperLogLog } | undefined)[];
  private readonly merged: HyperLogLog;
  private cache: { bucket: number; value: number } | undefined;

  constructor(
    readonly windowMs: number,
    readonly bucketMs: number,
    readonly precision: number,
  ) {
    if (!(bucketMs > 0) || !(windowMs >= bucketMs) || windowMs % bucketMs !== 0)
      throw new RangeError('a rolling sketch needs a window that is a whole number of buckets');
    this.slots = new Array(windowMs / bucketMs).fill(undefined);
    this.merged = new HyperLogLog(precision);
  }

  /** The most bytes this sketch ever holds (every bucket allocated, plus the merge buffer). */
  get maxBytes(): number {
    return (this.slots.length + 1) * 2 ** this.precision;
  }

  /** The bytes it holds now. */
  get bytes(): number {
    let n = this.merged.bytes;
    for (const s of this.slots) if (s) n += s.sketch.bytes;
    return n;
  }

  /**
   * Adds a value seen at `time`, or a 64-bit hash of it. Returns false (nothing added) when `time` is
   * before the window that ends at `now`; a time after `now` counts as now.
   */
  add(value: string | [number, number], time: number, now: number): boolean {
    const nowBucket = Math.floor(now / this.bucketMs);
    const bucket = Math.min(Math.floor(time / this.bucketMs), nowBucket);
    if (bucket <= nowBucket - this.slots.length) return false;
    const index = bucket % this.slots.length;
    let slot = this.slots[index];
    if (!slot) {
      slot = { bucket, sketch: new HyperLogLog(this.precision) };
      this.slots[index] = slot;
    } else if (slot.bucket !== bucket) {
      if (slot.bucket > bucket) return false; // the slot already holds a later bucket: `bucket` left the window
      slot.sketch.clear();
      slot.bucket = bucket;
    }
    slot.sketch.addHash(typeof value === 'string' ? hash64(value) : value);
    this.cache = undefined;
    return true;
  }

  /** Distinct values added within the window that ends at `now`. */
  estimate(now: number): number {
    const nowBucket = Math.floor(now / this.bucketMs);
    if (this.cache?.bucket === nowBucket) return this.cache.value;
    this.merged.clear();
    for (const slot of this.slots)
      if (slot && slot.bucket > nowBucket - this.slots.length && slot.bucket <= nowBucket)
        this.merged.merge(slot.sketch);
    const value = this.merged.estimate();
    this.cache = { bucket: nowBucket, value };
    return value;
  }
}

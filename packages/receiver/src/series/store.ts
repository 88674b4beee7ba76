/**
 * The state behind the Prometheus exposition: one family per translated metric name, one series per
 * label set, each holding the cumulative value Prometheus expects.
 *
 * - Cumulative points replace the series' value. A delta point is an increment over its own interval
 *   and is added to the series whatever its start and end times (the Collector's deltatocumulative
 *   processor, Prometheus's OTLP receiver): many short-lived sources (browser pages: same job, no
 *   service.instance.id) share one series, so a start time that goes back, an interval that overlaps
 *   another, or an end time before the series' newest are other sources' points, not restarts or
 *   duplicates; a delta never resets its series. A delta whose end time is more than `maxDeltaAgeMs`
 *   behind the receiver's clock is refused (`delta_too_old`, counted); a delta histogram whose
 *   bucket bounds differ from the series' is refused (`bucket_layout_changed`, counted) and the series
 *   keeps its sums; a delta exponential histogram of another scale is merged at the coarser scale.
 * - Non-monotonic deltas and points without temporality are dropped (counted), as the Collector does.
 * - Out-of-order and duplicate cumulative points (time not after the series' last time) are dropped
 *   (counted).
 * - Two writers of one cumulative series (replicas of a service without a service.instance.id, so
 *   with the same job and instance) are never mixed: a point whose start time is earlier than the
 *   series' (one process's start time never goes back; a restart only moves it forward), or whose
 *   count went down without a new start time, comes from another writer; it is dropped and counted
 *   (`conflicting_writer`, and `conflictingWriter`), so the series stays one writer's valid counter:
 *   the one that started last.
 * - A point flagged "no recorded value" removes its series.
 * - Series not updated for `metricExpirationMs` are removed by `sweep()`.
 * - Each family holds at most `maxSeriesPerMetric` series; points of further label sets are folded
 *   into one series labelled otel_metric_overflow="true" (counted), so a cardinality flood cannot
 *   take the receiver down. For cumulative counters the overflow series sums the latest value of each
 *   folded label set, which it tracks (a number per set) up to 10 × the limit; past that, points of
 *   new sets are dropped and counted.
 * - A metric whose translated name is taken by a family of another type or unit is dropped, logged
 *   once and counted; the first family keeps the name, so the outcome does not depend on timing.
 *
 * Rendering is cached per family and redone only for families that changed since the last scrape.
 */
import type { ExponentialHistogramDataPoint, HistogramDataPoint } from '../model';
import type { PromType } from './naming';

export interface StoreOptions {
  metricExpirationMs: number;
  maxSeriesPerMetric: number;
  /** Names another part of /metrics already uses; a family of that name here is a conflict. */
  takenElsewhere?: (name: string) => boolean;
  /** Oldest a delta point's end time may be, behind the receiver's clock, to be added; 0 or unset: no limit. */
  maxDeltaAgeMs?: number;
}

export type DropReason =
  | 'non_monotonic_delta'
  | 'unspecified_temporality'
  | 'out_of_order'
  | 'type_conflict'
  | 'unit_conflict'
  | 'overflow_untracked'
  | 'bucket_layout_changed'
  | 'unnamable'
  | 'conflicting_writer'
  | 'delta_too_old';

export interface StoreCounters {
  dropped(reason: DropReason, points: number): void;
  reset(): void;
  overflow(): void;
  expired(series: number): void;
  /** A cumulative point that another writer of the same series sent (see apply()); it was dropped. */
  conflictingWriter?(family: Family, labels: string): void;
}

export interface Exemplar {
  traceId: string;
  spanId: string;
  value: number;
  /** Unix time in seconds (OpenMetrics exemplar timestamp). */
  timestamp: number;
  /** Further exemplar labels, rendered: `,name="value"…` (the OTLP exemplar's filtered attributes). */
  labels?: string;
}

/**
 * The exemplar of one span (span metrics, the service graph): its timestamp is worked out from the
 * span's end only when /metrics renders it, as most are replaced by a later span before any scrape (a
 * bigint division per span and exemplar, on the intake thread, otherwise).
 */
export class SpanExemplar implements Exemplar {
  constructor(
    readonly traceId: string,
    readonly spanId: string,
    readonly value: number,
    private readonly endTimeUnixNano: bigint,
  ) {}

  /** The span's end, Unix seconds to the millisecond. */
  get timestamp(): number {
    return Number(this.endTimeUnixNano / 1_000_000n) / 1000;
  }
}

/** The bucket `value` falls in: the first upper bound it does not exceed, or bounds.length for +Inf. */
export function bucketIndex(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && value > bounds[i]) i++;
  return i;
}

/** A classic histogram's state: cumulative counts per upper bound, plus sum and count. */
export interface HistogramState {
  bounds: number[];
  /** Non-cumulative counts, one per bound plus the +Inf bucket. */
  counts: number[];
  sum: number;
  count: number;
  /** At most one exemplar per bucket (the latest). */
  exemplars: (Exemplar | undefined)[];
}

/** An exponential histogram's state, rendered as a classic histogram (see exposition.ts). */
export interface ExponentialState {
  scale: number;
  zeroCount: number;
  zeroThreshold: number;
  positive: Map<number, number>;
  negative: Map<number, number>;
  sum: number;
  count: number;
}

export interface Series {
  /** The rendered label pairs, `a="x",b="y"` (no braces), which is also the series' key. */
  labels: string;
  value: number;
  histogram: HistogramState | undefined;
  exponential: ExponentialState | undefined;
  quantiles: [number, number][] | undefined;
  /** A summary's count (its sum is in `value`). */
  count: number;
  /** Set when sweep() removed the series, so that holders of a reference know to look it up again. */
  removed: boolean;
  exemplar: Exemplar | undefined;
  startTime: bigint;
  lastTime: bigint;
  updatedAt: number;
}

export class Family {
  readonly series = new Map<string, Series>();
  overflow: Series | undefined;
  /** Last cumulative values of the label sets folded into the overflow series (counters only). */
  overflowTracked: Map<string, number> | undefined;
  /** Rendered text (0.0.4) and OpenMetrics of the family in chunks, or undefined when it changed since. */
  text: Buffer[] | undefined;
  openMetrics: Buffer[] | undefined;
  /** Why the last rendering failed (the family is then left out of /metrics until it changes). */
  renderError: unknown;
  conflictLogged = false;
  /** Kept in the store when it has no series left (for families a consumer holds on to). */
  pinned = false;
  /** Label names of exemplars: OTLP metrics use trace_id/span_id; Tempo-style span metrics traceID/spanID. */
  exemplarLabels: { trace: string; span: string } = { trace: 'trace_id', span: 'span_id' };

  constructor(
    readonly name: string,
    readonly type: PromType,
    readonly unit: string,
    public help: string,
  ) {}

  changed(): void {
    this.text = undefined;
    this.openMetrics = undefined;
    this.renderError = undefined;
  }
}

export type Temporality = 'delta' | 'cumulative' | 'none';

/** What a data point contributes, already reduced to what a series needs. */
export type PointUpdate =
  | { kind: 'counter'; value: number; temporality: Temporality; monotonic: true }
  | { kind: 'gauge'; value: number }
  | { kind: 'histogram'; point: HistogramDataPoint; temporality: Temporality }
  | { kind: 'exponential'; point: ExponentialHistogramDataPoint; temporality: Temporality }
  | { kind: 'summary'; sum: number; count: number; quantiles: [number, number][] };

const OVERFLOW_LABELS = 'otel_metric_overflow="true"';

export class MetricStore {
  readonly families = new Map<string, Family>();
  private seriesCount = 0;

  constructor(
    private readonly options: StoreOptions,
    private readonly counters: StoreCounters,
    private readonly onConflict: (family: Family, type: PromType, unit: string) => void = () => {},
  ) {}

  get activeSeries(): number {
    return this.seriesCount;
  }

  /** The family for a translated name, created on first use; undefined (and counted) on a conflict. */
  family(name: string, type: PromType, unit: string, help: string, points: number): Family | undefined {
    let family = this.families.get(name);
    if (!family) {
      if (this.options.takenElsewhere?.(name)) {
        this.counters.dropped('type_conflict', points);
        return undefined;
      }
      family = new Family(name, type, unit, help);
      this.families.set(name, family);
      return family;
    }
    if (family.type !== type || family.unit !== unit) {
      this.counters.dropped(family.type !== type ? 'type_conflict' : 'unit_conflict', points);
      if (!family.conflictLogged) {
        family.conflictLogged = true;
        this.onConflict(family, type, unit);
      }
      return undefined;
    }
    if (!family.help && help) {
      family.help = help;
      family.changed();
    }
    return family;
  }

  /** Counts points dropped before they reached a family. */
  drop(reason: DropReason, points: number): void {
    this.counters.dropped(reason, points);
  }

  /** Removes the series of a point flagged "no recorded value". */
  remove(family: Family, labels: string): void {
    if (family.series.delete(labels)) {
      this.seriesCount--;
      family.changed();
    }
  }

  /**
   * Applies one data point to the series `labels` of `family`. `startTime`/`time` are the point's
   * nanosecond timestamps; `exemplars` the point's exemplars that carry a trace id.
   */
  apply(
    family: Family,
    labels: string,
    startTime: bigint,
    time: bigint,
    update: PointUpdate,
    exemplars: Exemplar[],
    now: number,
  ): void {
    if ('temporality' in update && update.temporality === 'none') {
      this.counters.dropped('unspecified_temporality', 1);
      return;
    }
    const delta = 'temporality' in update && update.temporality === 'delta';
    if (delta && this.tooOld(time, now)) {
      this.counters.dropped('delta_too_old', 1);
      return;
    }
    let series = family.series.get(labels);
    if (!series) {
      if (family.series.size >= this.options.maxSeriesPerMetric) {
        this.applyOverflow(family, labels, startTime, time, update, now);
        return;
      }
      series = newSeries(labels, startTime, time, now);
      family.series.set(labels, series);
      this.seriesCount++;
      setValue(series, update);
      attachExemplars(series, exemplars);
      family.changed();
      return;
    }
    if (delta) {
      // An increment over its own interval, from whichever source: added whatever its times.
      if (!addDelta(series, update)) {
        this.counters.dropped('bucket_layout_changed', 1);
        return;
      }
      if (startTime !== 0n && (series.startTime === 0n || startTime < series.startTime)) series.startTime = startTime;
      if (time > series.lastTime) series.lastTime = time;
      attachExemplars(series, exemplars);
      series.updatedAt = now;
      family.changed();
      return;
    }
    if (time !== 0n && time <= series.lastTime) {
      this.counters.dropped('out_of_order', 1);
      return;
    }
    if (update.kind !== 'gauge' && conflicting(series, startTime, update)) {
      this.counters.dropped('conflicting_writer', 1);
      this.counters.conflictingWriter?.(family, labels);
      return;
    }
    if (series.startTime !== 0n && startTime > series.startTime) this.counters.reset();
    setValue(series, update);
    series.startTime = startTime;
    attachExemplars(series, exemplars);
    series.lastTime = time;
    series.updatedAt = now;
    family.changed();
  }

  /** Whether a delta point ended more than maxDeltaAgeMs before `now` (a point without a time never is). */
  private tooOld(time: bigint, now: number): boolean {
    const max = this.options.maxDeltaAgeMs ?? 0;
    return max > 0 && time !== 0n && Number(time / 1_000_000n) < now - max;
  }

  private applyOverflow(
    family: Family,
    labels: string,
    startTime: bigint,
    time: bigint,
    update: PointUpdate,
    now: number,
  ): void {
    // Cumulative histograms, exponential histograms and summaries of folded label sets cannot be
    // summed without their own state: they are dropped and counted, and make no overflow series.
    const foldable =
      update.kind === 'gauge' ||
      update.kind === 'counter' ||
      (update.kind === 'histogram' && update.temporality === 'delta');
    if (!foldable) {
      this.counters.dropped('overflow_untracked', 1);
      return;
    }
    if (update.kind === 'counter' && update.temporality !== 'delta') {
      const tracked = family.overflowTracked;
      if (!tracked?.has(labels) && (tracked?.size ?? 0) >= 10 * this.options.maxSeriesPerMetric) {
        this.counters.dropped('overflow_untracked', 1);
        return;
      }
    }
    this.counters.overflow();
    if (!family.overflow) {
      family.overflow = newSeries(OVERFLOW_LABELS, startTime, time, now);
      this.seriesCount++;
    }
    const overflow = family.overflow;
    if (update.kind === 'gauge') {
      overflow.value = update.value;
    } else if (update.kind === 'counter') {
      if (update.temporality === 'delta') overflow.value += update.value;
      else {
        if (!family.overflowTracked) family.overflowTracked = new Map();
        const previous = family.overflowTracked.get(labels);
        // Add what this label set's counter grew by since its last point (all of it after a reset).
        const growth = previous === undefined || update.value < previous ? update.value : update.value - previous;
        overflow.value += growth;
        family.overflowTracked.set(labels, update.value);
      }
    } else if (update.kind === 'histogram') {
      if (!overflow.histogram) setValue(overflow, update);
      else if (!addDelta(overflow, update)) this.counters.dropped('bucket_layout_changed', 1);
    }
    overflow.updatedAt = now;
    family.changed();
  }

  /**
   * Adds `value` to a counter series (created at 0 when new), for metrics the receiver derives itself
   * (span metrics, service graph). Past the series limit, the value goes to the overflow series.
   */
  increment(family: Family, labels: string, value: number, exemplar: Exemplar | undefined, now: number): void {
    this.incrementSeries(family, this.seriesFor(family, labels, now), value, exemplar, now);
  }

  /** increment() on a series the caller already holds (from seriesFor; check `removed` before reuse). */
  incrementSeries(family: Family, series: Series, value: number, exemplar: Exemplar | undefined, now: number): void {
    series.value += value;
    if (exemplar) series.exemplar = exemplar;
    series.updatedAt = now;
    family.changed();
  }

  /** Records one observation in a histogram series with the given bucket bounds (created empty when new). */
  observe(
    family: Family,
    labels: string,
    bounds: number[],
    value: number,
    exemplar: Exemplar | undefined,
    now: number,
    weight = 1,
  ): void {
    this.observeSeries(family, this.seriesFor(family, labels, now), bounds, value, exemplar, now, weight);
  }

  /**
   * observe() on a series the caller already holds (from seriesFor; check `removed` before reuse).
   * `weight` is how many observations this one stands for (a sampled span's adjusted count): its
   * bucket and the count grow by it, the sum by value × weight.
   */
  observeSeries(
    family: Family,
    series: Series,
    bounds: number[],
    value: number,
    exemplar: Exemplar | undefined,
    now: number,
    weight = 1,
  ): void {
    let h = series.histogram;
    if (!h) {
      h = {
        bounds,
        counts: new Array(bounds.length + 1).fill(0),
        sum: 0,
        count: 0,
        exemplars: new Array(bounds.length + 1).fill(undefined),
      };
      series.histogram = h;
    }
    const i = bucketIndex(bounds, value);
    h.counts[i] += weight;
    h.sum += value * weight;
    h.count += weight;
    if (exemplar) h.exemplars[i] = exemplar;
    series.updatedAt = now;
    family.changed();
  }

  /** The derived series `labels` of `family`, created when new; the overflow series past the limit. */
  seriesFor(family: Family, labels: string, now: number): Series {
    let series = family.series.get(labels);
    if (series) return series;
    if (family.series.size >= this.options.maxSeriesPerMetric) {
      this.counters.overflow();
      if (!family.overflow) {
        family.overflow = newSeries(OVERFLOW_LABELS, 0n, 0n, now);
        this.seriesCount++;
      }
      return family.overflow;
    }
    series = newSeries(labels, 0n, 0n, now);
    family.series.set(labels, series);
    this.seriesCount++;
    return series;
  }

  /** Removes series not updated for the expiration time; returns how many went. */
  sweep(now: number): number {
    const cutoff = now - this.options.metricExpirationMs;
    let removed = 0;
    for (const [name, family] of this.families) {
      let changed = false;
      for (const [key, series] of family.series) {
        if (series.updatedAt < cutoff) {
          series.removed = true;
          family.series.delete(key);
          removed++;
          changed = true;
        }
      }
      if (family.overflow && family.overflow.updatedAt < cutoff) {
        family.overflow.removed = true;
        family.overflow = undefined;
        family.overflowTracked = undefined;
        removed++;
        changed = true;
      }
      if (changed) family.changed();
      if (family.series.size === 0 && !family.overflow && !family.pinned) this.families.delete(name);
    }
    if (removed > 0) {
      this.seriesCount -= removed;
      this.counters.expired(removed);
    }
    return removed;
  }
}

/** A series with no value yet (also the recording store's, src/workers/recorded-store.ts). */
export function newSeries(labels: string, startTime: bigint, time: bigint, now: number): Series {
  return {
    labels,
    value: 0,
    histogram: undefined,
    exponential: undefined,
    quantiles: undefined,
    count: 0,
    removed: false,
    exemplar: undefined,
    startTime,
    lastTime: time,
    updatedAt: now,
  };
}

/**
 * Whether a cumulative point cannot come from the writer the series has followed: its start time is
 * earlier than the series' (0 means unknown and is never taken as one), or, with the same (known) start
 * time, its count is lower (a counter's value, a histogram's or summary's count).
 */
function conflicting(series: Series, startTime: bigint, update: PointUpdate): boolean {
  if (startTime !== 0n && series.startTime !== 0n && startTime < series.startTime) return true;
  // Without a start time (0) a lower count is a restart, as Prometheus takes it.
  if (startTime === 0n || startTime !== series.startTime) return false;
  switch (update.kind) {
    case 'counter':
      return update.value < series.value;
    case 'histogram':
      return series.histogram !== undefined && update.point.count < series.histogram.count;
    case 'exponential':
      return series.exponential !== undefined && update.point.count < series.exponential.count;
    case 'summary':
      return series.quantiles !== undefined && update.count < series.count;
    default:
      return false;
  }
}

/** Sets the series to the point's value (a cumulative point, the first point, or a reset). */
function setValue(series: Series, update: PointUpdate): void {
  switch (update.kind) {
    case 'counter':
    case 'gauge':
      series.value = update.value;
      break;
    case 'histogram': {
      const p = update.point;
      const counts = p.bucketCounts.length === p.explicitBounds.length + 1 ? p.bucketCounts.slice() : padCounts(p);
      series.histogram = {
        bounds: p.explicitBounds.slice(),
        counts,
        sum: p.sum ?? 0,
        count: p.count,
        exemplars: new Array(counts.length).fill(undefined),
      };
      break;
    }
    case 'exponential': {
      const p = update.point;
      series.exponential = {
        scale: p.scale,
        zeroCount: p.zeroCount,
        zeroThreshold: p.zeroThreshold,
        positive: bucketMap(p.positive.offset, p.positive.bucketCounts),
        negative: bucketMap(p.negative.offset, p.negative.bucketCounts),
        sum: p.sum ?? 0,
        count: p.count,
      };
      downscaleToFit(series.exponential);
      break;
    }
    case 'summary':
      series.value = update.sum;
      series.count = update.count;
      series.quantiles = update.quantiles;
      break;
  }
}

/** Adds a delta point to the series; false when the bucket layout differs (the point is then refused). */
function addDelta(series: Series, update: PointUpdate): boolean {
  if (update.kind === 'counter') {
    series.value += update.value;
    return true;
  }
  if (update.kind === 'histogram') {
    const h = series.histogram;
    const p = update.point;
    if (!h || !sameBounds(h.bounds, p.explicitBounds) || p.bucketCounts.length !== h.counts.length) return false;
    for (let i = 0; i < h.counts.length; i++) h.counts[i] += p.bucketCounts[i];
    h.sum += p.sum ?? 0;
    h.count += p.count;
    return true;
  }
  if (update.kind === 'exponential') {
    const e = series.exponential;
    const p = update.point;
    if (!e) return false;
    // Different scales (sources that saw different ranges) merge at the coarser one, as the Collector does.
    let positive = bucketMap(p.positive.offset, p.positive.bucketCounts);
    let negative = bucketMap(p.negative.offset, p.negative.bucketCounts);
    for (let s = p.scale; s > e.scale; s--) {
      positive = halve(positive);
      negative = halve(negative);
    }
    for (; e.scale > p.scale; e.scale--) {
      e.positive = halve(e.positive);
      e.negative = halve(e.negative);
    }
    for (const [i, count] of positive) e.positive.set(i, (e.positive.get(i) ?? 0) + count);
    for (const [i, count] of negative) e.negative.set(i, (e.negative.get(i) ?? 0) + count);
    downscaleToFit(e);
    e.zeroCount += p.zeroCount;
    e.sum += p.sum ?? 0;
    e.count += p.count;
    return true;
  }
  return false;
}

/** Keeps the latest exemplar of the series, and of each histogram bucket the exemplars fall in. */
function attachExemplars(series: Series, exemplars: Exemplar[]): void {
  if (exemplars.length === 0) return;
  series.exemplar = exemplars[exemplars.length - 1];
  const h = series.histogram;
  if (!h) return;
  for (const exemplar of exemplars) {
    let i = 0;
    while (i < h.bounds.length && exemplar.value > h.bounds[i]) i++;
    h.exemplars[i] = exemplar;
  }
}

function sameBounds(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A histogram point with no (or too few) bucket counts: everything goes to the +Inf bucket. */
function padCounts(p: HistogramDataPoint): number[] {
  const counts = new Array<number>(p.explicitBounds.length + 1).fill(0);
  for (let i = 0; i < Math.min(p.bucketCounts.length, counts.length); i++) counts[i] = p.bucketCounts[i];
  const known = counts.reduce((a, b) => a + b, 0);
  counts[counts.length - 1] += Math.max(0, p.count - known);
  return counts;
}

/**
 * A histogram point with at most `maxBuckets` buckets (+Inf included): the point itself when it has no
 * more, else a copy whose adjacent finite buckets are merged k at a time (the smallest k that fits),
 * each merged bucket taking the upper bound of the last one it holds. The cumulative counts at the
 * bounds kept are exact and the highest finite bound is always kept, so the series stays a valid
 * cumulative histogram, only coarser; the same bounds always merge the same way, so successive points
 * (and deltas) of a series line up.
 */
export function mergeBuckets(p: HistogramDataPoint, maxBuckets: number): HistogramDataPoint {
  const n = p.explicitBounds.length;
  if (n + 1 <= maxBuckets) return p;
  const counts = p.bucketCounts.length === n + 1 ? p.bucketCounts : padCounts(p);
  const k = Math.ceil(n / (maxBuckets - 1));
  const groups = Math.ceil(n / k);
  const bounds = new Array<number>(groups);
  const merged = new Array<number>(groups + 1).fill(0);
  for (let i = 0; i < n; i++) merged[Math.floor(i / k)] += counts[i];
  merged[groups] = counts[n];
  for (let g = 0; g < groups; g++) bounds[g] = p.explicitBounds[Math.min(n - 1, g * k + k - 1)];
  return { ...p, explicitBounds: bounds, bucketCounts: merged };
}

/** At most `max` quantiles of a summary, evenly spaced over the sorted list, the first and last kept. */
export function thinQuantiles(quantiles: [number, number][], max: number): [number, number][] {
  if (quantiles.length <= max) return quantiles;
  const sorted = [...quantiles].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (let j = 0; j < max; j++) out.push(sorted[Math.round((j * (sorted.length - 1)) / Math.max(1, max - 1))]);
  return out;
}

/** Most populated buckets an exponential series keeps (OpenTelemetry's default max_size). */
export const MAX_EXPONENTIAL_BUCKETS = 160;

/**
 * Halves the resolution (scale - 1, index >> 1, counts merged) until each side holds at most
 * MAX_EXPONENTIAL_BUCKETS populated buckets, as the Collector does, so that one client cannot make a
 * series of millions of buckets.
 */
function downscaleToFit(e: ExponentialState): void {
  while (e.positive.size > MAX_EXPONENTIAL_BUCKETS || e.negative.size > MAX_EXPONENTIAL_BUCKETS) {
    e.scale -= 1;
    e.positive = halve(e.positive);
    e.negative = halve(e.negative);
  }
}

function halve(buckets: Map<number, number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [i, count] of buckets) out.set(i >> 1, (out.get(i >> 1) ?? 0) + count);
  return out;
}

function bucketMap(offset: number, counts: number[]): Map<number, number> {
  const map = new Map<number, number>();
  addBuckets(map, offset, counts);
  return map;
}

function addBuckets(map: Map<number, number>, offset: number, counts: number[]): void {
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] !== 0) map.set(offset + i, (map.get(offset + i) ?? 0) + counts[i]);
  }
}

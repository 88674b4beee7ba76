/**
 * Span metrics and event counts derived on an intake worker, applied on the main thread's store.
 *
 * On the worker, the consumer (span-metrics.ts, event-metrics.ts, unchanged) writes to a
 * RecordingStore: each increment and observation is recorded in order (series, value, weight), with
 * only the exemplars that stay (the last of each series and bucket in the request: a store keeps the
 * latest). On the main thread, `replay` applies them in the same order to the consumer's one store,
 * through the same MetricStore calls single-thread mode makes, so series limits, overflow counts,
 * sums (added span by span, in the same order) and exemplars come out the same, and /metrics needs
 * no merging. What travels is a few typed arrays and one string per series, not the spans.
 */
import { bucketIndex, type Exemplar, type Family, MetricStore, newSeries, type Series } from '../series/store';

/** A request's recorded updates of one store. */
export interface RecordedOps {
  /** Per series: its family's name and its labels, alternating. */
  series: string[];
  /** The bucket bounds of each histogram family observed, by family name. */
  bounds: Record<string, number[]>;
  /** Per update: kind (0 increment, 1 observe), series index, value, weight. */
  ops: Float64Array<ArrayBuffer>;
  /** The updates that carry an exemplar, ascending. */
  exemplarOps: Uint32Array<ArrayBuffer>;
  /** Per exemplar: trace id, span id. */
  exemplarIds: string[];
  /** Per exemplar: value, timestamp (Unix seconds). */
  exemplarValues: Float64Array<ArrayBuffer>;
}

const INCREMENT = 0;
const OBSERVE = 1;
/** Buckets a histogram may have, for the key of (series, bucket) (the store's limit is far lower). */
const MAX_BUCKETS = 1 << 16;

interface RecordedSeries extends Series {
  family: string;
  /** Its index in the current request's series table, valid while `request` is the current one. */
  index: number;
  request: number;
}

/** A MetricStore that records updates instead of keeping series (one per consumer, on a worker). */
export class RecordingStore extends MetricStore {
  private request = 0;
  private seriesTable: string[] = [];
  private bounds: Record<string, number[]> = {};
  private ops: number[] = [];
  /** The exemplar of each update that still carries one (later ones of the same series and bucket clear it). */
  private exemplars: (Exemplar | undefined)[] = [];
  private lastExemplar = new Map<number, number>();
  /** One series object per (family, labels) within a request, for the lookups of `increment`/`observe`. */
  private byLabels = new Map<string, RecordedSeries>();

  constructor() {
    super(
      { maxSeriesPerMetric: Number.MAX_SAFE_INTEGER, metricExpirationMs: Number.MAX_SAFE_INTEGER },
      { dropped() {}, reset() {}, overflow() {}, expired() {} },
    );
  }

  override seriesFor(family: Family, labels: string, now: number): Series {
    const key = `${family.name}\u0000${labels}`;
    let series = this.byLabels.get(key);
    if (!series) {
      series = { ...newSeries(labels, 0n, 0n, now), family: family.name, index: -1, request: -1 };
      this.byLabels.set(key, series);
    }
    return series;
  }

  override incrementSeries(_family: Family, series: Series, value: number, exemplar: Exemplar | undefined): void {
    this.record(INCREMENT, series as RecordedSeries, value, 1, exemplar, 0);
  }

  override observeSeries(
    family: Family,
    series: Series,
    bounds: number[],
    value: number,
    exemplar: Exemplar | undefined,
    _now: number,
    weight = 1,
  ): void {
    this.bounds[family.name] ??= bounds;
    this.record(OBSERVE, series as RecordedSeries, value, weight, exemplar, bucketIndex(bounds, value));
  }

  private record(
    kind: number,
    series: RecordedSeries,
    value: number,
    weight: number,
    exemplar: Exemplar | undefined,
    bucket: number,
  ): void {
    if (series.request !== this.request) {
      series.request = this.request;
      series.index = this.seriesTable.length / 2;
      this.seriesTable.push(series.family, series.labels);
    }
    const op = this.ops.length / 4;
    this.ops.push(kind, series.index, value, weight);
    if (!exemplar) return;
    const key = series.index * MAX_BUCKETS + bucket;
    const previous = this.lastExemplar.get(key);
    if (previous !== undefined) this.exemplars[previous] = undefined;
    this.lastExemplar.set(key, op);
    this.exemplars[op] = exemplar;
  }

  /** The updates recorded since the last call (undefined when none), and a fresh start for the next request. */
  take(): RecordedOps | undefined {
    const count = this.ops.length / 4;
    let taken: RecordedOps | undefined;
    if (count > 0) {
      const exemplarOps: number[] = [];
      const exemplarIds: string[] = [];
      const exemplarValues: number[] = [];
      for (let op = 0; op < this.exemplars.length; op++) {
        const e = this.exemplars[op];
        if (!e) continue;
        if (e.labels) throw new Error('recorded exemplars carry no labels (span metrics and event counts have none)');
        exemplarOps.push(op);
        exemplarIds.push(e.traceId, e.spanId);
        exemplarValues.push(e.value, e.timestamp);
      }
      taken = {
        series: this.seriesTable,
        bounds: this.bounds,
        ops: Float64Array.from(this.ops),
        exemplarOps: Uint32Array.from(exemplarOps),
        exemplarIds,
        exemplarValues: Float64Array.from(exemplarValues),
      };
    }
    this.request++;
    this.seriesTable = [];
    this.bounds = {};
    this.ops = [];
    this.exemplars = [];
    this.lastExemplar.clear();
    // Bounded by the label sets of one request; the consumer's own cache keeps its series objects.
    if (this.byLabels.size > 100_000) this.byLabels.clear();
    return taken;
  }
}

/** The typed arrays of `ops`, to transfer. */
export function transferables(ops: RecordedOps): ArrayBuffer[] {
  return [ops.ops.buffer, ops.exemplarOps.buffer, ops.exemplarValues.buffer];
}

/**
 * For a consumer that derives metrics (span metrics, event metrics): when an intake worker derived
 * them for `batch` (`batch.derived`), applies the updates it recorded under the consumer's `name` to
 * `store` and returns true; false when the batch is to be derived here.
 */
export function replayDerived(
  batch: { derived?: Record<string, unknown> },
  name: string,
  store: MetricStore,
  now: number,
): boolean {
  if (!batch.derived) return false;
  const recorded = batch.derived[name] as RecordedOps | undefined;
  if (recorded) replay(store, recorded, now);
  return true;
}

/**
 * Applies a request's recorded updates to `store` (on the main thread), in order, as the consumer
 * would have in single-thread mode. A series that is the overflow series is looked up again at each
 * update, as the consumer does (so overflow counts per update).
 */
export function replay(store: MetricStore, recorded: RecordedOps, now: number): void {
  const { ops, series: table, bounds, exemplarOps, exemplarIds, exemplarValues } = recorded;
  const families: (Family | undefined)[] = new Array(table.length / 2);
  const resolved: (Series | undefined)[] = new Array(table.length / 2);
  let nextExemplar = 0;
  for (let op = 0, at = 0; at < ops.length; op++, at += 4) {
    const index = ops[at + 1];
    let family = families[index];
    if (!family) {
      family = store.families.get(table[2 * index]);
      if (!family) throw new Error(`recorded updates of a family the store does not have (${table[2 * index]})`);
      families[index] = family;
    }
    let series = resolved[index];
    if (!series || series === family.overflow) {
      series = store.seriesFor(family, table[2 * index + 1], now);
      resolved[index] = series;
    }
    let exemplar: Exemplar | undefined;
    if (nextExemplar < exemplarOps.length && exemplarOps[nextExemplar] === op) {
      exemplar = {
        traceId: exemplarIds[2 * nextExemplar],
        spanId: exemplarIds[2 * nextExemplar + 1],
        value: exemplarValues[2 * nextExemplar],
        timestamp: exemplarValues[2 * nextExemplar + 1],
      };
      nextExemplar++;
    }
    if (ops[at] === INCREMENT) store.incrementSeries(family, series, ops[at + 2], exemplar, now);
    else store.observeSeries(family, series, bounds[family.name], ops[at + 2], exemplar, now, ops[at + 3]);
  }
}

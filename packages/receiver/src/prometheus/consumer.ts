/**
 * The pipeline stage that turns OTLP metrics into Prometheus series (the Collector's
 * prometheusexporter), following the OpenTelemetry ↔ Prometheus compatibility rules:
 *
 * - monotonic sum → counter (`_total`); non-monotonic cumulative sum and gauge → gauge;
 *   histogram and exponential histogram → histogram; summary → summary;
 * - every series carries `job` (service.namespace/service.name) and `instance` (service.instance.id),
 *   `otel_scope_name`/`otel_scope_version`, the configured promoted resource attributes, and the
 *   point's attributes; the other resource attributes go to one `target_info` series per job/instance;
 * - exemplars with a trace id are kept for OpenMetrics scrapes.
 *
 * Temporality (a delta point is an increment added whatever its start time; too old ones, older than
 * `maxDeltaAgeMs`, are refused), expiry, series limits and conflicts are the store's (store.ts). Here, each series is
 * bounded before it reaches the store, so that a scrape always renders whatever clients send: a
 * classic histogram has at most `maxHistogramBuckets` buckets (adjacent ones merged; a summary's
 * quantiles thinned to as many), label values at most `maxLabelValueLength` characters (truncated),
 * and a series at most `maxLabelsPerSeries` labels (the point's attributes past it left out, in name
 * order). Each is counted in sonde_receiver_limit_hits_total{signal="metrics"} through `onLimit`.
 *
 * Two writers of one cumulative series (processes of one service that send no service.instance.id,
 * so share job and instance) are told apart by their start times and values (store.ts); the other
 * writer's points are dropped and counted in sonde_receiver_metric_writer_conflicts_total, and a
 * warning naming the metric and series is logged at most once per `conflictWarningIntervalMs`.
 */
import type { Logger } from 'pino';
import type { Counter, Registry } from 'prom-client';
import { registerMetrics } from '../metrics/define';
import {
  attributeValue,
  FLAG_NO_RECORDED_VALUE,
  type KeyValue,
  type Metric,
  type Exemplar as OtlpExemplar,
  type ResourceMetrics,
} from '../model';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { createMeasuredStore } from '../series/measured-store';
import {
  escapeLabelValue,
  jobAndInstance,
  labelName,
  labelsFromAttributes,
  labelValue,
  metricName,
  type PromType,
} from '../series/naming';
import {
  type Exemplar,
  type Family,
  type MetricStore,
  mergeBuckets,
  type PointUpdate,
  type Temporality,
  thinQuantiles,
} from '../series/store';
import { PROMETHEUS_CONSUMER_METRICS, PROMETHEUS_STORE } from './metrics';

export interface PrometheusOptions {
  metricExpirationMs: number;
  maxSeriesPerMetric: number;
  /** Resource attributes copied onto every series of the resource (besides target_info). */
  promoteResourceAttributes: string[];
  /** Metric names other parts of /metrics use (span metrics, service graph, self-metrics). */
  takenElsewhere?: (name: string) => boolean;
  /** Most buckets (+Inf included) of a classic histogram series (and quantiles of a summary); default 160. */
  maxHistogramBuckets?: number;
  /** Longest label value, in UTF-16 code units; 0 means no limit (default 2048). */
  maxLabelValueLength?: number;
  /** Most labels on a series, `le` and `quantile` not counted (default 64). */
  maxLabelsPerSeries?: number;
  /** Counts the hits of the limits above (the number of points, values or labels they changed). */
  onLimit?: (limit: SeriesLimit, hits: number) => void;
  /** Oldest a delta point's end time may be (behind the receiver's clock) to be added; 0 or unset: no limit (see store.ts). */
  maxDeltaAgeMs?: number;
  /** Least time between two warnings about conflicting writers (default 60 s). */
  conflictWarningIntervalMs?: number;
}

/** What the consumer takes when an optional bound is left out (and what the config keys default to). */
export const PROMETHEUS_DEFAULTS = {
  maxHistogramBuckets: 160,
  maxLabelValueLength: 2048,
  maxLabelsPerSeries: 64,
} as const satisfies Partial<PrometheusOptions>;

export type SeriesLimit = 'max_histogram_buckets' | 'max_label_value_length' | 'max_labels_per_series';

/** What the series bounds changed in a batch, and the bound on label values (0: none). */
interface LabelTally {
  maxValueLength: number;
  truncated: number;
  droppedLabels: number;
  mergedPoints: number;
}

/** Resource attributes that make up job and instance, and so are left out of target_info. */
const IDENTIFYING = new Set(['service.name', 'service.namespace', 'service.instance.id']);

/** Label names the receiver sets itself; point attributes of the same name are left out (the resource or scope wins). */
const RESERVED = new Set([
  'job',
  'instance',
  'otel_scope_name',
  'otel_scope_version',
  'le',
  'quantile',
  'otel_metric_overflow',
]);

export class PrometheusConsumer implements Consumer<'metrics'> {
  readonly name = 'prometheus';
  readonly store: MetricStore;
  private readonly stopStore: () => void;
  /** Label names a point attribute may not take: the receiver's own and the promoted resource attributes. */
  private readonly reserved: ReadonlySet<string>;
  private readonly maxBuckets: number;
  private readonly maxLabels: number;
  private readonly tally: LabelTally;
  private readonly conflicts: Counter;
  /** When the last conflict warning was logged, and the conflicts since. */
  private lastConflictWarning = Number.NEGATIVE_INFINITY;
  private conflictsSinceWarning = 0;

  constructor(
    private readonly options: PrometheusOptions,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    const measured = createMeasuredStore(
      PROMETHEUS_STORE.prefix,
      PROMETHEUS_STORE.what,
      options,
      registry,
      (family: Family, type: PromType, unit: string) =>
        this.logger.warn(
          { metric: family.name, kept: { type: family.type, unit: family.unit }, dropped: { type, unit } },
          `two metrics translate to ${family.name} with different ${family.type !== type ? 'types' : 'units'}; the first one is kept and the other dropped (sonde_prometheus_dropped_points_total)`,
        ),
      Date.now,
      (family, labels) => this.conflictingWriter(family, labels),
    );
    this.conflicts = registerMetrics(registry, PROMETHEUS_CONSUMER_METRICS).writerConflicts;
    this.store = measured.store;
    this.stopStore = measured.stop;
    this.reserved = new Set([...RESERVED, ...options.promoteResourceAttributes.map(labelName)]);
    this.maxBuckets = Math.max(2, options.maxHistogramBuckets ?? PROMETHEUS_DEFAULTS.maxHistogramBuckets);
    this.maxLabels = options.maxLabelsPerSeries ?? PROMETHEUS_DEFAULTS.maxLabelsPerSeries;
    this.tally = {
      maxValueLength: options.maxLabelValueLength ?? PROMETHEUS_DEFAULTS.maxLabelValueLength,
      truncated: 0,
      droppedLabels: 0,
      mergedPoints: 0,
    };
  }

  consume(batch: Batch<'metrics'>): void {
    const now = Date.now();
    const t = this.tally;
    try {
      for (const rm of batch.data) this.consumeResource(rm, now);
    } finally {
      const onLimit = this.options.onLimit;
      if (onLimit && t.mergedPoints > 0) onLimit('max_histogram_buckets', t.mergedPoints);
      if (onLimit && t.truncated > 0) onLimit('max_label_value_length', t.truncated);
      if (onLimit && t.droppedLabels > 0) onLimit('max_labels_per_series', t.droppedLabels);
      t.mergedPoints = 0;
      t.truncated = 0;
      t.droppedLabels = 0;
    }
  }

  async shutdown(): Promise<void> {
    this.stopStore();
  }

  private conflictingWriter(family: Family, labels: string): void {
    this.conflicts.inc();
    this.conflictsSinceWarning++;
    const now = Date.now();
    if (now - this.lastConflictWarning < (this.options.conflictWarningIntervalMs ?? 60_000)) return;
    this.logger.warn(
      {
        metric: family.name,
        series: labels.length > 300 ? `${labels.slice(0, 300)}…` : labels,
        conflicts: this.conflictsSinceWarning,
      },
      'two processes write the same cumulative series (same job and instance: give each replica its own service.instance.id); the points of the one that started earlier are dropped (sonde_receiver_metric_writer_conflicts_total)',
    );
    this.lastConflictWarning = now;
    this.conflictsSinceWarning = 0;
  }

  private consumeResource(rm: ResourceMetrics, now: number): void {
    const resourceAttributes = rm.resource.attributes;
    const t = this.tally;
    const ids = jobAndInstance(resourceAttributes);
    const job = bounded(ids.job, t);
    const instance = bounded(ids.instance, t);
    const promoted = this.promoted(resourceAttributes);
    const resourceLabels = `job="${escapeLabelValue(job)}",instance="${escapeLabelValue(instance)}"${promoted.labels}`;
    this.targetInfo(job, instance, resourceAttributes, now);
    // Labels left for the point's attributes: job, instance, the promoted ones and the scope's two are set.
    const budget = this.maxLabels - 4 - promoted.count;
    for (const sm of rm.scopeMetrics) {
      const scopeLabels = `${resourceLabels},otel_scope_name="${escapeLabelValue(bounded(sm.scope.name, t))}",otel_scope_version="${escapeLabelValue(bounded(sm.scope.version, t))}"`;
      for (const metric of sm.metrics) this.consumeMetric(metric, scopeLabels, budget, now);
    }
  }

  private consumeMetric(metric: Metric, baseLabels: string, budget: number, now: number): void {
    const data = metric.data;
    const store = this.store;
    const family = (type: PromType) => {
      const name = metricName(metric.name, metric.unit, type);
      if (name === '') {
        store.drop('unnamable', data.dataPoints.length);
        return undefined;
      }
      return store.family(name, type, metric.unit, metric.description, data.dataPoints.length);
    };
    switch (data.type) {
      case 'gauge':
      case 'sum': {
        const monotonic = data.type === 'sum' && data.isMonotonic;
        const temporality = data.type === 'sum' ? temporalityOf(data.aggregationTemporality) : 'cumulative';
        if (data.type === 'sum' && !monotonic && temporality !== 'cumulative') {
          store.drop(
            temporality === 'delta' ? 'non_monotonic_delta' : 'unspecified_temporality',
            data.dataPoints.length,
          );
          return;
        }
        const f = family(monotonic ? 'counter' : 'gauge');
        if (!f) return;
        for (const p of data.dataPoints) {
          const update: PointUpdate = monotonic
            ? { kind: 'counter', value: p.value, temporality, monotonic: true }
            : { kind: 'gauge', value: p.value };
          this.apply(f, baseLabels, budget, p, update, monotonic ? exemplarsOf(p.exemplars) : [], now);
        }
        return;
      }
      case 'histogram': {
        const f = family('histogram');
        if (!f) return;
        const temporality = temporalityOf(data.aggregationTemporality);
        for (const p of data.dataPoints) {
          const point = mergeBuckets(p, this.maxBuckets);
          if (point !== p) this.tally.mergedPoints++;
          const update: PointUpdate = { kind: 'histogram', point, temporality };
          this.apply(f, baseLabels, budget, p, update, exemplarsOf(p.exemplars), now);
        }
        return;
      }
      case 'exponentialHistogram': {
        const f = family('histogram');
        if (!f) return;
        const temporality = temporalityOf(data.aggregationTemporality);
        for (const p of data.dataPoints)
          this.apply(f, baseLabels, budget, p, { kind: 'exponential', point: p, temporality }, [], now);
        return;
      }
      case 'summary': {
        const f = family('summary');
        if (!f) return;
        for (const p of data.dataPoints) {
          const all = p.quantileValues.map((q): [number, number] => [q.quantile, q.value]);
          const quantiles = thinQuantiles(all, this.maxBuckets);
          if (quantiles !== all) this.tally.mergedPoints++;
          this.apply(f, baseLabels, budget, p, { kind: 'summary', sum: p.sum, count: p.count, quantiles }, [], now);
        }
        return;
      }
    }
  }

  private apply(
    family: Family,
    baseLabels: string,
    budget: number,
    point: { attributes: KeyValue[]; startTimeUnixNano: bigint; timeUnixNano: bigint; flags: number },
    update: PointUpdate,
    exemplars: Exemplar[],
    now: number,
  ): void {
    const labels = pointLabels(baseLabels, point.attributes, this.reserved, budget, this.tally);
    if (point.flags & FLAG_NO_RECORDED_VALUE) this.store.remove(family, labels);
    else this.store.apply(family, labels, point.startTimeUnixNano, point.timeUnixNano, update, exemplars, now);
  }

  private promoted(attributes: readonly KeyValue[]): { labels: string; count: number } {
    let labels = '';
    let count = 0;
    for (const key of this.options.promoteResourceAttributes) {
      const value = attributeValue(attributes, key);
      const name = labelName(key);
      if (value !== undefined && name !== '') {
        labels += `,${name}="${escapeLabelValue(bounded(labelValue(value), this.tally))}"`;
        count++;
      }
    }
    return { labels, count };
  }

  private targetInfo(job: string, instance: string, attributes: readonly KeyValue[], now: number): void {
    const rest = attributes.filter((kv) => !IDENTIFYING.has(kv.key));
    if (rest.length === 0) return;
    const family = this.store.family('target_info', 'gauge', '', 'Target metadata', 1);
    if (!family) return;
    const labels = pointLabels(
      `job="${escapeLabelValue(job)}",instance="${escapeLabelValue(instance)}"`,
      rest,
      RESERVED,
      this.maxLabels - 2,
      this.tally,
    );
    this.store.apply(family, labels, 0n, 0n, { kind: 'gauge', value: 1 }, [], now);
  }
}

/** Sanitized label names by attribute key; keys recur on every point, so each is sanitized once. */
const labelNames = new Map<string, string>();
const LABEL_NAME_CACHE_SIZE = 10_000;

function cachedLabelName(key: string): string {
  let name = labelNames.get(key);
  if (name === undefined) {
    if (labelNames.size >= LABEL_NAME_CACHE_SIZE) labelNames.clear();
    name = labelName(key);
    labelNames.set(key, name);
  }
  return name;
}

/** `value` cut to the tally's bound on label values (never inside a surrogate pair); counted. */
function bounded(value: string, t: LabelTally): string {
  const max = t.maxValueLength;
  if (max === 0 || value.length <= max) return value;
  t.truncated++;
  const last = value.charCodeAt(max - 1);
  return value.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

// Scratch arrays of pointLabels, reused from point to point (it runs once per data point, synchronously).
const scratchNames: string[] = [];
const scratchOrder: number[] = [];
const scratchParts: string[] = [];

/**
 * `prefix` then `,name="value"` for each attribute, sorted by name, reserved names left out, at most `budget` of
 * them (the rest counted as dropped), values bounded. The common case (no two keys sanitizing to the
 * same name) is built here from cached names; collisions go through labelsFromAttributes, which joins
 * their values as the specification says.
 */
function pointLabels(
  prefix: string,
  attributes: readonly KeyValue[],
  reserved: ReadonlySet<string>,
  budget: number,
  t: LabelTally,
): string {
  const n = attributes.length;
  if (n === 0) return prefix;
  const names = scratchNames;
  const order = scratchOrder;
  for (let i = 0; i < n; i++) {
    names[i] = cachedLabelName(attributes[i].key);
    order[i] = i;
    // insertion sort by name; attribute sets are small
    let j = i;
    while (j > 0 && names[order[j - 1]] > names[i]) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
  for (let i = 1; i < n; i++)
    if (names[order[i]] === names[order[i - 1]]) return prefix + collidingLabels(attributes, reserved, budget, t);
  // The key is joined once into a flat string: built by `+=`, it would be a tree of pieces that the
  // store's map lookup flattens (copies) before hashing it, once per point.
  const parts = scratchParts;
  parts[0] = prefix;
  let p = 1;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const name = names[order[i]];
    if (name === '' || reserved.has(name)) continue;
    const value = labelValue(attributes[order[i]].value);
    if (value === '') continue;
    if (kept >= budget) {
      t.droppedLabels++;
      continue;
    }
    kept++;
    parts[p++] = ',';
    parts[p++] = name;
    parts[p++] = '="';
    parts[p++] = escapeLabelValue(bounded(value, t));
    parts[p++] = '"';
  }
  parts.length = p;
  return parts.join('');
}

function collidingLabels(
  attributes: readonly KeyValue[],
  reserved: ReadonlySet<string>,
  budget: number,
  t: LabelTally,
): string {
  let out = '';
  let kept = 0;
  for (const [name, value] of labelsFromAttributes(attributes)) {
    if (reserved.has(name)) continue;
    if (kept >= budget) {
      t.droppedLabels++;
      continue;
    }
    kept++;
    out += `,${name}="${escapeLabelValue(bounded(value, t))}"`;
  }
  return out;
}

function temporalityOf(value: number): Temporality {
  return value === 1 ? 'delta' : value === 2 ? 'cumulative' : 'none';
}

/** Shared by every point without exemplars (most of them): the store only reads it. */
const NO_EXEMPLARS: Exemplar[] = [];

function exemplarsOf(exemplars: OtlpExemplar[]): Exemplar[] {
  if (exemplars.length === 0) return NO_EXEMPLARS;
  const out: Exemplar[] = [];
  for (const e of exemplars) {
    if (e.traceId === '') continue;
    const exemplar: Exemplar = {
      traceId: e.traceId,
      spanId: e.spanId,
      value: e.value,
      timestamp: Number(e.timeUnixNano / 1_000_000n) / 1000,
    };
    if (e.filteredAttributes.length > 0) {
      const labels = exemplarLabels(e.filteredAttributes, e.traceId.length + e.spanId.length);
      if (labels !== '') exemplar.labels = labels;
    }
    out.push(exemplar);
  }
  return out;
}

/** OpenMetrics 1.0: an exemplar's label names and values together hold at most 128 code points. */
const EXEMPLAR_LABEL_CHARS = 128;
const EXEMPLAR_ID_LABELS = new Set(['trace_id', 'span_id']);

/**
 * An exemplar's filtered attributes (already redacted: the redaction processor runs before consumers)
 * as extra exemplar labels `,name="value"`, in their order, each kept if it still fits in the 128
 * code points left by trace_id and span_id; one that does not fit is left out, a later shorter one
 * may still fit.
 */
function exemplarLabels(attributes: readonly KeyValue[], idChars: number): string {
  let used = 'trace_id'.length + 'span_id'.length + idChars;
  let out = '';
  const seen = new Set<string>();
  for (const { key, value } of attributes) {
    const name = labelName(key);
    if (EXEMPLAR_ID_LABELS.has(name) || seen.has(name)) continue;
    const text = labelValue(value);
    if (text === '') continue; // as for series labels: an empty value is no label
    const chars = codePoints(name) + codePoints(text);
    if (used + chars > EXEMPLAR_LABEL_CHARS) continue;
    used += chars;
    seen.add(name);
    out += `,${name}="${escapeLabelValue(text)}"`;
  }
  return out;
}

function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--; // a surrogate pair is one code point
  }
  return n;
}

/**
 * RED metrics from spans, as Tempo's metrics-generator writes them, because Grafana's Tempo
 * datasource queries these exact names and labels for its Service Graph view and RED table:
 *
 * - `traces_spanmetrics_calls_total{service, span_name, span_kind, status_code}`: one per span, or
 *   rather the span's adjusted count (adjusted-count.ts: the `ot=th` sampling threshold in its
 *   tracestate, else a configured multiplier attribute, else 1), so that sampled traffic still counts
 *   every call; a counter may then grow by a fraction, which Prometheus takes as it is;
 * - `traces_spanmetrics_latency_bucket/_sum/_count{…, le}`: the span's duration in seconds, its
 *   bucket, count and sum weighted by the adjusted count too (exemplars keep the span's own duration);
 * - `service_version` (on by default): the resource's service.version, so releases can be compared;
 * - `span_kind` is `SPAN_KIND_SERVER|CLIENT|PRODUCER|CONSUMER|INTERNAL|UNSPECIFIED`, `status_code`
 *   `STATUS_CODE_OK|ERROR|UNSET`;
 * - configured extra dimensions come from the span's attributes, else the resource's, else "";
 * - exemplars carry the span's trace and span id as `traceID`/`spanID` (Tempo's label names).
 *
 * Series are keyed by these labels only, so resource attributes that change with every process
 * (pid, host, instance id) never split or reset the counters. Bounded by the store's series limit
 * (overflow series) and expiry.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type AnyValue, attributeValue, type KeyValue, type Span } from '../model';
import { endLookups } from '../otlp/protobuf/lean';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { createMeasuredStore } from '../series/measured-store';
import { escapeLabelValue, labelName, labelValue } from '../series/naming';
import { type Family, type MetricStore, type Series, SpanExemplar } from '../series/store';
import { replayDerived } from '../workers/recorded-store';
import { AdjustedCounter } from './adjusted-count';
import { SPAN_METRICS_STORE } from './metrics';

interface SeriesPair {
  calls: Series;
  latency: Series;
}

export interface SpanMetricsOptions {
  /** Extra label dimensions: attribute keys, looked up on the span, then on its resource. */
  dimensions: string[];
  /** Latency histogram bounds, in seconds. */
  latencyBuckets: number[];
  maxSeriesPerMetric: number;
  metricExpirationMs: number;
  /** Adds `service_version` (the resource's service.version, "" when none) to every series. */
  serviceVersion?: boolean;
  /** Span, else resource, attribute holding a sampling multiplier (Tempo's span_multiplier_key); '' for none. */
  spanMultiplierKey?: string;
}

/** Tempo's default: 2 ms doubling, 14 buckets, up to 16.384 s. */
export const DEFAULT_LATENCY_BUCKETS = Array.from({ length: 14 }, (_, i) => 0.002 * 2 ** i);

const SPAN_KINDS = [
  'SPAN_KIND_UNSPECIFIED',
  'SPAN_KIND_INTERNAL',
  'SPAN_KIND_SERVER',
  'SPAN_KIND_CLIENT',
  'SPAN_KIND_PRODUCER',
  'SPAN_KIND_CONSUMER',
];
const STATUS_CODES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];
const EXEMPLAR_LABELS = { trace: 'traceID', span: 'spanID' };
const DEFAULT_LABELS = new Set(['service', 'span_name', 'span_kind', 'status_code']);
const VERSION_LABEL = 'service_version';

export class SpanMetricsConsumer implements Consumer<'traces'> {
  readonly name = 'span_metrics';
  readonly store: MetricStore;
  private readonly calls: Family;
  private readonly latency: Family;
  private readonly dimensions: { key: string; label: string }[];
  private readonly stopStore: () => void;
  private readonly adjusted: AdjustedCounter;

  constructor(
    private readonly options: SpanMetricsOptions,
    registry: Registry,
    logger: Logger,
    /** On an intake worker: the store that records the updates for the main thread (src/workers/recorded-store.ts). */
    recording?: MetricStore,
  ) {
    const measured = recording
      ? { store: recording, stop() {} }
      : createMeasuredStore(
          SPAN_METRICS_STORE.prefix,
          SPAN_METRICS_STORE.what,
          { maxSeriesPerMetric: options.maxSeriesPerMetric, metricExpirationMs: options.metricExpirationMs },
          registry,
          (family) => logger.warn({ metric: family.name }, 'span metrics: metric name conflict'),
        );
    this.store = measured.store;
    this.stopStore = measured.stop;
    this.calls = this.family(
      'traces_spanmetrics_calls_total',
      'counter',
      'Spans, by service, span name, kind and status',
    );
    this.latency = this.family('traces_spanmetrics_latency', 'histogram', 'Span duration in seconds');
    // A dimension whose label would collide with a default label gets a `__` prefix, as Tempo does.
    // service.version as a dimension too would repeat service_version.
    this.dimensions = options.dimensions
      .map((key) => {
        const label = labelName(key);
        return { key, label: DEFAULT_LABELS.has(label) ? `__${label}` : label };
      })
      .filter((d) => !(options.serviceVersion && d.label === VERSION_LABEL));
    this.adjusted = new AdjustedCounter(options.spanMultiplierKey ?? '');
  }

  private family(name: string, type: 'counter' | 'histogram', help: string): Family {
    const family = this.store.family(name, type, type === 'histogram' ? 's' : '', help, 0) as Family;
    family.exemplarLabels = EXEMPLAR_LABELS;
    family.pinned = true;
    return family;
  }

  /**
   * The series of each (service, span name, kind, status), so that the hot path neither builds nor
   * hashes a label string: span names come from the decoder's string cache, already hashed. Entries
   * whose series expiry removed are looked up again, the overflow series is never cached (so a flood
   * cannot grow this), and the whole cache is cleared past 2 × the series limit. Not used with extra
   * dimensions, whose values are part of the key.
   */
  private readonly cache = new Map<string, Map<string, (SeriesPair | undefined)[]>>();
  private cached = 0;

  consume(batch: Batch<'traces'>): void {
    const now = Date.now();
    // Derived on an intake worker: its recorded updates, applied here in order.
    if (replayDerived(batch, this.name, this.store, now)) return;
    const buckets = this.options.latencyBuckets;
    const fast = this.dimensions.length === 0;
    for (const rs of batch.data) {
      const resource = rs.resource.attributes;
      let service = `service="${escapeLabelValue(stringOf(attributeValue(resource, 'service.name')))}"`;
      if (this.options.serviceVersion)
        service += `,${VERSION_LABEL}="${escapeLabelValue(stringOf(attributeValue(resource, 'service.version')))}"`;
      const byName = fast ? this.byService(service) : undefined;
      for (const ss of rs.scopeSpans) {
        for (const span of ss.spans) {
          const kind = span.kind >= 0 && span.kind < SPAN_KINDS.length ? span.kind : 0;
          const status = span.status.code >= 0 && span.status.code < STATUS_CODES.length ? span.status.code : 0;
          const slot = kind * STATUS_CODES.length + status;
          let slots: (SeriesPair | undefined)[] | undefined;
          let pair: SeriesPair | undefined;
          if (byName) {
            slots = byName.get(span.name);
            if (!slots) {
              slots = new Array(SPAN_KINDS.length * STATUS_CODES.length);
              byName.set(span.name, slots);
            }
            pair = slots[slot];
            if (pair && (pair.calls.removed || pair.latency.removed)) pair = undefined;
          }
          if (!pair) {
            const labels =
              `${service},span_name="${escapeLabelValue(span.name)}",span_kind="${SPAN_KINDS[kind]}",` +
              `status_code="${STATUS_CODES[status]}"${this.dimensionLabels(span, resource)}`;
            pair = {
              calls: this.store.seriesFor(this.calls, labels, now),
              latency: this.store.seriesFor(this.latency, labels, now),
            };
            if (slots && pair.calls !== this.calls.overflow && pair.latency !== this.latency.overflow) {
              if (++this.cached > 2 * this.options.maxSeriesPerMetric) {
                this.cache.clear();
                this.cached = 0;
              } else slots[slot] = pair;
            }
          }
          const seconds =
            span.endTimeUnixNano > span.startTimeUnixNano
              ? Number(span.endTimeUnixNano - span.startTimeUnixNano) / 1e9
              : 0;
          const end = span.endTimeUnixNano;
          const weight = this.adjusted.of(span.traceState, span, resource);
          const callExemplar = new SpanExemplar(span.traceId, span.spanId, 1, end);
          this.store.incrementSeries(this.calls, pair.calls, weight, callExemplar, now);
          const latencyExemplar = new SpanExemplar(span.traceId, span.spanId, seconds, end);
          this.store.observeSeries(this.latency, pair.latency, buckets, seconds, latencyExemplar, now, weight);
        }
      }
    }
    // The adjusted counts may have looked in lean spans' bytes: let go of the request.
    endLookups();
  }

  private byService(service: string): Map<string, (SeriesPair | undefined)[]> {
    let byName = this.cache.get(service);
    if (!byName) {
      byName = new Map();
      this.cache.set(service, byName);
    }
    return byName;
  }

  /** The extra dimensions' labels (the span's attributes are read only when there are some: a lean span's stay bytes). */
  private dimensionLabels(span: Span, resource: readonly KeyValue[]): string {
    if (this.dimensions.length === 0) return '';
    let out = '';
    const attributes = span.attributes;
    for (const d of this.dimensions) {
      const value = attributeValue(attributes, d.key) ?? attributeValue(resource, d.key);
      out += `,${d.label}="${escapeLabelValue(value === undefined ? '' : labelValue(value))}"`;
    }
    return out;
  }

  async shutdown(): Promise<void> {
    this.stopStore();
  }
}

function stringOf(value: AnyValue): string {
  return value === undefined ? '' : labelValue(value);
}

/**
 * Business-event counts from log records, so dashboards can show feature usage and funnels for
 * events from any OpenTelemetry SDK (a log record whose `eventName` is set is an event; before OTLP
 * 1.5 SDKs wrote it as an `event.name` attribute, also read):
 *
 * - `sonde_events_total{service, event_name, category}`: one per event record;
 * - `category` is the record's consent category attribute (`sonde.consent.category`, as `@sonde/node`'s
 *   `track()` writes it), "" when absent; configured extra dimensions come from the record's
 *   attributes, else its resource's, else "";
 * - exemplars carry the record's trace id as `traceID` (and span id), so a bar on a funnel opens the
 *   request that emitted the event.
 *
 * Plain log records (no eventName) and consent choice records (`sonde.consent.choice`, counted as
 * people by consent/people.ts) are not counted. Bounded by the store's series limit (overflow
 * series) and expiry, like span metrics.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CONSENT_CHOICE_EVENT } from '../consent/people';
import { attributeValue, type KeyValue } from '../model';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { createMeasuredStore } from '../series/measured-store';
import { escapeLabelValue, labelName, labelValue } from '../series/naming';
import type { Family, MetricStore } from '../series/store';
import { replayDerived } from '../workers/recorded-store';
import { EVENT_METRICS_STORE } from './metrics';

export interface EventMetricsOptions {
  /** The record attribute that names the event's consent category. */
  categoryAttribute: string;
  /** Extra label dimensions: attribute keys, looked up on the record, then on its resource. */
  dimensions: string[];
  maxSeriesPerMetric: number;
  metricExpirationMs: number;
}

export const EVENTS_METRIC = 'sonde_events_total';
const DEFAULT_LABELS = new Set(['service', 'event_name', 'category']);

export class EventMetricsConsumer implements Consumer<'logs'> {
  readonly name = 'event_metrics';
  readonly store: MetricStore;
  private readonly events: Family;
  private readonly dimensions: { key: string; label: string }[];
  private readonly stopStore: () => void;

  constructor(
    private readonly options: EventMetricsOptions,
    registry: Registry,
    logger: Logger,
    /** On an intake worker: the store that records the updates for the main thread (src/workers/recorded-store.ts). */
    recording?: MetricStore,
  ) {
    const measured = recording
      ? { store: recording, stop() {} }
      : createMeasuredStore(
          EVENT_METRICS_STORE.prefix,
          EVENT_METRICS_STORE.what,
          { maxSeriesPerMetric: options.maxSeriesPerMetric, metricExpirationMs: options.metricExpirationMs },
          registry,
          (family) => logger.warn({ metric: family.name }, 'event metrics: metric name conflict'),
        );
    this.store = measured.store;
    this.stopStore = measured.stop;
    this.events = this.store.family(
      EVENTS_METRIC,
      'counter',
      '',
      'Business events (log records with an event name), by service, event name and consent category',
      0,
    ) as Family;
    this.events.exemplarLabels = { trace: 'traceID', span: 'spanID' };
    this.events.pinned = true;
    this.dimensions = options.dimensions.map((key) => {
      const label = labelName(key);
      return { key, label: DEFAULT_LABELS.has(label) ? `__${label}` : label };
    });
  }

  consume(batch: Batch<'logs'>): void {
    const now = Date.now();
    // Derived on an intake worker: its recorded updates, applied here in order.
    if (replayDerived(batch, this.name, this.store, now)) return;
    for (const rl of batch.data) {
      const resource = rl.resource.attributes;
      let service: string | undefined;
      for (const sl of rl.scopeLogs) {
        for (const record of sl.logRecords) {
          const eventName = record.eventName || legacyEventName(record.attributes);
          // Consent choice records are not business events of their category: consent/people.ts counts them as people.
          if (eventName === '' || eventName === CONSENT_CHOICE_EVENT) continue;
          service ??= `service="${escapeLabelValue(text(attributeValue(resource, 'service.name')))}"`;
          const category = text(attributeValue(record.attributes, this.options.categoryAttribute));
          const labels =
            `${service},event_name="${escapeLabelValue(eventName)}",category="${escapeLabelValue(category)}"` +
            this.dimensionLabels(record.attributes, resource);
          const time = record.timeUnixNano || record.observedTimeUnixNano;
          const exemplar =
            record.traceId !== ''
              ? {
                  traceId: record.traceId,
                  spanId: record.spanId,
                  value: 1,
                  timestamp: Number(time / 1_000_000n) / 1000,
                }
              : undefined;
          this.store.increment(this.events, labels, 1, exemplar, now);
        }
      }
    }
  }

  private dimensionLabels(record: readonly KeyValue[], resource: readonly KeyValue[]): string {
    let out = '';
    for (const d of this.dimensions) {
      const value = attributeValue(record, d.key) ?? attributeValue(resource, d.key);
      out += `,${d.label}="${escapeLabelValue(text(value))}"`;
    }
    return out;
  }

  async shutdown(): Promise<void> {
    this.stopStore();
  }
}

/**
 * The event name of a record from an SDK before the top-level eventName field (OTLP 1.5): the
 * Events API of OpenTelemetry JS 0.41 to 0.57 (and other SDKs of that time) put it in an
 * `event.name` string attribute.
 */
function legacyEventName(attributes: readonly KeyValue[]): string {
  const value = attributeValue(attributes, 'event.name');
  return typeof value === 'string' ? value : '';
}

function text(value: Parameters<typeof labelValue>[0] | undefined): string {
  return value === undefined ? '' : labelValue(value);
}

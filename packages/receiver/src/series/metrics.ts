/**
 * The self-metrics of the series engine: the /metrics handler (scrape.ts) and each series store by its
 * prefix (measured-store.ts: `sonde_prometheus`, `sonde_span_metrics`, `sonde_service_graph`,
 * `sonde_event_metrics`).
 */
import type { MetricTable } from '../metrics/define';

export const SCRAPE_METRICS = {
  duration: {
    type: 'histogram',
    name: 'sonde_prometheus_scrape_duration_seconds',
    help: 'Time to write /metrics, by format',
    labels: ['format'],
    unit: 'seconds',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  },
  size: {
    type: 'histogram',
    name: 'sonde_prometheus_scrape_size_bytes',
    help: 'Size of /metrics responses, by format',
    labels: ['format'],
    unit: 'bytes',
    buckets: [1e4, 1e5, 1e6, 1e7, 1e8],
  },
  skipped: {
    type: 'counter',
    name: 'sonde_prometheus_scrape_skipped_families_total',
    help: 'Metric families left out of a /metrics response because they could not be rendered (each scrape counts)',
  },
} as const satisfies MetricTable;

/** A series store's families: `prefix` names them, `what` begins their help (`Span metrics`). */
export function measuredStoreMetrics(prefix: string, what: string) {
  return {
    dropped: {
      type: 'counter',
      name: `${prefix}_dropped_points_total`,
      help: `${what}: updates not turned into series, by reason`,
      labels: ['reason'],
    },
    resets: {
      type: 'counter',
      name: `${prefix}_series_resets_total`,
      help: `${what}: cumulative series restarted (a point with a later start time); deltas never reset a series`,
    },
    overflow: {
      type: 'counter',
      name: `${prefix}_overflow_points_total`,
      help: `${what}: updates folded into an otel_metric_overflow="true" series because their metric had max_series_per_metric series`,
    },
    expired: {
      type: 'counter',
      name: `${prefix}_expired_series_total`,
      help: `${what}: series removed because they were not updated within their expiration`,
    },
    series: {
      type: 'gauge',
      name: `${prefix}_series`,
      help: `${what}: series on /metrics (overflow series included)`,
    },
  } as const satisfies MetricTable;
}

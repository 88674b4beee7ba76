/**
 * The self-metrics of the OTLP metrics consumer (consumer.ts): its series store's name (its families
 * are the series engine's, src/series/metrics.ts) and the writer-conflict counter.
 */
import type { MetricTable } from '../metrics/define';

/** The store of OTLP metrics (consumer.ts; its families: `measuredStoreMetrics`). */
export const PROMETHEUS_STORE = { prefix: 'sonde_prometheus', what: 'OTLP metrics for Prometheus' } as const;

export const PROMETHEUS_CONSUMER_METRICS = {
  writerConflicts: {
    type: 'counter',
    name: 'sonde_receiver_metric_writer_conflicts_total',
    help: 'Cumulative metric points dropped because another writer (a process with the same job and instance: replicas without service.instance.id) writes the same series',
  },
} as const satisfies MetricTable;

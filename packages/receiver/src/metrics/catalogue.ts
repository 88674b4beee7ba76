/**
 * Every self-metric table the receiver registers, each as the receiver instantiates it: the one list
 * of the `sonde_*` families it declares (prom-client's process and Node.js metrics aside, and
 * `sonde_events_total`, a series of the event metrics store). The receiver README's "Self-metrics"
 * section is checked against it (test/self-metric-tables.test.ts).
 */
import { blobStoreMetrics, blobStoreWalMetrics } from '../blob-store/metrics';
import { DEFAULT_PRECISION } from '../consent/hll';
import { consentMetrics } from '../consent/metrics';
import { ERASURE_METRICS } from '../erasure/metrics';
import { EVENT_METRICS_STORE } from '../events/metrics';
import { EXPORTER_METRICS, exporterItemMetrics } from '../export/metrics';
import { LOG_STORE_METRIC_NAMES } from '../log-store/metrics';
import { REDACTION_METRICS } from '../pipeline/metrics';
import { PROMETHEUS_CONSUMER_METRICS, PROMETHEUS_STORE } from '../prometheus/metrics';
import { RECEIVER_METRICS } from '../self-metrics';
import { measuredStoreMetrics, SCRAPE_METRICS } from '../series/metrics';
import { TRACE_STORE_METRIC_NAMES } from '../trace-store/metrics';
import { SERVICE_GRAPH_METRICS, SERVICE_GRAPH_STORE, SPAN_METRICS_STORE } from '../traces/metrics';
import type { MetricTable } from './define';

/** consent_people.precision's default: the help of sonde_consent_people gives its standard error. */

export const SELF_METRIC_TABLES: readonly { source: string; table: MetricTable }[] = [
  { source: 'src/self-metrics.ts', table: RECEIVER_METRICS },
  { source: 'src/pipeline/metrics.ts', table: REDACTION_METRICS },
  { source: 'src/export/metrics.ts', table: EXPORTER_METRICS },
  // The item words of the Tempo and Loki exporters (their signal's `metricItems`).
  { source: 'src/export/metrics.ts', table: exporterItemMetrics('spans') },
  { source: 'src/export/metrics.ts', table: exporterItemMetrics('log_records') },
  { source: 'src/series/metrics.ts', table: SCRAPE_METRICS },
  { source: 'src/prometheus/metrics.ts', table: PROMETHEUS_CONSUMER_METRICS },
  ...[PROMETHEUS_STORE, SPAN_METRICS_STORE, SERVICE_GRAPH_STORE, EVENT_METRICS_STORE].map((s) => ({
    source: 'src/series/metrics.ts',
    table: measuredStoreMetrics(s.prefix, s.what),
  })),
  { source: 'src/traces/metrics.ts', table: SERVICE_GRAPH_METRICS },
  { source: 'src/consent/metrics.ts', table: consentMetrics(DEFAULT_PRECISION) },
  { source: 'src/erasure/metrics.ts', table: ERASURE_METRICS },
  ...[TRACE_STORE_METRIC_NAMES, LOG_STORE_METRIC_NAMES].flatMap((names) => [
    { source: 'src/blob-store/metrics.ts', table: blobStoreMetrics(names) },
    { source: 'src/blob-store/metrics.ts', table: blobStoreWalMetrics(names) },
  ]),
];

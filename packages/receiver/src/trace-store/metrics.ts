/** The trace store's self-metrics: the embedded stores' table (src/blob-store/metrics.ts) with these names. */
import type { StoreMetricNames } from '../blob-store/metrics';

export const TRACE_STORE_METRIC_NAMES = {
  metricPrefix: 'sonde_trace_store',
  items: 'spans',
  what: 'trace store',
  configKey: 'trace_store',
} as const satisfies StoreMetricNames;

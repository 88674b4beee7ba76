/** The log store's self-metrics: the embedded stores' table (src/blob-store/metrics.ts) with these names. */
import type { StoreMetricNames } from '../blob-store/metrics';

export const LOG_STORE_METRIC_NAMES = {
  metricPrefix: 'sonde_log_store',
  items: 'records',
  what: 'log store',
  configKey: 'log_store',
} as const satisfies StoreMetricNames;

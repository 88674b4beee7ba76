/** Event metrics' self-metrics: the series store's families (src/series/metrics.ts) under this prefix. */
export const EVENT_METRICS_STORE = { prefix: 'sonde_event_metrics', what: 'Event metrics' } as const;

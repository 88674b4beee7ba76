/**
 * The self-metrics of the metrics derived from spans beyond their series stores' (whose families are
 * `measuredStoreMetrics` in src/series/metrics.ts, prefixed `sonde_span_metrics` and
 * `sonde_service_graph`): the service graph's (service-graph.ts).
 */
import type { MetricTable } from '../metrics/define';

/** The span metrics' series store (its families: `measuredStoreMetrics`). */
export const SPAN_METRICS_STORE = { prefix: 'sonde_span_metrics', what: 'Span metrics' } as const;

/** The service graph's series store. */
export const SERVICE_GRAPH_STORE = { prefix: 'sonde_service_graph', what: 'Service graph' } as const;

export const SERVICE_GRAPH_METRICS = {
  waitingEdges: {
    type: 'gauge',
    name: 'sonde_service_graph_waiting_edges',
    help: 'Service graph edges waiting for their other half',
  },
} as const satisfies MetricTable;

import type { ResourceLogs } from './logs';
import type { ResourceMetrics } from './metrics';
import type { ResourceSpans } from './traces';

export type Signal = 'traces' | 'metrics' | 'logs';
export const SIGNALS: readonly Signal[] = ['traces', 'metrics', 'logs'];

/** The decoded content of one export request, per signal. */
export interface SignalData {
  traces: ResourceSpans[];
  metrics: ResourceMetrics[];
  logs: ResourceLogs[];
}

/** What an OTLP item is called for each signal, as in the partial-success fields and self-metrics. */
export const ITEM_NAME: Record<Signal, string> = {
  traces: 'spans',
  metrics: 'data points',
  logs: 'log records',
};

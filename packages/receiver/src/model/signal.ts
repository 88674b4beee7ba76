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

export function countItems<S extends Signal>(signal: S, data: SignalData[S]): number {
  let n = 0;
  if (signal === 'traces') {
    for (const rs of data as ResourceSpans[]) for (const ss of rs.scopeSpans) n += ss.spans.length;
  } else if (signal === 'metrics') {
    for (const rm of data as ResourceMetrics[])
      for (const sm of rm.scopeMetrics) for (const m of sm.metrics) n += m.data.dataPoints.length;
  } else {
    for (const rl of data as ResourceLogs[]) for (const sl of rl.scopeLogs) n += sl.logRecords.length;
  }
  return n;
}

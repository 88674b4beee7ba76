/** Queries the LogStore sends its reader threads (log-reader-worker.ts). */
import type { SelectQuery, VolumeQuery } from './log-db';
import type { LabelMatcher } from './loki-entry';

export type LogReaderQuery =
  | ({ op: 'select' } & SelectQuery)
  | { op: 'labelNames'; startNs: bigint; endNs: bigint; matchers?: LabelMatcher[] }
  | { op: 'labelValues'; name: string; startNs: bigint; endNs: bigint; matchers?: LabelMatcher[] }
  | { op: 'series'; selectors: LabelMatcher[][]; startNs: bigint; endNs: bigint }
  | { op: 'stats'; matchers: LabelMatcher[]; startNs: bigint; endNs: bigint }
  | { op: 'volume'; matchers: LabelMatcher[]; bounds: bigint[] }
  | ({ op: 'countVolume' } & VolumeQuery);

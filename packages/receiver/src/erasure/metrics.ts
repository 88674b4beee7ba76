/** The self-metrics of erasure (api.ts). */
import type { MetricTable } from '../metrics/define';

export const ERASURE_METRICS = {
  requests: {
    type: 'counter',
    name: 'sonde_erasure_requests_total',
    help: 'Erasure calls (POST /api/admin/erase), by outcome (erased, bad_request, forbidden, too_many_traces, timeout, unavailable, error)',
    labels: ['outcome'],
  },
  tombstones: {
    type: 'gauge',
    name: 'sonde_erasure_tombstones',
    help: 'Erasure tombstones in force, by kind (subjects, traces)',
    labels: ['kind'],
  },
} as const satisfies MetricTable;

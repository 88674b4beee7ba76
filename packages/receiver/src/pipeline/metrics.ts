/** The self-metrics of the pipeline's processors: redaction (redaction.ts). */
import type { MetricTable } from '../metrics/define';

export const REDACTION_METRICS = {
  redactions: {
    type: 'counter',
    name: 'sonde_receiver_redactions_total',
    help: 'Attribute keys dropped or pseudonymized, and values masked or pseudonymized by a detector, by signal and reason',
    labels: ['signal', 'reason'],
  },
} as const satisfies MetricTable;

/** The self-metrics of the consent people consumer (people.ts). */
import type { MetricTable } from '../metrics/define';
import { standardError } from './hll';

/** `precision` (the sketches' HyperLogLog precision) gives sonde_consent_people's standard error in its help. */
export function consentMetrics(precision: number) {
  return {
    records: {
      type: 'counter',
      name: 'sonde_consent_choice_records_total',
      help: 'Consent choice records (sonde.consent.choice) counted into sonde_consent_people, by category and choice',
      labels: ['category', 'choice'],
    },
    rejected: {
      type: 'counter',
      name: 'sonde_consent_choice_records_rejected_total',
      help: 'Consent choice records not counted, by reason (unknown_category, unknown_choice, bad_subject, too_old)',
      labels: ['reason'],
    },
    people: {
      type: 'gauge',
      name: 'sonde_consent_people',
      help: `Distinct people (consent subjects; each anonymous record is one) whose consent choice records said this choice for this category within the window: a HyperLogLog estimate, standard error ${(standardError(precision) * 100).toFixed(2)}%`,
      labels: ['category', 'choice', 'window'],
    },
    sketchBytes: {
      type: 'gauge',
      name: 'sonde_consent_sketch_bytes',
      help: 'Bytes held by the consent people sketches now',
      unit: 'bytes',
    },
    sketchMaxBytes: {
      type: 'gauge',
      name: 'sonde_consent_sketch_max_bytes',
      help: 'The most bytes the consent people sketches can hold',
      unit: 'bytes',
    },
  } as const satisfies MetricTable;
}

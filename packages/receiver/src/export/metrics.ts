/**
 * The exporters' self-metrics (otlp-http-exporter.ts): shared by the Tempo and Loki exporters of one
 * registry, told apart by the `exporter` label; the item counters are per item word (`spans`,
 * `log_records`), made when the first exporter of those items starts.
 */
import type { MetricTable } from '../metrics/define';

export const EXPORTER_METRICS = {
  retries: {
    type: 'counter',
    name: 'sonde_exporter_retries_total',
    help: 'Export requests retried after a network error, a timeout or a 429/502/503/504, by exporter (tempo, loki)',
    labels: ['exporter'],
  },
  requests: {
    type: 'counter',
    name: 'sonde_exporter_requests_total',
    help: 'Export requests by exporter (tempo, loki) and outcome (success, status_<code>, network_error, timeout)',
    labels: ['exporter', 'outcome'],
  },
  duration: {
    type: 'histogram',
    name: 'sonde_exporter_request_duration_seconds',
    help: 'Time of each export request, by exporter (tempo, loki) and outcome (success, status_<code>, network_error, timeout)',
    labels: ['exporter', 'outcome'],
    unit: 'seconds',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  inFlightRequests: {
    type: 'gauge',
    name: 'sonde_exporter_in_flight_requests',
    help: 'Export requests in flight now, by exporter (at most tempo.concurrency, loki.concurrency)',
    labels: ['exporter'],
  },
  queueBytes: {
    type: 'gauge',
    name: 'sonde_exporter_queue_bytes',
    help: 'Bytes of protobuf accepted and not yet sent, by exporter: waiting in the export queue or in requests in flight (with a persistent_queue, every byte the queue holds on disk)',
    labels: ['exporter'],
    unit: 'bytes',
  },
  queueCapacityBytes: {
    type: 'gauge',
    name: 'sonde_exporter_queue_capacity_bytes',
    help: 'Bound of an export queue, by exporter (tempo.queue_size, loki.queue_size)',
    labels: ['exporter'],
    unit: 'bytes',
  },
} as const satisfies MetricTable;

/** sonde_exporter_sent_<items>_total and sonde_exporter_send_failed_<items>_total (`spans`, `log_records`). */
export function exporterItemMetrics(items: string) {
  const what = items.replace(/_/g, ' ');
  const What = what.charAt(0).toUpperCase() + what.slice(1);
  return {
    sent: {
      type: 'counter',
      name: `sonde_exporter_sent_${items}_total`,
      help: `${What} accepted by the backend (2xx), by exporter`,
      labels: ['exporter'],
    },
    failed: {
      type: 'counter',
      name: `sonde_exporter_send_failed_${items}_total`,
      help: `${What} that did not reach the backend, by exporter and reason`,
      labels: ['exporter', 'reason'],
    },
  } as const satisfies MetricTable;
}

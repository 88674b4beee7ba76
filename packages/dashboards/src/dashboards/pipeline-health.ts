/**
 * Pipeline health: the Sonde receiver's own metrics. What it accepted and refused per signal, what it
 * exported to Tempo and what failed or was retried, how full its queue and intake are, what it
 * dropped and why, cardinality overflow, the size and cost of the /metrics scrape, and the losses from
 * the SDK to the backend: SDK drops and buffer, the embedded stores' drops, backlog and size, redactions.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { baseDashboard, JOB, promql, queryVariable, SPANS, standardVariables } from '../common';
import { row } from '../layout';

export const PIPELINE_HEALTH_UID = 'sonde-pipeline-health';

const R = 'instance=~"$instance"';

export function pipelineHealth(): dashboard.Dashboard {
  const d = baseDashboard(
    PIPELINE_HEALTH_UID,
    'Sonde / Pipeline health',
    "The Sonde receiver's own metrics: intake, refusals, export to Tempo, queues, drops and cardinality. Start here when telemetry is missing.",
  );
  d.withVariable(
    queryVariable(
      'instance',
      'Receiver',
      'label_values(sonde_receiver_in_flight_bytes_limit, instance)',
      'Receiver instances (the scrape target of each receiver)',
    ),
  );
  for (const v of standardVariables()) d.withVariable(v);
  row(d, 'Intake', [
    new timeseries.PanelBuilder()
      .title('Accepted items per second')
      .description('Spans, metric data points and log records accepted into the pipeline per second.')
      .unit(units.CountsPerSecond)
      .withTarget(promql(`sum(rate(sonde_receiver_accepted_spans_total{${R}}[$__rate_interval]))`, 'spans', 'A'))
      .withTarget(
        promql(`sum(rate(sonde_receiver_accepted_metric_points_total{${R}}[$__rate_interval]))`, 'metric points', 'B'),
      )
      .withTarget(
        promql(`sum(rate(sonde_receiver_accepted_log_records_total{${R}}[$__rate_interval]))`, 'log records', 'C'),
      ),
    new timeseries.PanelBuilder()
      .title('Refused requests per second')
      .description(
        'Whole requests refused, by signal and reason (malformed, too_large, overloaded…). Clients see 4xx/5xx; overloaded ones retry.',
      )
      .unit(units.RequestsPerSecond)
      .withTarget(
        promql(
          `sum by (signal, reason) (rate(sonde_receiver_refused_requests_total{${R}}[$__rate_interval]))`,
          '{{signal}} {{reason}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Refused items per second')
      .description('Items rejected one by one inside accepted requests (partial success), by signal and reason.')
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(
          `sum by (reason) (rate(sonde_receiver_refused_spans_total{${R}}[$__rate_interval]))`,
          'spans {{reason}}',
          'A',
        ),
      )
      .withTarget(
        promql(
          `sum by (reason) (rate(sonde_receiver_refused_metric_points_total{${R}}[$__rate_interval]))`,
          'metric points {{reason}}',
          'B',
        ),
      )
      .withTarget(
        promql(
          `sum by (reason) (rate(sonde_receiver_refused_log_records_total{${R}}[$__rate_interval]))`,
          'log records {{reason}}',
          'C',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Request duration p99')
      .description('99th percentile of the time to handle an OTLP request, by signal and transport.')
      .unit(units.Seconds)
      .withTarget(
        promql(
          `histogram_quantile(0.99, sum by (le, signal, transport) (rate(sonde_receiver_request_duration_seconds_bucket{${R}}[$__rate_interval])))`,
          '{{signal}} {{transport}}',
        ),
      ),
  ]);
  row(d, 'Export to Tempo and Loki', [
    new timeseries.PanelBuilder()
      .title('Exported spans and log records per second')
      .description('Spans Tempo accepted and log records Loki accepted, per second.')
      .unit(units.CountsPerSecond)
      .withTarget(promql(`sum(rate(sonde_exporter_sent_spans_total{${R}}[$__rate_interval]))`, 'spans', 'A'))
      .withTarget(
        promql(`sum(rate(sonde_exporter_sent_log_records_total{${R}}[$__rate_interval]))`, 'log records', 'B'),
      ),
    new timeseries.PanelBuilder()
      .title('Export failures per second')
      .description(
        'Spans and log records that could not be exported and were dropped, by reason (rejected_4xx, rejected_5xx, retries_exhausted, queue_full, dropped_oldest…).',
      )
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(
          `sum by (reason) (rate(sonde_exporter_send_failed_spans_total{${R}}[$__rate_interval]))`,
          'spans {{reason}}',
          'A',
        ),
      )
      .withTarget(
        promql(
          `sum by (reason) (rate(sonde_exporter_send_failed_log_records_total{${R}}[$__rate_interval]))`,
          'log records {{reason}}',
          'B',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Export requests and retries')
      .description(
        'Export requests per second by exporter (tempo, loki) and outcome, and retries per second (after 429/5xx or network errors).',
      )
      .unit(units.RequestsPerSecond)
      .withTarget(
        promql(
          `sum by (exporter, outcome) (rate(sonde_exporter_requests_total{${R}}[$__rate_interval]))`,
          '{{exporter}} {{outcome}}',
          'A',
        ),
      )
      .withTarget(
        promql(
          `sum by (exporter) (rate(sonde_exporter_retries_total{${R}}[$__rate_interval]))`,
          '{{exporter}} retries',
          'B',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Export request duration p99')
      .description('99th percentile of the time of an export request, by exporter (tempo, loki) and outcome.')
      .unit(units.Seconds)
      .withTarget(
        promql(
          `histogram_quantile(0.99, sum by (le, exporter, outcome) (rate(sonde_exporter_request_duration_seconds_bucket{${R}}[$__rate_interval])))`,
          '{{exporter}} {{outcome}}',
        ),
      ),
  ]);
  row(d, 'Capacity', [
    new timeseries.PanelBuilder()
      .title('Queue and intake fill')
      .description(
        'Export queue bytes over its capacity, and request bytes in flight over their limit, per receiver. Near 100% the receiver refuses or drops.',
      )
      .unit(units.PercentUnit)
      .min(0)
      .max(1)
      .withTarget(
        promql(
          `sonde_exporter_queue_bytes{${R}} / sonde_exporter_queue_capacity_bytes{${R}}`,
          'export queue {{exporter}} {{instance}}',
          'A',
        ),
      )
      .withTarget(
        promql(
          `sonde_receiver_in_flight_bytes{${R}} / sonde_receiver_in_flight_bytes_limit{${R}}`,
          'in flight {{instance}}',
          'B',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Export requests in flight')
      .description(
        'Export requests in flight now, per exporter (tempo, loki) and receiver (at most tempo.concurrency, loki.concurrency).',
      )
      .unit(units.Short)
      .withTarget(promql(`sonde_exporter_in_flight_requests{${R}}`, '{{exporter}} {{instance}}')),
  ]);
  row(d, 'Drops, limits and cardinality', [
    new timeseries.PanelBuilder()
      .title('Dropped metric points per second')
      .description(
        'OTLP metric updates that did not become Prometheus series, by reason (non_monotonic_delta, out_of_order, type_conflict…).',
      )
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(`sum by (reason) (rate(sonde_prometheus_dropped_points_total{${R}}[$__rate_interval]))`, '{{reason}}'),
      ),
    new timeseries.PanelBuilder()
      .title('Limit hits per second')
      .description('Configured limits that were hit (attributes dropped, values truncated…), by signal and limit.')
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(
          `sum by (signal, limit) (rate(sonde_receiver_limit_hits_total{${R}}[$__rate_interval]))`,
          '{{signal}} {{limit}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Series by stage')
      .description('Series each stage keeps on /metrics: OTLP metrics, span metrics, service graph.')
      .unit(units.Short)
      .withTarget(promql(`sum(sonde_prometheus_series{${R}})`, 'OTLP metrics', 'A'))
      .withTarget(promql(`sum(sonde_span_metrics_series{${R}})`, 'span metrics', 'B'))
      .withTarget(promql(`sum(sonde_service_graph_series{${R}})`, 'service graph', 'C')),
    new timeseries.PanelBuilder()
      .title('Cardinality overflow per second')
      .description(
        'Points folded into the otel_metric_overflow="true" series because a metric reached its series limit, by stage. Anything above zero means labels are lost.',
      )
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(`sum(rate(sonde_prometheus_overflow_points_total{${R}}[$__rate_interval]))`, 'OTLP metrics', 'A'),
      )
      .withTarget(
        promql(`sum(rate(sonde_span_metrics_overflow_points_total{${R}}[$__rate_interval]))`, 'span metrics', 'B'),
      )
      .withTarget(
        promql(`sum(rate(sonde_service_graph_overflow_points_total{${R}}[$__rate_interval]))`, 'service graph', 'C'),
      ),
  ]);
  lossRows(d);
  row(d, 'Scrape and sources', [
    new timeseries.PanelBuilder()
      .title('Scrape size')
      .description('Average size of a /metrics response, by format (text or OpenMetrics).')
      .unit(units.BytesIEC)
      .withTarget(
        promql(
          `sum by (format) (rate(sonde_prometheus_scrape_size_bytes_sum{${R}}[$__rate_interval])) / sum by (format) (rate(sonde_prometheus_scrape_size_bytes_count{${R}}[$__rate_interval]))`,
          '{{format}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Scrape duration p99')
      .description('99th percentile of the time the receiver took to write /metrics, by format.')
      .unit(units.Seconds)
      .withTarget(
        promql(
          `histogram_quantile(0.99, sum by (le, format) (rate(sonde_prometheus_scrape_duration_seconds_bucket{${R}}[$__rate_interval])))`,
          '{{format}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Spans per second by service')
      .description('Where the traffic comes from: spans per second by sending service (from the span metrics).')
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(`sum by (service) (rate(traces_spanmetrics_calls_total{${SPANS}}[$__rate_interval]))`, '{{service}}'),
      ),
  ]);
  return d.build();
}

/**
 * Losses from the SDK to the backend, end to end: what @sonde/node dropped before sending and how full
 * its buffer is (series of the services: filtered by namespace and service, not by receiver), what the
 * embedded trace and log stores dropped, how far their writers lag and how full they are, and what
 * redaction removed. Export failures and retries are in the "Export to Tempo and Loki" row. Each alert
 * of deploy/prometheus/rules/sonde-losses.rules.yml reads one of these panels (docs/runbooks.md).
 */
function lossRows(d: dashboard.DashboardBuilder): void {
  row(d, 'Losses from SDK to backend', [
    new timeseries.PanelBuilder()
      .title('SDK drops per second')
      .description(
        'Items @sonde/node dropped before they reached the receiver, by service, signal and reason (buffer_full: the receiver was unreachable for longer than the buffer holds; rejected: a 4xx; encode_failed, redaction_failed).',
      )
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(
          `sum by (job, signal, reason) (rate(sonde_telemetry_dropped_total{${JOB}}[$__rate_interval]))`,
          '{{job}} {{signal}} {{reason}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('SDK buffer fill')
      .description(
        'Bytes the SDK holds (receiver unreachable, 429/5xx, or the gate closed) over its bound (bufferMaxBytes), per process. At 100% the oldest requests are dropped.',
      )
      .unit(units.PercentUnit)
      .min(0)
      .max(1)
      .withTarget(
        promql(
          `max by (job, instance) (sonde_buffer_usage_bytes{${JOB}} / sonde_buffer_limit_bytes{${JOB}})`,
          '{{job}} {{instance}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Store drops per second')
      .description(
        'Spans and log records the receiver accepted but its embedded stores did not keep, by reason (queue_full with on_full: drop_newest; write_error: SQLite could not write).',
      )
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(
          `sum by (reason) (rate(sonde_trace_store_dropped_spans_total{${R}}[$__rate_interval]))`,
          'trace store {{reason}}',
          'A',
        ),
      )
      .withTarget(
        promql(
          `sum by (reason) (rate(sonde_log_store_dropped_records_total{${R}}[$__rate_interval]))`,
          'log store {{reason}}',
          'B',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Store write backlog')
      .description(
        "Bytes waiting for each store's writer thread over the queue's bound (queue_size), per receiver: the write lag. Queued data is acknowledged but not yet queryable; a full queue refuses (503) or drops.",
      )
      .unit(units.PercentUnit)
      .min(0)
      .max(1)
      .withTarget(
        promql(
          `sonde_trace_store_queue_bytes{${R}} / sonde_trace_store_queue_capacity_bytes{${R}}`,
          'trace store {{instance}}',
          'A',
        ),
      )
      .withTarget(
        promql(
          `sonde_log_store_queue_bytes{${R}} / sonde_log_store_queue_capacity_bytes{${R}}`,
          'log store {{instance}}',
          'B',
        ),
      ),
  ]);
  row(d, 'Stores and redaction', [
    new timeseries.PanelBuilder()
      .title('Store size')
      .description(
        'Bytes each embedded store uses on disk over its bound (max_size), per receiver. At the bound, retention deletes the oldest data early.',
      )
      .unit(units.PercentUnit)
      .min(0)
      .max(1)
      .withTarget(
        promql(`sonde_trace_store_bytes{${R}} / sonde_trace_store_max_bytes{${R}}`, 'trace store {{instance}}', 'A'),
      )
      .withTarget(
        promql(`sonde_log_store_bytes{${R}} / sonde_log_store_max_bytes{${R}}`, 'log store {{instance}}', 'B'),
      ),
    new timeseries.PanelBuilder()
      .title('Stored items per second')
      .description(
        'Spans and log records written to the embedded stores per second; compare with Accepted items per second.',
      )
      .unit(units.CountsPerSecond)
      .withTarget(promql(`sum(rate(sonde_trace_store_spans_written_total{${R}}[$__rate_interval]))`, 'spans', 'A'))
      .withTarget(
        promql(`sum(rate(sonde_log_store_records_written_total{${R}}[$__rate_interval]))`, 'log records', 'B'),
      ),
    new timeseries.PanelBuilder()
      .title('Redactions per second')
      .description(
        "What the receiver's redaction (redaction.enabled) removed or masked per second, by signal and reason (a detector such as email or card, a blocked or pseudonymized key). Services instrumented with Sonde redact before sending: this counts what other clients sent in clear.",
      )
      .unit(units.CountsPerSecond)
      .withTarget(
        promql(
          `sum by (signal, reason) (rate(sonde_receiver_redactions_total{${R}}[$__rate_interval]))`,
          '{{signal}} {{reason}}',
        ),
      ),
  ]);
}

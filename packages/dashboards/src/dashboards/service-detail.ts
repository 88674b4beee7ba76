/**
 * Service detail: per-operation rate, errors and duration (percentiles and a heatmap with exemplars),
 * releases compared (../releases.ts, with deployment annotations),
 * the service's dependencies in and out (service graph edges), its Node runtime, CPU and memory, its
 * events and errors, and its logs (Loki datasource).
 */

import * as common from '@grafana/grafana-foundation-sdk/common';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as heatmap from '@grafana/grafana-foundation-sdk/heatmap';
import * as logs from '@grafana/grafana-foundation-sdk/logs';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';
import {
  baseDashboard,
  ENTRY,
  IN_ENVIRONMENT,
  JOB,
  LOG_STREAMS,
  logql,
  promql,
  ratio,
  SPANS,
  standardVariables,
} from '../common';
import { row } from '../layout';
import { deploymentAnnotation, releasesRow, versionVariable } from '../releases';

export const SERVICE_DETAIL_UID = 'sonde-service-detail';

const CALLS = `traces_spanmetrics_calls_total{${SPANS}, ${ENTRY}}`;
const ERRORS = `traces_spanmetrics_calls_total{${SPANS}, ${ENTRY}, status_code="STATUS_CODE_ERROR"}`;
const LATENCY = `traces_spanmetrics_latency_bucket{${SPANS}, ${ENTRY}}`;

export function serviceDetail(): dashboard.Dashboard {
  const d = baseDashboard(
    SERVICE_DETAIL_UID,
    'Sonde / Service detail',
    'One service (or a few) in depth: its operations, the services it calls and is called by, its Node.js runtime, and its events and errors.',
  );
  for (const v of standardVariables()) d.withVariable(v);
  d.withVariable(versionVariable());
  d.annotation(deploymentAnnotation());
  row(d, 'Operations', [
    new timeseries.PanelBuilder()
      .title('Requests per second by operation')
      .description('Requests handled per second, by operation (span name). Dots are exemplars linking to traces.')
      .unit(units.RequestsPerSecond)
      .withTarget(promql(`sum by (span_name) (rate(${CALLS}[$__rate_interval]))`, '{{span_name}}').exemplar(true)),
    new timeseries.PanelBuilder()
      .title('Error ratio by operation')
      .description('Share of requests whose span status is ERROR, by operation.')
      .unit(units.PercentUnit)
      .min(0)
      .withTarget(
        promql(
          ratio('span_name', `rate(${ERRORS}[$__rate_interval])`, `rate(${CALLS}[$__rate_interval])`),
          '{{span_name}}',
        ),
      ),
  ]);
  row(d, 'Duration', [
    new timeseries.PanelBuilder()
      .title('Duration percentiles')
      .description('50th, 95th and 99th percentile of request duration, all operations together. Dots are exemplars.')
      .unit(units.Seconds)
      .withTarget(
        promql(`histogram_quantile(0.50, sum by (le) (rate(${LATENCY}[$__rate_interval])))`, 'p50', 'A').exemplar(true),
      )
      .withTarget(
        promql(`histogram_quantile(0.95, sum by (le) (rate(${LATENCY}[$__rate_interval])))`, 'p95', 'B').exemplar(true),
      )
      .withTarget(
        promql(`histogram_quantile(0.99, sum by (le) (rate(${LATENCY}[$__rate_interval])))`, 'p99', 'C').exemplar(true),
      ),
    new heatmap.PanelBuilder()
      .title('Duration heatmap')
      .description(
        'How request durations are distributed over time (span duration buckets). Exemplars mark single requests: click one for its trace.',
      )
      .unit(units.Seconds)
      .calculate(false)
      .withTarget(
        promql(`sum by (le) (rate(${LATENCY}[$__rate_interval]))`, '{{le}}')
          .format(prometheus.PromQueryFormat.Heatmap)
          .exemplar(true),
      ),
  ]);
  releasesRow(d);
  row(d, 'Dependencies', [
    new timeseries.PanelBuilder()
      .title('Called by')
      .description(
        'Requests per second into the chosen services, by caller (service graph edges; "user" is outside traffic).',
      )
      .unit(units.RequestsPerSecond)
      .withTarget(
        promql(
          'sum by (client, server) (rate(traces_service_graph_request_total{server=~"$service"}[$__rate_interval]))',
          '{{client}} → {{server}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Calls to')
      .description(
        'Requests per second from the chosen services to the services and databases they call (service graph edges).',
      )
      .unit(units.RequestsPerSecond)
      .withTarget(
        promql(
          'sum by (client, server, connection_type) (rate(traces_service_graph_request_total{client=~"$service"}[$__rate_interval]))',
          '{{client}} → {{server}} {{connection_type}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Dependency p95 duration')
      .description('95th percentile of the calls to each dependency, as the caller measured them (client side).')
      .unit(units.Seconds)
      .withTarget(
        promql(
          'histogram_quantile(0.95, sum by (le, server) (rate(traces_service_graph_request_client_seconds_bucket{client=~"$service"}[$__rate_interval])))',
          '{{server}}',
        ),
      ),
  ]);
  row(d, 'Node.js runtime', [
    new timeseries.PanelBuilder()
      .title('Event loop delay p99')
      .description(
        '99th percentile of event loop delay per process (@opentelemetry/instrumentation-runtime-node): how late timers and I/O callbacks run.',
      )
      .unit(units.Seconds)
      .withTarget(promql(`nodejs_eventloop_delay_p99_seconds{${JOB}} ${IN_ENVIRONMENT}`, '{{job}} {{instance}}')),
    new timeseries.PanelBuilder()
      .title('Event loop utilization')
      .description('Share of time the event loop was busy, per process. Near 100% the process cannot keep up.')
      .unit(units.PercentUnit)
      .min(0)
      .max(1)
      .withTarget(promql(`nodejs_eventloop_utilization_ratio{${JOB}} ${IN_ENVIRONMENT}`, '{{job}} {{instance}}')),
    new timeseries.PanelBuilder()
      .title('Heap used')
      .description('V8 heap in use per process, all heap spaces together.')
      .unit(units.BytesIEC)
      .withTarget(
        promql(
          `sum by (job, instance) (v8js_memory_heap_used_bytes{${JOB}}) ${IN_ENVIRONMENT}`,
          '{{job}} {{instance}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Time in GC')
      .description('Share of wall-clock time spent in garbage collection, per process.')
      .unit(units.PercentUnit)
      .min(0)
      .withTarget(
        promql(
          `sum by (job, instance) (rate(v8js_gc_duration_seconds_sum{${JOB}}[$__rate_interval])) ${IN_ENVIRONMENT}`,
          '{{job}} {{instance}}',
        ),
      ),
  ]);
  resourceRow(d);
  row(d, 'Events and errors', [
    new timeseries.PanelBuilder()
      .title('HTTP responses by status code')
      .description('HTTP responses per second by status code (http instrumentation, http.server.request.duration).')
      .unit(units.RequestsPerSecond)
      .withTarget(
        promql(
          `sum by (http_response_status_code) (rate(http_server_request_duration_seconds_count{${JOB}}[$__rate_interval]) ${IN_ENVIRONMENT})`,
          '{{http_response_status_code}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Errors per second')
      .description('Spans in status ERROR per second, by operation: failed requests and failed calls.')
      .unit(units.RequestsPerSecond)
      .withTarget(
        promql(
          `sum by (span_name) (rate(traces_spanmetrics_calls_total{${SPANS}, status_code="STATUS_CODE_ERROR"}[$__rate_interval]))`,
          '{{span_name}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Events per second')
      .description('Business and usage events (log records with an event name) per second, by event name.')
      .unit(units.EventsPerSecond)
      .withTarget(
        promql(
          'sum by (event_name) (rate(sonde_events_total{service=~"$service"}[$__rate_interval]))',
          '{{event_name}}',
        ),
      ),
  ]);
  row(
    d,
    'Logs',
    [
      new timeseries.PanelBuilder()
        .title('Error logs per second')
        .description(
          'Log lines at level error, fatal or critical per second, by service and level (detected_level: the OTLP severity, as Loki derives it).',
        )
        .unit(units.CountsPerSecond)
        .withTarget(
          logql(
            `sum by (service_name, detected_level) (rate({${LOG_STREAMS}} | detected_level=~"error|fatal|critical" [$__rate_interval]))`,
            '{{service_name}} {{detected_level}}',
          ),
        ),
      new logs.PanelBuilder()
        .title('Logs')
        .description(
          'The log lines of the chosen services, newest first. Open a line for its structured metadata; its trace_id links to the trace in Tempo.',
        )
        .showTime(true)
        .enableLogDetails(true)
        .wrapLogMessage(true)
        .sortOrder(common.LogsSortOrder.Descending)
        .withTarget(logql(`{${LOG_STREAMS}}`)),
    ],
    10,
  );
  return d.build();
}

/**
 * CPU and memory per process of the chosen services, from @sonde/node's process metrics
 * (process.cpu.time, process.memory.usage: RSS) and the runtime instrumentation's V8 heap.
 */
function resourceRow(d: dashboard.DashboardBuilder): void {
  row(d, 'CPU and memory', [
    new timeseries.PanelBuilder()
      .title('CPU per process')
      .description(
        'CPU time per second of each process, user and system together (process.cpu.time): 100% is one core fully busy.',
      )
      .unit(units.PercentUnit)
      .min(0)
      .withTarget(
        promql(
          `sum by (job, instance) (rate(process_cpu_time_seconds_total{${JOB}}[$__rate_interval])) ${IN_ENVIRONMENT}`,
          '{{job}} {{instance}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('CPU per service')
      .description('CPU cores used by all processes of each service together, by mode (user, system).')
      .unit(units.Short)
      .min(0)
      .withTarget(
        promql(
          `sum by (job, cpu_mode) (rate(process_cpu_time_seconds_total{${JOB}}[$__rate_interval]) ${IN_ENVIRONMENT})`,
          '{{job}} {{cpu_mode}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('Memory per process (RSS and heap)')
      .description(
        'Resident set size of each process (process.memory.usage), and the V8 heap in use within it; the difference is native memory (buffers, code, threads).',
      )
      .unit(units.BytesIEC)
      .min(0)
      .withTarget(
        promql(
          `sum by (job, instance) (process_memory_usage_bytes{${JOB}}) ${IN_ENVIRONMENT}`,
          'RSS {{job}} {{instance}}',
          'A',
        ),
      )
      .withTarget(
        promql(
          `sum by (job, instance) (v8js_memory_heap_used_bytes{${JOB}}) ${IN_ENVIRONMENT}`,
          'heap {{job}} {{instance}}',
          'B',
        ),
      ),
  ]);
}

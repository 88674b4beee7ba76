/**
 * Services overview: RED per service from the span metrics (with exemplars), the service graph, and
 * the slowest and most failing operations with a link to their traces.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as nodegraph from '@grafana/grafana-foundation-sdk/nodegraph';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as tempo from '@grafana/grafana-foundation-sdk/tempo';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { baseDashboard, ENTRY, promql, promTable, ratio, SPANS, standardVariables, TEMPO, tracesLink } from '../common';
import { row } from '../layout';
import { deploymentAnnotation } from '../releases';

export const SERVICES_OVERVIEW_UID = 'sonde-services-overview';

const CALLS = `traces_spanmetrics_calls_total{${SPANS}, ${ENTRY}}`;
const ERRORS = `traces_spanmetrics_calls_total{${SPANS}, ${ENTRY}, status_code="STATUS_CODE_ERROR"}`;
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, substituted by Grafana
const OPERATION_TRACES = '{resource.service.name="${__data.fields.service}" && name="${__data.fields.span_name}"}';

export function servicesOverview(): dashboard.Dashboard {
  const d = baseDashboard(
    SERVICES_OVERVIEW_UID,
    'Sonde / Services overview',
    'Rate, errors and duration of every service, how they call each other, and the operations to look at first. From the span metrics and service graph that the Sonde receiver derives from traces.',
  );
  for (const v of standardVariables()) d.withVariable(v);
  d.annotation(deploymentAnnotation());
  row(d, 'Rate, errors, duration', [
    new timeseries.PanelBuilder()
      .title('Requests per second')
      .description(
        'Requests (server and consumer spans) handled per second, by service. Dots are exemplars: click one to open its trace.',
      )
      .unit(units.RequestsPerSecond)
      .withTarget(promql(`sum by (service) (rate(${CALLS}[$__rate_interval]))`, '{{service}}').exemplar(true)),
    new timeseries.PanelBuilder()
      .title('Error ratio')
      .description('Share of requests whose span status is ERROR, by service.')
      .unit(units.PercentUnit)
      .min(0)
      .withTarget(
        promql(
          ratio('service', `rate(${ERRORS}[$__rate_interval])`, `rate(${CALLS}[$__rate_interval])`),
          '{{service}}',
        ),
      ),
    new timeseries.PanelBuilder()
      .title('p95 duration')
      .description(
        '95th percentile of request duration, by service (span duration histogram). Dots are exemplars linking to traces.',
      )
      .unit(units.Seconds)
      .withTarget(
        promql(
          `histogram_quantile(0.95, sum by (le, service) (rate(traces_spanmetrics_latency_bucket{${SPANS}, ${ENTRY}}[$__rate_interval])))`,
          '{{service}}',
        ).exemplar(true),
      ),
  ]);
  row(
    d,
    'Service graph',
    [
      new nodegraph.PanelBuilder()
        .title('Service graph')
        .description(
          'Who calls whom, with request rate, error rate and duration per edge: Grafana builds it from the traces_service_graph_* metrics (the Tempo datasource queries Prometheus). Click a node for its traces and metrics.',
        )
        .datasource(TEMPO)
        .unit(units.RequestsPerSecond)
        .withTarget(new tempo.DataqueryBuilder().datasource(TEMPO).refId('A').queryType('serviceMap')),
    ],
    12,
  );
  row(d, 'Operations to look at', [
    new table.PanelBuilder()
      .title('Slowest operations (p95)')
      .description(
        'The ten operations with the highest 95th percentile duration over the time range. Click an operation for its traces.',
      )
      .unit(units.Seconds)
      .withTarget(
        promTable(
          `topk(10, histogram_quantile(0.95, sum by (le, service, span_name) (rate(traces_spanmetrics_latency_bucket{${SPANS}}[$__range]))))`,
        ),
      )
      .overrideByName('span_name', [tracesLink('Traces of this operation', OPERATION_TRACES)])
      .overrideByName('Time', [{ id: 'custom.hidden', value: true }]),
    new table.PanelBuilder()
      .title('Most failing operations')
      .description(
        'The ten operations with the most spans in status ERROR over the time range. Click an operation for its traces.',
      )
      .unit(units.Short)
      .withTarget(
        promTable(
          `topk(10, sum by (service, span_name) (increase(traces_spanmetrics_calls_total{${SPANS}, status_code="STATUS_CODE_ERROR"}[$__range])))`,
        ),
      )
      .overrideByName('span_name', [
        tracesLink(
          'Failed traces of this operation',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, substituted by Grafana
          '{resource.service.name="${__data.fields.service}" && name="${__data.fields.span_name}" && status=error}',
        ),
      ])
      .overrideByName('Time', [{ id: 'custom.hidden', value: true }]),
  ]);
  return d.build();
}

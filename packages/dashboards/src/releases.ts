/**
 * Releases: what changed when a new version went out.
 *
 * - `$version`: the release to look at, from the span metrics' `service_version` label (the
 *   resource's service.version, which the receiver adds by default), newest first (natural sort), so
 *   that the dashboard opens on the newest release;
 * - the "Releases" row: this release next to the previous ones seen in the time range (during and
 *   after a rollout, the release it replaces), for rate, error ratio and p95 duration, over time and
 *   as one table;
 * - the deployment annotation: a region from the time a job first reports a service.version in
 *   target_info (the resource attributes of the metrics it sends) for `DEPLOY_WINDOW`.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { ENTRY, JOB, PROMETHEUS, promql, promTable, ratio, SPANS } from './common';
import { row } from './layout';

/** How long before a version's first report it must not have been seen, for it to count as deployed. */
export const DEPLOY_WINDOW = '10m';

const CALLS = `traces_spanmetrics_calls_total{${SPANS}, ${ENTRY}}`;
const ERRORS = `traces_spanmetrics_calls_total{${SPANS}, ${ENTRY}, status_code="STATUS_CODE_ERROR"}`;
const LATENCY = `traces_spanmetrics_latency_bucket{${SPANS}, ${ENTRY}}`;
const THIS = 'service_version="$version"';
const OTHERS = 'service_version!="$version"';

/** `$version`: one release, newest first. */
export function versionVariable(): dashboard.QueryVariableBuilder {
  const query = `label_values(traces_spanmetrics_calls_total{${SPANS}}, service_version)`;
  return new dashboard.QueryVariableBuilder('version')
    .label('Release')
    .description(
      'service.version of the chosen services (from the span metrics), newest first. The Releases row compares it with the other versions seen in the time range.',
    )
    .datasource(PROMETHEUS)
    .query({ qryType: 1, query, refId: 'PrometheusVariableQueryEditor-VariableQuery' })
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.NaturalDesc)
    .multi(false)
    .includeAll(false);
}

/** `selector` with the extra matcher `m` added inside its braces. */
const withMatcher = (selector: string, m: string) => selector.replace(/\}$/, `, ${m}}`);

function compared(title: string, description: string, unit: string, expr: (selector: (s: string) => string) => string) {
  return new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .unit(unit)
    .withTarget(
      promql(
        expr((s) => withMatcher(s, THIS)),
        '$version (this release)',
        'A',
      ),
    )
    .withTarget(
      promql(
        expr((s) => withMatcher(s, OTHERS)),
        '{{service_version}}',
        'B',
      ),
    );
}

/** The "Releases" row of the service dashboard: `$version` next to the other versions in the time range. */
export function releasesRow(d: dashboard.DashboardBuilder): void {
  const by = 'service_version';
  row(d, 'Releases: this release vs the previous one', [
    compared(
      'Requests per second by release',
      'Requests handled per second by $version and by each other version seen in the time range (the previous release, during and after a rollout).',
      units.RequestsPerSecond,
      (s) => `sum by (${by}) (rate(${s(CALLS)}[$__rate_interval]))`,
    ),
    compared(
      'Error ratio by release',
      'Share of requests in status ERROR, $version against each other version seen in the time range.',
      units.PercentUnit,
      (s) => ratio(by, `rate(${s(ERRORS)}[$__rate_interval])`, `rate(${s(CALLS)}[$__rate_interval])`),
    ),
    compared(
      'p95 duration by release',
      '95th percentile of request duration, $version against each other version seen in the time range.',
      units.Seconds,
      (s) => `histogram_quantile(0.95, sum by (${by}, le) (rate(${s(LATENCY)}[$__rate_interval])))`,
    ),
    new table.PanelBuilder()
      .title('This release vs the previous one')
      .description(
        'Every version that served requests in the time range, with its rate, error ratio and p95 duration over the range: a new release next to the one it replaces.',
      )
      .unit(units.Short)
      .withTarget(promTable(`sum by (${by}) (rate(${CALLS}[$__range]))`, 'A'))
      .withTarget(promTable(ratio(by, `rate(${ERRORS}[$__range])`, `rate(${CALLS}[$__range])`), 'B'))
      .withTarget(promTable(`histogram_quantile(0.95, sum by (${by}, le) (rate(${LATENCY}[$__range])))`, 'C'))
      .withTransformation({ id: 'merge', options: {} })
      .withTransformation({
        id: 'organize',
        options: {
          excludeByName: { Time: true },
          renameByName: {
            service_version: 'release',
            'Value #A': 'requests/s',
            'Value #B': 'error ratio',
            'Value #C': 'p95',
          },
        },
      })
      .overrideByName('error ratio', [{ id: 'unit', value: units.PercentUnit }])
      .overrideByName('p95', [{ id: 'unit', value: units.Seconds }])
      .overrideByName('requests/s', [{ id: 'unit', value: units.RequestsPerSecond }]),
  ]);
}

/**
 * Deployments: for each job and service.version, a region from the version's first report in
 * target_info (none in the `DEPLOY_WINDOW` before) until `DEPLOY_WINDOW` later. target_info has one
 * series per process, so restarts and more replicas of a version already running add nothing.
 * `environmentMatcher` keeps the chosen environment (target_info has the resource attributes).
 */
export function deploymentAnnotation(selector = JOB): dashboard.AnnotationQueryBuilder {
  const info = `target_info{${selector}, deployment_environment_name=~"$environment", service_version!=""}`;
  const expr = `group by (job, service_version) (${info}) unless group by (job, service_version) (${info} offset ${DEPLOY_WINDOW})`;
  return new dashboard.AnnotationQueryBuilder()
    .name('Deployments')
    .datasource(PROMETHEUS)
    .enable(true)
    .iconColor('rgba(255, 152, 48, 1)')
    .target(promql(expr, '', 'Deployments'))
    .expr(expr)
    .step('1m')
    .titleFormat('{{job}} {{service_version}}')
    .textFormat(`{{job}} first reported service.version {{service_version}} (target_info; shown for ${DEPLOY_WINDOW})`)
    .tagKeys('job,service_version');
}

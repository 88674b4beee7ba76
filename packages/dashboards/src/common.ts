/**
 * What every Sonde dashboard shares: the provisioned datasource uids, the template variables, label
 * selectors over the span metrics, and small builders for the panel shapes used again and again.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as loki from '@grafana/grafana-foundation-sdk/loki';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';

/** Datasource uids, fixed in grafana/provisioning/datasources/datasources.yaml. */
export const PROMETHEUS_UID = 'prometheus';
export const TEMPO_UID = 'tempo';

export const LOKI_UID = 'loki';
export const PROMETHEUS = { type: 'prometheus', uid: PROMETHEUS_UID };
export const LOKI = { type: 'loki', uid: LOKI_UID };
export const TEMPO = { type: 'tempo', uid: TEMPO_UID };

/** Span metrics of the chosen environment, namespace and services. */
export const SPANS =
  'deployment_environment_name=~"$environment", service_namespace=~"$service_namespace", service=~"$service"';
/** Entry points of a service: spans that handle a request or a message. */
export const ENTRY = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"';
/** OTLP metrics of the chosen services: job is service.namespace/service.name. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, substituted by Grafana
export const JOB = 'job=~"${service_namespace}/${service}"';
/**
 * Keeps the series of the chosen environment: the environment is a resource attribute, so it is on
 * target_info, not on every series; join on (job, instance).
 */
export const IN_ENVIRONMENT =
  '* on (job, instance) group_left () max by (job, instance) (target_info{deployment_environment_name=~"$environment"})';

/**
 * environment, service_namespace and service, chained: each lists the values the previous ones
 * allow. Multi-valued with "All" (`.*`, which also matches series without the label) selected.
 */
export function standardVariables(): dashboard.QueryVariableBuilder[] {
  return [
    queryVariable(
      'environment',
      'Environment',
      'label_values(target_info, deployment_environment_name)',
      'deployment.environment.name of the services (from target_info)',
    ),
    queryVariable(
      'service_namespace',
      'Namespace',
      'label_values(traces_spanmetrics_calls_total{deployment_environment_name=~"$environment"}, service_namespace)',
      'service.namespace (from the span metrics)',
    ),
    queryVariable(
      'service',
      'Service',
      'label_values(traces_spanmetrics_calls_total{deployment_environment_name=~"$environment", service_namespace=~"$service_namespace"}, service)',
      'service.name (from the span metrics)',
    ),
  ];
}

export function queryVariable(
  name: string,
  label: string,
  query: string,
  description: string,
): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .description(description)
    .datasource(PROMETHEUS)
    .query({ qryType: 1, query, refId: 'PrometheusVariableQueryEditor-VariableQuery' })
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ selected: true, text: ['All'], value: ['$__all'] });
}

/**
 * Log streams of the chosen environment, namespace and services (stream labels of OTLP logs in Loki:
 * service.name, service.namespace and deployment.environment.name). `service_name=~".+"` keeps the
 * selector valid when every variable is All (`.*`): Loki refuses a selector that matches the empty value.
 */
export const LOG_STREAMS =
  'service_name=~".+", service_name=~"$service", service_namespace=~"$service_namespace", deployment_environment_name=~"$environment"';

/** A Loki range query (logs, or a metric query over logs). */
export function logql(expr: string, legend = '', refId = 'A'): loki.DataqueryBuilder {
  const q = new loki.DataqueryBuilder()
    .datasource(LOKI)
    .expr(expr)
    .refId(refId)
    .range(true)
    .editorMode(loki.QueryEditorMode.Code);
  return legend ? q.legendFormat(legend) : q;
}

/** A Prometheus range query. */
export function promql(expr: string, legend = '__auto', refId = 'A'): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder().datasource(PROMETHEUS).expr(expr).legendFormat(legend).refId(refId).range();
}

/** A Prometheus instant query shown as a table (one row per series). */
export function promTable(expr: string, refId = 'A'): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder()
    .datasource(PROMETHEUS)
    .expr(expr)
    .legendFormat('__auto')
    .refId(refId)
    .instant()
    .format(prometheus.PromQueryFormat.Table);
}

/**
 * `num / den` where a missing numerator counts as zero: an error ratio is 0, not "no data", for a
 * service without errors. Both sides aggregated `by`.
 */
export function ratio(by: string, numerator: string, denominator: string): string {
  return `(sum by (${by}) (${numerator}) or 0 * sum by (${by}) (${denominator})) / sum by (${by}) (${denominator})`;
}

/** Grafana's link to the traces of one operation: Tempo search with TraceQL, from a table row. */
export function tracesLink(title: string, traceql: string): dashboard.DynamicConfigValue {
  return {
    id: 'links',
    value: [
      {
        title,
        url: '',
        internal: {
          datasourceUid: TEMPO_UID,
          datasourceName: 'Tempo',
          query: { queryType: 'traceql', query: traceql, limit: 20 },
        },
      },
    ],
  };
}

export function gridPos(x: number, y: number, w: number, h: number): dashboard.GridPos {
  return { x, y, w, h };
}

/** Dashboard defaults: tags, time, refresh, crosshair, the links between Sonde's dashboards. */
export function baseDashboard(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['sonde', 'opentelemetry'])
    .editable()
    .timezone('browser')
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name('Annotations & Alerts')
        .builtIn(1)
        .datasource({ type: 'grafana', uid: '-- Grafana --' })
        .enable(true)
        .hide(true)
        .iconColor('rgba(0, 211, 255, 1)')
        .type('dashboard'),
    )
    .link(
      new dashboard.DashboardLinkBuilder('Sonde')
        .type(dashboard.DashboardLinkType.Dashboards)
        .tags(['sonde'])
        .asDropdown(true)
        .includeVars(true)
        .keepTime(true),
    );
}

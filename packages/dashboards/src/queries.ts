/**
 * The PromQL a dashboard sends, as Grafana would send it: every Prometheus query of every panel and
 * template variable, the queries Grafana's Tempo datasource makes for a service-graph panel, and the
 * substitution of template and built-in variables. The end-to-end test (test/dashboards-promql.test.ts)
 * runs them against a real Prometheus.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  /** The expression as written in the dashboard (variables not substituted). */
  expr: string;
  /** An instant query (tables, stats, gauges); otherwise a range query. */
  instant: boolean;
  /**
   * Where the query comes from: the panel's own target, what Grafana's Tempo datasource derives, or a
   * dashboard annotation (`panel` is then `annotation "<name>"`; a range query, as Grafana runs it).
   */
  origin: 'target' | 'tempo-service-map' | 'annotation';
}

interface TargetLike {
  refId?: string;
  expr?: string;
  instant?: boolean;
  range?: boolean;
  queryType?: string;
  datasource?: { type?: string; uid?: string };
}

interface PanelLike {
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: TargetLike[];
  panels?: PanelLike[];
}

/** Every panel, including those inside collapsed rows. */
export function allPanels(d: dashboard.Dashboard): PanelLike[] {
  const out: PanelLike[] = [];
  const walk = (ps: PanelLike[] | undefined) => {
    for (const p of ps ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels as PanelLike[] | undefined);
  return out;
}

/**
 * The Prometheus queries Grafana's Tempo datasource (grafana-tempo-datasource, `serviceMap` query type)
 * makes for a service graph: the graph itself, from the service-graph metrics, and the RED table
 * over the span metrics. See shared reference grafana.md §3.
 */
export const TEMPO_SERVICE_MAP_QUERIES: { refId: string; expr: string }[] = [
  ...[
    'traces_service_graph_request_server_seconds_sum',
    'traces_service_graph_request_total',
    'traces_service_graph_request_failed_total',
  ].flatMap((m) => [
    { refId: `${m} rate`, expr: `sum by (client, server) (rate(${m}[$__range]))` },
    { refId: `${m} edges`, expr: `group by (client, connection_type, server) (${m})` },
  ]),
  {
    refId: 'traces_service_graph_request_server_seconds_bucket rate',
    expr: 'sum by (client, server, le) (rate(traces_service_graph_request_server_seconds_bucket[$__range]))',
  },
  {
    refId: 'RED rate',
    expr: 'topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER"}[$__range])) by (span_name))',
  },
  {
    refId: 'RED errors',
    expr: 'topk(5, sum(rate(traces_spanmetrics_calls_total{status_code="STATUS_CODE_ERROR", span_kind="SPAN_KIND_SERVER"}[$__range])) by (span_name))',
  },
  {
    refId: 'RED duration',
    expr: 'histogram_quantile(.9, sum(rate(traces_spanmetrics_latency_bucket{span_kind="SPAN_KIND_SERVER"}[$__range])) by (le))',
  },
];

/**
 * Every Prometheus query of every panel (Tempo service-map panels expanded to their Prometheus
 * queries), then of every Prometheus annotation.
 */
export function panelQueries(d: dashboard.Dashboard): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const a of d.annotations?.list ?? []) {
    const target = a.target as TargetLike | undefined;
    const expr = target?.expr ?? a.expr;
    if (a.datasource?.type !== 'prometheus' || expr === undefined) continue;
    out.push({
      dashboard: d.title ?? '',
      panel: `annotation "${a.name}"`,
      refId: target?.refId ?? 'Anno',
      expr,
      instant: false,
      origin: 'annotation',
    });
  }
  for (const p of allPanels(d)) {
    if (p.type === 'row') continue;
    for (const t of p.targets ?? []) {
      const type = t.datasource?.type ?? p.datasource?.type;
      const base = { dashboard: d.title ?? '', panel: p.title ?? '(untitled)' };
      if (type === 'prometheus' && t.expr !== undefined) {
        out.push({ ...base, refId: t.refId ?? 'A', expr: t.expr, instant: t.instant === true, origin: 'target' });
      } else if (type === 'tempo' && t.queryType === 'serviceMap') {
        for (const q of TEMPO_SERVICE_MAP_QUERIES) {
          out.push({ ...base, refId: q.refId, expr: q.expr, instant: true, origin: 'tempo-service-map' });
        }
      }
    }
  }
  return out;
}

/** A LogQL query of a panel (Loki datasource). */
export interface LokiPanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  /** The expression as written in the dashboard (variables not substituted). */
  expr: string;
  /** A log query (a stream selector and stages), else a metric query over logs. */
  logs: boolean;
  /** The line limit a logs query asks for, when the panel sets one. */
  maxLines?: number;
}

/** Every Loki query of every panel, including those in rows. */
export function lokiQueries(d: dashboard.Dashboard): LokiPanelQuery[] {
  const out: LokiPanelQuery[] = [];
  for (const p of allPanels(d)) {
    if (p.type === 'row') continue;
    for (const t of (p.targets ?? []) as (TargetLike & { maxLines?: number })[]) {
      const type = t.datasource?.type ?? p.datasource?.type;
      if (type !== 'loki' || t.expr === undefined) continue;
      out.push({
        dashboard: d.title ?? '',
        panel: p.title ?? '(untitled)',
        refId: t.refId ?? 'A',
        expr: t.expr,
        logs: t.expr.trim().startsWith('{'),
        ...(t.maxLines !== undefined ? { maxLines: t.maxLines } : {}),
      });
    }
  }
  return out;
}

export interface VariableQuery {
  name: string;
  /** label_values(...) or query_result(...) as written. */
  query: string;
  multi: boolean;
  includeAll: boolean;
  allValue?: string;
  /** The saved selection ("$__all" for All). */
  current: string[];
}

export function variableQueries(d: dashboard.Dashboard): VariableQuery[] {
  return (d.templating?.list ?? [])
    .filter((v) => v.type === 'query')
    .map((v) => {
      const q = v.query as string | { query?: string } | undefined;
      const current = v.current?.value;
      return {
        name: v.name,
        query: typeof q === 'string' ? q : (q?.query ?? ''),
        multi: v.multi === true,
        includeAll: v.includeAll === true,
        allValue: v.allValue,
        current: current === undefined ? [] : Array.isArray(current) ? current : [current],
      };
    });
}

/** `label_values(selector, label)` or `label_values(label)`, as Grafana's Prometheus datasource parses it. */
export function parseLabelValues(query: string): { match?: string; label: string } | undefined {
  const m = /^\s*label_values\(([\s\S]*)\)\s*$/.exec(query);
  if (!m) return undefined;
  const args = m[1];
  let depth = 0;
  let quote = '';
  for (let i = args.length - 1; i >= 0; i--) {
    const c = args[i];
    if (quote) {
      if (c === quote && args[i - 1] !== '\\') quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ')' || c === '}' || c === ']') depth++;
    else if (c === '(' || c === '{' || c === '[') depth--;
    else if (c === ',' && depth === 0) return { match: args.slice(0, i).trim(), label: args.slice(i + 1).trim() };
  }
  return { label: args.trim() };
}

/** Regex-escapes a value the way Grafana's Prometheus datasource does for multi-value variables. */
export function escapeForRegex(value: string): string {
  return value.replace(/[\\^$*+?.()|{}[\]]/g, '\\$&');
}

export interface VariableValue {
  /** The values selected; for All, every option. */
  values: string[];
  /** All is selected (the variable's allValue is used when set). */
  all: boolean;
  multi: boolean;
  includeAll: boolean;
  allValue?: string;
}

/** How one variable reference is written into the query, per Grafana's Prometheus datasource. */
function formatVariable(v: VariableValue, format: string | undefined): string {
  if (v.all && v.allValue !== undefined) return v.allValue;
  const values = v.values;
  if (format === 'regex' || format === undefined) {
    if (format === 'regex' || v.multi || v.includeAll) {
      const escaped = values.map(escapeForRegex);
      return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
    }
    return values.join(',');
  }
  if (format === 'raw') return values.join(',');
  if (format === 'pipe') return values.join('|');
  if (format === 'csv') return values.join(',');
  throw new Error(`variable format :${format} is not supported here`);
}

export interface BuiltIns {
  /** The dashboard's time range, in milliseconds. */
  rangeMs: number;
  /** The Prometheus datasource's scrape interval (jsonData.timeInterval), in milliseconds. */
  scrapeIntervalMs: number;
  /** Data points Grafana asks for (the panel width); 1000 by default. */
  maxDataPoints?: number;
}

/** Grafana's rounding of an interval to a "nice" value (rangeutil.roundInterval), in milliseconds. */
export function roundInterval(ms: number): number {
  const steps: [number, number][] = [
    [15, 10],
    [35, 20],
    [75, 50],
    [150, 100],
    [350, 200],
    [750, 500],
    [1500, 1000],
    [3500, 2000],
    [7500, 5000],
    [12500, 10000],
    [17500, 15000],
    [25000, 20000],
    [45000, 30000],
    [90000, 60000],
    [450000, 300000],
    [1050000, 600000],
    [2100000, 1800000],
    [5400000, 3600000],
    [9000000, 7200000],
    [16200000, 10800000],
    [32400000, 21600000],
    [86400000, 43200000],
    [604800000, 86400000],
    [1814400000, 604800000],
    [3628800000, 2592000000],
  ];
  for (const [below, value] of steps) if (ms < below) return value;
  return 31536000000;
}

/** $__interval, $__rate_interval and $__range as Grafana computes them for a Prometheus query. */
export function builtIns(b: BuiltIns): Record<string, string> {
  const intervalMs = Math.max(roundInterval(b.rangeMs / (b.maxDataPoints ?? 1000)), b.scrapeIntervalMs);
  const rateIntervalMs = Math.max(intervalMs + b.scrapeIntervalMs, 4 * b.scrapeIntervalMs);
  const rangeS = Math.round(b.rangeMs / 1000);
  const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
  return {
    __interval: seconds(intervalMs),
    __interval_ms: String(intervalMs),
    __rate_interval: seconds(rateIntervalMs),
    __rate_interval_ms: String(rateIntervalMs),
    __range: `${rangeS}s`,
    __range_s: String(rangeS),
    __range_ms: String(b.rangeMs),
  };
}

/**
 * Substitutes `$name`, `${name}`, `${name:format}` and `[[name]]` as Grafana does before a query goes
 * to Prometheus. Unknown variables are an error (Grafana would send them as they are, and Prometheus
 * would answer with a parse error or nothing).
 */
export function interpolate(
  expr: string,
  variables: Record<string, VariableValue>,
  builtins: Record<string, string>,
): string {
  return expr.replace(
    /\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]/g,
    (whole, plain: string, braced: string, bracedFormat: string, bracket: string, bracketFormat: string) => {
      const name = plain ?? braced ?? bracket;
      const format = bracedFormat ?? bracketFormat;
      if (name in builtins) return builtins[name];
      const v = variables[name];
      if (!v) throw new Error(`unknown variable ${whole} in ${expr}`);
      return formatVariable(v, format);
    },
  );
}

/**
 * The operands of an alerting expression: the expression split at its top-level comparison
 * (`>`, `<`, `>=`, `<=`, `==`, `!=`, with or without `bool`) and set operators (`and`, `or`,
 * `unless`), without the pure numbers (thresholds). `a > 0.1 and b > 0.1` gives `a` and `b`. Each is
 * what must have data for the alert to be able to fire.
 */
export function alertOperands(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  const cut = (end: number, skip: number) => {
    parts.push(expr.slice(start, end));
    start = end + skip;
  };
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') depth--;
    else if (depth === 0) {
      const rest = expr.slice(i);
      let op = /^(>=|<=|==|!=|>|<)(\s*bool\b)?/.exec(rest);
      if (!op && /[\s)]/.test(expr[i - 1] ?? ' ')) op = /^(and|or|unless)\b/.exec(rest);
      if (op) {
        cut(i, op[0].length);
        i += op[0].length - 1;
      }
    }
  }
  parts.push(expr.slice(start));
  return parts
    .map((p) => p.trim())
    .filter((p) => p !== '' && !/^[-+]?[\d.eE+*/\s()-]+$/.test(p))
    .map((p) => stripModifiers(p));
}

/** Drops a leading `on(...)`/`ignoring(...)`/`group_left(...)` left over from a vector-matching operator. */
function stripModifiers(p: string): string {
  return p.replace(/^((on|ignoring|group_left|group_right)\s*\([^)]*\)\s*)+/, '').trim();
}

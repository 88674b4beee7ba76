/**
 * Every PromQL query of every dashboard panel, annotation (the deployment marks), template variable,
 * alert rule and provisioned trace-to-metrics link, run against a real Prometheus (Debian's package) that scrapes a real receiver
 * fed by real telemetry, must return data. A query that returns nothing fails the test, naming the
 * dashboard and panel.
 *
 * - The feed: test/feed/index.ts, the one place that picks it: the demo shop (@sonde/demo, three
 *   services instrumented by @sonde/node, under load), plus a misbehaving OTLP client and flaky
 *   Tempo and Loki stand-ins, so that the refusal, drop, limit and export-failure counters have data too.
 * - Queries are taken from the committed files (grafana/dashboards/*.json, deploy/prometheus/rules,
 *   grafana/provisioning), with template variables resolved and substituted as Grafana does: each
 *   variable's own query is run (label_values → the label values API), its saved selection (All) is
 *   applied, `$__rate_interval`, `$__interval` and `$__range` are computed from the scrape interval
 *   and the time range. Range queries run as query_range over the time range; instant ones at its end.
 * - Alert rules: recording rules must produce series, and each alert's expression is split at its
 *   threshold comparisons (`a > 0.072 and b > 0.072`): every operand must have data, i.e. the alert is
 *   able to fire on this data (an operand that looks a day back, `offset 1d`, is run without the
 *   offset: the run is shorter than that). Whether it fires at the right threshold is what promtool's unit tests
 *   prove (deploy/prometheus/rules/tests, run by test/deploy-offline.test.ts).
 * - Loki: the same receiver keeps the shop's logs in its embedded log store (and exports them to the
 *   flaky Loki stand-in as well), and every Loki query of the provisioned Grafana runs against its
 *   admin port's Loki API (test/dashboards-logql.ts), in the same run of the shop.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import {
  alertOperands,
  builtIns,
  interpolate,
  type PanelQuery,
  panelQueries,
  parseLabelValues,
  type VariableValue,
  variableQueries,
} from '@sonde/dashboards';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import * as YAML from 'yaml';
import { describeLokiQueries } from './dashboards-logql';
import { type Feed, startFeed } from './feed';
import { type FlakyTempo, startFlakyTempo } from './feed/flaky-tempo';
import { startMisbehavingClient } from './feed/misbehaving-client';
import { type Prometheus, type RangeSeries, startPrometheus } from './prometheus-harness';

const ROOT = path.resolve(__dirname, '..');
const DASHBOARDS_DIR = path.join(ROOT, 'grafana/dashboards');
const RULES_DIR = path.join(ROOT, 'deploy/prometheus/rules');
const SCRAPE_INTERVAL_MS = 1000;
const MAX_ITEMS_PER_REQUEST = 2000;
/**
 * How long after the feed starts a query may take to have data. Usually all have data within ~15 s;
 * rare things take longer (a payment.failed event: 5% of the checkouts of shoppers who did not opt
 * out, about one every 8 s at 40 requests/s), so checks are retried until then.
 */
const DATA_DEADLINE_MS = 60_000;

let tempo: FlakyTempo;
/** The same flaky backend standing in for Loki's OTLP intake (it answers any path), for the log exporter's series. */
let loki: FlakyTempo;
let receiver: Receiver;
let prometheus: Prometheus;
let feed: Feed | undefined;
let misbehaving: { stop(): Promise<void> } | undefined;
let dataDir: string;
let feedStart: number;
/** What reached the receiver's pipeline: the event names of log records, the names of metrics. */
const seen = { eventNames: new Set<string>(), metricNames: new Set<string>() };

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-dashboards-'));
  tempo = await startFlakyTempo();
  loki = await startFlakyTempo();
  receiver = await startReceiver(
    validateConfig({
      // The storefront's browser page sends from the storefront's origin.
      otlp: {
        http: { address: '127.0.0.1:0', cors_allowed_origins: ['http://127.0.0.1:*'] },
        grpc: { address: 'off' },
      },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      data_dir: dataDir,
      // As deploy/receiver/sonde.yaml: the product dashboard's visits by device and browser.
      event_metrics: { dimensions: ['device.type', 'browser.name'] },
      limits: { max_items_per_request: MAX_ITEMS_PER_REQUEST },
      // As deploy/receiver/sonde.yaml: the dashboards' namespace and environment variables filter on these.
      span_metrics: { dimensions: ['service.namespace', 'deployment.environment.name'] },
      service_graph: { wait: '2s' },
      tempo: {
        endpoint: tempo.url,
        batch_timeout: '100ms',
        retry: { initial_interval: '50ms', max_interval: '200ms', max_elapsed_time: '5s' },
      },
      loki: {
        endpoint: loki.url,
        batch_timeout: '100ms',
        retry: { initial_interval: '50ms', max_interval: '200ms', max_elapsed_time: '5s' },
      },
      // On by default only without loki.endpoint: both the export and the store, whose Loki API the Loki checks query.
      log_store: { enabled: true },
      // Likewise the trace store beside the Tempo export: the pipeline-health store panels and the store alerts read it.
      trace_store: { enabled: true },
      // The receiver's own redaction (off by default), for the clients not instrumented with Sonde: the
      // misbehaving client sends an email in clear, which the Redactions panel counts.
      redaction: { enabled: true },
    }),
  );
  receiver.pipeline.logs.addConsumer({
    name: 'test-capture',
    consume: (batch) => {
      for (const rl of batch.data)
        for (const sl of rl.scopeLogs) for (const r of sl.logRecords) if (r.eventName) seen.eventNames.add(r.eventName);
    },
  });
  receiver.pipeline.metrics.addConsumer({
    name: 'test-capture',
    consume: (batch) => {
      for (const rm of batch.data)
        for (const sm of rm.scopeMetrics) for (const m of sm.metrics) seen.metricNames.add(m.name);
    },
  });
  const admin = receiver.addresses.admin!;
  prometheus = await startPrometheus({
    targets: [admin],
    job: 'sonde',
    ruleFiles: fs
      .readdirSync(RULES_DIR)
      .filter((f) => f.endsWith('.rules.yml'))
      .map((f) => path.join(RULES_DIR, f)),
    evaluationInterval: '1s',
  });
  const otlp = `http://${receiver.addresses.otlpHttp}`;
  feedStart = Date.now();
  feed = await startFeed(otlp);
  misbehaving = startMisbehavingClient({ otlpEndpoint: otlp, logRecordsPerBurst: MAX_ITEMS_PER_REQUEST + 1 });
}, 60_000);

afterAll(async () => {
  await misbehaving?.stop();
  await feed?.stop();
  await prometheus?.stop();
  await receiver?.close();
  await tempo?.close();
  await loki?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

// ---------------------------------------------------------------------------------------------
// Checks

interface Check {
  /** "Dashboard / panel [refId]" or "rule group / rule". */
  where: string;
  /** The query as sent to Prometheus. */
  promql: string;
  run(): Promise<RangeSeries[]>;
}

const hasData = (series: RangeSeries[]) => series.some((s) => s.values.some(([, v]) => !Number.isNaN(v)));

interface Outcome {
  failures: string[];
  checked: number;
}

/** Runs the checks again and again until all have data or `deadline`; then says what still fails. */
async function untilData(
  build: () => Promise<{ checks: Check[]; errors: string[] }>,
  deadline: number,
): Promise<Outcome> {
  for (;;) {
    const { checks, errors } = await build();
    const failures = [...errors];
    for (const c of checks) {
      let result: RangeSeries[];
      try {
        result = await c.run();
      } catch (err) {
        failures.push(`${c.where}: Prometheus refused the query: ${(err as Error).message}\n    ${c.promql}`);
        continue;
      }
      if (!hasData(result)) failures.push(`${c.where}: no data\n    ${c.promql}`);
    }
    if (failures.length === 0 || Date.now() > deadline) {
      return { failures, checked: checks.length };
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function loadDashboards(): dashboard.Dashboard[] {
  return fs
    .readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as dashboard.Dashboard);
}

/** Resolves the dashboard's variables in order, as Grafana does on load; errors for empty ones. */
async function resolveVariables(
  d: dashboard.Dashboard,
  builtins: Record<string, string>,
): Promise<{ variables: Record<string, VariableValue>; checks: Check[]; errors: string[] }> {
  const variables: Record<string, VariableValue> = {};
  const checks: Check[] = [];
  const errors: string[] = [];
  for (const v of variableQueries(d)) {
    const query = interpolate(v.query, variables, builtins);
    const lv = parseLabelValues(query);
    if (!lv) {
      errors.push(`${d.title} / variable $${v.name}: only label_values() is supported here, got ${query}`);
      continue;
    }
    const options = await prometheus.labelValues(lv.label, lv.match);
    checks.push({
      where: `${d.title} / variable $${v.name}`,
      promql: query,
      run: async () => (options.length > 0 ? [{ metric: {}, values: [[0, options.length]] }] : []),
    });
    const all = v.current.includes('$__all');
    const chosen = v.current.filter((c) => options.includes(c));
    variables[v.name] = {
      values: all ? options : chosen.length > 0 ? chosen : options.slice(0, 1),
      all: all && v.includeAll,
      multi: v.multi,
      includeAll: v.includeAll,
      allValue: v.allValue,
    };
  }
  return { variables, checks, errors };
}

function timeRange() {
  const end = Math.floor(Date.now() / 1000);
  const rangeMs = Math.max(10, end - Math.floor(feedStart / 1000)) * 1000;
  const builtins = builtIns({ rangeMs, scrapeIntervalMs: SCRAPE_INTERVAL_MS });
  return {
    end,
    start: end - rangeMs / 1000,
    builtins,
    stepSeconds: Number.parseInt(builtins.__interval_ms, 10) / 1000,
  };
}

async function dashboardChecks(d: dashboard.Dashboard): Promise<{ checks: Check[]; errors: string[] }> {
  const { start, end, builtins, stepSeconds } = timeRange();
  const { variables, checks, errors } = await resolveVariables(d, builtins);
  for (const q of panelQueries(d)) {
    let promql: string;
    try {
      promql = interpolate(q.expr, variables, builtins);
    } catch (err) {
      errors.push(`${where(q)}: ${(err as Error).message}`);
      continue;
    }
    checks.push({
      where: where(q),
      promql,
      run: () =>
        q.instant ? prometheus.queryInstant(promql, end) : prometheus.queryRange(promql, start, end, stepSeconds),
    });
  }
  return { checks, errors };
}

const where = (q: PanelQuery) =>
  `${q.dashboard} / ${q.panel} [${q.refId}]${q.origin === 'tempo-service-map' ? ' (Tempo service map → Prometheus)' : ''}`;

// ---------------------------------------------------------------------------------------------

const dashboardsOnDisk = loadDashboards();

test('the dashboards are there to check', () => {
  expect(dashboardsOnDisk.map((d) => d.uid).sort()).toEqual([
    'sonde-pipeline-health',
    'sonde-product-usage',
    'sonde-service-detail',
    'sonde-services-overview',
  ]);
});

describe.each(dashboardsOnDisk.map((d) => [d.title, d] as const))('dashboard %s', (_title, d) => {
  test('every variable and every panel query returns data', async () => {
    const outcome = await untilData(() => dashboardChecks(d), feedStart + DATA_DEADLINE_MS);
    expect(outcome.failures).toEqual([]);
    expect(outcome.checked).toBeGreaterThan(3);
  }, 120_000);
});

interface RuleFile {
  groups: { name: string; rules: { record?: string; alert?: string; expr: string }[] }[];
}

test('every recording rule produces series and every alert can fire on this data', async () => {
  const files = fs.readdirSync(RULES_DIR).filter((f) => f.endsWith('.rules.yml'));
  expect(files.length).toBeGreaterThan(0);
  const build = async () => {
    const checks: Check[] = [];
    for (const f of files) {
      const rules = YAML.parse(fs.readFileSync(path.join(RULES_DIR, f), 'utf8')) as RuleFile;
      for (const g of rules.groups) {
        for (const r of g.rules) {
          if (r.record) {
            checks.push({
              where: `${f} / ${g.name} / ${r.record}`,
              promql: r.record,
              run: () => prometheus.queryInstant(r.record!),
            });
          } else {
            const operands = alertOperands(r.expr);
            if (operands.length === 0) throw new Error(`${f} / ${r.alert}: no operand found in ${r.expr}`);
            operands.forEach((operand, i) => {
              // A comparison with the past (`offset 1d`) has no data in a run of a minute: the same
              // query without the offset proves its series and labels; promtool proves the offset.
              const o = operand.replace(/\s+offset\s+\d+[smhdwy]\b/g, '');
              checks.push({
                where: `${f} / ${g.name} / ${r.alert} (operand ${i + 1} of ${operands.length})`,
                promql: o,
                run: () => prometheus.queryInstant(o),
              });
            });
          }
        }
      }
    }
    return { checks, errors: [] };
  };
  const outcome = await untilData(build, feedStart + DATA_DEADLINE_MS);
  expect(outcome.failures).toEqual([]);
  // Prometheus evaluated every rule without error.
  const status = await prometheus.rules();
  const defined = files.flatMap((f) =>
    (YAML.parse(fs.readFileSync(path.join(RULES_DIR, f), 'utf8')) as RuleFile).groups.flatMap((g) => g.rules),
  );
  expect(status.length).toBe(defined.length);
  expect(status.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);
}, 120_000);

test("the Tempo datasource's trace-to-metrics queries return data for every service", async () => {
  for (const variant of ['provisioning', 'provisioning-embedded']) {
    const file = path.join(ROOT, 'grafana', variant, 'datasources/datasources.yaml');
    const ds = YAML.parse(fs.readFileSync(file, 'utf8')) as {
      datasources: {
        type: string;
        jsonData: {
          tracesToMetrics?: { tags: { key: string; value: string }[]; queries: { name: string; query: string }[] };
        };
      }[];
    };
    const t2m = ds.datasources.find((d) => d.type === 'tempo')?.jsonData.tracesToMetrics;
    expect(t2m?.queries.length).toBe(3);
    const label = t2m!.tags.find((t) => t.key === 'service.name')!.value;
    const build = async () => {
      // Every service of the shop, once each has sent spans.
      const services = await prometheus.labelValues(label, 'traces_spanmetrics_calls_total');
      const missing = ['cart', 'payments', 'storefront'].filter((s) => !services.includes(s));
      return {
        errors: missing.length > 0 ? [`no span metrics yet for ${missing.join(', ')}`] : [],
        checks: services.flatMap((service) =>
          t2m!.queries.map((q) => {
            // `$$` is a literal `$` in a provisioning file; Grafana then puts the span's mapped tags in $__tags.
            const promql = q.query.replaceAll('$$', '$').replaceAll('$__tags', `${label}="${service}"`);
            return {
              where: `${variant} tracesToMetrics "${q.name}" for ${service}`,
              promql,
              run: () => prometheus.queryInstant(promql),
            };
          }),
        ),
      };
    };
    const outcome = await untilData(build, feedStart + DATA_DEADLINE_MS);
    expect(outcome.failures).toEqual([]);
  }
}, 120_000);

test('span-metric exemplars reach Prometheus with the trace id label the datasource links on', async () => {
  const ds = YAML.parse(
    fs.readFileSync(path.join(ROOT, 'grafana/provisioning/datasources/datasources.yaml'), 'utf8'),
  ) as {
    datasources: {
      type: string;
      jsonData: { exemplarTraceIdDestinations?: { name: string; datasourceUid: string }[] };
    }[];
  };
  const names = ds.datasources
    .find((d) => d.type === 'prometheus')!
    .jsonData.exemplarTraceIdDestinations!.map((e) => e.name);
  const exemplarsSoFar = async () =>
    (await prometheus.queryExemplars('traces_spanmetrics_latency_bucket', feedStart / 1000, Date.now() / 1000)).flatMap(
      (s) => s.exemplars,
    );
  let exemplars = await exemplarsSoFar();
  while (exemplars.length === 0 && Date.now() < feedStart + DATA_DEADLINE_MS) {
    await new Promise((r) => setTimeout(r, 500));
    exemplars = await exemplarsSoFar();
  }
  expect(exemplars.length).toBeGreaterThan(0);
  const labels = new Set(exemplars.flatMap((e) => Object.keys(e.labels)));
  expect([...labels].filter((l) => names.includes(l))).not.toEqual([]);
  expect(exemplars[0].labels.traceID ?? exemplars[0].labels.trace_id).toMatch(/^[0-9a-f]{32}$/);
}, 120_000);

test('the feed sends business events and consent choice records as log records with an eventName', async () => {
  const events = [
    'product.viewed',
    'cart.item_added',
    'checkout.started',
    'checkout.completed',
    'payment.failed',
    'sonde.consent.choice',
  ];
  const missing = () => events.filter((e) => !seen.eventNames.has(e));
  while (missing().length > 0 && Date.now() < feedStart + DATA_DEADLINE_MS)
    await new Promise((r) => setTimeout(r, 500));
  expect(missing()).toEqual([]);
}, 120_000);

describeLokiQueries({
  url: () => `http://${receiver.addresses.admin}`,
  services: ['cart', 'payments', 'storefront'],
  deadline: () => feedStart + DATA_DEADLINE_MS,
});

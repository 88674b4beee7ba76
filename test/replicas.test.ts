/**
 * Many replicas, one truth: two replicas of the demo storefront (two processes, each instrumented by
 * @sonde/node, which gives each its own service.instance.id) serve a steady load through the real
 * receiver, scraped by a real Prometheus. The dashboards' request rates, run as Grafana would run
 * them (the committed JSON, variables substituted), equal the sum of what both replicas served, and
 * the series under them hold exactly that many requests.
 *
 * - Exactly: after the load, the cumulative counters the dashboards rate over, summed over instances
 *   (the storefront's http.server.request.duration count, from OTLP metrics, and its server-span
 *   calls, from span metrics), equal the responses the load generator got.
 * - The rates: each panel's expression over the last W = 20 s of the load (`$__rate_interval` set to
 *   that window) is within 15% of the rate at which the two replicas answered in that window (the
 *   load generators' counts, sampled every 100 ms). The window starts 20 s into the load, once every
 *   series exists (the first spans reach the receiver a few seconds after the first requests, and a
 *   rate over a window in which its series is born reads low: Prometheus does not extrapolate to
 *   before a series' first sample). Why 15%: the counters move
 *   in steps, once per metric export (1 s) and span batch (200 ms), and Prometheus sees them once per
 *   scrape (1 s), so either end of the window can be off by about a second's worth of requests: at
 *   most 2 s / 20 s = 10%. One replica overwriting the other would read about 50%, and mixing two
 *   cumulative series would read garbage (every switch of writer a counter reset).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { builtIns, interpolate, panelQueries, type VariableValue } from '@sonde/dashboards';
import { type LoadStats, runLoad, type Shop, startShop } from '@sonde/demo';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import { type Prometheus, startPrometheus } from './prometheus-harness';

const ROOT = path.resolve(__dirname, '..');
const RPS_PER_REPLICA = 15;
const LOAD_MS = 40_000;
const WINDOW_S = 20;
const TOLERANCE = 0.15;

let dataDir: string;
let receiver: Receiver;
let prometheus: Prometheus;
let shop: Shop | undefined;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-replicas-'));
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      data_dir: dataDir,
      trace_store: { enabled: false },
      log_store: { enabled: false },
      span_metrics: { dimensions: ['service.namespace', 'deployment.environment.name'] },
    }),
  );
  prometheus = await startPrometheus({ targets: [receiver.addresses.admin!], job: 'sonde' });
  shop = await startShop({
    otlpEndpoint: `http://${receiver.addresses.otlpHttp}`,
    storefronts: [{}, {}],
    env: {
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BLRP_SCHEDULE_DELAY: '200',
      DEMO_NO_FAULTS: '1',
    },
  });
}, 90_000);

afterAll(async () => {
  await shop?.stop();
  await prometheus?.stop();
  await receiver?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

const served = (s: LoadStats) =>
  Object.entries(s.byStatus)
    .filter(([status]) => status !== 'network')
    .reduce((n, [, count]) => n + count, 0);

function dashboardQuery(file: string, panel: string): string {
  const d = JSON.parse(fs.readFileSync(path.join(ROOT, 'grafana/dashboards', file), 'utf8')) as dashboard.Dashboard;
  const q = panelQueries(d).find((p) => p.panel === panel);
  if (!q) throw new Error(`no panel "${panel}" in ${file}`);
  const one = (value: string): VariableValue => ({ values: [value], all: false, multi: true, includeAll: true });
  const builtins = { ...builtIns({ rangeMs: 3_600_000, scrapeIntervalMs: 1000 }), __rate_interval: `${WINDOW_S}s` };
  return interpolate(
    q.expr,
    {
      environment: one('demo'),
      service_namespace: one('sonde-demo'),
      service: one('storefront'),
      version: one(''),
    },
    builtins,
  );
}

const sumOf = (samples: { value: number }[]) => samples.reduce((n, s) => n + s.value, 0);

test('two storefront replicas: the dashboards show the sum of what both served', async () => {
  expect(shop!.storefrontUrls).toHaveLength(2);
  const start = Date.now();
  // Responses so far, over time, summed over the replicas: [ms, responses].
  const progress = shop!.storefrontUrls.map(() => [[Date.now(), 0]] as [number, number][]);
  const loads = await Promise.all(
    shop!.storefrontUrls.map((url, i) =>
      runLoad({
        url,
        rps: RPS_PER_REPLICA,
        durationMs: LOAD_MS,
        users: 20,
        progressEveryMs: 100,
        onProgress: (s) => progress[i].push([Date.now(), served(s)]),
      }),
    ),
  );
  const end = Date.now();
  progress.forEach((p, i) => {
    p.push([end, served(loads[i])]);
  });
  /** Responses of every replica by `ms` (linear between the samples). */
  const answeredBy = (ms: number) =>
    progress.reduce((n, p) => {
      const j = p.findIndex(([t]) => t >= ms);
      if (j <= 0) return n + (j === 0 ? p[0][1] : p[p.length - 1][1]);
      const [[t0, v0], [t1, v1]] = [p[j - 1], p[j]];
      return n + v0 + ((v1 - v0) * (ms - t0)) / Math.max(1, t1 - t0);
    }, 0);
  const total = loads.map(served);
  // Both replicas did serve (a load that failed would make the check below vacuous).
  for (const n of total) expect(n).toBeGreaterThan(0.9 * RPS_PER_REPLICA * (LOAD_MS / 1000));

  // The rates the dashboards show at the end of the load, and the rate the replicas answered at then.
  const at = Math.floor(end / 1000) - 1;
  expect(at - WINDOW_S).toBeGreaterThan(start / 1000 + 15);
  const answered = (answeredBy(at * 1000) - answeredBy((at - WINDOW_S) * 1000)) / WINDOW_S;
  expect(answered).toBeGreaterThan(0.5 * 2 * RPS_PER_REPLICA);
  for (const [file, panel] of [
    ['services-overview.json', 'Requests per second'],
    ['service-detail.json', 'Requests per second by operation'],
    ['service-detail.json', 'HTTP responses by status code'],
  ]) {
    const promql = dashboardQuery(file, panel);
    const rate = sumOf((await prometheus.queryInstant(promql, at)).map((s) => ({ value: s.values[0][1] })));
    expect({ file, panel, promql, rate, answered, within: Math.abs(rate - answered) / answered <= TOLERANCE }).toEqual({
      file,
      panel,
      promql,
      rate,
      answered,
      within: true,
    });
  }

  // The counters under them, once the last export is in: exactly what both served, from two instances.
  const want = total[0] + total[1];
  const http = 'http_server_request_duration_seconds_count{job="sonde-demo/storefront"}';
  await prometheus.waitFor(`sum(${http})`, (s) => s.length === 1 && s[0].value === want, 20_000);
  expect((await prometheus.query(`count(count by (instance) (${http}))`))[0].value).toBe(2);
  expect((await prometheus.query(`min(count by (instance) (${http}))`))[0].value).toBeGreaterThan(0);
  const calls = 'traces_spanmetrics_calls_total{service="storefront", span_kind="SPAN_KIND_SERVER"}';
  await prometheus.waitFor(`sum(${calls})`, (s) => s.length === 1 && s[0].value === want, 20_000);
  expect(sumOf(await prometheus.query('sonde_receiver_metric_writer_conflicts_total'))).toBe(0);
}, 120_000);

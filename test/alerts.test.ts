/**
 * Alerts that arrive: a service instrumented with the real OpenTelemetry SDK sends a burst of failing
 * requests to a real receiver; a real Prometheus (Debian's package) scrapes it and evaluates the
 * shipped rules (deploy/prometheus/rules, unchanged) every second; it sends to a real Alertmanager
 * (Debian's prometheus-alertmanager) running the shipped configuration (deploy/alertmanager) with
 * only the webhook URLs and the grouping intervals replaced; and the test's webhook receives the
 * page, with its summary, description and runbook link, and then its resolution once successful
 * requests bring the error ratio back under the threshold.
 *
 * The alert is SondeErrorBudgetBurnFast (for: 2m), so this test takes about two and a half minutes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import * as YAML from 'yaml';
import { type Alertmanager, startAlertmanager, startWebhook, type Webhook } from './alertmanager-harness';
import { type Prometheus, startPrometheus } from './prometheus-harness';

const ROOT = path.resolve(__dirname, '..');
const RULES_DIR = path.join(ROOT, 'deploy/prometheus/rules');
const ALERTMANAGER_CONFIG = path.join(ROOT, 'deploy/alertmanager/alertmanager.yml');

let receiver: Receiver;
let prometheus: Prometheus;
let alertmanager: Alertmanager;
let webhook: Webhook;
let provider: TracerProvider;

interface AlertmanagerConfig {
  route: { group_wait?: string; group_interval?: string; repeat_interval?: string; routes?: { receiver: string }[] };
  receivers: { name: string; webhook_configs?: { url: string }[] }[];
}

/** The shipped configuration, with each receiver's webhook pointed at the test's (/<receiver name>) and short intervals. */
function testConfig(): string {
  const config = YAML.parse(fs.readFileSync(ALERTMANAGER_CONFIG, 'utf8')) as AlertmanagerConfig;
  for (const r of config.receivers) for (const w of r.webhook_configs ?? []) w.url = webhook.url(`/${r.name}`);
  Object.assign(config.route, { group_wait: '1s', group_interval: '1s' });
  return YAML.stringify(config);
}

beforeAll(async () => {
  webhook = await startWebhook();
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      trace_store: { enabled: false },
      log_store: { enabled: false },
      // As deploy/receiver/sonde.yaml: the SLO rules group by service_namespace and service.
      span_metrics: { dimensions: ['service.namespace'] },
    }),
    { defaultMetrics: false },
  );
  alertmanager = await startAlertmanager(testConfig());
  prometheus = await startPrometheus({
    targets: [receiver.addresses.admin!],
    ruleFiles: fs
      .readdirSync(RULES_DIR)
      .filter((f) => f.endsWith('.rules.yml'))
      .map((f) => path.join(RULES_DIR, f)),
    evaluationInterval: '1s',
    alertmanagers: [alertmanager.address],
  });
  provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout', 'service.namespace': 'shop' }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `http://${receiver.addresses.otlpHttp}/v1/traces` }),
        scheduledDelayMillis: 200,
        maxExportBatchSize: 512,
        maxQueueSize: 8192,
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await provider?.shutdown();
  await prometheus?.stop();
  await alertmanager?.stop();
  await receiver?.close();
  await webhook?.close();
}, 30_000);

/** `n` requests of the checkout service, `errors` of them failing. */
function requests(n: number, errors: number): void {
  const tracer = provider.getTracer('alerts-test');
  for (let i = 0; i < n; i++) {
    const span = tracer.startSpan('POST /checkout', { kind: SpanKind.SERVER });
    span.setStatus(
      i < errors ? { code: SpanStatusCode.ERROR, message: 'payment declined' } : { code: SpanStatusCode.OK },
    );
    span.end();
  }
}

const describeState = async () =>
  `Alertmanager alerts: ${JSON.stringify(await alertmanager.alerts())}\nAlertmanager log:\n${alertmanager.log()}\n` +
  `Prometheus rules: ${JSON.stringify((await prometheus.rules()).filter((r) => r.type === 'alerting'))}`;

test('an error burst pages through real Prometheus and Alertmanager, with its runbook, then resolves', async () => {
  // Half of the checkouts fail, two a second, until the page arrives (the rule's `for` is 2 minutes):
  // about 130 failures, few enough for the recovery below to dilute.
  requests(4, 2);
  const burst = setInterval(() => requests(2, 1), 1000);
  let firing: Awaited<ReturnType<Webhook['waitFor']>>;
  try {
    firing = await webhook.waitFor(
      (n, p) =>
        p === '/pager' &&
        n.alerts.some((a) => a.labels.alertname === 'SondeErrorBudgetBurnFast' && a.status === 'firing'),
      200_000,
      describeState,
    );
  } finally {
    clearInterval(burst);
  }
  const alert = firing.alerts.find((a) => a.labels.alertname === 'SondeErrorBudgetBurnFast')!;
  expect(alert.labels).toMatchObject({ service: 'checkout', service_namespace: 'shop', severity: 'page' });
  expect(alert.annotations.summary).toBe('checkout is burning its error budget 14.4x too fast');
  expect(alert.annotations.description).toContain('shop/checkout');
  expect(alert.annotations.runbook_url).toMatch(/docs\/runbooks\.md#sondeerrorbudgetburnfast$/);
  expect(firing.receiver).toBe('pager');
  // The slow burn needs 15 minutes: nothing reached the tickets receiver.
  expect(webhook.received.filter((r) => r.path !== '/pager')).toEqual([]);

  // Recovery: enough successful checkouts (5000) that the error ratio over 5 minutes and over 1 hour
  // drops under 7.2% (about 3%).
  for (let i = 0; i < 10; i++) requests(500, 0);
  await provider.forceFlush();
  const resolved = await webhook.waitFor(
    (n, p) =>
      p === '/pager' &&
      n.alerts.some((a) => a.labels.alertname === 'SondeErrorBudgetBurnFast' && a.status === 'resolved'),
    60_000,
    describeState,
  );
  expect(resolved.alerts.find((a) => a.labels.alertname === 'SondeErrorBudgetBurnFast')?.fingerprint).toBe(
    alert.fingerprint,
  );
}, 300_000);

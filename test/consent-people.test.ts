/**
 * People, not requests, end to end (issue 13's "done when"): 1,000 simulated people through the real
 * @sonde/node SDK (consent.record + withConsent + track, in a child process started with
 * `--import @sonde/node/register`) → the real receiver → a real Prometheus scraping it. 300 of them
 * opt out of product analytics and every person makes 20 requests (and half record their choice
 * twice): the product dashboard's opt-out-share query (taken from the committed
 * grafana/dashboards/product-usage.json) returns 30% ± 3% for `product`; consent choice records are
 * not business events, and no subject reaches /metrics. Start-up choices (SONDE_CONSENT) and
 * DO_NOT_TRACK count one anonymous person per process start.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import { type Prometheus, startPrometheus } from './prometheus-harness';

const ROOT = path.resolve(__dirname, '..');
const PEOPLE = 1000;
const OPTED_OUT = 300;
const REQUESTS_PER_PERSON = 20;

let receiver: Receiver;
let prometheus: Prometheus;

beforeAll(async () => {
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      trace_store: { enabled: false },
      log_store: { enabled: false },
    }),
    { defaultMetrics: false },
  );
  prometheus = await startPrometheus({ targets: [receiver.addresses.admin!], job: 'sonde' });
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await receiver?.close();
}, 30_000);

/** Runs a fixture with `env` to the end; resolves with what it printed last. */
function runFixture<T extends { done: boolean }>(fixture: string, env: Record<string, string>): Promise<T> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('OTEL_') && !k.startsWith('SONDE_') && k !== 'DO_NOT_TRACK',
    ),
  );
  const child = spawn(
    process.execPath,
    ['--import', '@sonde/node/register', path.join(__dirname, 'fixtures', fixture)],
    {
      cwd: __dirname,
      env: {
        ...inherited,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://${receiver.addresses.otlpHttp}`,
        SONDE_SUMMARY: 'false',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const stderr: string[] = [];
  child.stderr.on('data', (c: Buffer) => stderr.push(c.toString()));
  return new Promise((resolve, reject) => {
    let last: T | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        last = JSON.parse(line);
      } catch {
        // not ours
      }
    });
    child.once('exit', (code) =>
      code === 0 && last?.done ? resolve(last) : reject(new Error(`${fixture} exited ${code}: ${stderr.join('')}`)),
    );
  });
}

function dashboardQuery(title: string): string {
  const d = JSON.parse(fs.readFileSync(path.join(ROOT, 'grafana/dashboards/product-usage.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  const panel = d.panels.find((p) => p.title === title);
  if (!panel?.targets?.[0]) throw new Error(`no panel "${title}" with a query in product-usage.json`);
  return panel.targets[0].expr;
}

test('1,000 people, 300 opted out of product, many requests each: the dashboard shows 30% ± 3%', async () => {
  const outcome = await runFixture<{ done: boolean; events: number }>('consent-people.mjs', {
    OTEL_SERVICE_NAME: 'people-sim',
    OTEL_TRACES_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
    SONDE_CONSENT: 'all',
    SONDE_HMAC_KEY: 'e2e-consent-people-key-0123456789',
    PEOPLE: String(PEOPLE),
    OPTED_OUT: String(OPTED_OUT),
    REQUESTS_PER_PERSON: String(REQUESTS_PER_PERSON),
  });
  // Only the people who agreed sent events: 700 × 20.
  expect(outcome.events).toBe((PEOPLE - OPTED_OUT) * REQUESTS_PER_PERSON);

  const share = dashboardQuery('Share of people who said no, by kind of data');
  const samples = await prometheus.waitFor(
    share,
    (s) => s.some((x) => x.metric.category === 'product' && x.value > 0.2),
    30_000,
  );
  const product = samples.find((x) => x.metric.category === 'product')!;
  expect(product.value).toBeGreaterThanOrEqual(0.27);
  expect(product.value).toBeLessThanOrEqual(0.33);

  const people = await prometheus.query('sonde_consent_people{category="product", window="24h"}');
  const byChoice = Object.fromEntries(people.map((s) => [s.metric.choice, s.value]));
  expect(Math.abs(byChoice.denied - OPTED_OUT)).toBeLessThanOrEqual(OPTED_OUT * 0.03);
  expect(Math.abs(byChoice.granted - (PEOPLE - OPTED_OUT))).toBeLessThanOrEqual((PEOPLE - OPTED_OUT) * 0.03);
  expect(byChoice.default).toBe(0);

  // Consent choice records are not business events, and no subject reaches /metrics.
  const metrics = await (await fetch(`http://${receiver.addresses.admin}/metrics`)).text();
  expect(metrics).not.toMatch(/sonde_events_total\{[^}]*sonde\.consent\.choice/);
  expect(metrics).not.toContain('customer-');
  const total = (PEOPLE - OPTED_OUT) * REQUESTS_PER_PERSON;
  await prometheus.waitFor('sum(sonde_events_total{event_name="feature.used"})', (s) => s[0]?.value === total, 15_000);
}, 120_000);

test('start-up and DO_NOT_TRACK opt-outs are counted as people too, one per process start', async () => {
  const denied = (category: string) => `sonde_consent_people{category="${category}", choice="denied", window="24h"}`;
  const productBefore = (await prometheus.query(denied('product')))[0]?.value ?? 0;
  // Two processes under DO_NOT_TRACK (every category withdrawn), and one whose SONDE_CONSENT grants
  // diagnostics only: it withdraws performance (on by default); product is off by default, which is
  // not a choice and not counted. The first test recorded product choices only, so the diagnostics and
  // performance sketches start empty and count these few exactly.
  await runFixture('consent-startup.mjs', { OTEL_SERVICE_NAME: 'dnt-cli', DO_NOT_TRACK: '1' });
  await runFixture('consent-startup.mjs', { OTEL_SERVICE_NAME: 'dnt-cli', DO_NOT_TRACK: '1' });
  await runFixture('consent-startup.mjs', { OTEL_SERVICE_NAME: 'startup-app', SONDE_CONSENT: 'diagnostics' });
  await prometheus.waitFor(denied('diagnostics'), (s) => s[0]?.value === 2, 30_000);
  await prometheus.waitFor(denied('performance'), (s) => s[0]?.value === 3, 30_000);
  // Among ~300 people already counted, a new one may share a sketch register (about 2% each).
  const product = await prometheus.waitFor(denied('product'), (s) => (s[0]?.value ?? 0) >= productBefore + 1, 30_000);
  expect(product[0].value).toBeLessThanOrEqual(productBefore + 2.5);
}, 90_000);

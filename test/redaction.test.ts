/**
 * Redaction in the receiver, end to end: the real OpenTelemetry SDK exporters send spans, logs and
 * metrics holding personal data and secrets to a receiver configured (YAML file plus
 * SONDE_HMAC_KEY) with `redaction.enabled: true`. Nothing arrives in clear at
 * /debug/recent, at Prometheus' /metrics, nor at the Tempo export (a local sink standing in for Tempo).
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { decodeTraceRequest, type KeyValue, loadConfig, type Receiver, startReceiver } from '@sonde/receiver';
import { decodeBody } from './helpers';

const HMAC_KEY = 'e2e-redaction-key-7f3a9c2b1d0e';
/** What must never be seen in clear downstream of the receiver. */
const SECRETS = [
  'alice@example.com',
  'alice%40example.com',
  '4111',
  's3cr3t-t0ken',
  'abc123xyz',
  'user-42',
  '203.0.113.7',
  'bob@example.org',
  'carol@example.net',
  '198.51.100.23',
  'hunter2',
  'dave@example.com',
  'internal-only',
];

let dir: string;
let sink: Server;
const exported: Buffer[] = [];
let receiver: Receiver;
let admin: string;
let otlp: string;

beforeAll(async () => {
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      exported.push(decodeBody(Buffer.concat(chunks), req.headers));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  dir = mkdtempSync(join(tmpdir(), 'sonde-redaction-'));
  const file = join(dir, 'sonde.yaml');
  writeFileSync(
    file,
    [
      'redaction:',
      '  enabled: true',
      '  block_keys: [app.internal.*]',
      '  pseudonymize_keys: [enduser.id]',
      'tempo:',
      `  endpoint: http://127.0.0.1:${(sink.address() as AddressInfo).port}`,
      '  batch_timeout: 20ms',
      '',
    ].join('\n'),
  );
  const config = loadConfig({
    file,
    env: {
      SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
      SONDE_OTLP_GRPC_ADDR: 'off',
      SONDE_ADMIN_ADDR: '127.0.0.1:0',
      SONDE_LOG_LEVEL: 'silent',
      SONDE_HMAC_KEY: HMAC_KEY,
    },
  });
  receiver = await startReceiver(config, { defaultMetrics: false });
  admin = `http://${receiver.addresses.admin}`;
  otlp = `http://${receiver.addresses.otlpHttp}`;
});

afterAll(async () => {
  await receiver.close();
  await new Promise((resolve) => sink.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const pseudonym = (value: string) => createHmac('sha256', HMAC_KEY).update(value).digest('hex').slice(0, 16);

async function recent(signal: string): Promise<string> {
  const res = await fetch(`${admin}/debug/recent?signal=${signal}`);
  expect(res.status).toBe(200);
  return res.text();
}

function expectNoSecret(text: string): void {
  for (const s of SECRETS) expect([s, text.includes(s)]).toEqual([s, false]);
}

async function waitFor(predicate: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the Tempo sink');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function attrs(list: KeyValue[]): Record<string, unknown> {
  return Object.fromEntries(list.map((kv) => [kv.key, kv.value]));
}

test('spans: an email in url.full, a card number and an authorization header never arrive in clear', async () => {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'shop', 'app.internal.build_host': 'internal-only' }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${otlp}/v1/traces` }) })],
  });
  const span = provider.getTracer('e2e').startSpan('GET /account/:email/orders', {
    kind: SpanKind.SERVER,
    attributes: {
      'url.full': 'https://shop.example.com/account/alice%40example.com/orders?access_token=abc123xyz&page=2',
      'http.route': '/account/:email/orders',
      'payment.card_number': '4111 1111 1111 1111',
      'http.request.header.authorization': ['Bearer s3cr3t-t0ken-value-0001'],
      'enduser.id': 'user-42',
      'client.address': '203.0.113.7',
      'http.response.status_code': 500,
    },
  });
  span.addEvent('receipt', { message: 'receipt sent to bob@example.org' });
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'no account for bob@example.org' });
  span.end();
  await provider.forceFlush();
  await provider.shutdown();

  // What the receiver's consumers saw.
  const text = await recent('traces');
  expectNoSecret(text);
  expect(text).toContain('shop');

  // What Tempo got: re-encoded (the original bytes held the secrets), and redacted.
  await waitFor(() => exported.length >= 1);
  const body = Buffer.concat(exported);
  expectNoSecret(body.toString('latin1'));
  const [rs] = decodeTraceRequest(exported[exported.length - 1], { maxAnyValueDepth: 32 });
  expect(attrs(rs.resource.attributes)).toEqual({ 'service.name': 'shop' });
  const got = rs.scopeSpans[0].spans[0];
  expect(got.name).toBe('GET /account/:email/orders');
  expect(attrs(got.attributes)).toEqual({
    'url.full': 'https://shop.example.com/account/[REDACTED:email]/orders?access_token=[REDACTED:url_secret]&page=2',
    'http.route': '/account/:email/orders',
    'payment.card_number': '[REDACTED:card]',
    'enduser.pseudo.id': pseudonym('user-42'),
    'client.address': '[REDACTED:ip]',
    'http.response.status_code': 500n,
  });
  expect(attrs(got.events[0].attributes)).toEqual({ message: 'receipt sent to [REDACTED:email]' });
  expect(got.status.message).toBe('no account for [REDACTED:email]');

  const metrics = await (await fetch(`${admin}/metrics`)).text();
  for (const [reason, n] of [
    ['email', 3],
    ['card', 1],
    ['ip', 1],
    ['url_secret', 1],
    ['key_dropped', 2],
    ['pseudonymized', 1],
  ] as const) {
    expect(metrics).toContain(`sonde_receiver_redactions_total{signal="traces",reason="${reason}"} ${n}`);
  }
});

test('logs: string and map bodies and attributes are redacted', async () => {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'auth' }),
    processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${otlp}/v1/logs` }) })],
  });
  const logger = provider.getLogger('e2e');
  logger.emit({
    body: 'password reset for carol@example.net from 198.51.100.23',
    attributes: { 'enduser.id': 'user-42' },
  });
  logger.emit({
    eventName: 'user.updated',
    body: { user: { email: 'dave@example.com', password: 'hunter2', plan: 'pro' } },
    attributes: { 'http.request.header.cookie': 'sid=hunter2' },
  });
  await provider.forceFlush();
  await provider.shutdown();
  const text = await recent('logs');
  expectNoSecret(text);
  const json = JSON.parse(text);
  const records = json.entries.flatMap(
    (e: { request: { resourceLogs: { scopeLogs: { logRecords: unknown[] }[] }[] } }) =>
      e.request.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords)),
  );
  expect(JSON.stringify(records)).toContain('password reset for [REDACTED:email] from [REDACTED:ip]');
  expect(JSON.stringify(records)).toContain(pseudonym('user-42'));
  expect(JSON.stringify(records)).toContain('"plan"');
});

test('metrics: data point attributes are redacted before Prometheus sees them', async () => {
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: `${otlp}/v1/metrics` }),
    exportIntervalMillis: 3_600_000,
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'edge' }),
    readers: [reader],
  });
  provider.getMeter('e2e').createCounter('logins').add(1, { 'client.address': '203.0.113.7', result: 'ok' });
  await reader.forceFlush();
  await provider.shutdown();
  expectNoSecret(await recent('metrics'));
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  expectNoSecret(metrics);
  expect(metrics).toMatch(/logins_total\{[^}]*client_address="\[REDACTED:ip\]"/);
});

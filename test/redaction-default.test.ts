/**
 * Redaction is on in the receiver's default configuration: a plain OpenTelemetry SDK (no Sonde, so
 * nothing is redacted before export) sends an email, a card number and a bearer token in span
 * attributes, a span event, a log body and log attributes, plus an end-user id, to a receiver started
 * with no `redaction:` section at all. None of them is seen in clear by `/debug/recent`, by the
 * embedded trace store (read back through its Tempo API) nor by the embedded log store (read back
 * through its Loki API); the end-user id, with no HMAC key configured, is dropped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';

const EMAIL = 'jane.doe@example.com';
const CARD = '4111 1111 1111 1111';
const TOKEN = 's3cr3tT0kenValue0123456789';
const USER = 'user-4242';
const SECRETS = [EMAIL, 'jane.doe%40example.com', CARD, CARD.replaceAll(' ', ''), TOKEN, USER];

let work: string;
let receiver: Receiver;
let admin: string;
let otlp: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-redaction-default-'));
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      data_dir: work,
    }),
    { defaultMetrics: false },
  );
  admin = `http://${receiver.addresses.admin}`;
  otlp = `http://${receiver.addresses.otlpHttp}`;
});

afterAll(async () => {
  await receiver?.close();
  rmSync(work, { recursive: true, force: true, maxRetries: 5 });
});

function expectNoSecret(where: string, text: string): void {
  for (const s of SECRETS) expect([where, s, text.includes(s)]).toEqual([where, s, false]);
}

test('the default receiver config masks an email, a card number and a bearer token before any consumer sees them', async () => {
  expect(receiver.traceStore).toBeDefined();
  expect(receiver.logStore).toBeDefined();
  const resource = resourceFromAttributes({ 'service.name': 'plain-otel' });

  const tracing = new TracerProvider({
    resource,
    spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${otlp}/v1/traces` }) })],
  });
  const span = tracing.getTracer('plain').startSpan('POST /signup', {
    kind: SpanKind.SERVER,
    attributes: {
      'http.route': '/signup',
      'url.full': `https://shop.example.com/signup?email=${encodeURIComponent(EMAIL)}`,
      'signup.email': EMAIL,
      'payment.card': CARD,
      'upstream.auth': `Bearer ${TOKEN}`,
      'enduser.id': USER,
    },
  });
  span.addEvent('welcome mail', { to: EMAIL });
  span.end();
  const traceId = span.spanContext().traceId;
  await tracing.forceFlush();
  await tracing.shutdown();

  const logging = new LoggerProvider({
    resource,
    processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${otlp}/v1/logs` }) })],
  });
  logging.getLogger('plain').emit({
    body: `signup of ${EMAIL} paid with ${CARD}, upstream called with Authorization: Bearer ${TOKEN}`,
    attributes: { 'signup.email': EMAIL, 'enduser.id': USER },
  });
  await logging.forceFlush();
  await logging.shutdown();

  // /debug/recent
  for (const signal of ['traces', 'logs']) {
    const res = await fetch(`${admin}/debug/recent?signal=${signal}`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('plain-otel');
    expectNoSecret(`/debug/recent ${signal}`, text);
    expect(text).toContain('[REDACTED:email]');
  }

  // The trace store, through its Tempo API.
  await receiver.traceStore?.flush();
  const res = await fetch(`${admin}/api/v2/traces/${traceId}`, { headers: { accept: 'application/json' } });
  expect(res.status).toBe(200);
  const stored = await res.text();
  expect(stored).toContain('POST /signup');
  expectNoSecret('trace store', stored);
  for (const mask of ['[REDACTED:email]', '[REDACTED:card]', 'Bearer [REDACTED:bearer]'])
    expect([mask, stored.includes(mask)]).toEqual([mask, true]);
  expect(stored).not.toContain('enduser.id');

  // The log store, through its Loki API.
  const now = Date.now();
  const qs = new URLSearchParams({
    query: '{service_name="plain-otel"}',
    start: String((now - 600_000) * 1e6),
    end: String((now + 60_000) * 1e6),
    limit: '100',
  });
  let logs = '';
  const deadline = Date.now() + 10_000;
  while (!logs.includes('signup of')) {
    if (Date.now() > deadline) throw new Error(`log record not found in the log store: ${logs}`);
    const r = await fetch(`${admin}/loki/api/v1/query_range?${qs}`, {
      headers: { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' },
    });
    expect(r.status).toBe(200);
    logs = await r.text();
    if (!logs.includes('signup of')) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expectNoSecret('log store', logs);
  expect(logs).toContain('signup of [REDACTED:email] paid with [REDACTED:card]');
  expect(logs).toContain('Bearer [REDACTED:bearer]');
  expect(logs).not.toContain('enduser');
});

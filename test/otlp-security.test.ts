/**
 * End to end, a locked receiver (issue 11, finding 8): the real OpenTelemetry JS exporters
 * (OTLP/HTTP JSON, OTLP/HTTP protobuf, OTLP/gRPC), configured as users configure them, with the
 * standard variables OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY and _HEADERS,
 * deliver traces, metrics and logs over mutual TLS with a bearer token, and are refused without the
 * token (401 / UNAUTHENTICATED, nothing accepted) or without a client certificate. On the admin port,
 * the data endpoints answer 401 without the admin token while a real Prometheus scrapes /metrics.
 *
 * Certificates are made with openssl at test time, in a temporary directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SeverityNumber } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as HttpJsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as HttpProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as HttpJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as HttpProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as HttpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as HttpProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { type Batch, type Receiver, type Signal, startReceiver, validateConfig } from '@sonde/receiver';
import { makePki, type TestPki } from '../packages/receiver/test/certs';
import { type ExportResultLike, tap } from './helpers';
import { type Prometheus, startPrometheus } from './prometheus-harness';

const OTLP_TOKEN = 'otlp-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-fedcba9876543210';

let pki: TestPki;
let receiver: Receiver;
let https: { http: string; grpc: string; admin: string };
const batches: { [S in Signal]: Batch<S>[] } = { traces: [], metrics: [], logs: [] };
const items = (signal: Signal) => batches[signal].reduce((n, b) => n + b.itemCount, 0);

beforeAll(async () => {
  pki = makePki();
  const tokens = path.join(pki.dir, 'otlp-tokens');
  fs.writeFileSync(tokens, `${OTLP_TOKEN} tenant-a\n`);
  const adminTokens = path.join(pki.dir, 'admin-tokens');
  fs.writeFileSync(adminTokens, `${ADMIN_TOKEN}\n`);
  receiver = await startReceiver(
    validateConfig({
      otlp: {
        http: { address: '127.0.0.1:0' },
        grpc: { address: '127.0.0.1:0' },
        tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert },
        auth: { bearer_tokens_file: tokens },
      },
      admin: { address: '127.0.0.1:0', auth: { bearer_tokens_file: adminTokens } },
      log: { level: 'silent', summary_interval: 0 },
      trace_store: { enabled: true, path: path.join(pki.dir, 'traces.db') },
    }),
    { defaultMetrics: false },
  );
  for (const signal of ['traces', 'metrics', 'logs'] as const) {
    receiver.pipeline[signal].addConsumer({
      name: 'capture',
      consume: (b: Batch<typeof signal>) => void (batches[signal] as Batch<typeof signal>[]).push(b),
    } as never);
  }
  https = {
    http: `https://${receiver.addresses.otlpHttp}`,
    grpc: `https://${receiver.addresses.otlpGrpc}`,
    admin: `http://${receiver.addresses.admin}`,
  };
});

afterAll(async () => {
  await receiver?.close();
  pki?.cleanup();
});

beforeEach(() => {
  for (const s of ['traces', 'metrics', 'logs'] as const) batches[s].length = 0;
});

const VARIABLES = [
  'OTEL_EXPORTER_OTLP_CERTIFICATE',
  'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE',
  'OTEL_EXPORTER_OTLP_CLIENT_KEY',
  'OTEL_EXPORTER_OTLP_HEADERS',
] as const;

/**
 * Runs `run` with these OTLP_EXPORTER_OTLP_* variables set, and only these: the exporters read them
 * when built, and the gRPC ones again when they first connect.
 */
async function withEnv<T>(env: Partial<Record<(typeof VARIABLES)[number], string>>, run: () => Promise<T>): Promise<T> {
  const saved = VARIABLES.map((v) => [v, process.env[v]] as const);
  for (const v of VARIABLES) delete process.env[v];
  Object.assign(process.env, env);
  try {
    return await run();
  } finally {
    for (const [v, value] of saved) {
      if (value === undefined) delete process.env[v];
      else process.env[v] = value;
    }
  }
}

type Credentials = 'token and client certificate' | 'no token' | 'no client certificate';

function envFor(credentials: Credentials) {
  const env: Partial<Record<(typeof VARIABLES)[number], string>> = { OTEL_EXPORTER_OTLP_CERTIFICATE: pki.ca.cert };
  if (credentials !== 'no client certificate') {
    env.OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE = pki.client.cert;
    env.OTEL_EXPORTER_OTLP_CLIENT_KEY = pki.client.key;
  }
  if (credentials !== 'no token') env.OTEL_EXPORTER_OTLP_HEADERS = `Authorization=Bearer%20${OTLP_TOKEN}`;
  return env;
}

const FAMILIES = [
  {
    name: 'OTLP/HTTP JSON',
    transport: 'http',
    traces: () => new HttpJsonTraceExporter({ url: `${https.http}/v1/traces` }),
    metrics: () => new HttpJsonMetricExporter({ url: `${https.http}/v1/metrics` }),
    logs: () => new HttpJsonLogExporter({ url: `${https.http}/v1/logs` }),
  },
  {
    name: 'OTLP/HTTP protobuf',
    transport: 'http',
    traces: () => new HttpProtoTraceExporter({ url: `${https.http}/v1/traces` }),
    metrics: () => new HttpProtoMetricExporter({ url: `${https.http}/v1/metrics` }),
    logs: () => new HttpProtoLogExporter({ url: `${https.http}/v1/logs` }),
  },
  {
    name: 'OTLP/gRPC',
    transport: 'grpc',
    traces: () => new GrpcTraceExporter({ url: https.grpc }),
    metrics: () => new GrpcMetricExporter({ url: https.grpc }),
    logs: () => new GrpcLogExporter({ url: https.grpc }),
  },
] as const;

/** One span, one counter point and one log record through the SDKs and the family's exporters. */
function sendAll(family: (typeof FAMILIES)[number], credentials: Credentials) {
  return withEnv(envFor(credentials), async () => {
    const traceExporter = family.traces();
    const metricExporter = family.metrics();
    const logExporter = family.logs();
    const taps = { traces: tap(traceExporter), metrics: tap(metricExporter), logs: tap(logExporter) };
    // A failed export also fails forceFlush/shutdown: what counts is the result each exporter reported.
    const settle = (p: Promise<unknown>) => p.catch(() => undefined);

    const tracer = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: traceExporter })] });
    tracer.getTracer('security').startSpan('locked').end();
    await settle(tracer.forceFlush());
    await settle(tracer.shutdown());

    // The reader exports once, at shutdown.
    const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    const meter = new MeterProvider({ readers: [reader] });
    meter.getMeter('security').createCounter('locked_requests').add(1);
    await settle(meter.shutdown());

    const logger = new LoggerProvider({ processors: [new BatchLogRecordProcessor({ exporter: logExporter })] });
    logger.getLogger('security').emit({ severityNumber: SeverityNumber.INFO, body: 'locked' });
    await settle(logger.forceFlush());
    await settle(logger.shutdown());
    return taps;
  });
}

const codes = (results: ExportResultLike[]) => results.map((r) => r.code);

async function refusedRequests(transport: string): Promise<number> {
  const { values } = await receiver.metrics.refusedRequests.get();
  return values
    .filter((v) => v.labels.transport === transport && v.labels.reason === 'unauthenticated')
    .reduce((n, v) => n + v.value, 0);
}

describe.each(FAMILIES)('$name exporters against mutual TLS and a bearer token', (family) => {
  test('deliver traces, metrics and logs with the token and a client certificate', async () => {
    const taps = await sendAll(family, 'token and client certificate');
    expect({
      traces: codes(taps.traces.results),
      metrics: codes(taps.metrics.results),
      logs: codes(taps.logs.results),
    }).toStrictEqual({
      traces: [ExportResultCode.SUCCESS],
      metrics: [ExportResultCode.SUCCESS],
      logs: [ExportResultCode.SUCCESS],
    });
    expect([items('traces'), items('metrics'), items('logs')]).toStrictEqual([1, 1, 1]);
  });

  test('are refused without the token: nothing accepted, each refusal counted', async () => {
    const before = await refusedRequests(family.transport);
    const taps = await sendAll(family, 'no token');
    for (const signal of ['traces', 'metrics', 'logs'] as const) {
      expect([signal, codes(taps[signal].results)]).toStrictEqual([signal, [ExportResultCode.FAILED]]);
      // OTLPExporterError carries the HTTP status in `code`; grpc-js's error the gRPC status.
      const error = taps[signal].results[0].error as Error & { code?: number };
      expect([signal, error.code]).toStrictEqual([signal, family.transport === 'http' ? 401 : 16]);
    }
    expect([items('traces'), items('metrics'), items('logs')]).toStrictEqual([0, 0, 0]);
    expect((await refusedRequests(family.transport)) - before).toBe(3);
  });

  test('are refused without a client certificate, token or not', async () => {
    const taps = await sendAll(family, 'no client certificate');
    for (const signal of ['traces', 'metrics', 'logs'] as const)
      expect([signal, codes(taps[signal].results)]).toStrictEqual([signal, [ExportResultCode.FAILED]]);
    expect([items('traces'), items('metrics'), items('logs')]).toStrictEqual([0, 0, 0]);
  });
});

describe('admin port with a token', () => {
  let prometheus: Prometheus | undefined;
  afterAll(async () => {
    await prometheus?.stop();
  });

  test('data endpoints answer 401 without the admin token while Prometheus scrapes /metrics', async () => {
    const get = (p: string, token?: string) =>
      fetch(`${https.admin}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    for (const p of ['/debug/recent?signal=traces', '/api/search?limit=5', '/api/echo']) {
      expect([p, (await get(p)).status]).toStrictEqual([p, 401]);
      expect([p, (await get(p, OTLP_TOKEN)).status]).toStrictEqual([p, 401]);
      expect([p, (await get(p, ADMIN_TOKEN)).status]).toStrictEqual([p, 200]);
    }
    prometheus = await startPrometheus({ targets: [receiver.addresses.admin as string], job: 'sonde' });
    const up = await prometheus.waitFor('up{job="sonde"}', (s) => s[0]?.value === 1, 15_000);
    expect(up).toHaveLength(1);
    const refused = await prometheus.waitFor(
      'sonde_admin_refused_requests_total{reason="unauthenticated"}',
      (s) => s[0]?.value === 6,
      15_000,
    );
    expect(refused[0].value).toBe(6);
  });
});

describe('admin port with protect_metrics and mutual TLS', () => {
  let locked: Receiver | undefined;
  let prometheus: Prometheus | undefined;
  afterAll(async () => {
    await prometheus?.stop();
    await locked?.close();
  });

  test('Prometheus scrapes /metrics with the credentials_file and client certificate that prometheus.yml documents', async () => {
    const adminTokens = path.join(pki.dir, 'admin-tokens-2');
    fs.writeFileSync(adminTokens, `${ADMIN_TOKEN}\n`);
    const credentials = path.join(pki.dir, 'prometheus-credentials');
    fs.writeFileSync(credentials, ADMIN_TOKEN);
    locked = await startReceiver(
      validateConfig({
        otlp: { http: { address: 'off' }, grpc: { address: 'off' } },
        admin: {
          address: '127.0.0.1:0',
          tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert },
          auth: { bearer_tokens_file: adminTokens, protect_metrics: true },
        },
        log: { level: 'silent', summary_interval: 0 },
        trace_store: { enabled: false },
      }),
      { defaultMetrics: false },
    );
    prometheus = await startPrometheus({
      targets: [locked.addresses.admin as string],
      job: 'locked',
      credentialsFile: credentials,
      tls: { caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key },
    });
    const [target] = await prometheus.waitForScrape(15_000);
    expect([target.health, target.lastError]).toStrictEqual(['up', '']);
    const series = await prometheus.waitFor(
      'sonde_receiver_in_flight_bytes_limit{job="locked"}',
      (s) => s.length === 1,
      15_000,
    );
    expect(series[0].value).toBe(256 * 1024 * 1024);
    // No scrape was refused.
    expect(await locked.metrics.adminRefusedRequests.get().then((m) => m.values.reduce((n, v) => n + v.value, 0))).toBe(
      0,
    );
  });
});

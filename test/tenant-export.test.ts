/**
 * Tenants forwarded per token, end to end: `sonde-receiver` with `otlp.auth.bearer_tokens_file`
 * (tokens for tenants `team-a` and `team-b`, and one without a tenant), exporting to a stand-in Tempo
 * and a stand-in Loki with a static `X-Scope-OrgID: shared` in their headers and persistent queues.
 * The real OpenTelemetry JS exporters send spans and log records with each token (OTLP/HTTP protobuf,
 * and OTLP/gRPC for logs); every request the backends get carries the tenant of the token its data
 * came with (the static one for the tokenless token), so no batch mixes tenants; with the backends
 * down, a kill -9 and a restart, the persistent queues still send every item under its own tenant.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { SeverityNumber } from '@opentelemetry/api';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as HttpProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter as HttpProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { decodeLogsRequest, decodeTraceRequest } from '@sonde/receiver';
import { cliTracker, untilCli } from './cli';
import { type RecordingBackend, startRecordingBackend } from './feed/recording-backend';
import { decodeBody, tap } from './helpers';

const clis = cliTracker();
let tempo: RecordingBackend;
let loki: RecordingBackend;
let work: string;

/** Token → the tenant its data must reach the backends as (`shared`: the static header). */
const TOKENS = { 'tok-team-a': 'team-a', 'tok-team-b': 'team-b', 'tok-no-tenant': 'shared' } as const;
type Token = keyof typeof TOKENS;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-tenant-'));
  tempo = await startRecordingBackend(200);
  loki = await startRecordingBackend(204);
  writeFileSync(path.join(work, 'tokens'), 'tok-team-a team-a\ntok-team-b team-b\ntok-no-tenant\n');
  writeFileSync(
    path.join(work, 'sonde.yaml'),
    ['tempo', 'loki']
      .flatMap((s) => [
        `${s}:`,
        '  persistent_queue: true',
        '  batch_timeout: 20ms',
        '  retry:',
        '    initial_interval: 50ms',
        '    max_interval: 200ms',
      ])
      .join('\n'),
  );
});

afterAll(async () => {
  await clis.killAll();
  await tempo.close();
  await loki.close();
  rmSync(work, { recursive: true, force: true });
});

function env(): Record<string, string> {
  return {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: path.join(work, 'data'),
    SONDE_LOG_LEVEL: 'info',
    SONDE_TRACE_STORE: 'false',
    SONDE_OTLP_BEARER_TOKENS_FILE: path.join(work, 'tokens'),
    SONDE_TEMPO_ENDPOINT: tempo.url,
    SONDE_TEMPO_HEADERS: 'X-Scope-OrgID=shared',
    SONDE_LOKI_ENDPOINT: loki.url,
    SONDE_LOKI_HEADERS: 'X-Scope-OrgID=shared',
  };
}

async function sendSpans(url: string, token: Token, names: string[]): Promise<void> {
  const exporter = new HttpProtoTraceExporter({ url, headers: { Authorization: `Bearer ${token}` } });
  const taps = tap(exporter);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'tenant-e2e' }),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 3_600_000 })],
  });
  const tracer = provider.getTracer('e2e');
  for (const name of names) tracer.startSpan(name).end();
  await provider.forceFlush();
  await provider.shutdown();
  expect(taps.results.map((r) => r.code)).toStrictEqual([0]);
}

async function sendLogs(exporter: HttpProtoLogExporter | GrpcLogExporter, bodies: string[]): Promise<void> {
  const taps = tap(exporter);
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'tenant-e2e' }),
    processors: [new BatchLogRecordProcessor({ exporter, scheduledDelayMillis: 3_600_000 })],
  });
  const logger = provider.getLogger('e2e');
  for (const body of bodies) logger.emit({ severityNumber: SeverityNumber.INFO, body });
  await provider.forceFlush();
  await provider.shutdown();
  expect(taps.results.map((r) => r.code)).toStrictEqual([0]);
}

/** Per delivered request (2xx): its X-Scope-OrgID and the names (spans) or bodies (logs) it held. */
function deliveries(backend: RecordingBackend, okStatus: number, kind: 'traces' | 'logs'): [string, string[]][] {
  return backend.received
    .filter((r) => r.status === okStatus)
    .map((r) => {
      const body = decodeBody(r.body, r.headers);
      const items =
        kind === 'traces'
          ? decodeTraceRequest(body, { maxAnyValueDepth: 32 }).flatMap((rs) =>
              rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.name)),
            )
          : decodeLogsRequest(body, { maxAnyValueDepth: 32 }).flatMap((rl) =>
              rl.scopeLogs.flatMap((sl) => sl.logRecords.map((l) => String(l.body))),
            );
      return [String(r.headers['x-scope-orgid']), items];
    });
}

/** Every item's tenant, from the deliveries: an item named `<token>/…` must come under TOKENS[token] only. */
function checkTenants(list: [string, string[]][]): Set<string> {
  const seen = new Set<string>();
  for (const [tenant, items] of list) {
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) {
      expect({ item, tenant }).toStrictEqual({ item, tenant: TOKENS[item.split('/')[0] as Token] });
      seen.add(item);
    }
  }
  return seen;
}

test('each token’s tenant reaches Tempo and Loki as X-Scope-OrgID, batches never mix tenants, and the persistent queues keep it across kill -9', async () => {
  const first = clis.start(['--config', path.join(work, 'sonde.yaml')], env());
  const listening = await first.waitForLine((l) => l.msg === 'sonde-receiver listening', 10_000);
  const http = `http://${listening.otlpHttp as string}`;
  const tokens = Object.keys(TOKENS) as Token[];
  const spans: string[] = [];
  const logs: string[] = [];
  // Interleaved: a, b, none, a, b, none, so that a batch would mix them if the exporter did not keep them apart.
  for (let round = 0; round < 2; round++) {
    for (const token of tokens) {
      const names = [`${token}/span-${round}-0`, `${token}/span-${round}-1`];
      await sendSpans(`${http}/v1/traces`, token, names);
      spans.push(...names);
      const bodies = [`${token}/log-${round}-0`, `${token}/log-${round}-1`];
      await sendLogs(
        new HttpProtoLogExporter({ url: `${http}/v1/logs`, headers: { Authorization: `Bearer ${token}` } }),
        bodies,
      );
      logs.push(...bodies);
    }
  }
  const metadata = new Metadata();
  metadata.set('authorization', 'Bearer tok-team-b');
  await sendLogs(new GrpcLogExporter({ url: `http://${listening.otlpGrpc as string}`, metadata }), [
    'tok-team-b/log-grpc',
  ]);
  logs.push('tok-team-b/log-grpc');

  // Both backends are down: refused attempts, then kill -9 with everything in the persistent queues.
  await untilCli('refused pushes', () => tempo.received.length >= 2 && loki.received.length >= 2, first);
  for (const r of [...tempo.received, ...loki.received]) {
    expect(['team-a', 'team-b', 'shared']).toContain(r.headers['x-scope-orgid']);
  }
  first.child.kill('SIGKILL');
  expect(await first.exited).toStrictEqual({ code: null, signal: 'SIGKILL' });
  expect(deliveries(tempo, 200, 'traces')).toStrictEqual([]);
  expect(deliveries(loki, 204, 'logs')).toStrictEqual([]);

  // The backends are back; the receiver starts again and sends what it kept, each under its tenant.
  tempo.status = 200;
  loki.status = 204;
  const second = clis.start(['--config', path.join(work, 'sonde.yaml')], env());
  await untilCli(
    'every span and record',
    () =>
      new Set(deliveries(tempo, 200, 'traces').flatMap(([, i]) => i)).size === spans.length &&
      new Set(deliveries(loki, 204, 'logs').flatMap(([, i]) => i)).size === logs.length,
    second,
  );
  expect([...checkTenants(deliveries(tempo, 200, 'traces'))].sort()).toStrictEqual([...spans].sort());
  expect([...checkTenants(deliveries(loki, 204, 'logs'))].sort()).toStrictEqual([...logs].sort());
  // All three tenants were sent as such.
  expect(new Set(deliveries(loki, 204, 'logs').map(([t]) => t))).toStrictEqual(new Set(['team-a', 'team-b', 'shared']));
  expect(new Set(deliveries(tempo, 200, 'traces').map(([t]) => t))).toStrictEqual(
    new Set(['team-a', 'team-b', 'shared']),
  );

  // Sent as they arrive now (backends up, no restart): the tenant still follows the token.
  const live = `http://${(await second.waitForLine((l) => l.msg === 'sonde-receiver listening', 10_000)).otlpHttp as string}`;
  const before = loki.received.length;
  await sendLogs(
    new HttpProtoLogExporter({ url: `${live}/v1/logs`, headers: { Authorization: 'Bearer tok-team-a' } }),
    ['tok-team-a/live'],
  );
  await untilCli(
    'the live record',
    () => deliveries(loki, 204, 'logs').some(([, i]) => i.includes('tok-team-a/live')),
    second,
  );
  checkTenants(deliveries(loki, 204, 'logs'));
  expect(loki.received.length).toBeGreaterThan(before);

  second.child.kill('SIGTERM');
  expect(await second.exited).toStrictEqual({ code: 0, signal: null });
  expect(second.lines.filter((l) => l.level >= 50)).toStrictEqual([]);
}, 60_000);

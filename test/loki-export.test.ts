/**
 * Logs forwarded to Loki, end to end: `sonde-receiver` started with SONDE_LOKI_ENDPOINT and
 * SONDE_LOKI_HEADERS takes log records from the real OpenTelemetry JS logs exporters (OTLP/HTTP JSON,
 * OTLP/HTTP protobuf, OTLP/gRPC) and hands them to a stand-in Loki that answers 503 for a while, then
 * 204 with an empty body as Loki's OTLP intake does. Every record arrives, on /otlp/v1/logs, with the
 * tenant header. With `loki.persistent_queue`, records accepted while Loki is down survive a SIGKILL
 * and are delivered after the restart.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SeverityNumber } from '@opentelemetry/api';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as HttpJsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as HttpProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { decodeLogsRequest } from '@sonde/receiver';
import { cliTracker, untilCli } from './cli';
import { type RecordingBackend, startRecordingBackend } from './feed/recording-backend';
import { decodeBody, tap } from './helpers';

const clis = cliTracker();
let loki: RecordingBackend;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-loki-'));
  loki = await startRecordingBackend(204);
});

afterEach(async () => {
  await clis.killAll();
  loki.received.length = 0;
  loki.status = 503;
});

afterAll(async () => {
  await loki.close();
  rmSync(work, { recursive: true, force: true });
});

function env(dataDir: string, grpc: boolean): Record<string, string> {
  return {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: grpc ? '127.0.0.1:0' : 'off',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: dataDir,
    SONDE_LOG_LEVEL: 'info',
    SONDE_TRACE_STORE: 'false',
    SONDE_LOKI_ENDPOINT: loki.url,
    SONDE_LOKI_HEADERS: 'X-Scope-OrgID=team-a',
  };
}

function config(name: string, persistent: boolean): string {
  const file = path.join(work, name);
  writeFileSync(
    file,
    [
      'loki:',
      `  persistent_queue: ${persistent}`,
      '  batch_timeout: 20ms',
      '  retry:',
      '    initial_interval: 50ms',
      '    max_interval: 200ms',
      '',
    ].join('\n'),
  );
  return file;
}

type LogExporter = HttpJsonLogExporter | HttpProtoLogExporter | GrpcLogExporter;

/** Emits `bodies` through a LoggerProvider whose only processor exports to `exporter`; resolves once exported. */
async function emit(exporter: LogExporter, bodies: string[]): Promise<void> {
  const taps = tap(exporter);
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'loki-e2e' }),
    processors: [new BatchLogRecordProcessor({ exporter, scheduledDelayMillis: 3_600_000 })],
  });
  const logger = provider.getLogger('e2e');
  for (const body of bodies) {
    logger.emit({ severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body, attributes: { body } });
  }
  await provider.forceFlush();
  await provider.shutdown();
  // The receiver answered 200: the records are in its export queue.
  expect(taps.results.map((r) => r.code)).toStrictEqual([0]);
}

/** Log bodies Loki took (204), each as many times as it was delivered. */
function delivered(): string[] {
  return loki.received
    .filter((p) => p.status === 204)
    .flatMap((p) => decodeLogsRequest(decodeBody(p.body, p.headers), { maxAnyValueDepth: 32 }))
    .flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords.map((r) => String(r.body))));
}

test('every record from the three OTel exporters reaches Loki once it recovers from 503s, with the tenant', async () => {
  const cli = clis.start(['--config', config('memory.yaml', false)], env(path.join(work, 'memory'), true));
  const listening = await cli.waitForLine((l) => l.msg === 'sonde-receiver listening', 10_000);
  const http = `http://${listening.otlpHttp as string}`;
  const sent = {
    json: ['json: payment declined', 'json: card expired'],
    proto: ['proto: stock low', 'proto: retrying reservation', 'proto: reservation failed'],
    grpc: ['grpc: upstream timeout'],
  };
  await emit(new HttpJsonLogExporter({ url: `${http}/v1/logs` }), sent.json);
  await emit(new HttpProtoLogExporter({ url: `${http}/v1/logs`, compression: 'gzip' as never }), sent.proto);
  await emit(new GrpcLogExporter({ url: `http://${listening.otlpGrpc as string}` }), sent.grpc);

  // Loki is down for a while: the exporter retries.
  await untilCli('three refused pushes', () => loki.received.filter((p) => p.status === 503).length >= 3, cli);
  loki.status = 204;
  const all = [...sent.json, ...sent.proto, ...sent.grpc];
  await untilCli('every record', () => new Set(delivered()).size === all.length, cli);

  expect([...new Set(delivered())].sort()).toStrictEqual([...all].sort());
  for (const p of loki.received) {
    expect(p.path).toBe('/otlp/v1/logs');
    expect(p.headers['x-scope-orgid']).toBe('team-a');
    expect(p.headers['content-type']).toBe('application/x-protobuf');
  }
  cli.child.kill('SIGTERM');
  expect(await cli.exited).toStrictEqual({ code: 0, signal: null });
  expect(cli.lines.filter((l) => l.level >= 50)).toStrictEqual([]);
}, 30_000);

test('with loki.persistent_queue, records accepted while Loki is down survive kill -9 and are delivered after the restart', async () => {
  const file = config('persistent.yaml', true);
  const dataDir = path.join(work, 'persistent');
  const first = clis.start(['--config', file], env(dataDir, false));
  const listening = await first.waitForLine((l) => l.msg === 'sonde-receiver listening', 10_000);
  const bodies = Array.from({ length: 20 }, (_, i) => `record ${i} of the outage`);
  const exporter = new HttpProtoLogExporter({ url: `http://${listening.otlpHttp as string}/v1/logs` });
  await emit(exporter, bodies.slice(0, 10));
  await emit(exporter, bodies.slice(10));
  await untilCli('two refused pushes', () => loki.received.filter((p) => p.status === 503).length >= 2, first);

  // kill -9: no shutdown, no flush.
  first.child.kill('SIGKILL');
  expect(await first.exited).toStrictEqual({ code: null, signal: 'SIGKILL' });
  expect(delivered()).toStrictEqual([]);

  // Loki is back; the receiver starts again on the same data directory and sends what it kept.
  loki.status = 204;
  const second = clis.start(['--config', file], env(dataDir, false));
  await untilCli('every record', () => new Set(delivered()).size === bodies.length, second);
  // At least once: every record, possibly more than once, nothing else.
  expect([...new Set(delivered())].sort()).toStrictEqual([...bodies].sort());
  expect(loki.received.every((p) => p.headers['x-scope-orgid'] === 'team-a')).toBe(true);
  expect(
    second.lines.some(
      (l) => l.msg === 'log records left in the persistent Loki export queue by the previous run are sent again',
    ),
  ).toBe(true);

  second.child.kill('SIGTERM');
  expect(await second.exited).toStrictEqual({ code: 0, signal: null });
  expect(second.lines.filter((l) => l.level >= 50)).toStrictEqual([]);
}, 30_000);

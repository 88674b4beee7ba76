/**
 * The `sonde-receiver` command as a user runs it: it starts on the addresses given by SONDE_*
 * variables, takes traces from the real OTLP/HTTP exporter, shows them on the admin port's
 * /debug/recent, and on SIGTERM drains, logs that it stopped and exits 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { type CliProcess, startCli } from './cli';
import { tap } from './helpers';

/** Resolves with `promise`, or rejects after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let cli: CliProcess | undefined;
let dataDir: string;

beforeAll(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-'));
});

afterAll(async () => {
  if (cli && cli.child.exitCode === null && cli.child.signalCode === null) {
    cli.child.kill('SIGKILL');
    await cli.exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test('sonde-receiver takes traces from the OTLP exporter, shows them on /debug/recent, and exits 0 on SIGTERM', async () => {
  cli = startCli([], {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: dataDir,
    SONDE_LOG_LEVEL: 'info',
  });
  const running = cli;

  // The first line says where it listens.
  const first = await running.waitForLine(() => true, 10_000);
  expect(first.msg).toBe('sonde-receiver listening');
  const hostPort = /^127\.0\.0\.1:[1-9]\d*$/;
  expect(first.otlpHttp).toMatch(hostPort);
  expect(first.otlpGrpc).toMatch(hostPort);
  expect(first.admin).toMatch(hostPort);
  expect(first.dataDir).toBe(dataDir);
  const admin = `http://${first.admin as string}`;

  const ready = await fetch(`${admin}/readyz`);
  expect([ready.status, await ready.text()]).toStrictEqual([200, 'ready\n']);

  // Two spans through the real OTLP/HTTP protobuf exporter, in one request.
  const exporter = new OTLPTraceExporter({ url: `http://${first.otlpHttp as string}/v1/traces` });
  const taps = tap(exporter);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'cli-e2e' }),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 3_600_000 })],
  });
  const tracer = provider.getTracer('cli-e2e-tracer');
  const server = tracer.startSpan('GET /cli', { kind: SpanKind.SERVER });
  server.end();
  const other = tracer.startSpan('background job');
  other.end();
  await provider.shutdown();
  expect(taps.results.map((r) => r.code)).toStrictEqual([ExportResultCode.SUCCESS]);

  // /debug/recent shows them, as OTLP JSON.
  const res = await fetch(`${admin}/debug/recent?signal=traces`);
  expect(res.status).toBe(200);
  const recent = (await res.json()) as {
    signal: string;
    retainedItems: number;
    entries: {
      transport: string;
      items: number;
      request: {
        resourceSpans: {
          resource: { attributes: unknown[] };
          scopeSpans: {
            scope: { name: string };
            spans: { traceId: string; spanId: string; name: string; kind: number }[];
          }[];
        }[];
      };
    }[];
  };
  expect(recent.signal).toBe('traces');
  expect(recent.retainedItems).toBe(2);
  expect(recent.entries).toHaveLength(1);
  expect(recent.entries[0].transport).toBe('http');
  expect(recent.entries[0].items).toBe(2);
  const [resourceSpans] = recent.entries[0].request.resourceSpans;
  expect(resourceSpans.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'cli-e2e' } });
  expect(resourceSpans.scopeSpans[0].scope.name).toBe('cli-e2e-tracer');
  expect(resourceSpans.scopeSpans[0].spans.map((s) => [s.name, s.kind, s.traceId, s.spanId])).toStrictEqual([
    ['GET /cli', 2, server.spanContext().traceId, server.spanContext().spanId],
    ['background job', 1, other.spanContext().traceId, other.spanContext().spanId],
  ]);

  // SIGTERM: drain, log, exit 0.
  running.child.kill('SIGTERM');
  const exit = await within(running.exited, 15_000, 'exiting after SIGTERM');
  expect(exit).toStrictEqual({ code: 0, signal: null });
  const messages = running.lines.map((l) => l.msg);
  expect(messages).toContain('shutting down: draining in-flight requests');
  expect(messages).toContain('received 2 spans, 0 data points, 0 log records');
  expect(messages[messages.length - 1]).toBe('sonde-receiver stopped');
  expect(running.lines.filter((l) => l.level >= 50)).toStrictEqual([]);
  expect(running.stderr.join('')).toBe('');
});

/**
 * The embedded log store end to end: the real OpenTelemetry JS logs exporters (OTLP/HTTP protobuf,
 * OTLP/HTTP JSON, OTLP/gRPC) send records to `sonde-receiver` as a child process (log store on by
 * default: no Loki endpoint; durability: wal_async, the default); the receiver is killed with SIGKILL as soon as every
 * export was acknowledged, then started again in process on the same data directory: every record is
 * returned by `receiver.logStore.select` (the LogSource the Loki API reads) with its body, level,
 * trace id and structured metadata, and by a trace id lookup; and by the admin port's Loki API as
 * Grafana asks it: query_range (categorize-labels), `| trace_id="…"`, and the log volume query.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ROOT_CONTEXT, SeverityNumber, TraceFlags, trace } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as HttpJsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as HttpProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import { type CliProcess, startCli } from './cli';

let work: string;
const running: CliProcess[] = [];
let receiver: Receiver | undefined;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-log-store-'));
});

afterAll(async () => {
  await receiver?.close();
  for (const cli of running) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }
  }
  rmSync(work, { recursive: true, force: true, maxRetries: 5 });
});

const transports: { name: string; exporter: (http: string, grpc: string) => LogRecordExporter }[] = [
  { name: 'http-protobuf', exporter: (http) => new HttpProtoLogExporter({ url: `${http}/v1/logs` }) },
  { name: 'http-json', exporter: (http) => new HttpJsonLogExporter({ url: `${http}/v1/logs` }) },
  { name: 'grpc', exporter: (_, grpc) => new GrpcLogExporter({ url: grpc }) },
];

const traceIdOf = (i: number) => `4bf92f3577b34da6a3ce929d0e0e47${i.toString(16).padStart(2, '0')}`;

/** Exports one record through `exporter`, resolving with the export's result (acknowledged or not). */
async function emit(exporter: LogRecordExporter, i: number, name: string): Promise<ExportResult[]> {
  const results: ExportResult[] = [];
  const original = exporter.export.bind(exporter);
  exporter.export = (records, done) =>
    original(records, (r) => {
      results.push(r);
      done(r);
    });
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': `shop-${name}`, 'deployment.environment.name': 'e2e' }),
    processors: [new BatchLogRecordProcessor({ exporter, scheduledDelayMillis: 3_600_000 })],
  });
  const spanContext = { traceId: traceIdOf(i), spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };
  provider.getLogger('checkout', '1.2.3').emit({
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: `payment failed via ${name}`,
    attributes: { 'order.id': `o-${i}`, 'retry.count': 3 },
    context: trace.setSpanContext(ROOT_CONTEXT, spanContext),
  });
  await provider.forceFlush();
  await provider.shutdown();
  return results;
}

test('records sent by the OpenTelemetry logs exporters are stored, survive kill -9, and are selected with their metadata', async () => {
  const dataDir = path.join(work, 'data');
  const cli = startCli([], {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: dataDir,
    SONDE_LOG_LEVEL: 'info',
  });
  running.push(cli);
  const line = await cli.waitForLine((l) => l.msg === 'sonde-receiver listening', 15_000);
  expect(line.logStore).toBe(path.join(dataDir, 'logs.db'));
  const http = `http://${line.otlpHttp as string}`;
  const grpc = `http://${line.otlpGrpc as string}`;
  for (const [i, t] of transports.entries()) {
    const results = await emit(t.exporter(http, grpc), i, t.name);
    expect(results.map((r) => r.code)).toStrictEqual([ExportResultCode.SUCCESS]);
  }
  // Acknowledged: journaled. Killed before the writer may have stored them.
  cli.child.kill('SIGKILL');
  expect((await cli.exited).signal).toBe('SIGKILL');

  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      data_dir: dataDir,
    }),
  );
  const store = receiver.logStore;
  if (!store) throw new Error('the log store is not on');
  const now = BigInt(Date.now()) * 1_000_000n;
  const window = { startNs: now - 3600n * 1_000_000_000n, endNs: now + 60n * 1_000_000_000n };
  for (const [i, t] of transports.entries()) {
    const got = [];
    for await (const e of store.select({
      matchers: [{ name: 'service_name', op: '=', value: `shop-${t.name}` }],
      ...window,
      direction: 'backward',
    })) {
      got.push(e);
    }
    expect(got).toStrictEqual([
      {
        timeNs: expect.any(BigInt),
        line: `payment failed via ${t.name}`,
        stream: { service_name: `shop-${t.name}`, deployment_environment_name: 'e2e' },
        metadata: expect.objectContaining({
          trace_id: traceIdOf(i),
          span_id: '00f067aa0ba902b7',
          severity_text: 'ERROR',
          severity_number: '17',
          detected_level: 'error',
          order_id: `o-${i}`,
          retry_count: '3',
          scope_name: 'checkout',
          scope_version: '1.2.3',
        }),
      },
    ]);
    // The trace id lookup (`| trace_id="…"`), over every stream.
    const byTrace = [];
    for await (const e of store.select({
      matchers: [{ name: 'service_name', op: '=~', value: '.+' }],
      ...window,
      direction: 'forward',
      traceId: traceIdOf(i),
    })) {
      byTrace.push(e.line);
    }
    expect(byTrace).toStrictEqual([`payment failed via ${t.name}`]);
  }
  expect(await store.labelValues('service_name', window.startNs, window.endNs)).toStrictEqual(
    transports.map((t) => `shop-${t.name}`).sort(),
  );

  // The same through Loki's query API on the admin port, as Grafana's Loki datasource sends it.
  const loki = async (query: string, extra: Record<string, string> = {}) => {
    const qs = new URLSearchParams({
      query,
      start: String(window.startNs),
      end: String(window.endNs),
      limit: '1000',
      direction: 'backward',
      ...extra,
    });
    const res = await fetch(`http://${receiver?.addresses.admin}/loki/api/v1/query_range?${qs}`, {
      headers: { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { data: { resultType: string; result: Record<string, unknown>[] } };
  };
  for (const [i, t] of transports.entries()) {
    const logs = await loki(`{service_name="shop-${t.name}"} | trace_id="${traceIdOf(i)}"`);
    expect(logs.data.resultType).toBe('streams');
    expect(logs.data.result).toStrictEqual([
      {
        stream: { service_name: `shop-${t.name}`, deployment_environment_name: 'e2e' },
        values: [
          [
            expect.stringMatching(/^\d{19}$/),
            `payment failed via ${t.name}`,
            {
              structuredMetadata: expect.objectContaining({
                trace_id: traceIdOf(i),
                detected_level: 'error',
                severity_text: 'ERROR',
                order_id: `o-${i}`,
              }),
            },
          ],
        ],
      },
    ]);
  }
  // Grafana's log volume query: one record of level error per service.
  const volume = await loki(
    'sum by (level, detected_level) (count_over_time({service_name=~"shop-.+"} | drop __error__ [1h]))',
    { step: '60000ms' },
  );
  expect(volume.data.resultType).toBe('matrix');
  expect(volume.data.result.map((r) => r.metric)).toStrictEqual([{ detected_level: 'error' }]);
  const values = (volume.data.result[0].values as [number, string][]).map((v) => Number(v[1]));
  expect(Math.max(...values)).toBe(transports.length);
}, 30_000);

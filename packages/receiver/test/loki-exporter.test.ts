/**
 * The Loki exporter (the OTLP/HTTP exporter carrying logs) against a local HTTP server standing in
 * for Loki's OTLP intake: its path, Loki's 204 with an empty body, partial success from an OTLP
 * receiver that sends one, retries, and its self-metrics beside the Tempo exporter's.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Batch, LogRecord, ResourceLogs } from '../src';
import { LokiExporter, lokiEndpoint } from '../src/export/loki-exporter';
import type { OtlpHttpExporterOptionsInput } from '../src/export/otlp-http-exporter';
import { TempoExporter } from '../src/export/tempo-exporter';
import { OverloadedError } from '../src/otlp/errors';
import { DEFAULT_DECODE_LIMITS } from '../src/otlp/limits';
import { decodeLogsRequest } from '../src/otlp/protobuf/decode-logs';
import { encodeLogsRequest } from '../src/otlp/protobuf/encode-logs';
import { ProtoWriter } from '../src/otlp/protobuf/writer';
import { decodeBody, JSON_TYPE, post, startTestReceiver, withoutOffsets } from './helpers';

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** A stand-in for Loki: records requests and answers from `replies`, then 204 with no body (as Loki does). */
class FakeLoki {
  readonly received: { path: string; headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
  replies: Reply[] = [];
  private server: http.Server | undefined;
  port = 0;

  async start(): Promise<this> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
        const reply = this.replies.shift() ?? { status: 204 };
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body ?? '');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function record(body: string): LogRecord {
  return {
    timeUnixNano: 1_700_000_000_000_000_000n,
    observedTimeUnixNano: 1_700_000_000_000_000_500n,
    severityNumber: 17,
    severityText: 'ERROR',
    body,
    attributes: [{ key: 'http.route', value: '/checkout' }],
    droppedAttributesCount: 0,
    flags: 1,
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId: 'eee19b7ec3c1b174',
    eventName: '',
  };
}

function model(...bodies: string[]): ResourceLogs[] {
  return [
    {
      resource: { attributes: [{ key: 'service.name', value: 'shop' }], droppedAttributesCount: 0 },
      schemaUrl: '',
      scopeLogs: [
        {
          scope: { name: 'pino', version: '9', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          logRecords: bodies.map(record),
        },
      ],
    },
  ];
}

/** A top-level unknown field (99, varint 1): the decoder skips it, so re-encoding would lose it. */
const UNKNOWN_FIELD = Buffer.from([0x98, 0x06, 0x01]);

function batch(data: ResourceLogs[], modified = false, tenant?: string): Batch<'logs'> {
  return {
    signal: 'logs',
    itemCount: 0,
    warnings: [],
    decodeStats: undefined,
    context: {
      transport: 'http',
      encoding: 'protobuf',
      receivedAt: Date.now(),
      raw: Buffer.concat([encodeLogsRequest(data), UNKNOWN_FIELD]),
      modified,
      tenant,
    },
    data,
  };
}

const decode = (body: Buffer) => withoutOffsets(decodeLogsRequest(body, DEFAULT_DECODE_LIMITS));
/** The log records' bodies in an uncompressed request body. */
const bodiesOf = (body: Buffer) =>
  decode(body).flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords.map((r) => String(r.body))));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  const found = values.find((v) =>
    Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
  );
  return found?.value ?? 0;
}

let lokis: FakeLoki[] = [];
let closers: { shutdown(): Promise<void> }[] = [];

async function fakeLoki(): Promise<FakeLoki> {
  const l = await new FakeLoki().start();
  lokis.push(l);
  return l;
}

function exporter(options: Partial<OtlpHttpExporterOptionsInput> & { endpoint: string }, registry = new Registry()) {
  const e = new LokiExporter(
    {
      compression: 'none',
      timeoutMs: 2000,
      batchTimeoutMs: 10,
      shutdownTimeoutMs: 1000,
      ...options,
      retry: { initialMs: 20, maxMs: 200, maxElapsedMs: 5000, multiplier: 2, ...options.retry },
    },
    registry,
    pino({ level: 'silent' }),
  );
  closers.push(e);
  return { e, registry };
}

afterEach(async () => {
  await Promise.all(closers.map((e) => e.shutdown()));
  await Promise.all(lokis.map((l) => l.close()));
  closers = [];
  lokis = [];
});

describe('the endpoint', () => {
  test.each([
    ['http://loki:3100', 'http://loki:3100/otlp/v1/logs'],
    ['http://loki:3100/', 'http://loki:3100/otlp/v1/logs'],
    ['https://logs.example:8443', 'https://logs.example:8443/otlp/v1/logs'],
    ['https://gateway.example/v1/logs', 'https://gateway.example/v1/logs'],
    ['http://loki:3100/loki/otlp/v1/logs', 'http://loki:3100/loki/otlp/v1/logs'],
  ])('%s → %s', (base, endpoint) => expect(lokiEndpoint(base)).toBe(endpoint));

  test('only http(s)', () => {
    expect(() => lokiEndpoint('grpc://loki:4317')).toThrow('the Loki endpoint must be an http(s) URL, not grpc:');
  });
});

describe('what Loki receives', () => {
  test("a batch goes to /otlp/v1/logs as protobuf with the tenant header; Loki's 204 with no body is a success", async () => {
    const loki = await fakeLoki();
    const { e, registry } = exporter({
      endpoint: lokiEndpoint(loki.base),
      headers: { 'X-Scope-OrgID': 'team-a' },
      compression: 'gzip',
    });
    const b = batch(model('payment declined', 'retrying'));
    e.consume(b);
    await until('the delivery', async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 2);
    expect(loki.received).toHaveLength(1);
    const got = loki.received[0];
    expect(got.path).toBe('/otlp/v1/logs');
    expect(got.headers['content-type']).toBe('application/x-protobuf');
    expect(got.headers['content-encoding']).toBe('gzip');
    expect(got.headers['x-scope-orgid']).toBe('team-a');
    // Unmodified: the request as received, byte for byte (its unknown field kept).
    expect(gunzipSync(got.body).equals(b.context.raw as Buffer)).toBe(true);
    expect(await metric(registry, 'sonde_exporter_sent_log_records_total', { exporter: 'loki' })).toBe(2);
    expect(await metric(registry, 'sonde_exporter_requests_total', { exporter: 'loki', outcome: 'success' })).toBe(1);
    expect(await metric(registry, 'sonde_exporter_send_failed_log_records_total')).toBe(0);
  });

  test('by default, zstd: content-encoding zstd and a body that zstd-decompresses to the payload', async () => {
    const loki = await fakeLoki();
    const registry = new Registry();
    // No compression option: the exporter's default.
    const e = new LokiExporter(
      { endpoint: lokiEndpoint(loki.base), batchTimeoutMs: 10 },
      registry,
      pino({ level: 'silent' }),
    );
    closers.push(e);
    const b = batch(model('payment declined', 'retrying'));
    e.consume(b);
    await until('the delivery', async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 2);
    const got = loki.received[0];
    expect(got.headers['content-encoding']).toBe('zstd');
    expect(zstdDecompressSync(got.body).equals(b.context.raw as Buffer)).toBe(true);
  });

  test('an intake that answers zstd with 415: gzip from then on, the batch sent again at once, one warning, nothing dropped', async () => {
    const loki = await fakeLoki();
    loki.replies = [{ status: 415, body: 'unsupported media type' }];
    const lines: { msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const registry = new Registry();
    const e = new LokiExporter(
      { endpoint: lokiEndpoint(loki.base), compression: 'zstd', batchTimeoutMs: 10, retry: { initialMs: 60_000 } },
      registry,
      logger,
    );
    closers.push(e);
    e.consume(batch(model('first')));
    await until('the delivery', async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 1);
    e.consume(batch(model('second')));
    await until('the next', async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 2);
    expect(loki.received.map((r) => r.headers['content-encoding'])).toEqual(['zstd', 'gzip', 'gzip']);
    expect(loki.received.slice(1).map((r) => bodiesOf(decodeBody(r.body, r.headers)))).toEqual([['first'], ['second']]);
    expect(await metric(registry, 'sonde_exporter_send_failed_log_records_total')).toBe(0);
    expect(await metric(registry, 'sonde_exporter_requests_total', { outcome: 'status_415' })).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0].msg).toContain('Loki does not accept zstd-compressed requests (HTTP 415)');
    expect(lines[0].msg).toContain('set `compression: gzip` in the `loki:` section');
  });

  test('a modified batch is encoded again from the model, losslessly', async () => {
    const loki = await fakeLoki();
    const { e, registry } = exporter({ endpoint: lokiEndpoint(loki.base) });
    const data = model('card [REDACTED:card] declined');
    data[0].scopeLogs[0].logRecords[0].body = undefined;
    data[0].scopeLogs[0].logRecords.push({ ...record('kept'), eventName: 'checkout.failed', severityNumber: 0 });
    e.consume(batch(data, true));
    await until('the delivery', async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 2);
    const body = loki.received[0].body;
    expect(body.includes(UNKNOWN_FIELD)).toBe(false);
    expect(decode(body)).toEqual(data);
  });

  test('503 with Retry-After, then 204: retried after the hint, delivered once', async () => {
    const loki = await fakeLoki();
    loki.replies = [
      { status: 503, headers: { 'retry-after': '0' }, body: 'ingester unavailable' },
      { status: 429, body: 'rate limited' },
    ];
    const { e, registry } = exporter({ endpoint: lokiEndpoint(loki.base), random: () => 1 });
    e.consume(batch(model('a', 'b', 'c')));
    await until('the delivery', async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 3);
    expect(loki.received).toHaveLength(3);
    expect(await metric(registry, 'sonde_exporter_retries_total', { exporter: 'loki' })).toBe(2);
    expect(await metric(registry, 'sonde_exporter_requests_total', { exporter: 'loki', outcome: 'status_503' })).toBe(
      1,
    );
    expect(await metric(registry, 'sonde_exporter_requests_total', { exporter: 'loki', outcome: 'status_429' })).toBe(
      1,
    );
  });

  test("Loki's 400 drops the batch, counted as rejected_4xx, not retried", async () => {
    const loki = await fakeLoki();
    const { e, registry } = exporter({ endpoint: lokiEndpoint(loki.base) });
    // Loki has taken a zstd request first: a 400 is then the batch's own, not tried again with gzip.
    e.consume(batch(model('x')));
    await until(
      'the first delivery',
      async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 1,
    );
    loki.replies = [{ status: 400, body: 'entry too far behind' }];
    e.consume(batch(model('a', 'b')));
    await until(
      'the rejection',
      async () =>
        (await metric(registry, 'sonde_exporter_send_failed_log_records_total', { reason: 'rejected_4xx' })) === 2,
    );
    expect(loki.received).toHaveLength(2);
    expect(await metric(registry, 'sonde_exporter_sent_log_records_total')).toBe(1);
  });
});

describe('tenants (the tenant after a bearer token)', () => {
  test.each([
    ['in memory', false],
    ['on disk', true],
  ])(
    '%s: a batch per tenant, sent with X-Scope-OrgID: <tenant>; tokenless data with the static header',
    async (_name, onDisk) => {
      const loki = await fakeLoki();
      const dir = onDisk ? mkdtempSync(join(tmpdir(), 'sonde-loki-tenant-')) : undefined;
      const { e, registry } = exporter({
        endpoint: lokiEndpoint(loki.base),
        headers: { 'x-scope-orgid': 'static', 'X-Other': 'kept' },
        batchTimeoutMs: 200,
        concurrency: 1,
        persistentDir: dir,
      });
      // Interleaved tenants within one batch timeout: batches must not mix them.
      e.consume(batch(model('a1'), false, 'team-a'));
      e.consume(batch(model('b1'), false, 'team-b'));
      e.consume(batch(model('a2'), false, 'team-a'));
      e.consume(batch(model('a3'), false, 'team-a'));
      e.consume(batch(model('n1')));
      await until('every record', async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 5);
      const got = loki.received.map((r) => [r.headers['x-scope-orgid'], bodiesOf(r.body), r.headers['x-other']]);
      expect(got).toStrictEqual([
        ['team-a', ['a1'], 'kept'],
        ['team-b', ['b1'], 'kept'],
        ['team-a', ['a2', 'a3'], 'kept'],
        ['static', ['n1'], 'kept'],
      ]);
      await e.shutdown();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  );
});

describe('partial success from an OTLP logs receiver', () => {
  test('JSON partialSuccess.rejectedLogRecords is counted as rejected_partial', async () => {
    const loki = await fakeLoki();
    loki.replies = [
      {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ partialSuccess: { rejectedLogRecords: '1', errorMessage: 'one too old' } }),
      },
    ];
    const { e, registry } = exporter({ endpoint: `${loki.base}/v1/logs` });
    e.consume(batch(model('a', 'b', 'c')));
    await until(
      'the count',
      async () =>
        (await metric(registry, 'sonde_exporter_send_failed_log_records_total', { reason: 'rejected_partial' })) === 1,
    );
    expect(loki.received[0].path).toBe('/v1/logs');
    expect(await metric(registry, 'sonde_exporter_sent_log_records_total', { exporter: 'loki' })).toBe(2);
  });

  test('a protobuf ExportLogsServiceResponse partial_success is counted too', async () => {
    const w = new ProtoWriter(64);
    w.message(1, (m) => {
      m.varintField(1, 2);
      m.stringField(2, 'two dropped');
    });
    const loki = await fakeLoki();
    loki.replies = [{ status: 200, headers: { 'content-type': 'application/x-protobuf' }, body: w.finish() }];
    const { e, registry } = exporter({ endpoint: `${loki.base}/v1/logs` });
    e.consume(batch(model('a', 'b', 'c')));
    await until(
      'the count',
      async () =>
        (await metric(registry, 'sonde_exporter_send_failed_log_records_total', { reason: 'rejected_partial' })) === 2,
    );
    expect(await metric(registry, 'sonde_exporter_sent_log_records_total')).toBe(1);
  });
});

describe('the queue and the self-metrics', () => {
  test('a full queue refuses with 503 + Retry-After, naming loki.queue_size, counted', async () => {
    const size = batch(model('a')).context.raw?.length ?? 0;
    const { e, registry } = exporter({
      endpoint: 'http://127.0.0.1:9/otlp/v1/logs',
      queueBytes: size + size / 2,
      batchTimeoutMs: 60_000,
    });
    e.consume(batch(model('a')));
    let refused: unknown;
    try {
      e.consume(batch(model('b')));
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(OverloadedError);
    expect((refused as Error).message).toMatch(
      /^the Loki export queue is full \(loki\.queue_size\); retry after \d+s$/,
    );
    expect(
      await metric(registry, 'sonde_exporter_send_failed_log_records_total', {
        exporter: 'loki',
        reason: 'queue_full',
      }),
    ).toBe(1);
    expect(await metric(registry, 'sonde_exporter_queue_bytes', { exporter: 'loki' })).toBe(size);
  });

  test('a Tempo and a Loki exporter share one registry, told apart by the exporter label', async () => {
    const registry = new Registry();
    const loki = await fakeLoki();
    const { e } = exporter({ endpoint: lokiEndpoint(loki.base), queueBytes: 1000 }, registry);
    const tempo = new TempoExporter(
      { endpoint: `${loki.base}/v1/traces`, queueBytes: 2000, batchTimeoutMs: 10 },
      registry,
      pino({ level: 'silent' }),
    );
    closers.push(tempo);
    expect(await metric(registry, 'sonde_exporter_queue_capacity_bytes', { exporter: 'loki' })).toBe(1000);
    expect(await metric(registry, 'sonde_exporter_queue_capacity_bytes', { exporter: 'tempo' })).toBe(2000);
    e.consume(batch(model('a')));
    await until('the delivery', async () => (await metric(registry, 'sonde_exporter_sent_log_records_total')) === 1);
    expect(await metric(registry, 'sonde_exporter_requests_total', { exporter: 'loki', outcome: 'success' })).toBe(1);
    expect(await metric(registry, 'sonde_exporter_requests_total', { exporter: 'tempo', outcome: 'success' })).toBe(0);
    const text = await registry.metrics();
    expect(text).toContain('sonde_exporter_in_flight_requests{exporter="loki"} 0');
    expect(text).toContain('sonde_exporter_in_flight_requests{exporter="tempo"} 0');
  });
});

describe('in the receiver', () => {
  test('the Loki exporter is the first logs consumer: a full queue refuses with 503 + Retry-After before anything counted the records', async () => {
    const r = await startTestReceiver({
      // Loki unreachable (the discard port), and nothing leaves the queue within the test.
      loki: { endpoint: 'http://127.0.0.1:9', queue_size: 500, batch_timeout: '60s' },
    });
    closers.push({ shutdown: () => r.close() });
    const request = (body: string) =>
      JSON.stringify({
        resourceLogs: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'shop' } }] },
            scopeLogs: [{ scope: { name: 'e2e' }, logRecords: [{ severityNumber: 17, body: { stringValue: body } }] }],
          },
        ],
      });
    const first = await post(`${r.http}/v1/logs`, request(`first-record ${'x'.repeat(300)}`), JSON_TYPE);
    expect(first.status).toBe(200);
    const second = await post(`${r.http}/v1/logs`, request(`second-record ${'x'.repeat(300)}`), JSON_TYPE);
    expect(second.status).toBe(503);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(second.body.toString()).toContain('the Loki export queue is full (loki.queue_size)');
    // Only the first request reached the consumers after the exporter.
    expect(r.batches.logs).toHaveLength(1);
    const recent = await post(`${r.admin}/debug/recent?signal=logs`, '', {}, 'GET');
    expect(recent.body.toString()).toContain('first-record');
    expect(recent.body.toString()).not.toContain('second-record');
  });
});

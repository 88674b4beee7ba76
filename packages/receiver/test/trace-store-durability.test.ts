/**
 * The trace store survives kill -9: a receiver process (the CLI) stores SDK-made spans, is killed with
 * SIGKILL while more are arriving, and the file it leaves passes SQLite's integrity check, holds what
 * was reported written, and serves it again after a restart.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { TraceDb } from '../src/trace-store/db';
import { post, startTestReceiver } from './helpers';

const BIN = join(__dirname, '..', 'bin', 'sonde-receiver.js');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A request of `traces` traces of 4 spans each; returns it and its trace ids. */
async function request(traces: number): Promise<{ body: Buffer; ids: string[] }> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'durable' }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('test');
  const ids: string[] = [];
  for (let t = 0; t < traces; t++) {
    const root = tracer.startSpan('GET /', { kind: SpanKind.SERVER, attributes: { 'http.route': '/' } });
    ids.push(root.spanContext().traceId);
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    for (let c = 0; c < 3; c++) tracer.startSpan(`child-${c}`, {}, ctx).end();
    root.end();
  }
  await provider.forceFlush();
  const bytes = ProtobufTraceSerializer.serializeRequest(exporter.getFinishedSpans());
  await provider.shutdown();
  if (!bytes) throw new Error('the OTLP serializer returned nothing');
  return { body: Buffer.from(bytes), ids };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let dir: string;
let child: ChildProcess | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sonde-store-kill-'));
});

afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('kill -9 while writing leaves a readable store that keeps what was written', async () => {
  const [httpPort, adminPort] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SONDE_OTLP_HTTP_ADDR: `127.0.0.1:${httpPort}`,
    SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
    SONDE_ADMIN_ADDR: `127.0.0.1:${adminPort}`,
    SONDE_LOG_LEVEL: 'warn',
    SONDE_DATA_DIR: dir,
    SONDE_TRACE_STORE: 'true',
  };
  delete env.SONDE_CONFIG;
  child = spawn(process.execPath, [BIN], { env, stdio: 'ignore' });
  const admin = `http://127.0.0.1:${adminPort}`;
  const written = async () => {
    const text = (await post(`${admin}/metrics`, '', {}, 'GET')).body.toString();
    return Number(/^sonde_trace_store_spans_written_total (\S+)/m.exec(text)?.[1] ?? 0);
  };
  for (let i = 0; ; i++) {
    if (i > 200) throw new Error('the receiver did not start');
    try {
      if ((await post(`${admin}/api/echo`, '', {}, 'GET')).status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  const first = await request(50);
  expect(
    (await post(`http://127.0.0.1:${httpPort}/v1/traces`, first.body, { 'content-type': 'application/x-protobuf' }))
      .status,
  ).toBe(200);
  for (let i = 0; (await written()) < 200; i++) {
    if (i > 200) throw new Error('the first request was not written');
    await sleep(50);
  }
  // More requests in flight (some written, some queued) when the process is killed.
  const more = await request(50);
  const sends = Array.from({ length: 20 }, () =>
    post(`http://127.0.0.1:${httpPort}/v1/traces`, more.body, { 'content-type': 'application/x-protobuf' }).catch(
      () => undefined,
    ),
  );
  await sleep(30);
  child.kill('SIGKILL');
  await new Promise((resolve) => child?.once('exit', resolve));
  await Promise.all(sends);

  const db = TraceDb.open(join(dir, 'traces.db'));
  try {
    expect(db.db.prepare('PRAGMA integrity_check').get()?.integrity_check).toBe('ok');
    for (const id of first.ids) expect(db.traceChunks(Buffer.from(id, 'hex')).length).toBeGreaterThan(0);
    expect(db.spanCount()).toBeGreaterThanOrEqual(200);
  } finally {
    db.close();
  }
  // A restart serves it.
  const r = await startTestReceiver({ data_dir: dir, trace_store: { enabled: true } });
  try {
    expect((await post(`${r.admin}/api/v2/traces/${first.ids[7]}`, '', {}, 'GET')).status).toBe(200);
    const found = await post(
      `${r.admin}/api/search?q=${encodeURIComponent('{ name = "GET /" }')}&limit=100`,
      '',
      {},
      'GET',
    );
    expect((JSON.parse(found.body.toString()) as { traces: unknown[] }).traces.length).toBeGreaterThanOrEqual(50);
  } finally {
    await r.close();
  }
});

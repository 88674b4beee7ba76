/**
 * Export to Tempo, end to end: the real OpenTelemetry SDK sends spans to the receiver, which forwards
 * them over OTLP/HTTP to a local sink standing in for Tempo (Tempo is not installable here). What the
 * sink receives is byte for byte what the receiver was sent, when nothing changed it.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { zstdDecompressSync } from 'node:zlib';
import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { type Batch, decodeTraceRequest, loadConfig, type Receiver, startReceiver } from '@sonde/receiver';
import { decodeBody } from './helpers';

interface Received {
  headers: IncomingMessage['headers'];
  body: Buffer;
}

let sink: Server;
let sinkStatus = 200;
const received: Received[] = [];
let receiver: Receiver;
const raws: Buffer[] = [];

beforeAll(async () => {
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(sinkStatus, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const port = (sink.address() as AddressInfo).port;
  // Configured the way an operator would: through the environment variables of the design notes.
  const config = loadConfig({
    env: {
      SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
      SONDE_OTLP_GRPC_ADDR: 'off',
      SONDE_ADMIN_ADDR: '127.0.0.1:0',
      SONDE_LOG_LEVEL: 'silent',
      SONDE_TEMPO_ENDPOINT: `http://127.0.0.1:${port}`,
      SONDE_TEMPO_HEADERS: 'X-Scope-OrgID=tenant-1',
    },
  });
  config.tempo.batch_timeout = 20;
  config.limits.max_attribute_value_length = 10;
  receiver = await startReceiver(config, { defaultMetrics: false });
  receiver.pipeline.traces.addConsumer({
    name: 'raw',
    consume: (b: Batch<'traces'>) => {
      if (b.context.raw && !b.context.modified) raws.push(Buffer.from(b.context.raw));
    },
  });
});

afterAll(async () => {
  await receiver.close();
  await new Promise((resolve) => sink.close(resolve));
});

beforeEach(() => {
  received.length = 0;
  raws.length = 0;
  sinkStatus = 200;
});

async function sendSpans(attributes: Record<string, string> = {}): Promise<string> {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'shop' }),
    spanProcessors: [
      new SimpleSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `http://${receiver.addresses.otlpHttp}/v1/traces` }),
      }),
    ],
  });
  const span = provider.getTracer('t').startSpan('GET /cart', { kind: SpanKind.SERVER, attributes });
  span.end();
  await provider.forceFlush();
  await provider.shutdown();
  return span.spanContext().traceId;
}

async function waitFor(predicate: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the sink');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('unmodified spans reach the sink byte for byte, zstd-compressed (the default), with the configured headers', async () => {
  const traceId = await sendSpans();
  await waitFor(() => received.length === 1);
  const [request] = received;
  expect(request.headers['content-type']).toBe('application/x-protobuf');
  expect(request.headers['content-encoding']).toBe('zstd');
  expect(request.headers['x-scope-orgid']).toBe('tenant-1');
  expect(raws).toHaveLength(1);
  expect(zstdDecompressSync(request.body).equals(raws[0])).toBe(true);
  const [rs] = decodeTraceRequest(decodeBody(request.body, request.headers), { maxAnyValueDepth: 32 });
  expect(rs.scopeSpans[0].spans[0].traceId).toBe(traceId);
});

test('spans a processor changed are re-encoded, and the sink gets the changed spans', async () => {
  await sendSpans({ 'url.full': 'https://shop.example.com/a/very/long/path' });
  await waitFor(() => received.length === 1);
  expect(raws).toHaveLength(0);
  const [rs] = decodeTraceRequest(decodeBody(received[0].body, received[0].headers), { maxAnyValueDepth: 32 });
  expect(rs.scopeSpans[0].spans[0].attributes.map(({ key, value }) => ({ key, value }))).toEqual([
    { key: 'url.full', value: 'https://sh' },
  ]);
});

test('a 400 from the sink drops the batch, counted, without a retry', async () => {
  sinkStatus = 400;
  await sendSpans();
  await waitFor(() => received.length === 1);
  await new Promise((r) => setTimeout(r, 200));
  expect(received).toHaveLength(1);
  const metrics = await (await fetch(`http://${receiver.addresses.admin}/metrics`)).text();
  expect(metrics).toContain('sonde_exporter_send_failed_spans_total{exporter="tempo",reason="rejected_4xx"} 1');
});

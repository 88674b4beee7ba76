/**
 * The embedded trace store against Grafana's Tempo datasource contract: traces sent by the real
 * OpenTelemetry SDK (OTLP/HTTP protobuf, OTLP/gRPC, OTLP/HTTP JSON exporters) to a running receiver,
 * then exactly the requests the datasource makes (grafana-tempo-datasource pkg/tempo: trace.go,
 * search.go, tempo.go; see ../../shared/reference/grafana.md §3), with their Accept headers, and the
 * answers decoded the way it decodes them: trace by id as protobuf (tempopb.TraceByIDResponse, then
 * tempopb.Trace on the v1 fallback), search and tags as JSON.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type Attributes, type HrTime, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as HttpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as HttpProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import * as protobuf from 'protobufjs';

const root = protobuf.loadSync(path.join(__dirname, 'fixtures', 'tempo.proto'));
const TraceByIDResponse = root.lookupType('tempopb.TraceByIDResponse');
const TraceMessage = root.lookupType('tempopb.Trace');

interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  status: number;
}

interface DecodedResourceSpans {
  resource: Record<string, unknown>;
  spans: DecodedSpan[];
}

/** A decoded tempopb.Trace as plain values (ids in hex), as Grafana turns it into a data frame. */
function fromTrace(message: protobuf.Message): DecodedResourceSpans[] {
  const t = TraceMessage.toObject(message, { longs: String, bytes: Buffer, defaults: true }) as {
    resourceSpans: {
      resource: { attributes: { key: string; value: Record<string, unknown> }[] };
      scopeSpans: {
        spans: {
          traceId: Buffer;
          spanId: Buffer;
          parentSpanId: Buffer;
          name: string;
          kind: number;
          attributes: { key: string; value: Record<string, unknown> }[];
          status?: { code: number };
        }[];
      }[];
    }[];
  };
  const attrs = (kvs: { key: string; value: Record<string, unknown> }[]) =>
    Object.fromEntries(kvs.map((kv) => [kv.key, Object.values(kv.value).find((v) => v !== undefined && v !== '')]));
  return t.resourceSpans.map((rs) => ({
    resource: attrs(rs.resource.attributes),
    spans: rs.scopeSpans.flatMap((ss) =>
      ss.spans.map((s) => ({
        traceId: s.traceId.toString('hex'),
        spanId: s.spanId.toString('hex'),
        parentSpanId: s.parentSpanId.toString('hex'),
        name: s.name,
        kind: s.kind,
        attributes: attrs(s.attributes),
        status: s.status?.code ?? 0,
      })),
    ),
  }));
}

// ---------------------------------------------------------------------------------------------
// Receiver and traces

let receiver: Receiver;
let work: string;
let admin: string;
const recorded: ReadableSpan[] = [];
/** Trace ids by scenario. */
const ids = { cart: '', checkout: '', cartError: '' };
const nowMs = Date.now() - 60_000;
const hr = (ms: number): HrTime => [Math.floor(ms / 1000), (ms % 1000) * 1e6];
const startSec = Math.floor(nowMs / 1000) - 60;
const endSec = Math.floor(nowMs / 1000) + 60;

/** Records a root span and its children with the SDK and exports them through `exporter`. */
async function sendTrace(
  exporter: SpanExporter,
  service: string,
  rootSpan: { name: string; durationMs: number; attributes: Attributes; error?: boolean },
  children: { name: string; kind: SpanKind; durationMs: number; attributes: Attributes }[],
): Promise<string> {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment.name': 'test' }),
    spanProcessors: [new SimpleSpanProcessor({ exporter }), new SimpleSpanProcessor({ exporter: memory })],
  });
  const tracer = provider.getTracer('@sonde/e2e', '1.0.0');
  const parent = tracer.startSpan(
    rootSpan.name,
    { kind: SpanKind.SERVER, attributes: rootSpan.attributes, startTime: hr(nowMs) },
    ROOT_CONTEXT,
  );
  const ctx = trace.setSpan(ROOT_CONTEXT, parent);
  for (const c of children) {
    const child = tracer.startSpan(c.name, { kind: c.kind, attributes: c.attributes, startTime: hr(nowMs + 5) }, ctx);
    child.end(hr(nowMs + 5 + c.durationMs));
  }
  if (rootSpan.error) parent.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  parent.end(hr(nowMs + rootSpan.durationMs));
  await provider.forceFlush();
  recorded.push(...memory.getFinishedSpans());
  await provider.shutdown();
  return parent.spanContext().traceId;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-store-'));
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: '127.0.0.1:0' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      data_dir: work,
      trace_store: { enabled: true, batch_timeout: '10ms' },
    }),
    { defaultMetrics: false },
  );
  admin = `http://${receiver.addresses.admin}`;
  const http = `http://${receiver.addresses.otlpHttp}/v1/traces`;
  ids.cart = await sendTrace(
    new HttpProtoTraceExporter({ url: http }),
    'shop-frontend',
    {
      name: 'GET /cart',
      durationMs: 120,
      attributes: { 'http.route': '/cart', 'http.request.method': 'GET', 'http.response.status_code': 200 },
    },
    [{ name: 'SELECT cart', kind: SpanKind.CLIENT, durationMs: 30, attributes: { 'db.system.name': 'postgresql' } }],
  );
  ids.checkout = await sendTrace(
    new GrpcTraceExporter({ url: `http://${receiver.addresses.otlpGrpc}` }),
    'shop-checkout',
    {
      name: 'POST /checkout',
      durationMs: 700,
      attributes: { 'http.route': '/checkout', 'http.request.method': 'POST', 'http.response.status_code': 500 },
      error: true,
    },
    [{ name: 'charge', kind: SpanKind.INTERNAL, durationMs: 600, attributes: {} }],
  );
  ids.cartError = await sendTrace(
    new HttpJsonTraceExporter({ url: http }),
    'shop-frontend',
    {
      name: 'GET /cart',
      durationMs: 40,
      attributes: { 'http.route': '/cart', 'http.request.method': 'GET', 'http.response.status_code': 503 },
      error: true,
    },
    [],
  );
  await receiver.traceStore?.flush();
}, 30_000);

afterAll(async () => {
  await receiver?.close();
  rmSync(work, { recursive: true, force: true });
});

async function get(
  pathAndQuery: string,
  accept = 'application/json',
): Promise<{ status: number; body: Buffer; type: string }> {
  const res = await fetch(admin + pathAndQuery, { headers: { accept } });
  return {
    status: res.status,
    body: Buffer.from(await res.arrayBuffer()),
    type: res.headers.get('content-type') ?? '',
  };
}

const range = `start=${startSec}&end=${endSec}`;

// ---------------------------------------------------------------------------------------------

test('health check: GET /api/echo answers "echo"; GET /ready answers 200', async () => {
  const echo = await get('/api/echo', '*/*');
  expect([echo.status, echo.body.toString()]).toStrictEqual([200, 'echo']);
  expect((await get('/ready', '*/*')).status).toBe(200);
});

test('trace by id: GET /api/v2/traces/<id> with Accept: application/protobuf decodes as tempopb.TraceByIDResponse', async () => {
  const res = await get(`/api/v2/traces/${ids.cart}?${range}`, 'application/protobuf');
  expect(res.status).toBe(200);
  expect(res.type).toContain('application/protobuf');
  const decoded = TraceByIDResponse.decode(res.body) as protobuf.Message & { trace: protobuf.Message; status: number };
  expect(decoded.status ?? 0).toBe(0); // COMPLETE
  const batches = fromTrace(decoded.trace);
  // One batch per export request (SimpleSpanProcessor sends each span on its own), each with its resource.
  expect(batches.map((b) => b.resource)).toStrictEqual(
    batches.map(() => ({ 'service.name': 'shop-frontend', 'deployment.environment.name': 'test' })),
  );
  const spans = batches.flatMap((b) => b.spans);
  const expected = recorded.filter((s) => s.spanContext().traceId === ids.cart);
  expect(spans.map((s) => [s.spanId, s.parentSpanId, s.name]).sort()).toStrictEqual(
    expected.map((s) => [s.spanContext().spanId, s.parentSpanContext?.spanId ?? '', s.name]).sort(),
  );
  expect(spans.every((s) => s.traceId === ids.cart)).toBe(true);
  const server = spans.find((s) => s.name === 'GET /cart');
  expect(server?.kind).toBe(2); // SPAN_KIND_SERVER
  expect(server?.attributes).toStrictEqual({
    'http.route': '/cart',
    'http.request.method': 'GET',
    'http.response.status_code': '200',
  });
});

test('trace by id: the v1 fallback GET /api/traces/<id> decodes as tempopb.Trace, with the error status', async () => {
  const res = await get(`/api/traces/${ids.checkout}`, 'application/protobuf');
  expect(res.status).toBe(200);
  const spans = fromTrace(TraceMessage.decode(res.body)).flatMap((b) => b.spans);
  expect(spans.map((s) => s.name).sort()).toStrictEqual(['POST /checkout', 'charge']);
  expect(spans.find((s) => s.name === 'POST /checkout')?.status).toBe(2); // STATUS_CODE_ERROR
});

test('trace by id: 404 for an unknown id (both versions), and outside start/end', async () => {
  expect((await get('/api/v2/traces/0123456789abcdef0123456789abcdef', 'application/protobuf')).status).toBe(404);
  expect((await get('/api/traces/0123456789abcdef0123456789abcdef', 'application/protobuf')).status).toBe(404);
  const dayBefore = `start=${startSec - 86_400}&end=${endSec - 86_400}`;
  expect((await get(`/api/v2/traces/${ids.cart}?${dayBefore}`, 'application/protobuf')).status).toBe(404);
  expect((await get('/api/v2/traces/not-hex', 'application/protobuf')).status).toBe(400);
});

test('trace by id: JSON when protobuf is not asked for', async () => {
  const v2 = JSON.parse((await get(`/api/v2/traces/${ids.cart}`)).body.toString()) as {
    trace: { resourceSpans: { scopeSpans: { spans: { traceId: string; name: string }[] }[] }[] };
  };
  const names = v2.trace.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.name)));
  expect(names.sort()).toStrictEqual(['GET /cart', 'SELECT cart']);
  const v1 = JSON.parse((await get(`/api/traces/${ids.cart}`)).body.toString()) as typeof v2.trace;
  expect(v1).toStrictEqual({ batches: v2.trace.resourceSpans });
});

interface SearchResponse {
  traces: {
    traceID: string;
    rootServiceName: string;
    rootTraceName: string;
    startTimeUnixNano: string;
    durationMs: number;
    spanSets: {
      spans: { spanID: string; startTimeUnixNano: string; durationNanos: string; attributes: unknown[] }[];
      matched: number;
    }[];
  }[];
  metrics: { inspectedTraces: number };
}

async function searchQ(q: string, limit = 20): Promise<SearchResponse> {
  const res = await get(`/api/search?q=${encodeURIComponent(q)}&limit=${limit}&spss=3&${range}`);
  expect([q, res.status, res.status === 200 ? '' : res.body.toString()]).toStrictEqual([q, 200, '']);
  return JSON.parse(res.body.toString()) as SearchResponse;
}

const traceIds = (r: SearchResponse) => r.traces.map((t) => t.traceID).sort();

test('search: Tempo search response shape (traces with root service/name, start, duration, spanSets; metrics)', async () => {
  const r = await searchQ('{ resource.service.name = "shop-checkout" }');
  expect(r.traces).toHaveLength(1);
  const t = r.traces[0];
  expect(t).toMatchObject({
    traceID: ids.checkout,
    rootServiceName: 'shop-checkout',
    rootTraceName: 'POST /checkout',
    startTimeUnixNano: `${BigInt(nowMs) * 1_000_000n}`,
    durationMs: 700,
  });
  expect(t.spanSets[0].matched).toBe(2);
  expect(t.spanSets[0].spans).toHaveLength(2);
  const checkoutSpans = recorded.filter((s) => s.spanContext().traceId === ids.checkout);
  expect(t.spanSets[0].spans.map((s) => s.spanID).sort()).toStrictEqual(
    checkoutSpans.map((s) => s.spanContext().spanId).sort(),
  );
  expect(t.spanSets[0].spans.every((s) => /^\d+$/.test(s.startTimeUnixNano) && /^\d+$/.test(s.durationNanos))).toBe(
    true,
  );
  expect(r.metrics.inspectedTraces).toBeGreaterThanOrEqual(1);
});

test('search: the TraceQL filters Grafana builds', async () => {
  expect(traceIds(await searchQ('{ span.http.route = "/cart" && status = error }'))).toStrictEqual([ids.cartError]);
  expect(traceIds(await searchQ('{ duration > 500ms }'))).toStrictEqual([ids.checkout]);
  expect(traceIds(await searchQ('{ name = "GET /cart" }'))).toStrictEqual([ids.cart, ids.cartError].sort());
  expect(traceIds(await searchQ('{ }'))).toStrictEqual([ids.cart, ids.cartError, ids.checkout].sort());
  expect(
    traceIds(await searchQ('{ name = "GET /cart" } || { resource.service.name = "shop-checkout" }')),
  ).toStrictEqual([ids.cart, ids.cartError, ids.checkout].sort());
  expect(traceIds(await searchQ('{ (name = "charge" || name = "SELECT cart") && duration > 500ms }'))).toStrictEqual([
    ids.checkout,
  ]);
  expect(
    traceIds(
      await searchQ(
        '{ resource.service.name =~ "shop-(front|check).*" && kind = server && span.http.response.status_code >= 500 }',
      ),
    ),
  ).toStrictEqual([ids.cartError, ids.checkout].sort());
  expect(traceIds(await searchQ('{ .db.system.name = "postgresql" }'))).toStrictEqual([ids.cart]);
  expect(traceIds(await searchQ('{ span.http.route = "/cart" }', 1))).toHaveLength(1);
  // Outside the time range: nothing.
  const res = await get(`/api/search?q=${encodeURIComponent('{ }')}&start=${startSec - 86_400}&end=${endSec - 86_400}`);
  expect((JSON.parse(res.body.toString()) as SearchResponse).traces).toStrictEqual([]);
});

test('search: legacy tags (logfmt) with minDuration and maxDuration', async () => {
  const tags = encodeURIComponent('service.name=shop-frontend http.route=/cart');
  const all = JSON.parse((await get(`/api/search?tags=${tags}&${range}`)).body.toString()) as SearchResponse;
  expect(traceIds(all)).toStrictEqual([ids.cart, ids.cartError].sort());
  const slow = JSON.parse((await get(`/api/search?tags=${tags}&minDuration=100ms&${range}`)).body.toString());
  expect(traceIds(slow as SearchResponse)).toStrictEqual([ids.cart]);
  const fast = JSON.parse((await get(`/api/search?tags=${tags}&maxDuration=50ms&${range}`)).body.toString());
  expect(traceIds(fast as SearchResponse)).toStrictEqual([ids.cartError]);
});

test('search: a clear 400 naming the unsupported part', async () => {
  const bad = async (q: string) => {
    const res = await get(`/api/search?q=${encodeURIComponent(q)}`);
    expect(res.status).toBe(400);
    return res.body.toString();
  };
  expect(await bad('{ span.user.id = "42" }')).toMatch(
    /attribute "user.id" is not indexed.*trace_store.indexed_attributes/,
  );
  expect(await bad('{ } | count() > 2')).toMatch(/pipelines \("\| count\(\) > 2"\) are not supported/);
  expect(await bad('{ name = "a" } && { name = "b" }')).toMatch(/spanset &&/);
  expect(await bad('{ name = "a" } >> { name = "b" }')).toMatch(/structural operator ">>"/);
  expect(await bad('{ traceDuration > 1s }')).toMatch(/"traceDuration" is not supported/);
  expect(await bad('{ status = broken }')).toMatch(/must be one of unset, ok, error/);
  expect((await get('/api/search?minDuration=fast')).status).toBe(400);
});

test('tags: v2 scoped names and typed values, and the v1 forms', async () => {
  const v2 = JSON.parse((await get('/api/v2/search/tags')).body.toString()) as {
    scopes: { name: string; tags: string[] }[];
  };
  const scope = (name: string) => v2.scopes.find((s) => s.name === name)?.tags;
  expect(scope('resource')).toContain('service.name');
  expect(scope('span')).toStrictEqual(
    ['db.system.name', 'http.request.method', 'http.response.status_code', 'http.route'].sort(),
  );
  expect(scope('intrinsic')).toStrictEqual(expect.arrayContaining(['name', 'status', 'duration', 'kind']));
  const spanOnly = JSON.parse((await get('/api/v2/search/tags?scope=span')).body.toString()) as typeof v2;
  expect(spanOnly.scopes.map((s) => s.name)).toStrictEqual(['span']);

  const services = JSON.parse((await get('/api/v2/search/tag/resource.service.name/values')).body.toString());
  expect(services).toStrictEqual({
    tagValues: [
      { type: 'string', value: 'shop-checkout' },
      { type: 'string', value: 'shop-frontend' },
    ],
  });
  const routes = JSON.parse((await get('/api/v2/search/tag/span.http.route/values')).body.toString());
  expect(routes.tagValues.map((v: { value: string }) => v.value)).toStrictEqual(['/cart', '/checkout']);
  const status = JSON.parse((await get('/api/v2/search/tag/status/values')).body.toString());
  expect(status.tagValues).toContainEqual({ type: 'keyword', value: 'error' });

  const v1 = JSON.parse((await get('/api/search/tags')).body.toString()) as { tagNames: string[] };
  expect(v1.tagNames).toStrictEqual(expect.arrayContaining(['service.name', 'http.route', 'db.system.name']));
  const v1Values = JSON.parse((await get('/api/search/tag/service.name/values')).body.toString());
  expect(v1Values).toStrictEqual({ tagValues: ['shop-checkout', 'shop-frontend'] });
});

test('self-metrics: spans written and query latency on /metrics', async () => {
  const text = (await get('/metrics', 'text/plain')).body.toString();
  const written = /^sonde_trace_store_spans_written_total (\d+)/m.exec(text);
  expect(Number(written?.[1])).toBe(recorded.length);
  expect(text).toMatch(/^sonde_trace_store_query_duration_seconds_count\{endpoint="search"\} [1-9]/m);
  expect(text).toMatch(/^sonde_trace_store_bytes \d+/m);
});

/**
 * The trace store end to end: spans made by the OpenTelemetry SDK (serialized by its own protobuf
 * serializer) posted to the real receiver, written by its writer thread, and read back through Tempo's
 * API on the admin port (answered by the reader thread): trace by id, search through the per-block
 * postings (a value held by one span among hundreds), status and name equalities, a refused query,
 * tag values; a restart keeps the data, and a store written with another schema version is recreated.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { post, startTestReceiver, type TestReceiver } from './helpers';

const TRACES = 120;
const SPANS_PER_TRACE = 5;

/** TRACES traces of a server span and 4 children; the 77th trace's third child alone has route /rare. */
async function makeRequest(): Promise<{ body: Buffer; traceIds: string[] }> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'cart' }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('test');
  const now = Date.now();
  const traceIds: string[] = [];
  for (let t = 0; t < TRACES; t++) {
    const start = now - 60_000 + t;
    const root = tracer.startSpan('GET /cart', {
      kind: SpanKind.SERVER,
      startTime: start,
      attributes: { 'http.route': '/cart' },
    });
    if (t % 10 === 0) root.setStatus({ code: SpanStatusCode.ERROR });
    traceIds.push(root.spanContext().traceId);
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    for (let c = 0; c < SPANS_PER_TRACE - 1; c++) {
      const route = t === 77 && c === 2 ? '/rare' : `/items/${c}`;
      tracer.startSpan(`child-${c}`, { startTime: start, attributes: { 'http.route': route } }, ctx).end(start + 2);
    }
    root.end(start + 5);
  }
  await provider.forceFlush();
  const bytes = ProtobufTraceSerializer.serializeRequest(exporter.getFinishedSpans());
  await provider.shutdown();
  if (!bytes) throw new Error('the OTLP serializer returned nothing');
  return { body: Buffer.from(bytes), traceIds };
}

let dir: string;
let r: TestReceiver;

const start = () =>
  startTestReceiver({
    data_dir: dir,
    trace_store: { enabled: true, indexed_attributes: ['http.route'] },
  });

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sonde-store-api-'));
  r = await start();
});

afterEach(async () => {
  await r.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(path: string): Promise<{ status: number; json: unknown; text: string }> {
  const res = await post(`${r.admin}${path}`, '', {}, 'GET');
  const text = res.body.toString();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function ingest(): Promise<string[]> {
  const { body, traceIds } = await makeRequest();
  const res = await post(`${r.http}/v1/traces`, body, { 'content-type': 'application/x-protobuf' });
  expect(res.status).toBe(200);
  await r.receiver.traceStore?.flush();
  return traceIds;
}

const search = async (q: string, limit = 200) =>
  (await get(`/api/search?q=${encodeURIComponent(q)}&limit=${limit}&spss=10`)).json as {
    traces: { traceID: string; spanSets: { spans: { name: string }[]; matched: number }[] }[];
  };

test('trace by id, searches through the postings and tag values, answered by the reader thread', async () => {
  const ids = await ingest();
  expect(r.receiver.traceStore?.readerThread).toBe(true);
  const byId = await get(`/api/v2/traces/${ids[77]}`);
  expect(byId.status).toBe(200);
  const spans = (
    byId.json as { trace: { resourceSpans: { scopeSpans: { spans: { traceId: string }[] }[] }[] } }
  ).trace.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
  expect(spans).toHaveLength(SPANS_PER_TRACE);
  expect((await get(`/api/v2/traces/${'ab'.repeat(16)}`)).status).toBe(404);
  // A window reaching past 2^63 ns (the year 2262): the store's times stop there, the answer does not fail.
  expect((await get(`/api/v2/traces/${ids[77]}?start=1&end=9999999999`)).status).toBe(200);
  const far = await get(`/api/search?q=${encodeURIComponent('{ }')}&start=9999999990&end=9999999999`);
  expect([far.status, far.json]).toMatchObject([200, { traces: [] }]);

  // One span among 600 (three blocks of 256 rows) holds /rare: found, and only it.
  const rare = await search('{ span.http.route = "/rare" }');
  expect(rare.traces.map((t) => t.traceID)).toStrictEqual([ids[77]]);
  expect(rare.traces[0].spanSets[0].spans.map((s) => s.name)).toStrictEqual(['child-2']);
  expect(rare.traces[0].spanSets[0].matched).toBe(1);

  // Status and name equalities drive through their postings; every match is checked row by row.
  const errors = await search('{ status = error && name = "GET /cart" }');
  expect(errors.traces.map((t) => t.traceID).sort()).toStrictEqual(ids.filter((_, i) => i % 10 === 0).sort());
  const children = await search('{ name = "child-3" && span.http.route != "/items/3" }');
  expect(children.traces).toStrictEqual([]);
  const regex = await search('{ span.http.route =~ "/ra.*" }');
  expect(regex.traces.map((t) => t.traceID)).toStrictEqual([ids[77]]);
  const all = await search('{ resource.service.name = "cart" }', 1000);
  expect(all.traces).toHaveLength(TRACES);

  // A refused query keeps its 400 and message through the reader thread.
  const refused = await get(`/api/search?q=${encodeURIComponent('{ span.user.id = "1" }')}`);
  expect(refused.status).toBe(400);
  expect(refused.text).toContain('not indexed');

  const values = (await get('/api/v2/search/tag/span.http.route/values')).json as { tagValues: { value: string }[] };
  expect(values.tagValues.map((v) => v.value)).toStrictEqual([
    '/cart',
    '/items/0',
    '/items/1',
    '/items/2',
    '/items/3',
    '/rare',
  ]);
});

test('a restart keeps the store; a store of another schema version is recreated empty', async () => {
  const ids = await ingest();
  await r.close();
  r = await start();
  expect((await get(`/api/v2/traces/${ids[5]}`)).status).toBe(200);
  expect((await search('{ span.http.route = "/rare" }')).traces).toHaveLength(1);
  await r.close();

  const file = new DatabaseSync(join(dir, 'traces.db'));
  file.exec('PRAGMA user_version = 1');
  file.close();
  r = await start();
  expect((await get(`/api/v2/traces/${ids[5]}`)).status).toBe(404);
  // And it stores again.
  const again = await ingest();
  expect((await get(`/api/v2/traces/${again[5]}`)).status).toBe(200);
});

/**
 * No query can take the trace store's API down (issue 11, finding 2): TraceQL regexes run on a
 * linear-time engine (RE2 syntax and Tempo's semantics: fully anchored, `.` matches a newline), the
 * patterns RE2 refuses are a 400, and a query that runs past trace_store.query_timeout is answered
 * 504 and stopped, so that the next query is served at once. Spans reach the store through a real
 * OTLP/HTTP request to a real receiver.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Field, kv, PROTOBUF, post, span, startTestReceiver, type TestReceiver, traceRequest } from './helpers';

let dir: string;
let r: TestReceiver;

afterEach(async () => {
  await r?.close();
  rmSync(dir, { recursive: true, force: true });
});

const NOW = BigInt(Date.now()) * 1_000_000n;

/** A span of its own trace (number `i`), with an http.route. */
function routeSpan(i: number, route: string): Field[] {
  const traceId = (i + 1).toString(16).padStart(32, '0');
  const spanId = (i + 1).toString(16).padStart(16, '0');
  return span(
    [
      [7, 'fixed64', NOW],
      [8, 'fixed64', NOW + 1000n],
      [9, 'message', kv('http.route', [[1, 'bytes', route]])],
    ],
    traceId,
    spanId,
  );
}

async function get(path: string, timeoutMs = 10_000) {
  const started = performance.now();
  const res = await fetch(`${r.admin}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - started };
}

const search = (q: string, extra = '') => get(`/api/search?q=${encodeURIComponent(q)}${extra}`);
const ids = (text: string) => (JSON.parse(text) as { traces: { traceID: string }[] }).traces.map((t) => t.traceID);
const traceId = (i: number) => (i + 1).toString(16).padStart(32, '0');

describe('regular expressions', () => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sonde-query-safety-'));
    r = await startTestReceiver({ data_dir: dir, trace_store: { enabled: true, indexed_attributes: ['http.route'] } });
    const routes = [`${'a'.repeat(30)}!`, 'a'.repeat(30), '/rare', 'a\nb', '/items/1'];
    const res = await post(
      `${r.http}/v1/traces`,
      traceRequest(routes.map((route, i) => routeSpan(i, route))),
      PROTOBUF,
    );
    expect(res.status).toBe(200);
    await r.receiver.traceStore?.flush();
  });

  test('catastrophic patterns answer within 2 s, and the API serves other queries meanwhile', async () => {
    for (const pattern of ['((a|a)|a)*b', '(a+)+$', '(a|aa)+$', '(.*a){20}']) {
      const pending = search(`{ span.http.route =~ "${pattern}" }`, '&limit=100');
      // Meanwhile: Grafana's health check and another query through the reader.
      const echo = await get('/api/echo', 2000);
      expect([echo.status, echo.text]).toStrictEqual([200, 'echo']);
      const values = await get('/api/v2/search/tag/span.http.route/values', 2000);
      expect(values.status).toBe(200);
      const answer = await pending;
      expect(answer.ms).toBeLessThan(2000);
      expect([200, 400]).toContain(answer.status);
    }
    // Neither matches a route of 30 a's and "!"; (a+)+$ matches the one without it.
    expect(ids((await search('{ span.http.route =~ "((a|a)|a)*b" }')).text)).toStrictEqual([]);
    expect(ids((await search('{ span.http.route =~ "(a+)+$" }')).text)).toStrictEqual([traceId(1)]);
  });

  test("Tempo's semantics: fully anchored, . matches a newline, RE2 syntax such as (?i)", async () => {
    expect(ids((await search('{ span.http.route =~ "/ra" }')).text)).toStrictEqual([]);
    expect(ids((await search('{ span.http.route =~ "/ra.*" }')).text)).toStrictEqual([traceId(2)]);
    expect(ids((await search('{ span.http.route =~ "a.b" }')).text)).toStrictEqual([traceId(3)]);
    expect(ids((await search('{ span.http.route =~ "(?i)/RARE" }')).text)).toStrictEqual([traceId(2)]);
    expect(ids((await search('{ span.http.route !~ "a*!?" && span.http.route !~ "/.*" }')).text)).toStrictEqual([
      traceId(3),
    ]);
  });

  test('patterns RE2 refuses (backreferences, lookaround) are a 400 saying so', async () => {
    for (const pattern of ['(a)\\\\1', 'a(?=b)', 'a(?!b)']) {
      const res = await search(`{ span.http.route =~ "${pattern}" }`);
      expect(res.status).toBe(400);
      expect(res.text).toContain('invalid regular expression');
      expect(res.text).toContain('RE2');
    }
  });
});

describe('the time budget', () => {
  const TRACES = 60_000;

  test('a query past trace_store.query_timeout is answered 504 and stopped; the next query is served', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sonde-query-safety-'));
    r = await startTestReceiver({
      data_dir: dir,
      trace_store: { enabled: true, indexed_attributes: ['http.route'], query_timeout: '800ms', query_workers: 1 },
    });
    for (let at = 0; at < TRACES; at += 20_000) {
      const spans = Array.from({ length: 20_000 }, (_, i) => routeSpan(at + i, `/items/${(at + i) % 7}`));
      expect((await post(`${r.http}/v1/traces`, traceRequest(spans), PROTOBUF)).status).toBe(200);
    }
    await r.receiver.traceStore?.flush();

    // Every trace, each looked up for its summary: seconds of work.
    const slow = await search('{ }', `&limit=${TRACES}`);
    expect(slow.status).toBe(504);
    expect(slow.text).toContain('trace_store.query_timeout');
    expect(slow.ms).toBeLessThan(2500);
    // The one reader was stopped at its next step: the next query does not wait for the slow one.
    // (A reader that had to be replaced starts again first: on a loaded machine that start-up can
    // itself use up a first 800 ms budget, so the next query gets two tries.)
    let next = await search('{ span.http.route = "/items/3" }', '&limit=2');
    if (next.status === 504) next = await search('{ span.http.route = "/items/3" }', '&limit=2');
    expect(next.status).toBe(200);
    expect(ids(next.text)).toHaveLength(2);
    const metrics = (await get('/metrics')).text;
    expect(metrics).toMatch(/sonde_trace_store_query_timeouts_total\{endpoint="search"\} [12]\b/);
  }, 30_000);
});

/**
 * Loki's query API over HTTP (real requests to an express app on a loopback port), over an in-memory
 * LogSource fed with demo-like records: the exact JSON shapes Grafana's Loki datasource reads, and
 * Loki's 400 texts.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createLokiApi, type LokiApiOptions } from '../src/log-store/api';
import type { LogSelection, LokiEntry } from '../src/log-store/loki-entry';
import { MemoryLogSource } from '../src/log-store/memory-source';
import { BASE_S, demoSource, NS, TRACE_ID } from './loki-fixtures';

let base: string;
let source: MemoryLogSource;
const limitHits: string[] = [];
const servers: Server[] = [];

async function start(src: MemoryLogSource, options: LokiApiOptions = {}): Promise<{ server: Server; base: string }> {
  const app = express();
  app.use(createLokiApi(src, { now: () => BigInt(BASE_S + 600) * NS, onLimit: (l) => limitHits.push(l), ...options }));
  const s = app.listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  servers.push(s);
  return { server: s, base: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}

beforeAll(async () => {
  source = await demoSource();
  ({ base } = await start(source));
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const START = `${BASE_S}000000000`;
const END = `${BASE_S + 600}000000000`;
const CATEGORIZE = { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' };

async function get(path: string, params: Record<string, string> = {}, headers: Record<string, string> = {}, at = base) {
  const res = await fetch(`${at}${path}?${new URLSearchParams(params)}`, { headers });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) };
}

describe('query_range: log queries', () => {
  test('categorize-labels: index labels in stream, metadata and parsed labels in the third element', async () => {
    const r = await get(
      '/loki/api/v1/query_range',
      {
        query: `{service_name="cart"} | trace_id="${TRACE_ID}" | label_format x="{{.detected_level}}"`,
        start: START,
        end: END,
        limit: '10',
        direction: 'backward',
        step: '1000ms',
      },
      CATEGORIZE,
    );
    expect(r.status).toBe(200);
    // Loki's key order: resultType, encodingFlags, result, stats (Grafana's reader needs the flags first).
    expect(r.text).toMatch(
      /^\{"status":"success","data":\{"resultType":"streams","encodingFlags":\["categorize-labels"\],"result":\[\{"stream":/,
    );
    const body = r.json();
    expect(body.data.result).toEqual([
      {
        stream: { service_name: 'cart', service_namespace: 'shop', deployment_environment_name: 'demo' },
        values: [
          [
            `${BASE_S}000000000`,
            'payment failed for cart 0: card declined',
            {
              structuredMetadata: expect.objectContaining({
                trace_id: TRACE_ID,
                span_id: '0000000000000001',
                detected_level: 'error',
                severity_text: 'error',
                http_route: '/cart',
                host_name: 'cart-1',
              }),
              parsed: { x: 'error' },
            },
          ],
        ],
      },
    ]);
    expect(body.data.stats.summary).toMatchObject({
      totalEntriesReturned: 1,
      totalLinesProcessed: expect.any(Number),
      execTime: expect.any(Number),
    });
  });

  test('every value has a third element, {} when it has neither metadata nor parsed labels', async () => {
    const r = await get(
      '/loki/api/v1/query_range',
      { query: '{service_name="cart"} | keep service_name', start: START, end: END, limit: '2' },
      CATEGORIZE,
    );
    expect(r.json().data.result).toEqual([
      {
        stream: { service_name: 'cart' },
        values: [
          [`${BASE_S + 290}000000000`, 'added item 29 to cart', {}],
          [`${BASE_S + 280}000000000`, 'added item 28 to cart', {}],
        ],
      },
    ]);
  });

  test('without the flag: [ns, line] values, every label in stream, one stream per label set', async () => {
    const r = await get('/loki/api/v1/query_range', {
      query: '{service_name="payment"} | json | drop __error__ | keep service_name, level',
      start: START,
      end: END,
      limit: '4',
      direction: 'forward',
    });
    const body = r.json();
    expect(body.data.encodingFlags).toBeUndefined();
    expect(body.data.result).toEqual([
      {
        stream: { service_name: 'payment', level: 'error' },
        values: [[`${BASE_S}005000000`, expect.stringContaining('"charge failed"')]],
      },
      {
        stream: { service_name: 'payment' },
        values: [
          [`${BASE_S + 10}005000000`, expect.stringMatching(/^level=info/)],
          [`${BASE_S + 30}005000000`, expect.stringMatching(/^level=info/)],
        ],
      },
      {
        stream: { service_name: 'payment', level: 'info' },
        values: [[`${BASE_S + 20}005000000`, expect.stringContaining('"charged"')]],
      },
    ]);
  });

  test('times in ns, RFC 3339 and seconds; since; the window is [start, end)', async () => {
    const q = { query: '{service_name="cart"}', direction: 'forward', limit: '100' };
    const count = async (params: Record<string, string>) =>
      (
        (await get('/loki/api/v1/query_range', { ...q, ...params })).json().data.result as { values: unknown[] }[]
      ).reduce((n, s) => n + s.values.length, 0);
    expect(await count({ start: `${BASE_S + 10}`, end: `${BASE_S + 40}` })).toBe(3);
    expect(await count({ start: `${BASE_S + 10}000000000`, end: `${BASE_S + 40}000000001` })).toBe(4);
    expect(await count({ start: new Date((BASE_S + 10) * 1000).toISOString(), end: '2024-08-22T04:14:00.5Z' })).toBe(4);
    expect(await count({ start: `${BASE_S + 9}.5`, end: `${BASE_S + 20}.000000001` })).toBe(2);
    // since: the last 5 minutes before now (BASE_S + 600): none of the demo's lines.
    expect(await count({ since: '5m' })).toBe(0);
    expect(await count({ since: '10m' })).toBe(30);
  });
});

describe('query_range: metric queries', () => {
  test('matrix: [seconds, "value"] ascending, empty steps left out, series sorted', async () => {
    const r = await get('/loki/api/v1/query_range', {
      query: 'sum by (level, detected_level) (count_over_time({service_name=~"cart|frontend"} | drop __error__[1m]))',
      start: `${BASE_S}`,
      end: `${BASE_S + 120}`,
      step: '60000ms',
    });
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body.data.resultType).toBe('matrix');
    expect(body.data.result).toEqual([
      {
        metric: { detected_level: 'error' },
        values: [
          [BASE_S, '1'],
          [BASE_S + 60, '2'],
          [BASE_S + 120, '2'],
        ],
      },
      {
        metric: { detected_level: 'fatal' },
        values: [
          [BASE_S + 60, '1'],
          [BASE_S + 120, '1'],
        ],
      },
      {
        metric: { detected_level: 'info' },
        values: [
          [BASE_S + 60, '4'],
          [BASE_S + 120, '4'],
        ],
      },
      {
        metric: { detected_level: 'warn' },
        values: [
          [BASE_S + 60, '5'],
          [BASE_S + 120, '5'],
        ],
      },
    ]);
    expect(body.data.stats.summary.totalLinesProcessed).toBeGreaterThan(0);
  });

  test('rate values as Prometheus formats them; step in seconds; default step', async () => {
    const r = await get('/loki/api/v1/query_range', {
      query: 'sum(rate({service_name="cart"}[1m]))',
      start: `${BASE_S + 60}`,
      end: `${BASE_S + 60}`,
      step: '15',
    });
    expect(r.json().data.result).toEqual([{ metric: {}, values: [[BASE_S + 60, '0.1']] }]);
    const d = await get('/loki/api/v1/query_range', {
      query: 'sum(count_over_time({service_name="cart"}[10s]))',
      start: `${BASE_S}`,
      end: `${BASE_S + 500}`,
    });
    // range 500 s / 250 → a 2 s step: points at BASE_S, +10, +20… (one line each).
    expect(d.json().data.result[0].values.slice(0, 3)).toEqual([
      [BASE_S, '1'],
      [BASE_S + 2, '1'],
      [BASE_S + 4, '1'],
    ]);
  });
});

describe('query (instant)', () => {
  test("Grafana's health check: vector(1)+vector(1) at time=4000000000 (seconds)", async () => {
    const r = await get('/loki/api/v1/query', { query: 'vector(1)+vector(1)', time: '4000000000' });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({
      status: 'success',
      data: { resultType: 'vector', result: [{ metric: {}, value: [4000000000, '2'] }], stats: expect.any(Object) },
    });
  });

  test('a metric query gives a vector; a scalar gives a scalar; a log query is a 400', async () => {
    const v = await get('/loki/api/v1/query', {
      query: 'sum by (service_name) (count_over_time({service_name=~".+"}[10m]))',
      time: `${BASE_S + 300}`,
    });
    expect(v.json().data.result).toEqual([
      { metric: { service_name: 'cart' }, value: [BASE_S + 300, '30'] },
      { metric: { service_name: 'frontend' }, value: [BASE_S + 300, '30'] },
      { metric: { service_name: 'payment' }, value: [BASE_S + 300, '30'] },
    ]);
    const s = await get('/loki/api/v1/query', { query: '2 * 3', time: `${BASE_S}` });
    expect(s.json().data).toMatchObject({ resultType: 'scalar', result: [BASE_S, '6'] });
    const l = await get('/loki/api/v1/query', { query: '{service_name="cart"}' });
    expect([l.status, l.text]).toEqual([
      400,
      'log queries are not supported as an instant query type, please change your query to a range query type\n',
    ]);
  });
});

describe('errors: 400 with Loki text, text/plain', () => {
  test.each([
    [
      { query: '{service_name="cart"} | pattern "<_>"' },
      /^parse error at line 1, col 25: syntax error: the pattern parser is not supported/,
    ],
    [{ query: '{}' }, /^parse error : queries require at least one regexp or equality matcher/],
    [
      { query: '{service_name="cart"', start: START, end: END },
      /^parse error at line 1, col 21: syntax error: unexpected end of input/,
    ],
    [
      { query: '{service_name="cart"}', limit: '6000' },
      /^max entries limit per query exceeded, limit > max_entries_limit_per_query \(6000 > 5000\)$/,
    ],
    [{ query: '{service_name="cart"}', limit: '0' }, /^limit must be a positive value$/],
    [{ query: '{service_name="cart"}', direction: 'sideways' }, /direction/],
    [
      { query: '{service_name="cart"}', start: END, end: START },
      /^end timestamp must not be before or equal to start time$/,
    ],
    [
      { query: '{service_name="cart"}', start: 'yesterday' },
      /^invalid parameter "start": cannot parse "yesterday" to a valid timestamp$/,
    ],
    [{ query: '{service_name="cart"}', step: '0' }, /^zero or negative query resolution step widths are not accepted/],
    [
      { query: 'rate({service_name="cart"}[1m])', start: '0', end: '86400', step: '1' },
      /^exceeded maximum resolution of 11,000 points per timeseries/,
    ],
    [
      { query: '{service_name="cart"}', start: '0', end: `${800 * 3600}` },
      /^the query time range exceeds the limit \(query length: 800h0m0s, limit: 721h0m0s\)$/,
    ],
    [
      { query: 'sum(count_over_time({service_name="payment"} | json [5m]))', start: START, end: END },
      /^pipeline error: 'JSONParserErr'/,
    ],
    [{ query: '' }, /^invalid parameter "query": the query is empty$/],
    [
      { query: '{service_name="cart"}', end: '99999999999999999999999' },
      /^invalid parameter "end": .* is outside 1970 to 2262$/,
    ],
    [{ query: '1 > 2' }, /^parse error : comparisons between scalars must use the bool modifier$/],
    [
      {
        query: 'count_over_time({service_name="cart"} | line_format "{{ regexReplaceAll \\"(\\" .a \\"x\\" }}" [1m])',
        start: START,
        end: END,
      },
      /^pipeline error: 'TemplateFormatErr'/,
    ],
  ])('%j', async (params, text) => {
    const r = await get('/loki/api/v1/query_range', params as Record<string, string>);
    expect(r.status).toBe(400);
    expect(r.type).toMatch(/^text\/plain/);
    expect(r.text.replace(/\n$/, '')).toMatch(text);
  });

  test('limits refused are counted by name', async () => {
    limitHits.length = 0;
    await get('/loki/api/v1/query_range', { query: '{service_name="cart"}', limit: '6000' });
    await get(
      '/loki/api/v1/query_range',
      { query: 'count_over_time({service_name=~".+"}[1h])', start: START, end: END },
      {},
      (await start(source, { maxQuerySeries: 10 })).base,
    );
    expect(limitHits).toEqual(['max_entries_limit_per_query', 'max_query_series']);
  });

  test('a query over its time budget is a 504; a source that throws is a bare 500', async () => {
    const slow = new MemoryLogSource();
    slow.select = async function* (sel: LogSelection): AsyncIterable<LokiEntry> {
      for (let i = 0; ; i++) {
        await new Promise((r) => setTimeout(r, 1));
        sel.signal?.throwIfAborted();
        yield { timeNs: BigInt(BASE_S) * NS + BigInt(i), line: 'x', stream: { a: 'b' }, metadata: {} };
      }
    };
    const s1 = await start(slow, { queryTimeoutMs: 100 });
    const r = await get(
      '/loki/api/v1/query_range',
      { query: '{a="b"} |= "never"', start: START, end: END },
      {},
      s1.base,
    );
    expect([r.status, r.text]).toEqual([504, 'the query timed out after 100 ms (query_timeout)\n']);
    const broken = new MemoryLogSource();
    broken.select = () => {
      throw new Error('/secret/path/logs.db is corrupt');
    };
    const s2 = await start(broken);
    const b = await get('/loki/api/v1/query_range', { query: '{a="b"}', start: START, end: END }, {}, s2.base);
    expect([b.status, b.text]).toEqual([500, 'the log store could not answer (the error is in the receiver log)\n']);
  });
});

test('odd but valid metric queries answer 200', async () => {
  for (const query of [
    'sum(rate({service_name="cart"}[1m])) / 0',
    'vector(1) > bool vector(2)',
    'topk(1, vector(1))',
    'sum(vector(1)) * -1',
    'sort_desc(sum by (service_name) (count_over_time({service_name=~".+"}[10m])))',
    'count_over_time({service_name="cart"} | json | x > 1 | drop __error__ [1m])',
  ]) {
    const r = await get('/loki/api/v1/query_range', { query, start: START, end: END, step: '60' });
    expect([query, r.status]).toEqual([query, 200]);
  }
});

test('past maxConcurrentQueries a request is refused 429 with Retry-After, and counted', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const slow = new MemoryLogSource();
  slow.select = async function* (): AsyncIterable<LokiEntry> {
    await held;
    yield* [];
  };
  const s = await start(slow, { maxConcurrentQueries: 1 });
  limitHits.length = 0;
  const first = get('/loki/api/v1/query_range', { query: '{a="b"}', start: START, end: END }, {}, s.base);
  await new Promise((r) => setTimeout(r, 50));
  const second = await get('/loki/api/v1/query_range', { query: '{a="b"}', start: START, end: END }, {}, s.base);
  expect([second.status, second.text]).toEqual([429, 'too many outstanding requests\n']);
  expect(limitHits).toEqual(['max_concurrent_queries']);
  release();
  expect((await first).status).toBe(200);
  // The slot is free again.
  expect((await get('/loki/api/v1/query_range', { query: '{a="b"}', start: START, end: END }, {}, s.base)).status).toBe(
    200,
  );
});

describe('labels, series, stats, volume', () => {
  test('labels and label values (index labels only), with and without a selector', async () => {
    const names = await get('/loki/api/v1/labels', { start: START, end: END });
    expect(names.json()).toEqual({
      status: 'success',
      data: ['deployment_environment_name', 'service_name', 'service_namespace'],
    });
    const values = await get('/loki/api/v1/label/service_name/values', { start: START, end: END });
    expect(values.json()).toEqual({ status: 'success', data: ['cart', 'frontend', 'payment'] });
    const filtered = await get('/loki/api/v1/label/service_name/values', {
      start: START,
      end: END,
      query: '{service_name=~"c.*"}',
    });
    expect(filtered.json()).toEqual({ status: 'success', data: ['cart'] });
    const all = await get('/loki/api/v1/label/service_name/values', { start: START, end: END, query: '{}' });
    expect(all.json()).toEqual(values.json());
    // None: Loki leaves data out.
    expect((await get('/loki/api/v1/label/nope/values', { start: START, end: END })).json()).toEqual({
      status: 'success',
    });
  });

  test('series: GET with match[] (repeated), POST form, {} alone for all', async () => {
    const params = new URLSearchParams([
      ['match[]', '{service_name="cart"}'],
      ['match[]', '{service_name="frontend"}'],
      ['start', START],
      ['end', END],
    ]);
    const g = await fetch(`${base}/loki/api/v1/series?${params}`);
    expect(await g.json()).toEqual({
      status: 'success',
      data: [
        { service_name: 'cart', service_namespace: 'shop', deployment_environment_name: 'demo' },
        { service_name: 'frontend', service_namespace: 'shop', deployment_environment_name: 'demo' },
      ],
    });
    const p = await fetch(`${base}/loki/api/v1/series`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([
        ['match[]', '{}'],
        ['start', START],
        ['end', END],
      ]).toString(),
    });
    expect(((await p.json()) as { data: unknown[] }).data).toHaveLength(3);
    const none = await get('/loki/api/v1/series', { start: START, end: END });
    expect(none.status).toBe(400);
  });

  test('index/stats', async () => {
    const r = await get('/loki/api/v1/index/stats', { query: '{service_name="frontend"}', start: START, end: END });
    const bytes = source.entries
      .filter((e) => e.stream.service_name === 'frontend')
      .reduce((n, e) => n + Buffer.byteLength(e.line), 0);
    expect(r.json()).toEqual({ streams: 1, chunks: 1, bytes, entries: 30 });
  });

  test('index/volume: bytes by the selector labels (or targetLabels), largest first, limited', async () => {
    const r = await get('/loki/api/v1/index/volume', {
      query: '{service_name=~".+"}',
      start: START,
      end: END,
      limit: '2',
    });
    const body = r.json();
    expect(body.status).toBe('success');
    expect(body.data.resultType).toBe('vector');
    expect(body.data.result).toHaveLength(2);
    expect(body.data.result[0]).toEqual({
      metric: { service_name: 'payment' },
      value: [BASE_S + 600, expect.stringMatching(/^\d+$/)],
    });
    expect(Number(body.data.result[0].value[1])).toBeGreaterThan(Number(body.data.result[1].value[1]));
    const t = await get('/loki/api/v1/index/volume', {
      query: '{service_name=~".+"}',
      start: START,
      end: END,
      targetLabels: 'service_namespace',
    });
    expect(t.json().data.result).toEqual([
      { metric: { service_namespace: 'shop' }, value: [BASE_S + 600, expect.any(String)] },
    ]);
  });
});

describe('index/volume aggregateBy=labels and index/volume_range (Loki 3 pkg/querier/queryrange/volume.go)', () => {
  const bytesOf = (pred: (e: LokiEntry) => boolean) =>
    source.entries.filter(pred).reduce((n, e) => n + Buffer.byteLength(e.line), 0);
  const all = () => bytesOf(() => true);

  test('aggregateBy=labels: one series per label name, value "", largest first then by name', async () => {
    const r = await get('/loki/api/v1/index/volume', {
      query: '{service_name=~".+"}',
      start: START,
      end: END,
      aggregateBy: 'labels',
    });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({
      status: 'success',
      data: {
        resultType: 'vector',
        result: [
          { metric: { deployment_environment_name: '' }, value: [BASE_S + 600, String(all())] },
          { metric: { service_name: '' }, value: [BASE_S + 600, String(all())] },
          { metric: { service_namespace: '' }, value: [BASE_S + 600, String(all())] },
        ],
      },
    });
    const t = await get('/loki/api/v1/index/volume', {
      query: '{service_name=~"cart|payment"}',
      start: START,
      end: END,
      aggregateBy: 'labels',
      targetLabels: 'service_name',
    });
    const cartPayment = bytesOf((e) => e.stream.service_name !== 'frontend');
    expect(t.json().data.result).toEqual([
      { metric: { service_name: '' }, value: [BASE_S + 600, String(cartPayment)] },
    ]);
  });

  test("aggregateBy other than series or labels is a 400 with Loki's text", async () => {
    const r = await get('/loki/api/v1/index/volume', { query: '{service_name="cart"}', aggregateBy: 'streams' });
    expect(r.status).toBe(400);
    expect(r.text).toBe('invalid aggregation option\n');
  });

  test('targetLabels only counts streams that have them (Loki adds `label=~".+"`), and {} aggregates whole series', async () => {
    const r = await get('/loki/api/v1/index/volume', {
      query: '{service_namespace="shop"}',
      start: START,
      end: END,
      targetLabels: 'service_name',
    });
    expect(r.json().data.result.map((x: { metric: unknown }) => x.metric)).toEqual(
      expect.arrayContaining([{ service_name: 'cart' }, { service_name: 'payment' }, { service_name: 'frontend' }]),
    );
    const any = await get('/loki/api/v1/index/volume', { query: '{}', start: START, end: END });
    expect(any.status).toBe(200);
    expect(any.json().data.result).toHaveLength(3);
    expect(Object.keys(any.json().data.result[0].metric).sort()).toEqual([
      'deployment_environment_name',
      'service_name',
      'service_namespace',
    ]);
  });

  test('volume_range: a matrix of bytes per step bucket, buckets aligned to the step and keyed by their end (less 1 ms)', async () => {
    const r = await get('/loki/api/v1/index/volume_range', {
      query: '{service_name="cart"}',
      start: START,
      end: END,
      step: '60s',
    });
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body.status).toBe('success');
    expect(body.data.resultType).toBe('matrix');
    // Buckets: [start, next multiple of 60 s), then 60 s each, the last ending at `end`.
    const first = BASE_S - (BASE_S % 60) + 60;
    const buckets: [number, number][] = [[BASE_S, first]];
    for (let b = first; b < BASE_S + 600; b += 60) buckets.push([b, Math.min(b + 60, BASE_S + 600)]);
    const values = buckets
      .map(([a, b], i) => {
        const key = i === buckets.length - 1 ? b : b - 0.001;
        const v = bytesOf(
          (e) => e.stream.service_name === 'cart' && e.timeNs >= BigInt(a) * NS && e.timeNs < BigInt(b) * NS,
        );
        return [Number(key.toFixed(3)), String(v)] as [number, string];
      })
      .filter(([, v]) => v !== '0');
    expect(values.length).toBeGreaterThan(3);
    expect(body.data.result).toEqual([{ metric: { service_name: 'cart' }, values }]);
  });

  test('volume_range with aggregateBy=labels, and one bucket is a vector (as Loki answers)', async () => {
    const r = await get('/loki/api/v1/index/volume_range', {
      query: '{service_name=~".+"}',
      start: START,
      end: END,
      step: '5m',
      aggregateBy: 'labels',
      targetLabels: 'service_name',
    });
    const body = r.json();
    expect(body.data.resultType).toBe('matrix');
    expect(body.data.result).toHaveLength(1);
    expect(body.data.result[0].metric).toEqual({ service_name: '' });
    const total = body.data.result[0].values.reduce((n: number, [, v]: [number, string]) => n + Number(v), 0);
    expect(total).toBe(all());
    const one = await get('/loki/api/v1/index/volume_range', {
      query: '{service_name="cart"}',
      start: START,
      end: END,
      step: '1h',
    });
    expect(one.json().data).toEqual({
      resultType: 'vector',
      result: [
        {
          metric: { service_name: 'cart' },
          value: [BASE_S + 600, String(bytesOf((e) => e.stream.service_name === 'cart'))],
        },
      ],
    });
  });

  test('volume_range is bounded like query_range: step > 0, at most 11,000 points', async () => {
    const zero = await get('/loki/api/v1/index/volume_range', {
      query: '{service_name="cart"}',
      start: START,
      end: END,
      step: '0',
    });
    expect(zero.status).toBe(400);
    const many = await get('/loki/api/v1/index/volume_range', {
      query: '{service_name="cart"}',
      start: START,
      end: END,
      step: '0.01',
    });
    expect(many.status).toBe(400);
    expect(many.text).toMatch(/exceeded maximum resolution of 11,000 points/);
  });

  test("the aggregated series are bounded (Loki's volume_max_series), counted as a limit hit", async () => {
    const { base: small } = await start(source, { maxVolumeSeries: 2 });
    limitHits.length = 0;
    const r = await get(
      '/loki/api/v1/index/volume',
      { query: '{service_name=~".+"}', start: START, end: END },
      {},
      small,
    );
    expect(r.status).toBe(400);
    expect(r.text).toBe('the query hit the max number of series limit (limit: 2 series)\n');
    expect(limitHits).toEqual(['max_volume_series']);
  });
});

describe('detected labels and fields, buildinfo', () => {
  test('detected_labels', async () => {
    const r = await get('/loki/api/v1/detected_labels', { query: '{service_name=~".+"}', start: START, end: END });
    expect(r.json()).toEqual({
      detectedLabels: [
        { label: 'deployment_environment_name', cardinality: 1 },
        { label: 'service_name', cardinality: 3 },
        { label: 'service_namespace', cardinality: 1 },
      ],
    });
  });

  test('detected_fields: metadata (parsers null) and fields of JSON and logfmt lines with types', async () => {
    const r = await get('/loki/api/v1/detected_fields', { query: '{service_name="payment"}', start: START, end: END });
    const body = r.json() as {
      fields: { label: string; type: string; cardinality: number; parsers: string[] | null; jsonPath?: string[] }[];
      limit: number;
    };
    const by = Object.fromEntries(body.fields.map((f) => [f.label, f]));
    expect(body.limit).toBe(1000);
    expect(by.trace_id).toEqual({ label: 'trace_id', type: 'string', cardinality: 30, parsers: null });
    expect(by.detected_level).toMatchObject({ cardinality: 2, parsers: null });
    expect(by.amount).toMatchObject({ type: 'int', cardinality: 30, parsers: ['json', 'logfmt'] });
    expect(by.duration).toMatchObject({ type: 'duration', parsers: ['json', 'logfmt'] });
    expect(by.size).toMatchObject({ type: 'bytes', parsers: ['logfmt'] });
    expect(by.card_brand).toEqual({
      label: 'card_brand',
      type: 'string',
      cardinality: 2,
      parsers: ['json'],
      jsonPath: ['card', 'brand'],
    });
    const v = await get('/loki/api/v1/detected_field/card_brand/values', {
      query: '{service_name="payment"}',
      start: START,
      end: END,
    });
    expect(v.json()).toEqual({ values: expect.arrayContaining(['visa', 'amex']), limit: 1000 });
  });

  test('status/buildinfo', async () => {
    expect((await get('/loki/api/v1/status/buildinfo')).json()).toEqual({
      version: expect.stringMatching(/^3\.\d+\.\d+$/),
      revision: expect.any(String),
      branch: expect.any(String),
      buildUser: expect.any(String),
      buildDate: expect.any(String),
      goVersion: expect.any(String),
    });
  });
});

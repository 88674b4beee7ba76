/**
 * The LogQL engine over an in-memory LogSource fed with demo-like records (emitted by the OpenTelemetry
 * logs SDK, serialized by its protobuf serializer, decoded and mapped by the receiver).
 */

import type { LogExpr, MetricExpr } from '../src/log-store/logql/ast';
import {
  type EngineLimits,
  QueryAbortedError,
  type QueryStats,
  runLogQuery,
  runMetricQuery,
  stepsOf,
} from '../src/log-store/logql/engine';
import { parseQuery } from '../src/log-store/logql/parser';
import type { LokiEntry } from '../src/log-store/loki-entry';
import { MemoryLogSource } from '../src/log-store/memory-source';
import { BASE_S, demoSource, NS, TRACE_ID } from './loki-fixtures';

let source: MemoryLogSource;
beforeAll(async () => {
  source = await demoSource();
});

const at = (s: number) => BigInt(s) * NS;
const limits: EngineLimits = { maxSeries: 500 };
const newStats = (): QueryStats => ({ linesProcessed: 0, bytesProcessed: 0, entriesReturned: 0 });

async function logs(
  text: string,
  opts: { direction?: 'forward' | 'backward'; limit?: number; start?: number; end?: number } = {},
  src: MemoryLogSource = source,
) {
  const expr = parseQuery(text) as LogExpr;
  expect(expr.kind).toBe('log');
  return runLogQuery(
    src,
    expr,
    {
      startNs: at(opts.start ?? BASE_S),
      endNs: at(opts.end ?? BASE_S + 600),
      direction: opts.direction ?? 'forward',
      limit: opts.limit ?? 1000,
    },
    limits,
    newStats(),
  );
}

async function metric(text: string, start: number, end: number, step: number, lim: EngineLimits = limits) {
  const expr = parseQuery(text) as MetricExpr;
  const v = await runMetricQuery(source, expr, stepsOf(at(start), at(end), at(step)), lim, newStats());
  if (v.type === 'scalar') return v.value;
  return v.series
    .map((s) => ({ labels: s.labels, points: s.steps.map((k, j) => [start + k * step, s.values[j]]) }))
    .sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));
}

describe('log queries', () => {
  test('selector, direction and limit: the oldest N forward, the newest N backward', async () => {
    const fwd = await logs('{service_name="cart"}', { limit: 3 });
    expect(fwd.map((e) => e.line)).toEqual([
      'payment failed for cart 0: card declined',
      'added item 1 to cart',
      'added item 2 to cart',
    ]);
    const back = await logs('{service_name="cart"}', { limit: 2, direction: 'backward' });
    expect(back.map((e) => e.line)).toEqual(['added item 29 to cart', 'added item 28 to cart']);
    const all = await logs('{service_name=~"cart|frontend"}');
    expect(all).toHaveLength(60);
  });

  test('the window is [start, end)', async () => {
    const w = await logs('{service_name="cart"}', { start: BASE_S + 10, end: BASE_S + 30 });
    expect(w.map((e) => e.timeNs)).toEqual([at(BASE_S + 10), at(BASE_S + 20)]);
  });

  test('line filters: contains, not, regex, or, chained', async () => {
    expect(await logs('{service_name="cart"} |= "failed"')).toHaveLength(10);
    expect(await logs('{service_name="cart"} != "failed"')).toHaveLength(20);
    expect((await logs('{service_name="cart"} |~ "item (1|2)\\\\d? to"')).map((e) => e.line)).toHaveLength(16);
    expect(await logs('{service_name="cart"} |= "cart 3:" or "cart 6:"')).toHaveLength(2);
    expect(await logs('{service_name="cart"} != "cart 3:" or "added"')).toHaveLength(9);
    expect(await logs('{service_name="cart"} |= "failed" !~ "cart [0-9]:"')).toHaveLength(6);
  });

  test('label filters on structured metadata: trace id, level, numbers', async () => {
    const byTrace = await logs(`{service_name="cart"} | trace_id="${TRACE_ID}"`);
    expect(byTrace.map((e) => e.line)).toEqual(['payment failed for cart 0: card declined']);
    expect(await logs('{service_name=~".+"} | detected_level="fatal"')).toHaveLength(3);
    expect(await logs('{service_name="cart"} | detected_level=~"error|fatal" and cart_items >= 3')).toHaveLength(4);
    expect(await logs('{service_name="cart"} | cart_items > 3 or severity_text="error"')).toHaveLength(14);
  });

  test('json and logfmt parsers; numeric, duration and bytes filters on parsed fields; drop __error__', async () => {
    const json = await logs('{service_name="payment"} | json | amount > 30');
    // The logfmt lines fail the JSON parser: kept, with __error__ (a numeric filter lets errors through).
    expect(json.filter((e) => e.labels.error === undefined).map((e) => e.labels.get('amount'))).toEqual([
      '32',
      '34',
      '36',
      '38',
    ]);
    expect(json.filter((e) => e.labels.error === 'JSONParserErr')).toHaveLength(15);
    expect(json.find((e) => e.labels.get('amount') === '32')?.labels.get('card_brand')).toBe('amex');
    expect(json.find((e) => e.labels.get('amount') === '34')?.labels.get('card_brand')).toBe('visa');
    const clean = await logs('{service_name="payment"} | json | __error__="" | duration >= 300ms');
    expect(clean.map((e) => e.labels.get('duration'))).toEqual(['300ms', '320ms', '340ms', '360ms', '380ms']);
    const logfmt = await logs('{service_name="payment"} | logfmt | drop __error__ | size > 25KB | msg="charged"');
    expect(logfmt.map((e) => e.labels.get('size'))).toEqual(['27KB', '29KB']);
    const both = await logs('{service_name="payment"} | json | logfmt | drop __error__ | level="error"');
    expect(both).toHaveLength(6);
    expect(both.every((e) => e.labels.error === undefined)).toBe(true);
  });

  test('a parsed key that is a stream label becomes <key>_extracted; json fields by path', async () => {
    const src = new MemoryLogSource().addEntries([
      {
        timeNs: at(BASE_S),
        line: '{"service_name":"x","a":{"b":[1,2]},"c":{"d":"e"}}',
        stream: { service_name: 's' },
        metadata: {},
      },
    ]);
    const [e] = await logs('{service_name="s"} | json', {}, src);
    expect(e.labels.all()).toEqual({ service_name: 's', service_name_extracted: 'x', c_d: 'e' });
    const [f] = await logs('{service_name="s"} | json first="a.b[1]", d="c.d"', {}, src);
    expect(f.labels.parsed).toEqual({ first: '2', d: 'e' });
  });

  test('line_format and label_format templates, as trace to logs writes them', async () => {
    const lf = await logs(
      '{service_name="payment"} |= "level=" | logfmt | line_format "{{.msg | upper}} {{ default \\"-\\" .nope }} {{ printf \\"%s!\\" .amount }}"',
      { limit: 2 },
    );
    expect(lf.map((e) => e.line)).toEqual(['CHARGED - 11!', 'CHARGED - 13!']);
    const t2l = await logs(
      `{service_name="cart"} | label_format log_line_contains_trace_id=\`{{ contains "${TRACE_ID}" __line__  }}\` | log_line_contains_trace_id="true" or trace_id="${TRACE_ID}"`,
    );
    expect(t2l.map((e) => e.line)).toEqual(['payment failed for cart 0: card declined']);
    expect(t2l[0].labels.parsed).toEqual({ log_line_contains_trace_id: 'false' });
    const renamed = await logs(
      '{service_name="cart"} | label_format route=http_route, x="{{ replace \\"/\\" \\"_\\" .http_route }}"',
      { limit: 1 },
    );
    expect(renamed[0].labels.get('route')).toBe('/cart');
    expect(renamed[0].labels.get('http_route')).toBeUndefined();
    expect(renamed[0].labels.get('x')).toBe('_cart');
    // A line filter after line_format sees the new line.
    expect(await logs('{service_name="cart"} | line_format "{{.detected_level}}" |= "error"')).toHaveLength(10);
  });

  test('keep and drop with matchers', async () => {
    const [k] = await logs('{service_name="cart"} | keep service_name, detected_level', { limit: 1 });
    expect(k.labels.all()).toEqual({ service_name: 'cart', detected_level: 'error' });
    const d = await logs('{service_name="cart"} | drop detected_level="info", host_name', { limit: 2 });
    expect(d[0].labels.get('detected_level')).toBe('error');
    expect(d[1].labels.get('detected_level')).toBeUndefined();
    expect(d[0].labels.get('host_name')).toBeUndefined();
  });

  test('hints reach the source: line substrings and the trace id (not after a parser)', async () => {
    const src = await demoSource();
    await logs(`{service_name="cart"} |= "failed" | trace_id="${TRACE_ID}"`, {}, src);
    expect(src.selections[0]).toMatchObject({ lineContains: ['failed'], traceId: TRACE_ID });
    await logs(`{service_name="cart"} | json | trace_id="${TRACE_ID}" | line_format "x" |= "y"`, {}, src);
    expect(src.selections[1].traceId).toBeUndefined();
    expect(src.selections[1].lineContains).toBeUndefined();
  });

  test('a long query yields to the event loop while it reads', async () => {
    const many = new MemoryLogSource().addEntries(
      Array.from(
        { length: 20_000 },
        (_, i): LokiEntry => ({ timeNs: at(BASE_S) + BigInt(i), line: 'x', stream: { a: 'b' }, metadata: {} }),
      ),
    );
    const order: string[] = [];
    setImmediate(() => order.push('event loop'));
    await runMetricQuery(
      many,
      parseQuery('sum(count_over_time({a="b"}[1s]))') as MetricExpr,
      stepsOf(at(BASE_S + 1), at(BASE_S + 1), at(1)),
      limits,
      newStats(),
    ).then(() => order.push('query'));
    expect(order).toEqual(['event loop', 'query']);
  });

  test('an aborted signal stops the query', async () => {
    const big = new MemoryLogSource().addEntries(
      Array.from(
        { length: 5000 },
        (_, i): LokiEntry => ({ timeNs: at(BASE_S) + BigInt(i), line: 'x', stream: { a: 'b' }, metadata: {} }),
      ),
    );
    const ac = new AbortController();
    ac.abort();
    await expect(
      runLogQuery(
        big,
        parseQuery('{a="b"} |= "nothing"') as LogExpr,
        { startNs: at(BASE_S), endNs: at(BASE_S + 1), direction: 'forward', limit: 10 },
        { maxSeries: 5, signal: ac.signal, timedOut: () => true },
        newStats(),
      ),
    ).rejects.toThrow();
  });
});

describe('metric queries', () => {
  test('count_over_time over step windows (t − range, t]', async () => {
    // cart logs at BASE_S + 0, 10, 20…: the window (t−30s, t] holds 3 of them from t = BASE_S + 20 on.
    // Without aggregation each label set is a series: every record has its own trace id.
    const each = (await metric('count_over_time({service_name="cart"}[30s])', BASE_S, BASE_S + 40, 10)) as {
      labels: Record<string, string>;
      points: number[][];
    }[];
    expect(each).toHaveLength(5);
    const first = each.find((s) => s.labels.trace_id === TRACE_ID)!;
    expect(first.labels).toMatchObject({ service_name: 'cart', detected_level: 'error', http_route: '/cart' });
    expect(first.points).toEqual([
      [BASE_S, 1],
      [BASE_S + 10, 1],
      [BASE_S + 20, 1],
    ]);
    const summed = await metric('sum(count_over_time({service_name="cart"}[30s]))', BASE_S, BASE_S + 40, 10);
    expect(summed).toEqual([
      {
        labels: {},
        points: [
          [BASE_S, 1],
          [BASE_S + 10, 2],
          [BASE_S + 20, 3],
          [BASE_S + 30, 3],
          [BASE_S + 40, 3],
        ],
      },
    ]);
    // Steps whose window holds no line have no point: before the first line, and at BASE_S + 5, whose
    // window (BASE_S, BASE_S + 5] leaves out the line at BASE_S.
    const early = await metric('sum(count_over_time({service_name="cart"}[5s]))', BASE_S - 20, BASE_S + 5, 5);
    expect(early).toEqual([{ labels: {}, points: [[BASE_S, 1]] }]);
  });

  test('rate, bytes_over_time and bytes_rate', async () => {
    expect(await metric('sum(rate({service_name="cart"}[1m]))', BASE_S + 60, BASE_S + 60, 1)).toEqual([
      { labels: {}, points: [[BASE_S + 60, 6 / 60]] },
    ]);
    const lines = source.entries.filter(
      (e) => e.stream.service_name === 'frontend' && e.timeNs > at(BASE_S) && e.timeNs <= at(BASE_S + 30),
    );
    const bytes = lines.reduce((n, e) => n + Buffer.byteLength(e.line), 0);
    expect(lines).toHaveLength(3);
    expect(await metric('sum(bytes_over_time({service_name="frontend"}[30s]))', BASE_S + 30, BASE_S + 30, 1)).toEqual([
      { labels: {}, points: [[BASE_S + 30, bytes]] },
    ]);
    expect(await metric('sum(bytes_rate({service_name="frontend"}[30s]))', BASE_S + 30, BASE_S + 30, 1)).toEqual([
      { labels: {}, points: [[BASE_S + 30, bytes / 30]] },
    ]);
  });

  test("Grafana's log volume: sum by (level, detected_level), empty labels left out", async () => {
    const v = await metric(
      'sum by (level, detected_level) (count_over_time({service_name=~".+"} | drop __error__[5m]))',
      BASE_S + 299,
      BASE_S + 299,
      1,
    );
    expect(v).toEqual([
      { labels: { detected_level: 'error' }, points: [[BASE_S + 299, 16]] },
      { labels: { detected_level: 'fatal' }, points: [[BASE_S + 299, 3]] },
      { labels: { detected_level: 'info' }, points: [[BASE_S + 299, 44]] },
      { labels: { detected_level: 'warn' }, points: [[BASE_S + 299, 27]] },
    ]);
    // With a parser, level comes from the lines.
    const p = await metric(
      'sum by (level) (count_over_time({service_name="payment"} | json | logfmt | drop __error__[5m]))',
      BASE_S + 299,
      BASE_S + 299,
      1,
    );
    expect(p).toEqual([
      { labels: { level: 'error' }, points: [[BASE_S + 299, 6]] },
      { labels: { level: 'info' }, points: [[BASE_S + 299, 24]] },
    ]);
  });

  test('a metric query whose samples keep __error__ fails, as in Loki', async () => {
    await expect(
      metric('sum(count_over_time({service_name="payment"} | json [5m]))', BASE_S + 299, BASE_S + 299, 1),
    ).rejects.toThrow(
      /^pipeline error: 'JSONParserErr' for series: .*Use a label filter to intentionally skip this error/s,
    );
  });

  test('sum/count/max/min/avg by and without, topk and bottomk', async () => {
    const t = BASE_S + 299;
    const q = (text: string) => metric(text, t, t, 1);
    expect(await q('count(sum by (service_name) (count_over_time({service_name=~".+"}[5m])))')).toEqual([
      { labels: {}, points: [[t, 3]] },
    ]);
    expect(await q('max by (service_name) (count_over_time({service_name="cart"}[5m]))')).toEqual([
      { labels: { service_name: 'cart' }, points: [[t, 1]] },
    ]);
    expect(
      await q(
        'sum without (host_name) (count_over_time({service_name="cart"} | keep service_name, host_name, detected_level [5m]))',
      ),
    ).toEqual([
      { labels: { detected_level: 'error', service_name: 'cart' }, points: [[t, 10]] },
      { labels: { detected_level: 'info', service_name: 'cart' }, points: [[t, 20]] },
    ]);
    expect(await q('topk(1, sum by (detected_level) (count_over_time({service_name=~".+"}[5m])))')).toEqual([
      { labels: { detected_level: 'info' }, points: [[t, 44]] },
    ]);
    expect(await q('bottomk(1, sum by (detected_level) (count_over_time({service_name=~".+"}[5m])))')).toEqual([
      { labels: { detected_level: 'fatal' }, points: [[t, 3]] },
    ]);
    expect(await q('avg(sum by (detected_level) (count_over_time({service_name=~".+"}[5m])))')).toEqual([
      { labels: {}, points: [[t, 22.5]] },
    ]);
    expect(await q('min(sum by (detected_level) (count_over_time({service_name=~".+"}[5m])))')).toEqual([
      { labels: {}, points: [[t, 3]] },
    ]);
  });

  test('binary operations and vector()', async () => {
    const t = BASE_S + 299;
    expect(await metric('vector(1)+vector(1)', t, t, 1)).toEqual([{ labels: {}, points: [[t, 2]] }]);
    expect(await metric('1 + 2 * 3', t, t, 1)).toBe(7);
    expect(await metric('sum(count_over_time({service_name="cart"}[5m])) / 30 * 100', t, t, 1)).toEqual([
      { labels: {}, points: [[t, 100]] },
    ]);
    expect(await metric('sum by (detected_level) (count_over_time({service_name=~".+"}[5m])) > 20', t, t, 1)).toEqual([
      { labels: { detected_level: 'info' }, points: [[t, 44]] },
      { labels: { detected_level: 'warn' }, points: [[t, 27]] },
    ]);
    expect(
      await metric(
        'sum(count_over_time({service_name="cart"} |= "failed" [5m])) / sum(count_over_time({service_name="cart"}[5m]))',
        t,
        t,
        1,
      ),
    ).toEqual([{ labels: {}, points: [[t, 1 / 3]] }]);
  });

  test('more series than max_query_series is a 400 naming the limit; a sum groups while reading', async () => {
    const text = 'count_over_time({service_name=~".+"}[5m])';
    // Each record has its own trace id: 70 series without aggregation.
    await expect(metric(text, BASE_S + 299, BASE_S + 299, 1, { maxSeries: 50 })).rejects.toThrow(
      /^maximum number of series \(50\) reached for a single query/,
    );
    expect(
      await metric(`sum by (service_name) (${text})`, BASE_S + 299, BASE_S + 299, 1, { maxSeries: 5 }),
    ).toHaveLength(3);
  });

  test('offset shifts the windows back', async () => {
    expect(
      await metric('sum(count_over_time({service_name="cart"}[30s] offset 1m))', BASE_S + 60, BASE_S + 60, 1),
    ).toEqual([{ labels: {}, points: [[BASE_S + 60, 1]] }]);
  });

  test('absent_over_time', async () => {
    expect(await metric('absent_over_time({service_name="nobody"}[1m])', BASE_S, BASE_S, 1)).toEqual([
      { labels: { service_name: 'nobody' }, points: [[BASE_S, 1]] },
    ]);
    expect(await metric('absent_over_time({service_name="cart"}[1m])', BASE_S, BASE_S, 1)).toEqual([]);
  });

  test('a time budget that ran out stops a metric query as a timeout', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(
      runMetricQuery(
        source,
        parseQuery('sum(count_over_time({service_name=~".+"}[5m]))') as MetricExpr,
        stepsOf(at(BASE_S), at(BASE_S + 300), at(1)),
        { maxSeries: 5, signal: ac.signal, timedOut: () => true },
        newStats(),
      ),
    ).rejects.toThrow();
    void QueryAbortedError;
  });
});

/**
 * Every Loki query the provisioned Grafana makes (the dashboards' Loki panels, the log volume and logs
 * sample Grafana derives from them, the label browser, the health check, the derived trace_id field,
 * and the Tempo datasource's trace-to-logs query), as tests that test/dashboards-promql.test.ts
 * registers against the receiver it feeds with the demo shop (one demo run for both query languages).
 *
 * - The data: the demo shop's own logs (storefront, cart, payments: pino lines inside request spans,
 *   info, warn on declined payments, error on the injected cart and payment failures), sent by
 *   @sonde/node to the receiver's OTLP intake; its embedded log store keeps them, and the queries go
 *   to its admin port's Loki API, as Grafana's embedded-variant Loki datasource does.
 * - Queries come from the committed files (grafana/dashboards/*.json, grafana/provisioning/datasources),
 *   variables substituted as Grafana does (the saved selection: All), `$$` unescaped as Grafana's
 *   provisioning does, requests shaped as Grafana's Loki datasource sends them (ns times, step in ms,
 *   the categorize-labels encoding flag).
 * - Rare lines (an error is about one request in a hundred) may take a while: each check is retried
 *   until the feed's data deadline.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import {
  builtIns,
  interpolate,
  type LokiPanelQuery,
  lokiQueries,
  type VariableValue,
  variableQueries,
} from '@sonde/dashboards';
import * as YAML from 'yaml';

const ROOT = path.resolve(__dirname, '..');
const DASHBOARDS_DIR = path.join(ROOT, 'grafana/dashboards');
const RANGE_MS = 15 * 60_000;
const CATEGORIZE = { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' };

export interface LokiTarget {
  /** Base URL of the receiver's admin port (where its Loki API is). */
  url(): string;
  /** The demo shop's services: each must have logs. */
  services: string[];
  /** Until when a check that finds no data yet is retried (ms since the epoch). */
  deadline(): number;
}

/** Runs `check` until it passes or the deadline is past (then its last failure is the test's). */
async function eventually(deadline: number, check: () => Promise<void>): Promise<void> {
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

type Stream = {
  stream: Record<string, string>;
  values: [string, string, { structuredMetadata?: Record<string, string>; parsed?: Record<string, string> }][];
};

/** Registers the Loki query tests against `target`. */
export function describeLokiQueries(target: LokiTarget): void {
  async function call(p: string, params: Record<string, string | string[]>, headers: Record<string, string> = {}) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x);
    const res = await fetch(`${target.url()}/loki/api/v1/${p}?${qs}`, { headers });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${p} ${JSON.stringify(params)}: ${res.status} ${text}`);
    return JSON.parse(text) as { status?: string; data?: { resultType: string; result: unknown[] } } & Record<
      string,
      unknown
    >;
  }

  /** A range query as Grafana's Loki datasource sends it. */
  async function queryRange(
    expr: string,
    opts: { limit?: number; stepMs?: number; startMs?: number; endMs?: number; tags?: string } = {},
  ) {
    const end = opts.endMs ?? Date.now();
    const start = opts.startMs ?? end - RANGE_MS;
    return call(
      'query_range',
      {
        query: expr,
        direction: 'backward',
        ...(opts.limit ? { limit: String(opts.limit) } : {}),
        start: `${BigInt(Math.floor(start)) * 1_000_000n}`,
        end: `${BigInt(Math.ceil(end)) * 1_000_000n}`,
        step: `${opts.stepMs ?? 1000}ms`,
      },
      { ...CATEGORIZE, ...(opts.tags ? { 'X-Query-Tags': `Source=${opts.tags}` } : {}) },
    );
  }

  function dashboardsWithLoki(): { d: dashboard.Dashboard; queries: LokiPanelQuery[] }[] {
    return fs
      .readdirSync(DASHBOARDS_DIR)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as dashboard.Dashboard)
      .map((d) => ({ d, queries: lokiQueries(d) }))
      .filter((x) => x.queries.length > 0);
  }

  /** The saved selection of every variable (All), or one chosen service, as Grafana substitutes it into a query. */
  function substitute(d: dashboard.Dashboard, expr: string, service?: string): string {
    const vars: Record<string, VariableValue> = {};
    for (const v of variableQueries(d)) {
      const one = v.name === 'service' && service !== undefined;
      vars[v.name] = {
        values: one ? [service] : [],
        all: !one,
        multi: v.multi,
        includeAll: v.includeAll,
        allValue: v.allValue,
      };
    }
    return interpolate(expr, vars, builtIns({ rangeMs: RANGE_MS, scrapeIntervalMs: 15_000 }));
  }

  const results = (r: { data?: { result: unknown[] } }) => r.data?.result ?? [];
  const streams = (r: { data?: { result: unknown[] } }) => results(r) as Stream[];
  /** A check retried until it passes or the feed's deadline (rare lines may take a while). */
  const retried = (name: string, check: () => Promise<void>) =>
    test(name, () => eventually(target.deadline(), check), 120_000);

  const panels = dashboardsWithLoki().flatMap(({ d, queries }) =>
    queries.map((q) => ({ d, q, expr: substitute(d, q.expr) })),
  );

  test('the dashboards have Loki queries (service detail: logs and error logs)', () => {
    expect(panels.map((p) => p.q.panel).sort()).toEqual(['Error logs per second', 'Logs']);
  });

  describe.each(panels.map((p) => [`${p.q.dashboard} / ${p.q.panel}`, p] as const))('%s', (_name, { d, q, expr }) => {
    const panelQuery = (e: string) => queryRange(e, q.logs ? { limit: q.maxLines ?? 1000 } : { stepMs: 15_000 });
    const serviceNames = (r: { data?: { result: unknown[] } }) =>
      (results(r) as { stream?: Record<string, string>; metric?: Record<string, string> }[]).map(
        (s) => (s.stream ?? s.metric)!.service_name,
      );

    retried('the panel query (every variable All) parses and returns data', async () => {
      const r = await panelQuery(expr);
      expect(r.data?.resultType).toBe(q.logs ? 'streams' : 'matrix');
      // With All, the newest lines may all be the misbehaving client's bursts (2,000 lines at a time).
      expect(results(r).length).toBeGreaterThan(0);
      if (!q.logs) expect(serviceNames(r).filter((s) => target.services.includes(s))).not.toEqual([]);
    });

    if (q.logs) {
      // Error lines are rarer (payments: one payment in a hundred): each service's logs panel, not its error rate.
      retried("with one service chosen, it returns that service's logs, for each service of the shop", async () => {
        for (const service of target.services) {
          const r = await panelQuery(substitute(d, q.expr, service));
          expect(r.data?.resultType).toBe('streams');
          expect([service, ...new Set(serviceNames(r))]).toEqual([service, service]);
        }
      });
    }

    if (q.logs) {
      retried("Grafana's log volume query for it returns data, at every level the shop logs", async () => {
        const volume = `sum by (level, detected_level) (count_over_time(${expr} | drop __error__[1m]))`;
        const r = await queryRange(volume, { stepMs: 60_000, tags: 'logvolhist' });
        const levels = (results(r) as { metric: Record<string, string> }[]).map((s) => s.metric.detected_level).sort();
        expect(levels).toEqual(['error', 'info', 'warn']);
      });

      retried("the shop's lines carry trace_id, which the derived field turns into a Tempo link", async () => {
        const ds = YAML.parse(
          fs.readFileSync(path.join(ROOT, 'grafana/provisioning/datasources/datasources.yaml'), 'utf8'),
        ) as {
          datasources: {
            type: string;
            jsonData?: { derivedFields?: { matcherType: string; matcherRegex: string; datasourceUid: string }[] };
          }[];
        };
        const field = ds.datasources.find((x) => x.type === 'loki')!.jsonData!.derivedFields![0];
        expect(field).toMatchObject({ matcherType: 'label', datasourceUid: 'tempo' });
        const re = new RegExp(field.matcherRegex);
        // The shop's services only: the misbehaving client next to it logs outside any trace.
        const own = `${expr.replace(/\}/, `, service_name=~"${target.services.join('|')}"}`)}`;
        const values = streams(await queryRange(own, { limit: 1000 })).flatMap((s) => s.values);
        expect(values.length).toBeGreaterThan(0);
        for (const [, , extra] of values) {
          // A person's consent choice record (consent.record) is made once per shopper, outside any
          // request, and so carries no trace: every other line of the shop's services does.
          if (extra.structuredMetadata?.event_name === 'sonde.consent.choice') continue;
          // Grafana tests the regex against every label name (stream, metadata, parsed).
          const labels = { ...extra.structuredMetadata, ...extra.parsed };
          const key = Object.keys(labels).find((k) => re.test(k));
          expect(key && labels[key]).toMatch(/^[0-9a-f]{32}$/);
        }
      });

      retried('the label browser and editor hints for its selector return data', async () => {
        const endMs = Date.now();
        const start = `${BigInt(endMs - RANGE_MS) * 1_000_000n}`;
        const end = `${BigInt(endMs) * 1_000_000n}`;
        const selector = expr.replace(/\}.*$/s, '}');
        expect((await call('labels', { start, end })).data).toEqual(
          expect.arrayContaining(['service_name', 'service_namespace', 'deployment_environment_name']),
        );
        expect((await call('labels', { start, end, query: selector })).data).toContain('service_name');
        const values = (await call('label/service_name/values', { start, end })).data;
        expect(values).toEqual(expect.arrayContaining(target.services));
        expect((await call('label/service_name/values', { start, end, query: selector })).data).toEqual(values);
        const series = (await call('series', { 'match[]': selector, start, end })).data as unknown as Record<
          string,
          string
        >[];
        expect(series.map((s) => s.service_name)).toEqual(expect.arrayContaining(target.services));
        expect((await call('index/stats', { query: selector, start, end })).entries).toBeGreaterThan(0);
        // Logs Drilldown's service list (index/volume over service_name, limit 5000) and the volume over time.
        const volume = (await call('index/volume', { query: '{service_name=~".+"}', start, end, limit: '5000' }))
          .data as unknown as { resultType: string; result: { metric: Record<string, string> }[] };
        expect(volume.resultType).toBe('vector');
        expect(volume.result.map((r) => r.metric.service_name)).toEqual(expect.arrayContaining(target.services));
        const byLabel = (await call('index/volume', { query: selector, start, end, aggregateBy: 'labels' }))
          .data as unknown as { result: { metric: Record<string, string> }[] };
        expect(byLabel.result.map((r) => r.metric)).toContainEqual({ service_name: '' });
        const range = (await call('index/volume_range', { query: selector, start, end, step: '60s' }))
          .data as unknown as { result: { values?: [number, string][]; value?: [number, string] }[] };
        expect(range.result.length).toBeGreaterThan(0);
        // The fields of a shop service's lines (those of the misbehaving client's bursts have no trace).
        const one = substitute(d, q.expr, target.services[target.services.length - 1]);
        const fields = (await call('detected_fields', { query: one, start, end })).fields as { label: string }[];
        expect(fields.map((f) => f.label)).toEqual(expect.arrayContaining(['trace_id', 'span_id', 'detected_level']));
      });
    } else {
      retried(
        'the logs sample Grafana shows under it (its selector and stages as a logs query) returns data',
        async () => {
          const inner = /\((\{.*?)\s*\[[^\]]+\]\)/.exec(expr)?.[1];
          expect(inner).toBeDefined();
          const r = await queryRange(inner!, { limit: 100, tags: 'logsample' });
          expect(results(r).length).toBeGreaterThan(0);
        },
      );
    }
  });

  test("the Loki datasource's health check (vector(1)+vector(1) at time 4000000000) answers 2", async () => {
    const r = await call('query', { query: 'vector(1)+vector(1)', time: '4000000000' });
    expect(r.data).toMatchObject({ resultType: 'vector', result: [{ metric: {}, value: [4000000000, '2'] }] });
  });

  test.each(['provisioning', 'provisioning-embedded'])(
    "the Tempo datasource's trace-to-logs query (grafana/%s) finds the logs of a payments span",
    (variant) =>
      eventually(target.deadline(), async () => {
        const ds = YAML.parse(
          fs.readFileSync(path.join(ROOT, 'grafana', variant, 'datasources/datasources.yaml'), 'utf8'),
        ) as {
          datasources: {
            type: string;
            jsonData?: {
              tracesToLogsV2?: {
                query: string;
                tags: { key: string; value?: string }[];
                spanStartTimeShift: string;
                spanEndTimeShift: string;
              };
            };
          }[];
        };
        const t2l = ds.datasources.find((x) => x.type === 'tempo')!.jsonData!.tracesToLogsV2!;
        // `$$` is `$` once Grafana has read the file; ${__tags} is `label="value"` for each configured tag the span has.
        // A span of the payments service that logged (a declined or failed payment): its trace id and a
        // time inside it (the line's), from the shop's own logs.
        const [line] = streams(await queryRange('{service_name="payments"} | trace_id=~".+"', { limit: 1 })).flatMap(
          (s) => s.values,
        );
        expect(line).toBeDefined();
        const span = {
          service: 'payments',
          traceId: line[2].structuredMetadata!.trace_id,
          timeMs: Number(BigInt(line[0]) / 1_000_000n),
        };
        const tags = t2l.tags
          .map((t) => `${t.value ?? t.key.replace(/\./g, '_')}="${t.key === 'service.name' ? span.service : ''}"`)
          .join(', ');
        const expr = t2l.query
          .replace(/\$\$/g, '$')
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's link variables
          .replace('${__tags}', tags)
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's link variables
          .replace('${__trace.traceId}', span.traceId);
        expect(expr).toBe(`{service_name="payments"} | trace_id="${span.traceId}"`);
        const shift = (s: string) => Number(s.replace(/s$/, '')) * 1000;
        const r = await queryRange(expr, {
          limit: 1000,
          startMs: span.timeMs + shift(t2l.spanStartTimeShift),
          endMs: span.timeMs + 1 + shift(t2l.spanEndTimeShift),
        });
        const lines = streams(r).flatMap((s) => s.values);
        expect(lines.length).toBeGreaterThan(0);
        expect(lines.map((l) => l[2].structuredMetadata?.trace_id)).toEqual(lines.map(() => span.traceId));
        expect(lines.map((l) => l[0])).toContain(line[0]);
      }),
    120_000,
  );
}

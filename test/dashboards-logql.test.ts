/**
 * Every Loki query the provisioned Grafana makes (the dashboards' Loki panels, the log volume and logs
 * sample Grafana derives from them, the label browser, the health check, the derived trace_id field,
 * and the Tempo datasource's trace-to-logs query) runs against the receiver's Loki query API and must
 * parse and return data.
 *
 * - The feed: demo-shop-like log records (storefront, cart, payments; pino-style lines inside spans,
 *   info, warn and error) sent by the real OpenTelemetry JS OTLP/HTTP protobuf logs exporter to a
 *   real receiver's OTLP intake; its embedded log store keeps them, and the queries go to its admin
 *   port's Loki API, as Grafana's embedded-variant Loki datasource does.
 * - Queries come from the committed files (grafana/dashboards/*.json, grafana/provisioning/datasources),
 *   variables substituted as Grafana does (the saved selection: All), `$$` unescaped as Grafana's
 *   provisioning does, requests shaped as Grafana's Loki datasource sends them (ns times, step in ms,
 *   the categorize-labels encoding flag).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { context, trace } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import {
  builtIns,
  interpolate,
  type LokiPanelQuery,
  lokiQueries,
  type VariableValue,
  variableQueries,
} from '@sonde/dashboards';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import * as YAML from 'yaml';

const ROOT = path.resolve(__dirname, '..');
const DASHBOARDS_DIR = path.join(ROOT, 'grafana/dashboards');
const RANGE_MS = 15 * 60_000;
const CATEGORIZE = { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' };

interface Emitted {
  service: string;
  traceId: string;
  timeMs: number;
}

let receiver: Receiver;
let dataDir: string;
let lokiUrl: string;
const emitted: Emitted[] = [];
let endMs: number;

/** A receiver on loopback with its embedded log store on (the default without loki.endpoint). */
async function startLokiApi(): Promise<{ otlpUrl: string; adminUrl: string }> {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-logql-'));
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      trace_store: { enabled: false },
      data_dir: dataDir,
    }),
    { defaultMetrics: false },
  );
  return { otlpUrl: `http://${receiver.addresses.otlpHttp}`, adminUrl: `http://${receiver.addresses.admin}` };
}

/** Demo-shop-like logs: each service logs inside request spans, info mostly, some warn and error. */
async function sendDemoLogs(url: string): Promise<void> {
  const lines: Record<string, [number, string, string][]> = {
    storefront: [
      [9, 'INFO', 'order placed'],
      [13, 'WARN', 'checkout failed at payment'],
      [17, 'ERROR', 'cart service refused the item'],
    ],
    cart: [
      [9, 'INFO', 'item added'],
      [17, 'ERROR', 'cart request failed'],
    ],
    payments: [
      [13, 'WARN', 'payment declined'],
      [17, 'ERROR', 'payment processor unavailable'],
    ],
  };
  const now = Date.now();
  for (const [service, kinds] of Object.entries(lines)) {
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({
        'service.name': service,
        'service.namespace': 'sonde-demo',
        'deployment.environment.name': 'demo',
      }),
      processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${url}/v1/logs` }) })],
    });
    const logger = provider.getLogger('pino', '9.6.0');
    for (let i = 0; i < 60; i++) {
      const [severityNumber, severityText, body] = kinds[i % kinds.length];
      const timeMs = now - (60 - i) * 10_000;
      const traceId = `${service.length.toString(16)}${i.toString(16).padStart(31, '0')}`;
      const ctx = trace.setSpanContext(context.active(), {
        traceId,
        spanId: (i + 1).toString(16).padStart(16, '0'),
        traceFlags: 1,
      });
      logger.emit({
        timestamp: timeMs,
        severityNumber,
        severityText,
        body,
        attributes: { 'http.route': '/x' },
        context: ctx,
      });
      emitted.push({ service, traceId, timeMs });
    }
    await provider.forceFlush();
    await provider.shutdown();
  }
}

beforeAll(async () => {
  const { otlpUrl, adminUrl } = await startLokiApi();
  lokiUrl = adminUrl;
  await sendDemoLogs(otlpUrl);
  // The store's writer commits within its batch_timeout: wait until every record is searchable.
  const store = receiver.logStore;
  if (!store) throw new Error('the receiver has no log store');
  for (let i = 0; ; i++) {
    const st = await store.stats(
      [{ name: 'service_name', op: '=~', value: '.+' }],
      0n,
      BigInt(Date.now() + 1000) * 1_000_000n,
    );
    if (st.entries >= emitted.length) break;
    if (i > 100) throw new Error(`the log store holds ${st.entries} of ${emitted.length} records`);
    await new Promise((r) => setTimeout(r, 100));
  }
  endMs = Date.now();
}, 30_000);

afterAll(async () => {
  await receiver?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function call(p: string, params: Record<string, string | string[]>, headers: Record<string, string> = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x);
  const res = await fetch(`${lokiUrl}/loki/api/v1/${p}?${qs}`, { headers });
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
  const start = opts.startMs ?? endMs - RANGE_MS;
  const end = opts.endMs ?? endMs;
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

/** The saved selection of every variable (All), as Grafana substitutes it into a query. */
function substitute(d: dashboard.Dashboard, expr: string): string {
  const vars: Record<string, VariableValue> = {};
  for (const v of variableQueries(d)) {
    vars[v.name] = { values: [], all: true, multi: v.multi, includeAll: v.includeAll, allValue: v.allValue };
  }
  return interpolate(expr, vars, builtIns({ rangeMs: RANGE_MS, scrapeIntervalMs: 15_000 }));
}

const results = (r: { data?: { result: unknown[] } }) => r.data?.result ?? [];

const panels = dashboardsWithLoki().flatMap(({ d, queries }) =>
  queries.map((q) => ({ d, q, expr: substitute(d, q.expr) })),
);

test('the dashboards have Loki queries (service detail: logs and error logs)', () => {
  expect(panels.map((p) => p.q.panel).sort()).toEqual(['Error logs per second', 'Logs']);
});

describe.each(panels.map((p) => [`${p.q.dashboard} / ${p.q.panel}`, p] as const))('%s', (_name, { q, expr }) => {
  test('the panel query parses and returns data', async () => {
    const r = await queryRange(expr, q.logs ? { limit: q.maxLines ?? 1000 } : { stepMs: 15_000 });
    expect(r.data?.resultType).toBe(q.logs ? 'streams' : 'matrix');
    expect(results(r).length).toBeGreaterThan(0);
  });

  if (q.logs) {
    test("Grafana's log volume query for it returns data", async () => {
      const volume = `sum by (level, detected_level) (count_over_time(${expr} | drop __error__[1m]))`;
      const r = await queryRange(volume, { stepMs: 60_000, tags: 'logvolhist' });
      const levels = (results(r) as { metric: Record<string, string> }[]).map((s) => s.metric.detected_level).sort();
      expect(levels).toEqual(['error', 'info', 'warn']);
    });

    test('its lines carry trace_id, which the derived field turns into a Tempo link', async () => {
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
      const r = await queryRange(expr, { limit: 100 });
      const re = new RegExp(field.matcherRegex);
      const values = (
        results(r) as {
          stream: Record<string, string>;
          values: [string, string, { structuredMetadata?: Record<string, string>; parsed?: Record<string, string> }][];
        }[]
      ).flatMap((s) => s.values);
      expect(values.length).toBeGreaterThan(0);
      for (const [, , extra] of values) {
        // Grafana tests the regex against every label name (stream, metadata, parsed).
        const labels = { ...extra.structuredMetadata, ...extra.parsed };
        const key = Object.keys(labels).find((k) => re.test(k));
        expect(key && labels[key]).toMatch(/^[0-9a-f]{32}$/);
      }
    });

    test('the label browser and editor hints for its selector return data', async () => {
      const start = `${BigInt(endMs - RANGE_MS) * 1_000_000n}`;
      const end = `${BigInt(endMs) * 1_000_000n}`;
      const selector = expr.replace(/\}.*$/s, '}');
      expect((await call('labels', { start, end })).data).toEqual(
        expect.arrayContaining(['service_name', 'service_namespace', 'deployment_environment_name']),
      );
      expect((await call('labels', { start, end, query: selector })).data).toContain('service_name');
      expect((await call('label/service_name/values', { start, end })).data).toEqual([
        'cart',
        'payments',
        'storefront',
      ]);
      expect((await call('label/service_name/values', { start, end, query: selector })).data).toHaveLength(3);
      expect(((await call('series', { 'match[]': selector, start, end })).data as unknown as unknown[]).length).toBe(3);
      expect((await call('index/stats', { query: selector, start, end })).entries).toBe(180);
      const fields = (await call('detected_fields', { query: expr, start, end })).fields as { label: string }[];
      expect(fields.map((f) => f.label)).toEqual(expect.arrayContaining(['trace_id', 'detected_level', 'http_route']));
    });
  } else {
    test('the logs sample Grafana shows under it (its selector and stages as a logs query) returns data', async () => {
      const inner = /\((\{.*?)\s*\[[^\]]+\]\)/.exec(expr)?.[1];
      expect(inner).toBeDefined();
      const r = await queryRange(inner!, { limit: 100, tags: 'logsample' });
      expect(results(r).length).toBeGreaterThan(0);
    });
  }
});

test("the Loki datasource's health check (vector(1)+vector(1) at time 4000000000) answers 2", async () => {
  const r = await call('query', { query: 'vector(1)+vector(1)', time: '4000000000' });
  expect(r.data).toMatchObject({ resultType: 'vector', result: [{ metric: {}, value: [4000000000, '2'] }] });
});

test.each(['provisioning', 'provisioning-embedded'])(
  "the Tempo datasource's trace-to-logs query (grafana/%s) finds the span's logs",
  async (variant) => {
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
    const span = emitted.find((e) => e.service === 'payments')!;
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
    const lines = (
      results(r) as { values: [string, string, { structuredMetadata?: Record<string, string> }][] }[]
    ).flatMap((s) => s.values);
    expect(lines).toHaveLength(1);
    expect(lines[0][2].structuredMetadata?.trace_id).toBe(span.traceId);
  },
);

/**
 * The receiver's self-metrics against the reference in README.md ("Self-metrics"): a receiver with
 * every component on (both embedded stores, the Tempo and Loki exporters to a stand-in backend,
 * redaction, span metrics, the service graph, event metrics, CORS, process metrics) receives a little
 * of each signal, and every `sonde_*` family its /metrics has must be in the reference, with its
 * type and its label names (as declared to prom-client, or as its series carry them); and every
 * family the reference lists must still be there.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Receiver, startReceiver, validateConfig } from '../src';

interface Family {
  name: string;
  type: string;
  help: string;
  labels: Set<string>;
}

/** The `sonde_*` families of a text exposition, with the label names their series carry. */
function familiesOf(exposition: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const lines = exposition.split('\n');
  for (const line of lines) {
    const meta = /^# (TYPE|HELP) (sonde_\w+) (.*)$/.exec(line);
    if (!meta) continue;
    const f = families.get(meta[2]) ?? { name: meta[2], type: '', help: '', labels: new Set<string>() };
    families.set(meta[2], f);
    if (meta[1] === 'TYPE') f.type = meta[3];
    else f.help = meta[3];
  }
  for (const line of lines) {
    const sample = /^(sonde_\w+)(?:\{(.*)\})? /.exec(line);
    if (!sample) continue;
    // A histogram's series are <name>_bucket, _sum and _count.
    const name = families.has(sample[1]) ? sample[1] : sample[1].replace(/_(?:bucket|sum|count)$/, '');
    const f = families.get(name);
    if (!f) throw new Error(`a series without its family: ${line}`);
    for (const [, label] of (sample[2] ?? '').matchAll(/(\w+)="(?:[^"\\]|\\.)*"/g)) {
      if (label !== 'le' && label !== 'quantile') f.labels.add(label);
    }
  }
  return families;
}

interface Reference {
  name: string;
  type: string;
  labels: Set<string>;
  help: string;
}

/** The rows of the README's self-metric tables: | `name` | type | `label`, ... | help |. */
function referenceOf(readme: string): Map<string, Reference> {
  const rows = new Map<string, Reference>();
  const start = readme.indexOf('\n## Self-metrics\n');
  if (start < 0) return rows;
  const end = readme.indexOf('\n## ', start + 1);
  for (const line of readme.slice(start, end < 0 ? undefined : end).split('\n')) {
    const m = /^\| `(sonde_\w+)` \| (\w+) \| ([^|]*) \| (.+) \|$/.exec(line);
    if (!m) continue;
    const labels = new Set([...m[3].matchAll(/`(\w+)`/g)].map((l) => l[1]));
    rows.set(m[1], { name: m[1], type: m[2], labels, help: m[4] });
  }
  return rows;
}

let backend: Server;
let receiver: Receiver;
let dataDir: string;
const backendRequests: string[] = [];

beforeAll(async () => {
  // A stand-in for Tempo and Loki: takes every export (an empty Export*ServiceResponse is a full success).
  backend = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      backendRequests.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  dataDir = mkdtempSync(join(tmpdir(), 'sonde-self-metrics-'));
  const config = validateConfig({
    otlp: {
      http: { address: '127.0.0.1:0', cors_allowed_origins: ['http://shop.example'] },
      grpc: { address: '127.0.0.1:0' },
    },
    admin: { address: '127.0.0.1:0' },
    log: { level: 'silent', summary_interval: 0 },
    data_dir: dataDir,
    tempo: { endpoint, persistent_queue: true, batch_timeout: 10 },
    loki: { endpoint, batch_timeout: 10 },
    trace_store: { enabled: true },
    log_store: { enabled: true },
    redaction: {
      enabled: true,
      action: 'pseudonymize',
      hmac_key: 'self-metrics-test-key-0123456789',
      pseudonymize_keys: ['enduser.id'],
    },
    span_metrics: { enabled: true },
    service_graph: { enabled: true },
    event_metrics: { enabled: true },
    prometheus: { enabled: true },
  });
  // Process and Node.js metrics on, as the CLI has them.
  receiver = await startReceiver(config);
  await sendOneOfEach(`http://${receiver.addresses.otlpHttp}`);
});

afterAll(async () => {
  await receiver?.close();
  await new Promise<void>((resolve) => backend?.close(() => resolve()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const resource = (service: string) => ({
  attributes: [{ key: 'service.name', value: { stringValue: service } }],
});

/** A client span of `web` calling a server span of `api` (an edge of the service graph), a gauge, an event. */
async function sendOneOfEach(http: string): Promise<void> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const traceId = '5b8efff798038103d269b633813fc60c';
  const spanAt = (spanId: string, parentSpanId: string, kind: number) => ({
    traceId,
    spanId,
    parentSpanId,
    name: 'GET /cart',
    kind,
    startTimeUnixNano: String(now),
    endTimeUnixNano: String(now + 5_000_000n),
    attributes: [
      { key: 'enduser.id', value: { stringValue: 'alice' } },
      { key: 'note', value: { stringValue: 'mail alice@example.com' } },
    ],
  });
  const bodies = {
    traces: {
      resourceSpans: [
        { resource: resource('web'), scopeSpans: [{ spans: [spanAt('eee19b7ec3c1b174', '', 3)] }] },
        { resource: resource('api'), scopeSpans: [{ spans: [spanAt('aaa19b7ec3c1b174', 'eee19b7ec3c1b174', 2)] }] },
      ],
    },
    metrics: {
      resourceMetrics: [
        {
          resource: resource('api'),
          scopeMetrics: [
            { metrics: [{ name: 'queue_depth', gauge: { dataPoints: [{ timeUnixNano: String(now), asInt: '3' }] } }] },
          ],
        },
      ],
    },
    logs: {
      resourceLogs: [
        {
          resource: resource('web'),
          scopeLogs: [
            {
              logRecords: [
                { timeUnixNano: String(now), eventName: 'checkout', body: { stringValue: 'paid' } },
                { timeUnixNano: String(now), body: { stringValue: 'a plain line' } },
              ],
            },
          ],
        },
      ],
    },
  };
  for (const [signal, body] of Object.entries(bodies)) {
    const res = await fetch(`${http}/v1/${signal}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
  }
  // A CORS preflight, and a request refused for its content type.
  await fetch(`${http}/v1/traces`, {
    method: 'OPTIONS',
    headers: { origin: 'http://shop.example', 'access-control-request-method': 'POST' },
  });
  expect(
    (await fetch(`${http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })).status,
  ).toBe(415);
}

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(`http://${receiver.addresses.admin}/metrics`);
  expect(res.status).toBe(200);
  return familiesOf(await res.text());
}

/** The families /metrics has, each with its declared label names when prom-client holds it. */
async function liveFamilies(): Promise<Map<string, Family>> {
  const families = await scrape();
  for (const metric of receiver.metrics.registry.getMetricsAsArray()) {
    const f = families.get(metric.name);
    if (f) f.labels = new Set((metric as unknown as { labelNames: readonly string[] }).labelNames);
  }
  return families;
}

const list = (labels: Set<string>) => [...labels].map((l) => `\`${l}\``).join(', ') || '—';
const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));

describe('the self-metric reference in README.md', () => {
  let live: Map<string, Family>;
  const reference = referenceOf(readFileSync(join(__dirname, '..', 'README.md'), 'utf8'));

  beforeAll(async () => {
    // Let both exporters send (their sent_* series), then scrape.
    const deadline = Date.now() + 10_000;
    const sent = () => backendRequests.includes('/v1/traces') && backendRequests.includes('/otlp/v1/logs');
    while (!sent() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    live = await liveFamilies();
  });

  test('the receiver ran with every component on', () => {
    for (const name of [
      'sonde_receiver_redactions_total',
      'sonde_exporter_sent_spans_total',
      'sonde_exporter_sent_log_records_total',
      'sonde_trace_store_spans_written_total',
      'sonde_log_store_records_written_total',
      'sonde_span_metrics_series',
      'sonde_service_graph_waiting_edges',
      'sonde_events_total',
      'sonde_process_cpu_seconds_total',
    ]) {
      expect(live.get(name)?.type).toBeDefined();
    }
    expect(live.size).toBeGreaterThan(100);
    expect(reference.size).toBeGreaterThan(100);
  });

  test('lists every sonde_* family the receiver emits', () => {
    const missing = [...live.values()]
      .filter((f) => !reference.has(f.name))
      .map((f) => `| \`${f.name}\` | ${f.type} | ${list(f.labels)} | ${f.help} |`);
    expect(missing).toEqual([]);
  });

  test('gives each its type and labels', () => {
    const wrong = [...live.values()]
      .filter((f) => {
        const row = reference.get(f.name);
        return row && (row.type !== f.type || !sameSet(row.labels, f.labels));
      })
      .map((f) => `${f.name}: ${f.type} with ${list(f.labels)}`);
    expect(wrong).toEqual([]);
  });

  test('lists no family the receiver no longer emits', () => {
    expect([...reference.keys()].filter((name) => !live.has(name))).toEqual([]);
  });
});

/**
 * `workers`, and lean decoding: the same requests through a single-thread receiver (`workers: 0`) and
 * one with two intake workers, and through the full and the lean trace decoder (src/otlp/protobuf/lean.ts;
 * the intake decodes lean when redaction is off), give the same answers, the same derived series on
 * /metrics (span metrics, service graph, event metrics, consent people, and the counters of the
 * processors), the same data in the recent buffer, and the same spans and log records at a stand-in
 * Tempo and Loki. And a worker that stops does not stop the receiver.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { KeyValue, LogRecord, ReceiverConfigInput, ResourceLogs, ResourceSpans, Span } from '../src';
import { serviceDefinition } from '../src/intake/grpc';
import { DEFAULT_DECODE_LIMITS } from '../src/otlp/limits';
import { decodeLogsRequest } from '../src/otlp/protobuf/decode-logs';
import { decodeTraceRequest } from '../src/otlp/protobuf/decode-traces';
import { encodeLogsRequest } from '../src/otlp/protobuf/encode-logs';
import { encodeTraceRequest } from '../src/otlp/protobuf/encode-traces';
import { attributesInBytes, LeanSpan } from '../src/otlp/protobuf/lean';
import { MAX_AUTO_WORKERS, resolveWorkers } from '../src/workers/config';
import {
  decodeBody,
  JSON_TYPE,
  PROTOBUF,
  post,
  prng,
  startTestReceiver,
  type TestReceiver,
  withoutOffsets,
} from './helpers';

const TraceClient = grpc.makeGenericClientConstructor(serviceDefinition('traces'), 'TraceService');

/** One gRPC Export call; its outcome as a comparable line. */
function grpcExport(address: string, body: Buffer): Promise<string> {
  const client = new TraceClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Export: (req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;
  };
  return new Promise((resolve) => {
    client.Export(body, (err, res) => {
      client.close();
      resolve(err ? `grpc ${err.code} ${err.details}` : `grpc ok ${res?.toString('base64')}`);
    });
  });
}

/** A stand-in for Tempo and Loki: keeps every request body (decompressed) by path. */
class Sink {
  readonly bodies = new Map<string, Buffer[]>();
  private server: http.Server | undefined;
  url = '';

  async start(): Promise<this> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = decodeBody(Buffer.concat(chunks), req.headers);
        const path = req.url ?? '';
        this.bodies.set(path, [...(this.bodies.get(path) ?? []), body]);
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  spans(): Span[] {
    const all = (this.bodies.get('/v1/traces') ?? []).flatMap((b) => decodeTraceRequest(b, DEFAULT_DECODE_LIMITS));
    return all.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
  }

  records(): LogRecord[] {
    const all = (this.bodies.get('/otlp/v1/logs') ?? []).flatMap((b) => decodeLogsRequest(b, DEFAULT_DECODE_LIMITS));
    return all.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords));
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const str = (key: string, value: string): KeyValue => ({ key, value });
const SERVICES = ['cart', 'checkout', 'payment', 'email'];
const hexOf = (random: () => number, bytes: number) =>
  Array.from({ length: bytes }, () =>
    Math.floor(random() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');
/** Durations in 1/512 s steps: their sums in seconds are exact whatever the order of addition. */
const STEP_NS = 1_953_125n;

function makeSpan(random: () => number, traceId: string, kind: number, parent: string, attributes: KeyValue[]): Span {
  const start = 1_700_000_000_000_000_000n + BigInt(Math.floor(random() * 1e6)) * 1000n;
  return {
    traceId,
    spanId: hexOf(random, 8),
    traceState: random() < 0.1 ? 'ot=th:8' : '',
    parentSpanId: parent,
    flags: 1,
    name: `op-${Math.floor(random() * 5)}`,
    kind,
    startTimeUnixNano: start,
    endTimeUnixNano: start + BigInt(1 + Math.floor(random() * 4000)) * STEP_NS,
    attributes,
    droppedAttributesCount: 0,
    events: [],
    droppedEventsCount: 0,
    links: [],
    droppedLinksCount: 0,
    status: { code: Math.floor(random() * 3), message: '' },
  };
}

function resourceSpans(service: string, spans: Span[]): ResourceSpans {
  return {
    resource: { attributes: [str('service.name', service), str('service.version', '1.2')], droppedAttributesCount: 0 },
    scopeSpans: [
      { scope: { name: 's', version: '', attributes: [], droppedAttributesCount: 0 }, spans, schemaUrl: '' },
    ],
    schemaUrl: '',
  };
}

/**
 * Trace requests: client spans whose server spans come in a later request (and the other way round),
 * database clients, root servers, producers and consumers, redaction hits (an email), values over the
 * attribute limit, and invalid spans (a zero trace id).
 */
function traceRequests(random: () => number): Buffer[] {
  const requests: ResourceSpans[][] = [];
  const waiting: Span[] = [];
  const orphans: Span[] = [];
  for (let r = 0; r < 24; r++) {
    const data: ResourceSpans[] = [];
    for (const service of SERVICES.filter(() => random() < 0.6)) {
      const spans: Span[] = [];
      // The server halves of the previous request's clients.
      for (const client of waiting.splice(0, 3)) {
        spans.push(makeSpan(random, client.traceId, 2, client.spanId, [str('http.route', '/api')]));
      }
      for (let i = 0; i < 20; i++) {
        const traceId = hexOf(random, 16);
        const roll = random();
        const attributes = [str('http.method', 'GET')];
        if (roll < 0.1) attributes.push(str('user.email', `person${i}@example.com`));
        if (roll > 0.9) attributes.push(str('long', 'x'.repeat(300)));
        if (roll < 0.25) {
          const client = makeSpan(random, traceId, random() < 0.5 ? 3 : 4, hexOf(random, 8), attributes);
          if (random() < 0.2) client.attributes.push(str('peer.service', 'ledger'));
          waiting.push(client);
          spans.push(client);
        } else if (roll < 0.35) spans.push(makeSpan(random, traceId, 3, '', [str('db.system.name', 'postgresql')]));
        else if (roll < 0.42) spans.push(makeSpan(random, traceId, random() < 0.5 ? 2 : 5, '', attributes));
        else if (roll < 0.46) {
          // A server whose client comes in the last request.
          const server = makeSpan(random, traceId, 2, hexOf(random, 8), attributes);
          orphans.push(server);
          spans.push(server);
        } else if (roll < 0.5) spans.push(makeSpan(random, '0'.repeat(32), 1, '', attributes));
        else spans.push(makeSpan(random, traceId, 1, hexOf(random, 8), attributes));
      }
      data.push(resourceSpans(service, spans));
    }
    requests.push(data);
  }
  // Servers that came first: their clients arrive in the last request.
  const clients = orphans.map((server) => ({
    ...makeSpan(random, server.traceId, 3, '', []),
    spanId: server.parentSpanId,
  }));
  requests.push([resourceSpans('edge', clients)]);
  return requests.map((data) => encodeTraceRequest(data));
}

function logRequests(random: () => number): Buffer[] {
  const requests: Buffer[] = [];
  for (let r = 0; r < 12; r++) {
    const data: ResourceLogs[] = SERVICES.filter(() => random() < 0.7).map((service) => ({
      resource: { attributes: [str('service.name', service)], droppedAttributesCount: 0 },
      scopeLogs: [
        {
          scope: { name: 'l', version: '', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          logRecords: Array.from({ length: 15 }, (_, i): LogRecord => {
            const roll = random();
            const attributes: KeyValue[] = [];
            let eventName = '';
            if (roll < 0.3) {
              eventName = `checkout.step${Math.floor(random() * 3)}`;
              attributes.push(str('sonde.consent.category', 'product'));
            } else if (roll < 0.4) attributes.push(str('event.name', 'legacy.click'));
            else if (roll < 0.55) {
              eventName = 'sonde.consent.choice';
              attributes.push(str('sonde.consent.category', 'diagnostics'));
              attributes.push(str('sonde.consent.choice', random() < 0.5 ? 'granted' : 'denied'));
              attributes.push(str('sonde.consent.subject', `subject-${Math.floor(random() * 40)}`));
            }
            return {
              timeUnixNano: BigInt(Date.now() - 60_000) * 1_000_000n + BigInt(i),
              observedTimeUnixNano: 0n,
              severityNumber: 9,
              severityText: 'INFO',
              body: roll > 0.8 ? `mail sent to someone${i}@example.com` : `line ${i}`,
              attributes,
              droppedAttributesCount: 0,
              flags: 0,
              traceId: random() < 0.5 ? hexOf(random, 16) : '',
              spanId: '',
              eventName,
            };
          }),
        },
      ],
      schemaUrl: '',
    }));
    requests.push(encodeLogsRequest(data));
  }
  return requests;
}

const JSON_TRACES = JSON.stringify({
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'browser' } }] },
      scopeSpans: [
        {
          spans: [
            {
              traceId: '5b8efff798038103d269b633813fc60c',
              spanId: 'eee19b7ec3c1b174',
              name: 'json',
              kind: 3,
              startTimeUnixNano: '1700000000000000000',
              endTimeUnixNano: '1700000000500000000',
              attributes: [{ key: 'user.email', value: { stringValue: 'a@example.com' } }],
            },
          ],
        },
      ],
    },
  ],
});

/** The families each comparison reads from /metrics: everything derived from traces and logs. */
const COMPARED = [
  'traces_spanmetrics_',
  'traces_service_graph_',
  'sonde_events_total',
  'sonde_consent_people',
  'sonde_consent_choice_records',
  'sonde_receiver_redactions_total',
  'sonde_receiver_limit_hits_total',
  'sonde_receiver_accepted_',
  'sonde_receiver_refused_',
  'sonde_receiver_requests_total',
  'sonde_span_metrics_',
  'sonde_service_graph_',
  'sonde_event_metrics_',
];

/** The lines of those families on /metrics; in OpenMetrics (with exemplars) when `openMetrics`. */
async function derived(t: TestReceiver, openMetrics = false): Promise<string[]> {
  const accept = openMetrics ? { accept: 'application/openmetrics-text; version=1.0.0' } : undefined;
  const text = await (await fetch(`${t.admin}/metrics`, { headers: accept })).text();
  return text
    .split('\n')
    .filter((line) => COMPARED.some((prefix) => line.replace(/^# (HELP|TYPE) /, '').startsWith(prefix)));
}

describe('workers', () => {
  const sinks: Sink[] = [];
  const receivers: TestReceiver[] = [];
  const start = async (workers: number, sections: ReceiverConfigInput = {}) => {
    const sink = await new Sink().start();
    sinks.push(sink);
    const config: ReceiverConfigInput = {
      workers,
      tempo: { endpoint: sink.url, batch_timeout: '10ms', compression: 'none' },
      loki: { endpoint: sink.url, batch_timeout: '10ms', compression: 'none' },
      log_store: { enabled: false },
      limits: { max_attribute_value_length: 100 },
      redaction: { hmac_key: 'a key for the pseudonyms of this test' },
      // No edge expires while the test runs (at different times in the two receivers).
      service_graph: { wait: '5m' },
      // Low enough for the overflow series to take part.
      span_metrics: { max_series_per_metric: 60 },
      // Every item stays in the recent buffer (which ones a smaller window keeps depends on the order).
      debug: { recent_items: 100_000 },
      ...sections,
    };
    const t = await startTestReceiver(config);
    receivers.push(t);
    return { t, sink };
  };
  afterAll(async () => {
    await Promise.all(receivers.map((t) => t.close()));
    await Promise.all(sinks.map((s) => s.close()));
  });

  test('auto is the available cores, capped, and none on one core', () => {
    expect(resolveWorkers('auto', 1)).toBe(0);
    expect(resolveWorkers('auto', 2)).toBe(2);
    expect(resolveWorkers('auto', 64)).toBe(MAX_AUTO_WORKERS);
    expect(resolveWorkers(3, 1)).toBe(3);
  });

  test('the same requests give the same answers, series, recent items and exports with 0 and 2 workers', async () => {
    const single = await start(0);
    const pooled = await start(2);
    expect(single.t.receiver.intakeWorkers).toBeUndefined();
    expect(pooled.t.receiver.intakeWorkers?.count).toBe(2);
    await sameEverywhere([single, pooled], { redacted: true, limited: true });
  }, 60_000);

  test('lean and full trace decoding give the same answers, series, recent items and exports, with 0 and 2 workers', async () => {
    // Redaction off: no processor reads every attribute, so the intake decodes lean unless told not to.
    // And no attribute limit, which most requests here would hit: nothing then decodes every attribute.
    const off = { redaction: { enabled: false }, limits: {} };
    const full = await start(0, { ...off, debug: { recent_items: 100_000, full_decode: true } });
    const lean = await start(0, off);
    const leanPooled = await start(2, off);
    await sameEverywhere([full, lean, leanPooled], { redacted: false, limited: false });
    // The two paths were taken: the lean receiver's spans from protobuf are lean ones, and most kept
    // their attributes as bytes (the service graph found its peers there).
    const spans = (t: TestReceiver) =>
      t.batches.traces
        .filter((b) => b.context.encoding === 'protobuf')
        .flatMap((b) => b.data.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
    expect(spans(full.t).some((sp) => sp instanceof LeanSpan)).toBe(false);
    expect(spans(lean.t).length).toBeGreaterThan(100);
    expect(spans(lean.t).every((sp) => sp instanceof LeanSpan)).toBe(true);
    const inBytes = spans(lean.t).filter((sp) => attributesInBytes(sp)).length;
    expect(inBytes).toBeGreaterThan(spans(lean.t).length / 2);
  }, 60_000);

  test('a worker that stops: its requests get 503, the receiver goes on with a new worker', async () => {
    const { t } = await start(1);
    const workers = t.receiver.intakeWorkers;
    if (!workers) throw new Error('no intake workers');
    const random = prng(7);
    // A large request, so that it is still being decoded when the worker stops.
    const big = encodeTraceRequest(
      Array.from({ length: 40 }, (_, i) =>
        resourceSpans(
          `s${i}`,
          Array.from({ length: 500 }, () => makeSpan(random, hexOf(random, 16), 1, '', [])),
        ),
      ),
    );
    const pending = post(`${t.http}/v1/traces`, big, PROTOBUF);
    await waitFor(() => workers.inFlight > 0, 10_000, 1);
    await workers.crash(0);
    const refused = await pending;
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    // Until the new worker is ready, requests are refused the same way; then accepted.
    await waitFor(async () => (await post(`${t.http}/v1/traces`, traceRequests(prng(1))[0], PROTOBUF)).status === 200);
    expect(workers.count).toBe(1);
  }, 30_000);

  test('a request that finds every worker with max_requests_per_worker in hand gets 503 and is counted', async () => {
    const random = prng(3);
    const big = encodeTraceRequest(
      Array.from({ length: 20 }, (_, i) =>
        resourceSpans(
          `s${i}`,
          Array.from({ length: 500 }, () => makeSpan(random, hexOf(random, 16), 1, '', [])),
        ),
      ),
    );
    const limited = await startTestReceiver({ workers: 1, overload: { max_requests_per_worker: 1 } });
    receivers.push(limited);
    const statuses = await Promise.all(
      Array.from({ length: 6 }, () => post(`${limited.http}/v1/traces`, big, PROTOBUF).then((r) => r.status)),
    );
    expect(statuses).toContain(200);
    expect(statuses).toContain(503);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    const text = await (await fetch(`${limited.admin}/metrics`)).text();
    expect(text).toMatch(/sonde_receiver_limit_hits_total\{signal="traces",limit="max_requests_per_worker"\} [1-9]/);
  }, 30_000);

  test('workers: bad values are refused with the key named', async () => {
    await expect(startTestReceiver({ workers: -1 })).rejects.toThrow(/workers/);
    await expect(startTestReceiver({ workers: 'many' as never })).rejects.toThrow(/workers/);
  });
});

/**
 * Sends the same requests to each receiver (in order, then concurrently) and expects of every one the
 * first one's answers, exports, recent items and derived series. `redacted`: redaction is on in them;
 * `limited`: the attribute value length limit too.
 */
async function sameEverywhere(
  receivers: { t: TestReceiver; sink: Sink }[],
  { redacted, limited }: { redacted: boolean; limited: boolean },
) {
  const [first, ...others] = receivers;
  const random = prng(15);
  const traces = traceRequests(random);
  const logs = logRequests(random);
  // Spans of their own (a span sent twice, its other half in between, pairs in the order requests
  // happen to be processed, which the concurrent part leaves open).
  const viaGrpc = traceRequests(prng(99)).slice(0, 2);
  const exemplars: string[][] = [];
  const send = async (t: TestReceiver) => {
    const answers: string[] = [];
    const requests: [string, Buffer | string, Record<string, string>][] = [
      ...traces.map((b) => ['/v1/traces', b, PROTOBUF] as [string, Buffer, Record<string, string>]),
      ...logs.map((b) => ['/v1/logs', b, PROTOBUF] as [string, Buffer, Record<string, string>]),
      ['/v1/traces', JSON_TRACES, JSON_TYPE],
      ['/v1/traces', Buffer.from([0x0a, 0x05, 0x01]), PROTOBUF],
      ['/v1/logs', '{"resourceLogs": 3}', JSON_TYPE],
    ];
    // In order, then the same again all at once (the workers then interleave them).
    for (const [path, body, headers] of requests) {
      const res = await post(`${t.http}${path}`, body, headers);
      answers.push(`${res.status} ${res.body.toString('base64')}`);
    }
    // Sent in order, the same exemplars too.
    exemplars.push(await derived(t, true));
    // Over gRPC too (the message is a view into grpc-js's buffer: copied, not moved, to the worker).
    for (const body of [...viaGrpc, Buffer.from([0x0a, 0x05, 0x01])]) answers.push(await grpcExport(t.grpc, body));
    const concurrent = await Promise.all(
      requests.slice(0, traces.length).map(([path, body, headers]) => post(`${t.http}${path}`, body, headers)),
    );
    for (const res of concurrent) answers.push(`${res.status} ${res.body.toString('base64')}`);
    return answers;
  };
  const answers = await send(first.t);
  for (const { t } of others) expect(await send(t)).toStrictEqual(answers);
  // Partial successes (invalid spans) and refusals (malformed bodies) are among them.
  expect(answers.filter((a) => a.startsWith('200 ') && a.length > 4).length).toBeGreaterThan(0);
  expect(answers.filter((a) => a.startsWith('400 ')).length).toBe(2);
  expect(answers.filter((a) => a.startsWith('grpc 3 ')).length).toBe(1);

  // Every span and record reached the stand-in Tempo and Loki, the same ones.
  const expectedSpans = first.t.batches.traces.reduce((n, b) => n + b.itemCount, 0);
  const expectedRecords = first.t.batches.logs.reduce((n, b) => n + b.itemCount, 0);
  for (const { t } of others) expect(t.batches.traces.reduce((n, b) => n + b.itemCount, 0)).toBe(expectedSpans);
  for (const { sink } of receivers) {
    await waitFor(() => sink.spans().length === expectedSpans && sink.records().length === expectedRecords);
  }
  const sorted = <T>(items: T[]) => items.map((i) => JSON.stringify(withoutOffsets(i), bigints)).sort();
  for (const { sink } of others) {
    expect(sorted(sink.spans())).toStrictEqual(sorted(first.sink.spans()));
    expect(sorted(sink.records())).toStrictEqual(sorted(first.sink.records()));
  }

  // The recent buffer holds the same items (the concurrent requests in any order).
  for (const signal of ['traces', 'logs'] as const) {
    const recent = (t: TestReceiver) =>
      sorted(t.receiver.recent[signal].recent().flatMap((e) => e.data as (ResourceSpans | ResourceLogs)[]));
    for (const { t } of others) expect(recent(t)).toStrictEqual(recent(first.t));
  }

  // The derived series and the counters, line for line.
  const series = await derived(first.t);
  expect(series.filter((l) => l.startsWith('traces_spanmetrics_calls_total{')).length).toBeGreaterThan(10);
  expect(series.some((l) => l.startsWith('traces_service_graph_request_total{client="cart"'))).toBe(true);
  expect(series.some((l) => l.startsWith('traces_service_graph_request_total{client="edge"'))).toBe(true);
  expect(series.some((l) => l.includes('connection_type="database"'))).toBe(true);
  expect(series.some((l) => l.startsWith('sonde_events_total{'))).toBe(true);
  expect(series.some((l) => /^sonde_consent_people\{.*\} [1-9]/.test(l))).toBe(true);
  expect(series.some((l) => l.startsWith('sonde_receiver_redactions_total{'))).toBe(redacted);
  expect(series.some((l) => l.includes('limit="max_attribute_value_length"'))).toBe(limited);
  for (const { t } of others) expect(await derived(t)).toStrictEqual(series);
  expect(exemplars[0].some((l) => /^traces_spanmetrics_latency_bucket\{.*# \{traceID="/.test(l))).toBe(true);
  expect(exemplars[0].some((l) => /^sonde_events_total\{.*# \{traceID="/.test(l))).toBe(true);
  for (const e of exemplars.slice(1)) expect(e).toStrictEqual(exemplars[0]);
  // The series limit was reached: updates past it went to the overflow series, counted alike.
  expect(series.some((l) => /^sonde_span_metrics_overflow_points_total [1-9]/.test(l))).toBe(true);
}

function bigints(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Sampled traffic still gives true RED metrics: services instrumented with the real OpenTelemetry JS
 * SDK sample their traces at 10% and send them over OTLP to the receiver, whose span metrics and
 * service graph count each kept span by its adjusted count. The counters on /metrics must be within
 * 10% of what was really served (every request is counted here, sampled or not).
 *
 * - OpenTelemetry's consistent probability sampler (@opentelemetry/sampler-composite, the composite
 *   samplers of the OpenTelemetry JS SDK; @opentelemetry/sdk-trace itself has none), which writes the
 *   threshold to the tracestate (`ot=th:e666666666666`);
 * - the SDK's TraceIdRatioBasedSampler, which writes no threshold, with the multiplier as a resource
 *   attribute named by span_multiplier_key (Tempo's way);
 * - a hand-written `ot=th` tracestate from a remote parent, which the SDK passes on to its spans.
 *
 * Trace ids come from a seeded generator so that which requests are sampled is the same on every run
 * (the sampler's decision is a function of the trace id): the tolerance is then not a matter of luck.
 * At 10% of 10,000 requests, about 1,000 are kept: one standard error is √(0.9/1000) ≈ 3%, so ±10% is
 * over three standard errors for any seed; error counts (20% of requests) get ±20% (≈ 3 standard errors).
 */
import { type Context, context, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  createComposableParentThresholdSampler,
  createComposableProbabilitySampler,
  createCompositeSampler,
} from '@opentelemetry/sampler-composite';
import {
  BatchSpanProcessor,
  type IdGenerator,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { type Receiver, startReceiver, validateConfig } from '@sonde/receiver';

const REQUESTS = 10_000;
const ERROR_EVERY = 5; // 20% of requests fail
const MULTIPLIER_KEY = 'sampling.multiplier';

let receiver: Receiver;
const providers: TracerProvider[] = [];

beforeAll(async () => {
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent' },
      trace_store: { enabled: false },
      span_metrics: { span_multiplier_key: MULTIPLIER_KEY },
      // A half waits long enough for its other half on a loaded machine (the two providers export apart).
      service_graph: { span_multiplier_key: MULTIPLIER_KEY, wait: '30s', max_items: 100_000 },
    }),
    { defaultMetrics: false },
  );
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.shutdown()));
  await receiver.close();
});

/** mulberry32: a small seeded PRNG, for reproducible trace and span ids. */
function seededIds(seed: number): IdGenerator {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0).toString(16).padStart(8, '0');
  };
  return {
    generateTraceId: () => next() + next() + next() + next(),
    generateSpanId: () => next() + next(),
  };
}

function provider(service: string, sampler: Sampler, seed: number, extra: Record<string, string | number> = {}) {
  const p = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': '1.0.0', ...extra }),
    sampler,
    idGenerator: seededIds(seed),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `http://${receiver.addresses.otlpHttp}/v1/traces` }),
        maxQueueSize: 100_000,
        maxExportBatchSize: 1000,
        scheduledDelayMillis: 100,
      }),
    ],
  });
  providers.push(p);
  return p;
}

/**
 * Serves `REQUESTS` requests: a SERVER span in `front`, which calls `back` (CLIENT span, then a SERVER
 * span in `back`); every ERROR_EVERY-th request fails. Returns how many failed.
 */
async function serve(front: TracerProvider, back: TracerProvider, parent: () => Context = () => ROOT_CONTEXT) {
  const f = front.getTracer('shop');
  const b = back.getTracer('shop');
  let failed = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const root = f.startSpan('GET /checkout', { kind: SpanKind.SERVER }, parent());
    const rootContext = trace.setSpan(context.active(), root);
    const call = f.startSpan('POST /pay', { kind: SpanKind.CLIENT }, rootContext);
    const server = b.startSpan('POST /pay', { kind: SpanKind.SERVER }, trace.setSpan(rootContext, call));
    if (i % ERROR_EVERY === 0) {
      failed++;
      server.setStatus({ code: SpanStatusCode.ERROR });
      root.setStatus({ code: SpanStatusCode.ERROR });
    }
    server.end();
    call.end();
    root.end();
  }
  await Promise.all([front.forceFlush(), back.forceFlush()]);
  return failed;
}

/** The sum of the samples of `metric` on /metrics whose labels include every one of `labels`. */
async function total(metric: string, labels: string[]): Promise<number> {
  const text = await (await fetch(`http://${receiver.addresses.admin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const close = line.lastIndexOf('}');
    const labelText = line.slice(metric.length + 1, close);
    if (labels.every((l) => labelText.includes(l))) sum += Number(line.slice(close + 2).split(' ')[0]);
  }
  return sum;
}

/** Waits until the service graph has paired what was sent (edges wait up to `wait` for their other half). */
async function settled(read: () => Promise<number>): Promise<number> {
  let last = -1;
  for (;;) {
    const now = await read();
    if (now === last) return now;
    last = now;
    await new Promise((r) => setTimeout(r, 1500));
  }
}

function expectWithin(measured: number, truth: number, tolerance: number) {
  expect(truth).toBeGreaterThan(0);
  expect(Math.abs(measured - truth) / truth).toBeLessThanOrEqual(tolerance);
}

test("OpenTelemetry's consistent probability sampler at 10% (ot=th in the tracestate): rates within 10% of the truth", async () => {
  const sampler = () =>
    createCompositeSampler(createComposableParentThresholdSampler(createComposableProbabilitySampler(0.1)));
  const failed = await serve(provider('th-front', sampler(), 1), provider('th-back', sampler(), 2));

  const calls = await total('traces_spanmetrics_calls_total', ['service="th-front"', 'SPAN_KIND_SERVER']);
  // Sampled, not all counted as one: the count is neither the kept spans nor all of them exactly.
  expect(calls).not.toBe(REQUESTS);
  expectWithin(calls, REQUESTS, 0.1);
  expectWithin(
    await total('traces_spanmetrics_latency_count', ['service="th-front"', 'SPAN_KIND_SERVER']),
    REQUESTS,
    0.1,
  );
  expectWithin(
    await total('traces_spanmetrics_calls_total', ['service="th-front"', 'SPAN_KIND_SERVER', 'STATUS_CODE_ERROR']),
    failed,
    0.2,
  );
  const edge = ['client="th-front"', 'server="th-back"'];
  expectWithin(await settled(() => total('traces_service_graph_request_total', edge)), REQUESTS, 0.1);
  expectWithin(await total('traces_service_graph_request_failed_total', edge), failed, 0.2);
  expectWithin(await total('traces_service_graph_request_server_seconds_count', edge), REQUESTS, 0.1);
}, 120_000);

test('TraceIdRatioBasedSampler at 10% with the multiplier as a resource attribute (span_multiplier_key): within 10%', async () => {
  const sampler = () => new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.1) });
  const failed = await serve(
    provider('ratio-front', sampler(), 3, { [MULTIPLIER_KEY]: 10 }),
    provider('ratio-back', sampler(), 4, { [MULTIPLIER_KEY]: 10 }),
  );
  const calls = await total('traces_spanmetrics_calls_total', ['service="ratio-front"', 'SPAN_KIND_SERVER']);
  expect(calls % 10).toBe(0); // whole kept spans, ×10 each
  expectWithin(calls, REQUESTS, 0.1);
  expectWithin(
    await total('traces_spanmetrics_calls_total', ['service="ratio-front"', 'SPAN_KIND_SERVER', 'STATUS_CODE_ERROR']),
    failed,
    0.2,
  );
  const edge = ['client="ratio-front"', 'server="ratio-back"'];
  expectWithin(await settled(() => total('traces_service_graph_request_total', edge)), REQUESTS, 0.1);
}, 120_000);

test('a hand-written ot=th:c tracestate (25%) from a remote parent: every span counts exactly 4', async () => {
  let n = 0;
  const parent = () =>
    trace.setSpanContext(ROOT_CONTEXT, {
      traceId: (++n).toString(16).padStart(32, '0'),
      spanId: '1234567890abcdef',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: new TraceState('vendor=1,ot=th:c'),
    });
  const front = provider('hand-front', new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }), 5);
  const back = provider('hand-back', new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }), 6);
  const failed = await serve(front, back, parent);
  expect(await total('traces_spanmetrics_calls_total', ['service="hand-front"', 'SPAN_KIND_SERVER'])).toBe(
    4 * REQUESTS,
  );
  expect(
    await total('traces_spanmetrics_calls_total', ['service="hand-front"', 'SPAN_KIND_SERVER', 'STATUS_CODE_ERROR']),
  ).toBe(4 * failed);
  const edge = ['client="hand-front"', 'server="hand-back"'];
  expect(await settled(() => total('traces_service_graph_request_total', edge))).toBe(4 * REQUESTS);
}, 120_000);

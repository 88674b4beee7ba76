/**
 * An intake worker thread (pool.ts starts it): decodes and validates a trace or log request, runs
 * the processors (redaction, attribute limits, built from the same configuration as the main
 * thread's, pipeline/processors.ts), and answers with the payload to forward when it is not the body
 * as received (moved back; the main thread kept the body), the
 * batch's skeleton for the model consumers (skeleton.ts) and the counter increments its processors
 * made (the main thread adds them to its own counters, so /metrics shows one figure).
 */
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import type { Counter } from 'prom-client';
import { toEventMetricsOptions } from '../events/config';
import { EventMetricsConsumer } from '../events/event-metrics';
import { toHandlerOptions } from '../intake/config';
import { prepareBatch } from '../intake/prepare';
import { OtlpError } from '../otlp/errors';
import { encodeLogsRequest } from '../otlp/protobuf/encode-logs';
import { encodeTraceRequest } from '../otlp/protobuf/encode-traces';
import { type Consumer, SignalPipeline } from '../pipeline/pipeline';
import { buildProcessors } from '../pipeline/processors';
import { requestPayload } from '../queue/admission';
import { SelfMetrics } from '../self-metrics';
import type { MetricStore } from '../series/store';
import { toSpanMetricsOptions } from '../traces/config';
import { SpanMetricsConsumer } from '../traces/span-metrics';
import type { CounterIncrement, FailedRequest, ProcessedRequest, ProcessRequest, WorkerSettings } from './protocol';
import { ownArrayBuffer } from './protocol';
import { RecordingStore, transferables } from './recorded-store';
import { packSkeleton } from './skeleton';

const port = parentPort;
if (!port) throw new Error('intake-worker.ts runs as a worker thread (src/workers/pool.ts)');
const { config, keys } = workerData as WorkerSettings;

const metrics = new SelfMetrics({ defaultMetrics: false });
const processors = buildProcessors(config, metrics);
const pipelines = {
  traces: new SignalPipeline('traces'),
  logs: new SignalPipeline('logs'),
};
for (const p of processors.traces) pipelines.traces.addProcessor(p);
for (const p of processors.logs) pipelines.logs.addProcessor(p);
const encoders = {
  traces: encodeTraceRequest,
  logs: (data: Parameters<typeof encodeLogsRequest>[0]) => encodeLogsRequest(data),
};
const handlerOptions = toHandlerOptions(config);

/** The consumers derived here: their updates are recorded and applied on the main thread's stores. */
const silent = pino({ level: 'silent' });
const derive = {
  traces: config.span_metrics.enabled
    ? [
        recorded(
          new SpanMetricsConsumer(
            toSpanMetricsOptions(config.span_metrics),
            metrics.registry,
            silent,
            new RecordingStore(),
          ),
        ),
      ]
    : [],
  logs: config.event_metrics.enabled
    ? [
        recorded(
          new EventMetricsConsumer(
            toEventMetricsOptions(config.event_metrics),
            metrics.registry,
            silent,
            new RecordingStore(),
          ),
        ),
      ]
    : [],
};

function recorded<S extends 'traces' | 'logs'>(consumer: Consumer<S> & { store: MetricStore }) {
  return { consumer, store: consumer.store as RecordingStore };
}

/** The increments of the request being processed. */
let counters: CounterIncrement[] = [];
/** Records a counter's increments instead of keeping them here: the main thread owns the figure. */
function forward(counter: Counter | undefined, name: string): void {
  if (!counter) return;
  counter.inc = ((labels?: Record<string, string> | number, value?: number) => {
    if (typeof labels === 'number') counters.push([name, {}, labels]);
    else counters.push([name, { ...(labels ?? {}) }, value ?? 1]);
  }) as Counter['inc'];
}
forward(metrics.limitHits as unknown as Counter, 'sonde_receiver_limit_hits_total');
forward(
  metrics.registry.getSingleMetric('sonde_receiver_redactions_total') as Counter | undefined,
  'sonde_receiver_redactions_total',
);

port.on('message', (request: ProcessRequest) => {
  counters = [];
  const { id, signal, encoding } = request;
  try {
    const body = Buffer.from(request.buffer, request.offset, request.length);
    const pipeline = pipelines[signal] as SignalPipeline<typeof signal>;
    const { batch, rejection, decodedBytes } = prepareBatch(
      { signal, transport: 'http', encoding, body },
      handlerOptions,
      metrics.limitHits,
      pipeline.readsEveryAttribute(),
    );
    const answer: ProcessedRequest = {
      id,
      ok: true,
      kept: rejection.kept,
      rejected: rejection.count,
      overLimit: rejection.overLimit,
      messages: rejection.messages,
      warnings: batch.warnings,
      decodedBytes,
      counters,
    };
    if (batch.itemCount === 0) {
      port.postMessage(answer);
      return;
    }
    pipeline.process(batch);
    const encode = encoders[signal] as (data: typeof batch.data) => Buffer;
    const payload = requestPayload(batch, encode);
    const transfer: ArrayBuffer[] = [];
    // The body as it came is forwarded from the main thread's own copy (protocol.ts says why).
    if (payload !== body) {
      answer.payload = ownArrayBuffer(payload);
      transfer.push(answer.payload.buffer);
    }
    answer.derived = {};
    for (const { consumer, store } of derive[signal]) {
      (consumer as Consumer<typeof signal>).consume(batch);
      const ops = store.take();
      if (!ops) continue;
      answer.derived[consumer.name] = ops;
      transfer.push(...transferables(ops));
    }
    const skeleton = packSkeleton(signal, batch.data, keys);
    answer.skeleton = skeleton;
    port.postMessage(answer, [...transfer, skeleton.numbers.buffer, skeleton.times.buffer, skeleton.shape.buffer]);
  } catch (err) {
    // What the derived consumers recorded before the failure must not go out with the next request.
    for (const { store } of derive[signal]) store.take();
    const error: FailedRequest['error'] =
      err instanceof OtlpError
        ? {
            message: err.message,
            httpStatus: err.httpStatus,
            grpcCode: err.grpcCode as FailedRequest['error']['grpcCode'],
            reason: err.reason,
            retryAfterSeconds: err.retryAfterSeconds,
          }
        : {
            message: err instanceof Error ? err.message : String(err),
            httpStatus: 500,
            grpcCode: 13,
            reason: 'internal',
            internal: true,
            stack: err instanceof Error ? err.stack : undefined,
          };
    port.postMessage({ id, ok: false, error, counters } satisfies FailedRequest);
  }
});

port.postMessage({ ready: true });

/**
 * Exporters per signal and protocol, as @opentelemetry/sdk-node builds them from OTEL_*_EXPORTER and
 * OTEL_EXPORTER_OTLP_*_PROTOCOL, with Sonde's parts around them:
 * - `otlp` over http/protobuf or http/json: Sonde's exporters (otlp-http.ts), which hand encoded
 *   requests to the one Shipper (transmission gate, byte-bounded buffer, retries);
 * - `otlp` over grpc: the upstream exporters, wrapped so that the same transforms apply (no gate, no
 *   buffer);
 * - `console`: the SDK's console exporters, untransformed.
 * The transforms are redaction (spans, log records, resources) and the process-wide consent filter of
 * metrics; each exporter sits behind its signal's consent processor (consent-processors.ts).
 */
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import {
  BatchLogRecordProcessor,
  ConsoleLogRecordExporter,
  type LogRecordExporter,
  type LogRecordProcessor,
  type ReadableLogRecord,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import {
  ConsoleMetricExporter,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import type { Redactor } from '@sonde/redact';
import { RequestBuffer } from './buffer';
import { CONSENT_CHOICE_EVENT } from './consent';
import { ConsentLogProcessor, ConsentSpanProcessor, filterMetrics } from './consent-processors';
import type { SondeConfig } from './env';
import { Shipper, SondeLogExporter, SondeMetricExporter, SondeSpanExporter } from './otlp-http';
import { redactLogRecord, redactResource, redactSpan } from './redaction';
import { type CountDrop, logLine } from './self';
import type { Gate, Signal } from './types';

/** What the exporters of every signal share. */
export interface ExportContext {
  config: SondeConfig;
  shipper: Shipper;
  countDrop: CountDrop;
  /** Undefined when redaction is off. */
  redactor?: Redactor;
}

/** The one Shipper of the OTLP/HTTP exporters; a send failure is reported at most once a minute. */
export function createShipper(config: SondeConfig, gateRef: { gate?: Gate }, countDrop: CountDrop): Shipper {
  let lastWarn = 0;
  const shipper: Shipper = new Shipper({
    targets: {
      traces: config.signals.traces.target,
      metrics: config.signals.metrics.target,
      logs: config.signals.logs.target,
    },
    buffer: new RequestBuffer(config.bufferMaxBytes, countDrop, config.bufferDir),
    gate: () => (gateRef.gate ? gateRef.gate() : true),
    gatePollMs: config.gatePollMs,
    onDrop: countDrop,
    onSendError(signal, reason) {
      const now = Date.now();
      if (now - lastWarn < 60000) return;
      lastWarn = now;
      logLine(
        'warn',
        `sonde: cannot send ${signal} to ${config.signals[signal].target.url} (${reason}); holding telemetry in the buffer and retrying. Start the receiver (npx sonde-receiver) or set OTEL_EXPORTER_OTLP_ENDPOINT`,
        {
          bufferedBytes: shipper.buffer.bytes,
          bufferMaxBytes: config.bufferMaxBytes,
        },
      );
    },
  });
  return shipper;
}

function safeMap<T>(items: T[], fn: (item: T) => T, onError: (n: number) => void): T[] {
  const out: T[] = [];
  let failed = 0;
  for (const item of items) {
    try {
      out.push(fn(item));
    } catch {
      failed++; // fail closed: an item the redactor could not handle is not sent
    }
  }
  if (failed > 0) onError(failed);
  return out;
}

function spanTransform(ctx: ExportContext): (spans: ReadableSpan[]) => ReadableSpan[] {
  const { redactor } = ctx;
  return (spans) =>
    redactor
      ? safeMap(
          spans,
          (s) => redactSpan(redactor, s),
          (n) => ctx.countDrop('traces', n, 'redaction_failed'),
        )
      : spans;
}

// Consent choice records hold only Sonde's own attributes (the subject already an HMAC pseudonym):
// not redacted, so that no detector or allow list can mangle or drop the pseudonym.
function logTransform(ctx: ExportContext): (records: ReadableLogRecord[]) => ReadableLogRecord[] {
  const { redactor } = ctx;
  return (records) =>
    redactor
      ? safeMap(
          records,
          (r) => (r.eventName === CONSENT_CHOICE_EVENT ? r : redactLogRecord(redactor, r)),
          (n) => ctx.countDrop('logs', n, 'redaction_failed'),
        )
      : records;
}

function metricTransform(ctx: ExportContext): (rm: ResourceMetrics) => ResourceMetrics {
  const { redactor } = ctx;
  return (rm) => {
    const out = filterMetrics(rm);
    if (!redactor || out.scopeMetrics.length === 0) return out;
    const resource = redactResource(redactor, out.resource);
    return resource === out.resource ? out : { ...out, resource };
  };
}

function transformSpanExporter(inner: SpanExporter, fn: (s: ReadableSpan[]) => ReadableSpan[]): SpanExporter {
  return {
    export: (spans, done) => inner.export(fn(spans), done),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

function transformLogExporter(
  inner: LogRecordExporter,
  fn: (r: ReadableLogRecord[]) => ReadableLogRecord[],
): LogRecordExporter {
  return {
    export: (records, done) => inner.export(fn(records), done),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

function transformMetricExporter(
  inner: PushMetricExporter,
  fn: (m: ResourceMetrics) => ResourceMetrics,
): PushMetricExporter {
  return {
    export: (m, done) => inner.export(fn(m), done),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
    selectAggregationTemporality: inner.selectAggregationTemporality?.bind(inner),
  };
}

const isGrpc = (ctx: ExportContext, signal: Signal) => ctx.config.signals[signal].protocol === 'grpc';

/** One batch processor per traces exporter, behind the `diagnostics` consent processor. */
export function createSpanProcessors(ctx: ExportContext): SpanProcessor[] {
  const transform = spanTransform(ctx);
  return ctx.config.signals.traces.exporters.map((kind) => {
    let exporter: SpanExporter;
    if (kind === 'console') exporter = new ConsoleSpanExporter();
    else if (isGrpc(ctx, 'traces')) exporter = transformSpanExporter(new GrpcTraceExporter(), transform);
    else exporter = new SondeSpanExporter(ctx.shipper, ctx.config.signals.traces.target.json, transform, ctx.countDrop);
    return new ConsentSpanProcessor(new BatchSpanProcessor({ exporter }));
  });
}

/** One processor per logs exporter (console: simple, else batch), behind the consent processor of logs and events. */
export function createLogRecordProcessors(ctx: ExportContext): LogRecordProcessor[] {
  const transform = logTransform(ctx);
  return ctx.config.signals.logs.exporters.map((kind) => {
    if (kind === 'console')
      return new ConsentLogProcessor(new SimpleLogRecordProcessor({ exporter: new ConsoleLogRecordExporter() }));
    const exporter: LogRecordExporter = isGrpc(ctx, 'logs')
      ? transformLogExporter(new GrpcLogExporter(), transform)
      : new SondeLogExporter(ctx.shipper, ctx.config.signals.logs.target.json, transform, ctx.countDrop);
    return new ConsentLogProcessor(new BatchLogRecordProcessor({ exporter }));
  });
}

/** One periodic reader per metrics exporter; the consent filter and redaction apply at export. */
export function createMetricReaders(ctx: ExportContext): PeriodicExportingMetricReader[] {
  const transform = metricTransform(ctx);
  const { metricExportIntervalMs, metricExportTimeoutMs } = ctx.config;
  return ctx.config.signals.metrics.exporters.map((kind) => {
    let exporter: PushMetricExporter;
    if (kind === 'console') exporter = new ConsoleMetricExporter();
    else if (isGrpc(ctx, 'metrics')) exporter = transformMetricExporter(new GrpcMetricExporter(), transform);
    else
      exporter = new SondeMetricExporter(ctx.shipper, ctx.config.signals.metrics.target.json, transform, ctx.countDrop);
    return new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis: metricExportIntervalMs,
      exportTimeoutMillis: metricExportTimeoutMs,
    });
  });
}

/**
 * The exporter of the start-up consent choice records (startup-consent.ts): OTLP only, untransformed;
 * undefined when logs are not exported over OTLP.
 */
export function createStartupChoicesExporter(ctx: ExportContext): LogRecordExporter | undefined {
  if (!ctx.config.signals.logs.exporters.includes('otlp')) return undefined;
  return isGrpc(ctx, 'logs')
    ? new GrpcLogExporter()
    : new SondeLogExporter(ctx.shipper, ctx.config.signals.logs.target.json, (r) => r, ctx.countDrop);
}

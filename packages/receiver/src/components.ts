/**
 * The receiver's components, built from their config sections (each section's conversion lives in
 * the component's config.ts) and put into the pipeline in order: processors first (redaction, then
 * the attribute limits), then per signal the exporter, the store, the recent buffer and the derived
 * metrics. The order is part of the behaviour: see the comments below.
 */
import type { Logger } from 'pino';
import { storeEnabled } from './blob-store/config';
import type { ReceiverConfig } from './config/schema';
import { toConsentPeopleOptions } from './consent/config';
import { ConsentPeopleConsumer } from './consent/people';
import { openErasure } from './erasure/config';
import type { Erasure } from './erasure/erasure';
import { toEventMetricsOptions } from './events/config';
import { EventMetricsConsumer } from './events/event-metrics';
import { toExporterOptions } from './export/config';
import { LokiExporter } from './export/loki-exporter';
import { TempoExporter } from './export/tempo-exporter';
import { toHandlerOptions } from './intake/config';
import { toLogStoreOptions } from './log-store/config';
import { LogStore } from './log-store/log-store';
import { decodeLogsRequest } from './otlp/protobuf/decode-logs';
import { decodeTraceRequest } from './otlp/protobuf/decode-traces';
import { encodeLogsRequest } from './otlp/protobuf/encode-logs';
import { encodeTraceRequest } from './otlp/protobuf/encode-traces';
import type { Pipeline } from './pipeline/pipeline';
import { buildProcessors } from './pipeline/processors';
import { RecentTelemetry } from './pipeline/recent';
import { toPrometheusOptions } from './prometheus/config';
import { PrometheusConsumer } from './prometheus/consumer';
import type { SelfMetrics } from './self-metrics';
import type { MetricStore } from './series/store';
import { toTraceStoreOptions } from './trace-store/config';
import { TraceStore } from './trace-store/trace-store';
import { toServiceGraphOptions, toSpanMetricsOptions } from './traces/config';
import { ServiceGraphConsumer } from './traces/service-graph';
import { SpanMetricsConsumer } from './traces/span-metrics';

export interface Components {
  recent: { traces: RecentTelemetry<'traces'>; metrics: RecentTelemetry<'metrics'>; logs: RecentTelemetry<'logs'> };
  /** The embedded stores, when on (opened: their write-ahead logs replayed). */
  traceStore: TraceStore | undefined;
  logStore: LogStore | undefined;
  erasure: Erasure | undefined;
  /** The stores whose series /metrics exposes, after the receiver's own metrics. */
  metricStores: MetricStore[];
}

/** Builds the components and adds them to `pipeline`; a store that cannot start stops the start-up (the other one shut down). */
export async function buildComponents(
  config: ReceiverConfig,
  pipeline: Pipeline,
  metrics: SelfMetrics,
  logger: Logger,
): Promise<Components> {
  const component = (name: string) => logger.child({ component: name });
  // Traces and logs are kept as protobuf and decoded again when read (recent.ts), with the intake's limits.
  const { decodeLimits } = toHandlerOptions(config);
  const recent = {
    traces: new RecentTelemetry<'traces'>(config.debug.recent_items, {
      decode: (payload) => decodeTraceRequest(payload, decodeLimits),
      encode: encodeTraceRequest,
    }),
    metrics: new RecentTelemetry<'metrics'>(config.debug.recent_items),
    logs: new RecentTelemetry<'logs'>(config.debug.recent_items, {
      decode: (payload) => decodeLogsRequest(payload, decodeLimits),
      encode: (data) => encodeLogsRequest(data),
    }),
  };
  const processors = buildProcessors(config, metrics);
  for (const p of processors.traces) pipeline.traces.addProcessor(p);
  for (const p of processors.metrics) pipeline.metrics.addProcessor(p);
  for (const p of processors.logs) pipeline.logs.addProcessor(p);
  // The Tempo exporter goes first: when its queue is full it refuses the request (503 + Retry-After)
  // before any other consumer has counted the spans, so the client's retry is not counted twice.
  if (config.tempo.endpoint) {
    const options = toExporterOptions(config.tempo, 'tempo', config.data_dir);
    pipeline.traces.addConsumer(new TempoExporter(options, metrics.registry, component('tempo')));
  }
  // Erasure tombstones are read before any store opens: a file that cannot be read stops the start-up.
  const retentionMs = Math.max(config.trace_store.retention, config.log_store.retention);
  const erasure = openErasure(config.erasure, config.data_dir, retentionMs);
  // The subject keys are indexed so that an erasure can find the traces that carry a subject.
  const traceStore = storeEnabled(config.trace_store, config.tempo.endpoint)
    ? await started(
        new TraceStore(
          toTraceStoreOptions(config.trace_store, config.data_dir, erasure ? config.erasure.subject_keys : []),
          metrics.registry,
          component('trace-store'),
        ),
      )
    : undefined;
  if (traceStore) pipeline.traces.addConsumer(traceStore);
  pipeline.traces.addConsumer(recent.traces);
  pipeline.metrics.addConsumer(recent.metrics);
  // The Loki exporter is the first logs consumer, for the same reason as the Tempo exporter's place.
  if (config.loki.endpoint) {
    const options = toExporterOptions(config.loki, 'loki', config.data_dir);
    pipeline.logs.addConsumer(new LokiExporter(options, metrics.registry, component('loki')));
  }
  let logStore: LogStore | undefined;
  try {
    logStore = storeEnabled(config.log_store, config.loki.endpoint)
      ? await started(
          new LogStore(toLogStoreOptions(config.log_store, config.data_dir), metrics.registry, component('log-store')),
        )
      : undefined;
  } catch (err) {
    await traceStore?.shutdown();
    throw err;
  }
  if (logStore) pipeline.logs.addConsumer(logStore);
  pipeline.logs.addConsumer(recent.logs);
  const prometheus = config.prometheus.enabled
    ? new PrometheusConsumer(
        toPrometheusOptions(config.prometheus, {
          onLimit: (limit, hits) => metrics.limitHits.inc({ signal: 'metrics', limit }, hits),
          // Names that /metrics already writes for the receiver itself and for span-derived metrics.
          takenElsewhere: (name) =>
            metrics.registry.getSingleMetric(name) !== undefined ||
            (spanMetrics?.store.families.has(name) ?? false) ||
            (serviceGraph?.store.families.has(name) ?? false) ||
            (eventMetrics?.store.families.has(name) ?? false),
        }),
        metrics.registry,
        logger,
      )
    : undefined;
  if (prometheus) pipeline.metrics.addConsumer(prometheus);
  const spanMetrics = config.span_metrics.enabled
    ? new SpanMetricsConsumer(toSpanMetricsOptions(config.span_metrics), metrics.registry, logger)
    : undefined;
  if (spanMetrics) pipeline.traces.addConsumer(spanMetrics);
  const serviceGraph = config.service_graph.enabled
    ? new ServiceGraphConsumer(toServiceGraphOptions(config.service_graph), metrics.registry, logger)
    : undefined;
  if (serviceGraph) pipeline.traces.addConsumer(serviceGraph);
  const eventMetrics = config.event_metrics.enabled
    ? new EventMetricsConsumer(toEventMetricsOptions(config.event_metrics), metrics.registry, logger)
    : undefined;
  if (eventMetrics) pipeline.logs.addConsumer(eventMetrics);
  if (config.consent_people.enabled) {
    const options = toConsentPeopleOptions(config.consent_people);
    pipeline.logs.addConsumer(new ConsentPeopleConsumer(options, metrics.registry, component('consent-people')));
  }
  const metricStores = [prometheus?.store, spanMetrics?.store, serviceGraph?.store, eventMetrics?.store].filter(
    (s) => s !== undefined,
  );
  return { recent, traceStore, logStore, erasure, metricStores };
}

/** A store once started (its log replayed); shut down again when it cannot start. */
async function started<T extends { start(): Promise<void>; shutdown(): Promise<void> }>(store: T): Promise<T> {
  try {
    await store.start();
  } catch (err) {
    await store.shutdown();
    throw err;
  }
  return store;
}

/**
 * Wires the receiver together from its configuration and runs it: the OTLP/HTTP and OTLP/gRPC
 * intakes, the pipeline, and the admin server. `startReceiver` resolves once every listener is bound;
 * `close()` stops accepting, drains in-flight requests (bounded by shutdown_timeout) and flushes the
 * pipeline's consumers.
 */

import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAbsolute, join } from 'node:path';
import type { Express } from 'express';
import { createAdminApp } from './admin/server';
import { type ReceiverConfig, toRedactionConfig } from './config/schema';
import { formatAddress, type ListenAddress } from './config/units';
import { ConsentPeopleConsumer } from './consent/people';
import { createErasureApi, ErasedLogSource } from './erasure/api';
import { Erasure } from './erasure/erasure';
import { EventMetricsConsumer } from './events/event-metrics';
import { LokiExporter } from './export/loki-exporter';
import type { OtlpHttpExporterOptionsInput, TlsOptions } from './export/otlp-http-exporter';
import { TempoExporter } from './export/tempo-exporter';
import { Admission } from './intake/admission';
import { ExportHandler } from './intake/export-handler';
import { bindGrpc, createGrpcIntake } from './intake/grpc';
import { createHttpIntake } from './intake/http';
import { applyServerLimits, headersTimeoutOf, type ServerLimits } from './intake/server-limits';
import { createLokiApi, type LokiApiOptions } from './log-store/api';
import { LogStore } from './log-store/log-store';
import { createLogger, type Logger } from './logger';
import { ITEM_NAME, SIGNALS } from './model';
import { AttributeLimitsProcessor } from './pipeline/attribute-limits';
import { Pipeline } from './pipeline/pipeline';
import { RecentTelemetry } from './pipeline/recent';
import { Redaction } from './pipeline/redaction';
import { PrometheusConsumer } from './prometheus/consumer';
import { openServerTls, type ServerTls } from './security/tls';
import { BearerTokens } from './security/tokens';
import { SelfMetrics } from './self-metrics';
import { createTempoApi } from './trace-store/api';
import { TraceStore } from './trace-store/trace-store';
import { ServiceGraphConsumer } from './traces/service-graph';
import { SpanMetricsConsumer } from './traces/span-metrics';

export interface ReceiverAddresses {
  /** "host:port" of each listener, or undefined when it is off. */
  otlpHttp: string | undefined;
  otlpGrpc: string | undefined;
  admin: string | undefined;
}

export interface Receiver {
  readonly addresses: ReceiverAddresses;
  readonly pipeline: Pipeline;
  readonly metrics: SelfMetrics;
  readonly logger: Logger;
  /** The embedded trace store, when it is on (trace_store.enabled). */
  readonly traceStore: TraceStore | undefined;
  /** The embedded log store, when it is on (log_store.enabled): a LogSource for Loki's query API. */
  readonly logStore: LogStore | undefined;
  readonly recent: {
    traces: RecentTelemetry<'traces'>;
    metrics: RecentTelemetry<'metrics'>;
    logs: RecentTelemetry<'logs'>;
  };
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Register process and Node runtime metrics (default true; tests that start many receivers turn it off). */
  defaultMetrics?: boolean;
}

export async function startReceiver(config: ReceiverConfig, options: StartOptions = {}): Promise<Receiver> {
  const logger = options.logger ?? createLogger(config.log.level);
  const metrics = new SelfMetrics({ defaultMetrics: options.defaultMetrics });
  const pipeline = new Pipeline();
  const limits = {
    maxAttributesPerItem: config.limits.max_attributes_per_item,
    maxAttributeValueLength: config.limits.max_attribute_value_length,
  };
  const recent = {
    traces: new RecentTelemetry<'traces'>(config.debug.recent_items),
    metrics: new RecentTelemetry<'metrics'>(config.debug.recent_items),
    logs: new RecentTelemetry<'logs'>(config.debug.recent_items),
  };
  // Redaction runs before the attribute limits, so that truncation cannot cut a value (an email, a
  // card number) to a piece the detectors no longer recognise.
  const redaction = config.redaction.enabled
    ? new Redaction(toRedactionConfig(config.redaction), metrics.registry)
    : undefined;
  if (redaction) {
    pipeline.traces.addProcessor(redaction.processor());
    pipeline.metrics.addProcessor(redaction.processor());
    pipeline.logs.addProcessor(redaction.processor());
  }
  pipeline.traces.addProcessor(new AttributeLimitsProcessor(limits, metrics));
  // The Tempo exporter goes first: when its queue is full it refuses the request (503 + Retry-After)
  // before any other consumer has counted the spans, so the client's retry is not counted twice.
  const tempo = config.tempo.endpoint
    ? new TempoExporter(exporterOptions(config, 'tempo'), metrics.registry, logger.child({ component: 'tempo' }))
    : undefined;
  if (tempo) pipeline.traces.addConsumer(tempo);
  // Erasure tombstones are read before any store opens: a file that cannot be read stops the start-up.
  const erasure = openErasure(config);
  const traceStore = await openTraceStore(config, metrics, logger);
  if (traceStore) pipeline.traces.addConsumer(traceStore);
  pipeline.traces.addConsumer(recent.traces);
  pipeline.metrics.addProcessor(new AttributeLimitsProcessor(limits, metrics)).addConsumer(recent.metrics);
  pipeline.logs.addProcessor(new AttributeLimitsProcessor(limits, metrics));
  // The Loki exporter is the first logs consumer, for the same reason as the Tempo exporter's place.
  const loki = config.loki.endpoint
    ? new LokiExporter(exporterOptions(config, 'loki'), metrics.registry, logger.child({ component: 'loki' }))
    : undefined;
  if (loki) pipeline.logs.addConsumer(loki);
  let logStore: LogStore | undefined;
  try {
    logStore = await openLogStore(config, metrics, logger);
  } catch (err) {
    await traceStore?.shutdown();
    throw err;
  }
  if (logStore) pipeline.logs.addConsumer(logStore);
  pipeline.logs.addConsumer(recent.logs);
  const prometheus = config.prometheus.enabled
    ? new PrometheusConsumer(
        {
          metricExpirationMs: config.prometheus.metric_expiration,
          maxSeriesPerMetric: config.prometheus.max_series_per_metric,
          promoteResourceAttributes: config.prometheus.promote_resource_attributes,
          maxHistogramBuckets: config.prometheus.max_histogram_buckets,
          maxLabelValueLength: config.prometheus.max_label_value_length,
          maxLabelsPerSeries: config.prometheus.max_labels_per_series,
          maxDeltaAgeMs: config.prometheus.max_delta_age,
          onLimit: (limit, hits) => metrics.limitHits.inc({ signal: 'metrics', limit }, hits),
          // Names that /metrics already writes for the receiver itself and for span-derived metrics.
          takenElsewhere: (name) =>
            metrics.registry.getSingleMetric(name) !== undefined ||
            (spanMetrics?.store.families.has(name) ?? false) ||
            (serviceGraph?.store.families.has(name) ?? false) ||
            (eventMetrics?.store.families.has(name) ?? false),
        },
        metrics.registry,
        logger,
      )
    : undefined;
  if (prometheus) pipeline.metrics.addConsumer(prometheus);
  const spanMetrics = config.span_metrics.enabled
    ? new SpanMetricsConsumer(
        {
          dimensions: config.span_metrics.dimensions,
          serviceVersion: config.span_metrics.service_version,
          spanMultiplierKey: config.span_metrics.span_multiplier_key,
          latencyBuckets: config.span_metrics.latency_buckets,
          maxSeriesPerMetric: config.span_metrics.max_series_per_metric,
          metricExpirationMs: config.span_metrics.metric_expiration,
        },
        metrics.registry,
        logger,
      )
    : undefined;
  if (spanMetrics) pipeline.traces.addConsumer(spanMetrics);
  const serviceGraph = config.service_graph.enabled
    ? new ServiceGraphConsumer(
        {
          waitMs: config.service_graph.wait,
          maxItems: config.service_graph.max_items,
          latencyBuckets: config.service_graph.latency_buckets,
          maxSeriesPerMetric: config.service_graph.max_series_per_metric,
          metricExpirationMs: config.service_graph.metric_expiration,
          spanMultiplierKey: config.service_graph.span_multiplier_key,
        },
        metrics.registry,
        logger,
      )
    : undefined;
  if (serviceGraph) pipeline.traces.addConsumer(serviceGraph);
  const eventMetrics = config.event_metrics.enabled
    ? new EventMetricsConsumer(
        {
          categoryAttribute: config.event_metrics.category_attribute,
          dimensions: config.event_metrics.dimensions,
          maxSeriesPerMetric: config.event_metrics.max_series_per_metric,
          metricExpirationMs: config.event_metrics.metric_expiration,
        },
        metrics.registry,
        logger,
      )
    : undefined;
  if (eventMetrics) pipeline.logs.addConsumer(eventMetrics);
  if (config.consent_people.enabled)
    pipeline.logs.addConsumer(
      new ConsentPeopleConsumer(
        { precision: config.consent_people.precision },
        metrics.registry,
        logger.child({ component: 'consent-people' }),
      ),
    );
  /** The stores whose series /metrics exposes, after the receiver's own metrics. */
  const stores = [prometheus?.store, spanMetrics?.store, serviceGraph?.store, eventMetrics?.store].filter(
    (s) => s !== undefined,
  );

  const admission = new Admission(
    {
      maxInFlightBytes: config.overload.max_in_flight_bytes,
      memoryLimit: config.overload.memory_limit,
      memoryCheckInterval: config.overload.memory_check_interval,
      retryAfterMs: config.overload.retry_after,
    },
    metrics,
  );
  const handler = new ExportHandler(
    {
      decodeLimits: {
        maxAnyValueDepth: config.limits.max_any_value_depth,
        maxDecodedStructures: config.limits.max_decoded_structures,
      },
      maxItemsPerRequest: config.limits.max_items_per_request,
    },
    pipeline,
    admission,
    metrics,
    logger,
  );

  let draining = false;
  let listening = false;
  const intakeClosers: (() => Promise<void>)[] = [];
  let closeAdmin = async () => {};
  const addresses: ReceiverAddresses = { otlpHttp: undefined, otlpGrpc: undefined, admin: undefined };
  /** The certificate and token files being watched, closed with the receiver. */
  const watched: { close(): void }[] = [];
  try {
    const security = openSecurity(config, logger, watched);
    const adminAddress = config.admin.address;
    if (adminAddress !== 'off') {
      const routers = [
        ...(traceStore ? [createTempoApi(traceStore, logger, erasure)] : []),
        ...(logStore
          ? [
              createLokiApi(
                erasure ? new ErasedLogSource(logStore, erasure) : logStore,
                lokiApiOptions(config, metrics, logger),
              ),
            ]
          : []),
        ...(erasure && (traceStore || logStore)
          ? [
              createErasureApi(erasure, traceStore, {
                tokensConfigured: security.adminTokens !== undefined,
                registry: metrics.registry,
                logger: logger.child({ component: 'erasure' }),
              }),
            ]
          : []),
      ];
      const app = createAdminApp(metrics, recent, { ready: () => listening && !draining }, stores, routers, {
        logger,
        maxPipelinedRequests: config.admin.max_pipelined_requests,
        maxConcurrentRenders: config.debug.max_concurrent_renders,
        writeTimeoutMs: config.debug.write_timeout,
        tokens: security.adminTokens,
        protectMetrics: config.admin.auth.protect_metrics,
      });
      const server = await listen(
        app,
        adminAddress,
        'admin',
        security.adminTls,
        serverLimits(config.admin, 'admin'),
        metrics,
      );
      addresses.admin = boundAddress(server);
      closeAdmin = () => closeHttp(server, config.shutdown_timeout);
    }
    const httpAddress = config.otlp.http.address;
    if (httpAddress !== 'off') {
      const app = createHttpIntake(handler, {
        maxRequestBodySize: config.limits.max_request_body_size,
        corsAllowedOrigins: config.otlp.http.cors_allowed_origins,
        tokens: security.otlpTokens,
        logger,
        metrics,
      });
      const server = await listen(
        app,
        httpAddress,
        'OTLP/HTTP',
        security.otlpTls,
        serverLimits(config.otlp.http, 'otlp_http'),
        metrics,
      );
      addresses.otlpHttp = boundAddress(server);
      intakeClosers.push(() => closeHttp(server, config.shutdown_timeout));
    }
    const grpcAddress = config.otlp.grpc.address;
    if (grpcAddress !== 'off') {
      const g = config.otlp.grpc;
      const server = createGrpcIntake(handler, {
        maxRequestBodySize: config.limits.max_request_body_size,
        maxConcurrentStreams: g.max_concurrent_streams,
        maxConnectionIdleMs: g.max_connection_idle,
        maxConnectionAgeMs: g.max_connection_age,
        maxConnectionAgeGraceMs: g.max_connection_age_grace,
        maxSessionMemory: g.max_session_memory,
        readTimeoutMs: g.read_timeout,
        onReadTimeout: () => metrics.requestTimeouts.inc({ listener: 'otlp_grpc', kind: 'read' }),
        reflection: g.reflection,
        tokens: security.otlpTokens,
      });
      const listener = await bindGrpc(
        server,
        grpcAddress.host,
        grpcAddress.port,
        {
          tls: security.otlpTls,
          tokens: security.otlpTokens,
          onUnauthenticated: (signal, error) => {
            if (signal) handler.refused({ signal, transport: 'grpc', startedAt: performance.now() }, error);
          },
        },
        {
          maxConnections: g.max_connections,
          onConnectionRefused: () => metrics.connectionsRefused.inc({ listener: 'otlp_grpc' }),
          prefaceTimeoutMs: g.read_header_timeout,
          onPrefaceTimeout: () => metrics.requestTimeouts.inc({ listener: 'otlp_grpc', kind: 'read_header' }),
        },
      );
      addresses.otlpGrpc = formatAddress(grpcAddress.host, listener.port);
      intakeClosers.push(() => listener.close(config.shutdown_timeout));
    }
  } catch (err) {
    await Promise.allSettled([...intakeClosers, closeAdmin].map((c) => c()));
    for (const w of watched) w.close();
    await traceStore?.shutdown();
    await logStore?.shutdown();
    admission.close();
    throw err;
  }
  listening = true;
  logger.info(
    {
      ...addresses,
      tempo: config.tempo.endpoint || undefined,
      loki: config.loki.endpoint || undefined,
      traceStore: traceStore?.options.path,
      logStore: logStore?.options.path,
      dataDir: config.data_dir,
    },
    'sonde-receiver listening',
  );

  const summary = new ReceivedSummary(logger, handler.received);
  const summaryTimer =
    config.log.summary_interval > 0 ? setInterval(() => summary.log(), config.log.summary_interval).unref() : undefined;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      if (summaryTimer) clearInterval(summaryTimer);
      await Promise.all(intakeClosers.map((c) => c()));
      await pipeline.shutdown();
      admission.close();
      await closeAdmin();
      for (const w of watched) w.close();
      summary.log();
      logger.info('sonde-receiver stopped');
    })();
    return closing;
  };
  return { addresses, pipeline, metrics, logger, recent, traceStore, logStore, close };
}

/** Loki's query API over the log store: log_store's query limits, hits counted as limit_hits{signal="logs"}. */
function lokiApiOptions(config: ReceiverConfig, metrics: SelfMetrics, logger: Logger): LokiApiOptions {
  const c = config.log_store;
  return {
    maxEntriesLimitPerQuery: c.max_entries_limit_per_query,
    maxQuerySeries: c.max_query_series,
    maxVolumeSeries: c.volume_max_series,
    maxQueryLengthNs: BigInt(c.max_query_length) * 1_000_000n,
    queryTimeoutMs: c.query_timeout,
    maxConcurrentQueries: c.max_concurrent_queries,
    onLimit: (limit) => metrics.limitHits.inc({ signal: 'logs', limit }),
    logger: logger.child({ component: 'loki-api' }),
  };
}

/** The erasure tombstones (<data_dir>/erasure.json), read; undefined when erasure is off. */
function openErasure(config: ReceiverConfig): Erasure | undefined {
  if (!config.erasure.enabled) return undefined;
  const erasure = new Erasure({
    file: join(config.data_dir, 'erasure.json'),
    subjectKeys: config.erasure.subject_keys,
    retentionMs: Math.max(config.trace_store.retention, config.log_store.retention),
    maxTraces: config.erasure.max_traces,
  });
  erasure.load();
  return erasure;
}

/** The embedded trace store (trace_store.enabled: auto = when no Tempo endpoint is set), opened. */
function openTraceStore(config: ReceiverConfig, metrics: SelfMetrics, logger: Logger) {
  const c = config.trace_store;
  if (!(c.enabled === true || (c.enabled === 'auto' && !config.tempo.endpoint))) return undefined;
  // The subject keys are indexed so that an erasure can find the traces that carry a subject.
  const indexedAttributes = [
    ...new Set([...c.indexed_attributes, ...(config.erasure.enabled ? config.erasure.subject_keys : [])]),
  ];
  const options = { ...embeddedStoreOptions(config, c), indexedAttributes };
  return started(new TraceStore(options, metrics.registry, logger.child({ component: 'trace-store' })));
}

/** The embedded log store (log_store.enabled: auto = when no Loki endpoint is set), opened. */
function openLogStore(config: ReceiverConfig, metrics: SelfMetrics, logger: Logger) {
  const c = config.log_store;
  if (!(c.enabled === true || (c.enabled === 'auto' && !config.loki.endpoint))) return undefined;
  return started(
    new LogStore(embeddedStoreOptions(config, c), metrics.registry, logger.child({ component: 'log-store' })),
  );
}

/** The options both stores take, from their config section (the keys config/schema.ts's embeddedStore gives both). */
function embeddedStoreOptions(config: ReceiverConfig, c: ReceiverConfig['trace_store'] | ReceiverConfig['log_store']) {
  return {
    path: isAbsolute(c.path) ? c.path : join(config.data_dir, c.path),
    retentionMs: c.retention,
    maxBytes: c.max_size,
    queueBytes: c.queue_size,
    onFull: c.on_full,
    batchMaxBytes: c.batch_max_size,
    flushIntervalMs: c.batch_timeout,
    retentionIntervalMs: c.retention_check_interval,
    durability: c.durability,
    walSyncIntervalMs: c.wal_sync_interval,
    queryTimeoutMs: c.query_timeout,
    queryWorkers: c.query_workers,
  };
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

/** The listeners' TLS and bearer tokens, as configured (each file read now, then watched). */
function openSecurity(config: ReceiverConfig, logger: Logger, watched: { close(): void }[]) {
  const log = logger.child({ component: 'security' });
  const keep = <T extends { close(): void }>(x: T | undefined) => {
    if (x) watched.push(x);
    return x;
  };
  const tokens = (auth: { bearer_tokens_file: string; reload_interval: number }, key: string) =>
    auth.bearer_tokens_file ? new BearerTokens(auth.bearer_tokens_file, auth.reload_interval, log, key) : undefined;
  return {
    otlpTls: keep(openServerTls(config.otlp.tls, 'otlp.tls', log)),
    adminTls: keep(openServerTls(config.admin.tls, 'admin.tls', log)),
    otlpTokens: keep(tokens(config.otlp.auth, 'otlp.auth.bearer_tokens_file')),
    adminTokens: keep(tokens(config.admin.auth, 'admin.auth.bearer_tokens_file')),
  };
}

/** An exporter's options from its config section (tempo, loki); its persistent queue in <data_dir>/<section>-queue. */
function exporterOptions(config: ReceiverConfig, section: 'tempo' | 'loki'): OtlpHttpExporterOptionsInput {
  const c = config[section];
  return {
    endpoint: c.endpoint,
    tls: readTls(c.tls, section),
    headers: c.headers,
    compression: c.compression,
    timeoutMs: c.timeout,
    queueBytes: c.queue_size,
    onFull: c.on_full,
    batchMaxBytes: c.batch_max_size,
    batchTimeoutMs: c.batch_timeout,
    concurrency: c.concurrency,
    retry: {
      initialMs: c.retry.initial_interval,
      maxMs: c.retry.max_interval,
      maxElapsedMs: c.retry.max_elapsed_time,
      multiplier: c.retry.multiplier,
    },
    shutdownTimeoutMs: c.shutdown_timeout,
    persistentDir: c.persistent_queue ? join(config.data_dir, `${section}-queue`) : undefined,
  };
}

/** Reads <section>.tls's files, with an error that names the key and the file. */
function readTls(tls: ReceiverConfig['tempo']['tls'], section: string): TlsOptions {
  const read = (key: string, file: string) => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`${section}.tls.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  if (Boolean(tls.cert_file) !== Boolean(tls.key_file)) {
    throw new Error(`${section}.tls: cert_file and key_file go together (mutual TLS needs both)`);
  }
  return {
    ca: read('ca_file', tls.ca_file),
    cert: read('cert_file', tls.cert_file),
    key: read('key_file', tls.key_file),
    insecureSkipVerify: tls.insecure_skip_verify,
    serverName: tls.server_name_override || undefined,
  };
}

/** The periodic "received N spans, ..." line: what arrived since the previous line, if anything. */
class ReceivedSummary {
  private readonly last = { traces: 0, metrics: 0, logs: 0 };

  constructor(
    private readonly logger: Logger,
    private readonly received: ExportHandler['received'],
  ) {}

  log(): void {
    const delta = SIGNALS.map((s) => this.received[s] - this.last[s]);
    if (delta.every((d) => d === 0)) return;
    this.logger.info(
      { spans: delta[0], dataPoints: delta[1], logRecords: delta[2] },
      `received ${SIGNALS.map((s, i) => `${delta[i]} ${ITEM_NAME[s]}`).join(', ')}`,
    );
    for (const s of SIGNALS) this.last[s] = this.received[s];
  }
}

/** A listener's timeouts and connection cap, from its config section (otlp.http or admin). */
function serverLimits(
  c: Pick<
    ReceiverConfig['admin'],
    'read_header_timeout' | 'read_timeout' | 'idle_timeout' | 'write_timeout' | 'max_connections'
  >,
  listener: string,
): ServerLimits {
  return {
    listener,
    readHeaderTimeoutMs: c.read_header_timeout,
    readTimeoutMs: c.read_timeout,
    idleTimeoutMs: c.idle_timeout,
    writeTimeoutMs: c.write_timeout,
    maxConnections: c.max_connections,
  };
}

function listen(
  app: Express,
  address: ListenAddress,
  what: string,
  tls: ServerTls | undefined,
  limits: ServerLimits,
  metrics: SelfMetrics,
): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    const server = tls ? tls.createHttpsServer(app, headersTimeoutOf(limits)) : createHttpServer(app);
    applyServerLimits(server, limits, metrics);
    server.listen(address.port, address.host);
    const onError = (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'EADDRINUSE' ? ' (another process holds the port; set another address or port 0)' : '';
      const where = formatAddress(address.host, address.port);
      reject(new Error(`cannot listen for ${what} on ${where}: ${err.code ?? err.message}${hint}`));
    };
    server.once('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

function boundAddress(server: HttpServer): string {
  const a = server.address() as AddressInfo;
  return formatAddress(a.address, a.port);
}

/** Stops accepting connections, lets in-flight requests finish, then cuts what is left after `timeoutMs`. */
function closeHttp(server: HttpServer, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    // Keep-alive connections that were busy become idle once their response is out: close them then,
    // rather than waiting for the timeout.
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearTimeout(timer);
      clearInterval(idle);
      resolve();
    });
    server.closeIdleConnections();
  });
}

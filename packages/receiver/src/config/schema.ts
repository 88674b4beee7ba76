/**
 * The receiver's configuration: one schema that validates the YAML file, fills in the documented
 * defaults and yields the typed settings. Keys are snake_case, as in the OpenTelemetry Collector.
 * The README's configuration reference is written from this file: keep them in step.
 */
import { DETECTORS, parseRedactionConfig, type RedactionConfig } from '@sonde/redact';
import { z } from 'zod';
import { checkHeaders, parseHeaders } from '../export/http';
import { lokiEndpoint } from '../export/loki-exporter';
import { tempoEndpoint } from '../export/tempo-exporter';
import { type ListenAddress, parseAddress, parseDuration, parseSize } from './units';

/** A zod transform from a parser that returns either the value or an error text. */
function converted<In, Out>(parse: (v: In) => Out | string, isValue: (r: Out | string) => r is Out) {
  return (value: In, ctx: z.RefinementCtx): Out => {
    const result = parse(value);
    if (isValue(result)) return result;
    ctx.addIssue({ code: 'custom', message: result as string });
    return z.NEVER;
  };
}

const isNumber = (r: number | string): r is number => typeof r === 'number';

const address = z
  .string()
  .transform(
    converted<string, ListenAddress | 'off'>(
      parseAddress,
      (r): r is ListenAddress | 'off' => typeof r !== 'string' || r === 'off',
    ),
  );

const size = z.union([z.number(), z.string()]).transform(converted(parseSize, isNumber));

const duration = z.union([z.number(), z.string()]).transform(converted(parseDuration, isNumber));

const positiveInt = z.number().int().positive();

/**
 * An OTLP/HTTP exporter's section (`tempo:`, `loki:`): the same keys for every signal (one
 * OtlpHttpExporter, src/export/otlp-http-exporter.ts). `endpoint` turns a base URL into the signal's
 * endpoint; `headersVariable` names the environment variable in a header-list error.
 */
function otlpExporterSection(endpoint: (base: string) => string, headersVariable: string) {
  return z
    .strictObject({
      /**
       * OTLP/HTTP endpoint to forward to: a base URL, to which the signal's path (tempo: /v1/traces,
       * loki: /otlp/v1/logs) is appended unless it has a path. Empty: no export.
       */
      endpoint: z
        .string()
        .default('')
        .transform((v, ctx) => {
          if (v.trim() === '') return '';
          try {
            return endpoint(v.trim());
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
            return z.NEVER;
          }
        }),
      /**
       * Headers on every export request: a map, or `key=value,key2=value2` as OTEL_EXPORTER_OTLP_HEADERS.
       * Names must be RFC 9110 tokens, values free of CR, LF and NUL; host, content-length,
       * transfer-encoding, connection and the other hop-by-hop headers cannot be set.
       */
      headers: z
        .union([z.string(), z.record(z.string(), z.string())])
        .default({})
        .transform((v, ctx) => {
          try {
            if (typeof v === 'string') return parseHeaders(v, headersVariable);
            checkHeaders(v);
            return v;
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
            return z.NEVER;
          }
        }),
      compression: z.enum(['gzip', 'none']).default('gzip'),
      /** Per-request timeout. */
      timeout: duration.default(10_000),
      /** Bound of the export queue, in bytes of protobuf. */
      queue_size: size.default(64 * 1024 * 1024),
      /** When the queue is full: refuse new data with 503 + Retry-After (clients retry), or drop the oldest (counted). */
      on_full: z.enum(['refuse', 'drop_oldest']).default('refuse'),
      /** An export request carries at most this many bytes... */
      batch_max_size: size.default(4 * 1024 * 1024),
      /** ...and waits at most this long for more. */
      batch_timeout: duration.default(200),
      /** TLS for an https endpoint (the Collector's configtls client settings). */
      tls: z
        .strictObject({
          /** PEM file of CA certificates to trust instead of the system's. */
          ca_file: z.string().default(''),
          /** PEM client certificate and key, for mutual TLS. */
          cert_file: z.string().default(''),
          key_file: z.string().default(''),
          /** Accept any server certificate (testing only). */
          insecure_skip_verify: z.boolean().default(false),
          /** Name to verify the server certificate against, instead of the endpoint's host. */
          server_name_override: z.string().default(''),
        })
        .prefault({}),
      /** Export requests in flight at once, each with its own batch (the Collector's num_consumers). */
      concurrency: positiveInt.default(4),
      retry: z
        .strictObject({
          initial_interval: duration.default(1000),
          max_interval: duration.default(30_000),
          /** After this long, a batch that still fails is dropped (counted). */
          max_elapsed_time: duration.default(300_000),
          multiplier: z.number().min(1).default(1.5),
        })
        .prefault({}),
      /** How long shutdown tries to send what is queued. */
      shutdown_timeout: duration.default(5000),
      /** Keep the export queue on disk (<data_dir>/tempo-queue, <data_dir>/loki-queue): what was accepted survives a restart, kill -9 included. */
      persistent_queue: z.boolean().default(false),
    })
    .prefault({});
}

/** TLS of a listener (the Collector's configtls server settings); on when cert_file is set. */
const serverTls = z
  .strictObject({
    /** PEM certificate (chain) of the listener; with key_file, turns TLS on. */
    cert_file: z.string().default(''),
    /** PEM private key of cert_file. */
    key_file: z.string().default(''),
    /** PEM CA certificates: when set, clients must present a certificate they signed (mutual TLS). */
    client_ca_file: z.string().default(''),
    /** Lowest TLS version accepted. */
    min_version: z.enum(['1.2', '1.3']).default('1.2'),
    /** How often the files are checked for changes (new handshakes use the new ones); 0: never. */
    reload_interval: duration.default(1000),
  })
  .superRefine((v, ctx) => {
    if (Boolean(v.cert_file) !== Boolean(v.key_file))
      ctx.addIssue({ code: 'custom', message: 'cert_file and key_file go together (both, or neither)' });
    if (v.client_ca_file && !v.cert_file)
      ctx.addIssue({ code: 'custom', message: 'client_ca_file (mutual TLS) needs cert_file and key_file' });
  })
  .prefault({});

/** A bearer token file: one token per line, optionally followed by whitespace and a tenant. */
const bearerTokensFile = z.string().default('');
/** How often the token file is checked for changes; 0: never. */
const tokensReloadInterval = duration.default(1000);

/**
 * Timeouts and the connection cap of an HTTP listener (src/intake/server-limits.ts); 0 turns one off.
 * As the Collector's confighttp, with bounds where it has none (a stalled upload must not hold memory for long).
 */
const serverLimits = (maxConnections: number) => ({
  /** Longest time for a request's headers to arrive (408 and closed past it). */
  read_header_timeout: duration.default(10_000),
  /** Longest time for a whole request, headers and body (408 and closed past it). */
  read_timeout: duration.default(60_000),
  /** A keep-alive connection with no request for this long is closed. */
  idle_timeout: duration.default(60_000),
  /** A response the client has not taken this long after it began is cut (socket closed). */
  write_timeout: duration.default(30_000),
  /** Open connections at most; further ones are closed on arrival (counted). 0: no cap. */
  max_connections: z.number().int().nonnegative().default(maxConnections),
});

/**
 * The keys both embedded stores (trace_store, log_store) have: they run on one engine (src/blob-store/).
 * `file` is the default database file in data_dir; `auto` turns a store on when its backend (tempo.endpoint,
 * loki.endpoint) is empty.
 */
const embeddedStore = (file: string) => ({
  /** Keep the signal in an embedded database and answer the backend's query API on the admin port: auto = when the backend's endpoint is empty. */
  enabled: z
    .union([z.enum(['auto', 'true', 'false']), z.boolean()])
    .default('auto')
    .transform((v) => (v === 'true' ? true : v === 'false' ? false : v)),
  /** The SQLite file, relative to data_dir (or absolute). */
  path: z.string().min(1).default(file),
  /** Items older than this (by arrival) are removed. */
  retention: duration.default(24 * 3600_000),
  /** Size bound of the database; the oldest items are removed past it. */
  max_size: size.default(1024 * 1024 * 1024),
  /** Bound of the write queue (protobuf bytes waiting for the writer thread). */
  queue_size: size.default(64 * 1024 * 1024),
  /** When the write queue is full: refuse new requests with 503 + Retry-After, or accept them without storing (drop, counted). */
  on_full: z.enum(['refuse', 'drop']).default('refuse'),
  /** wal: a request is journaled (fdatasynced) before it is acknowledged, and replayed after a crash; memory: acknowledged once queued (a crash loses the queue). */
  durability: z.enum(['wal', 'memory']).default('wal'),
  /** With durability: wal, how long the log waits to gather concurrent requests into one write and fdatasync (0: none; each sync takes the requests that arrived during the previous one). */
  wal_sync_interval: duration.default(0),
  /** A write transaction takes at most this many bytes of requests (fewer, larger transactions cost less per item)... */
  batch_max_size: size.default(16 * 1024 * 1024),
  /** ...and waits at most this long for more. */
  batch_timeout: duration.default(100),
  /** How often retention runs. */
  retention_check_interval: duration.default(30_000),
  /** A query running longer is answered 504 and stopped. */
  query_timeout: duration.default(30_000).refine((ms) => ms > 0, 'must be more than 0'),
  /** Reader threads answering queries: a slow query holds one of them (at most query_timeout). */
  query_workers: positiveInt.max(64).default(2),
});

export const configSchema = z.strictObject({
  otlp: z
    .strictObject({
      http: z
        .strictObject({
          /** OTLP/HTTP listen address (POST /v1/traces, /v1/metrics, /v1/logs). */
          address: address.default({ host: '127.0.0.1', port: 4318 }),
          /** Origins allowed to send OTLP/HTTP from a browser (CORS); empty means CORS is off. */
          cors_allowed_origins: z.array(z.string()).default([]),
          ...serverLimits(4096),
        })
        .prefault({}),
      grpc: z
        .strictObject({
          /** OTLP/gRPC listen address, or "off". */
          address: address.default({ host: '127.0.0.1', port: 4317 }),
          /** Concurrent calls on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
          max_concurrent_streams: positiveInt.default(100),
          /** A connection with no call for this long is closed (GOAWAY). */
          max_connection_idle: duration.default(60_000),
          /** A connection is closed (GOAWAY) after this long (±10%), and cut max_connection_age_grace later. */
          max_connection_age: duration.default(10 * 60_000),
          max_connection_age_grace: duration.default(30_000),
          /** Memory one connection's HTTP/2 session may hold (headers, queued responses); new calls are refused over it. */
          max_session_memory: size.default(64 * 1024 * 1024),
          /** A call's request message must arrive in full this long after its headers (DEADLINE_EXCEEDED and counted past it); 0 turns it off. */
          read_timeout: duration.default(60_000),
          /** gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl / buf curl need no proto files. */
          reflection: z.boolean().default(false),
          /** A connection must have sent its HTTP/2 preface (after the TLS handshake, if any) this long after it opened; closed and counted past it. 0 turns it off. */
          read_header_timeout: duration.default(10_000),
          /** Open connections at most; further ones are closed on arrival (counted). 0: no cap. */
          max_connections: z.number().int().nonnegative().default(4096),
        })
        .prefault({}),
      /** TLS of both OTLP listeners (HTTP and gRPC). */
      tls: serverTls,
      auth: z
        .strictObject({
          /** Senders must present one of these tokens (Authorization: Bearer); empty: anyone may send. */
          bearer_tokens_file: bearerTokensFile,
          reload_interval: tokensReloadInterval,
        })
        .prefault({}),
    })
    .prefault({}),
  admin: z
    .strictObject({
      /** Admin listen address: /metrics, /healthz, /readyz, /debug/recent. */
      address: address.default({ host: '127.0.0.1', port: 9464 }),
      tls: serverTls,
      auth: z
        .strictObject({
          /** Tokens for /debug/* and the query APIs (everything but /metrics, /healthz, /readyz, /ready); empty: open. */
          bearer_tokens_file: bearerTokensFile,
          reload_interval: tokensReloadInterval,
          /** Require a token for /metrics too (Prometheus then sends it: authorization.credentials_file). */
          protect_metrics: z.boolean().default(false),
        })
        .prefault({}),
      /** Requests a connection may pipeline ahead of its responses; past it the connection is closed. */
      max_pipelined_requests: positiveInt.default(64),
      ...serverLimits(256),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Largest request body, on the wire and after decompression (413 over it). */
      max_request_body_size: size.default(64 * 1024 * 1024),
      /** Most spans, data points or log records in one request; the excess is rejected (partial success). */
      max_items_per_request: positiveInt.default(100_000),
      /** Most attributes on one span, event, link, data point, log record, resource or scope; extra ones are dropped and counted in dropped_attributes_count. */
      max_attributes_per_item: positiveInt.default(128),
      /** Longest string attribute value (in UTF-16 code units); longer values are truncated. 0 means no limit. */
      max_attribute_value_length: z.number().int().nonnegative().default(8192),
      /** Deepest nesting of AnyValue arrays and maps (400 over it). */
      max_any_value_depth: positiveInt.default(32),
      /** Most structures one request may decode into (resources, scopes, items, events, links, exemplars, attributes, array and map values, and their lists; in JSON also what JSON.parse would build); 400 over it, refused before it is built. */
      max_decoded_structures: positiveInt.default(4_000_000),
    })
    .prefault({}),
  overload: z
    .strictObject({
      /** Request bytes (decompressed) and the estimated size of what they decoded into, being processed at once; over it, 429 with Retry-After. */
      max_in_flight_bytes: size.default(256 * 1024 * 1024),
      /** Resident memory above which requests are refused with 503 and Retry-After; 0 turns the check off. */
      memory_limit: size.default(0),
      /** How often memory is checked. */
      memory_check_interval: duration.default(1000),
      /** The Retry-After given to clients that are refused for overload. */
      retry_after: duration.default(5000),
    })
    .prefault({}),
  prometheus: z
    .strictObject({
      /** Expose the OTLP metrics that services send on the admin port's /metrics. */
      enabled: z.boolean().default(true),
      /** Series not updated for this long disappear from /metrics. */
      metric_expiration: duration.default(5 * 60_000),
      /** Most series per metric; points of further label sets fold into one otel_metric_overflow="true" series. */
      max_series_per_metric: positiveInt.default(2000),
      /** Resource attributes copied as labels onto every series of the resource (target_info has them all). */
      promote_resource_attributes: z.array(z.string()).default([]),
      /** Most buckets (+Inf included) of a classic histogram series; finer points have adjacent buckets merged, summaries their quantiles thinned. */
      max_histogram_buckets: z.number().int().min(2).default(160),
      /** Longest label value (UTF-16 code units); longer values are truncated. 0 means no limit. */
      max_label_value_length: z.number().int().nonnegative().default(2048),
      /** Most labels on a series (le and quantile not counted); the point's attributes past it are left out, by name order. */
      max_labels_per_series: positiveInt.default(64),
      /** Delta points that ended longer ago than this (by the receiver's clock) are not added to their cumulative series (counted); 0 means no limit. */
      max_delta_age: duration.default(24 * 60 * 60_000),
    })
    .prefault({}),
  span_metrics: z
    .strictObject({
      /** RED metrics from spans (traces_spanmetrics_*), as Tempo's metrics-generator writes them. */
      enabled: z.boolean().default(true),
      /** Extra label dimensions: attribute keys looked up on the span, then on its resource. */
      dimensions: z.array(z.string()).default([]),
      /** Label every series with `service_version` (the resource's service.version), so releases can be compared; bounded by max_series_per_metric. */
      service_version: z.boolean().default(true),
      /** Span, else resource, attribute whose number (≥ 1) is a span's adjusted count when its tracestate has no `ot=th` sampling threshold (Tempo's span_multiplier_key); empty for none. */
      span_multiplier_key: z.string().default(''),
      /** Latency histogram bounds in seconds; Tempo's default is 2 ms doubling up to 16.384 s. */
      latency_buckets: z.array(z.number().positive()).default(Array.from({ length: 14 }, (_, i) => 0.002 * 2 ** i)),
      /** Most series per span metric; the rest fold into one otel_metric_overflow="true" series. */
      max_series_per_metric: positiveInt.default(10_000),
      /** Series without spans for this long disappear. */
      metric_expiration: duration.default(15 * 60_000),
    })
    .prefault({}),
  event_metrics: z
    .strictObject({
      /** Business-event counts (sonde_events_total) from log records that carry an event name. */
      enabled: z.boolean().default(true),
      /** The record attribute that names the event's consent category (the `category` label). */
      category_attribute: z.string().default('sonde.consent.category'),
      /** Extra label dimensions: attribute keys looked up on the record, then on its resource. */
      dimensions: z.array(z.string()).default([]),
      /** Most series; the rest fold into one otel_metric_overflow="true" series. */
      max_series_per_metric: positiveInt.default(2_000),
      /** Series without events for this long disappear. */
      metric_expiration: duration.default(15 * 60_000),
    })
    .prefault({}),
  erasure: z
    .strictObject({
      /** POST /api/admin/erase on the admin port: tombstones one subject's data in the embedded stores. */
      enabled: z.boolean().default(true),
      /** Attribute keys whose value identifies a subject; the trace store indexes them so their traces can be found. */
      subject_keys: z
        .array(z.string().min(1))
        .default(['enduser.pseudo.id', 'user.pseudo.id', 'sonde.consent.subject']),
      /** Most traces one erasure may tombstone (more: the call is refused, nothing erased). */
      max_traces: positiveInt.default(10_000),
    })
    .prefault({}),
  consent_people: z
    .strictObject({
      /** Distinct people per consent category and choice (sonde_consent_people) from consent choice records. */
      enabled: z.boolean().default(true),
      /** HyperLogLog precision: 2^precision registers per sketch; standard error 1.04/√(2^precision) (14: 0.81%). */
      precision: z.number().int().min(4).max(18).default(14),
    })
    .prefault({}),
  service_graph: z
    .strictObject({
      /** Service-graph metrics from client/server and producer/consumer span pairs (traces_service_graph_*). */
      enabled: z.boolean().default(true),
      /** How long half of an edge waits for its other half. */
      wait: duration.default(10_000),
      /** Edges waiting at once; spans past it are dropped and counted. */
      max_items: positiveInt.default(10_000),
      /** Span, else resource, attribute whose number (≥ 1) is a span's adjusted count when its tracestate has no `ot=th` sampling threshold (Tempo's span_multiplier_key); empty for none. */
      span_multiplier_key: z.string().default(''),
      /** Request latency histogram bounds in seconds (Tempo's default). */
      latency_buckets: z.array(z.number().positive()).default([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8]),
      /** Most series per service-graph metric. */
      max_series_per_metric: positiveInt.default(10_000),
      /** Series without requests for this long disappear. */
      metric_expiration: duration.default(15 * 60_000),
    })
    .prefault({}),
  /** Forwarding of traces to Tempo (or any OTLP/HTTP traces endpoint), to <endpoint>/v1/traces. */
  tempo: otlpExporterSection(tempoEndpoint, 'SONDE_TEMPO_HEADERS'),
  /** Forwarding of logs to Loki's OTLP intake (or any OTLP/HTTP logs endpoint), to <endpoint>/otlp/v1/logs. */
  loki: otlpExporterSection(lokiEndpoint, 'SONDE_LOKI_HEADERS'),
  redaction: z
    .strictObject({
      /**
       * Apply the redaction rules (@sonde/redact) to everything received, before any consumer sees it.
       * On by default: services not instrumented with Sonde send personal data and secrets unredacted.
       */
      enabled: z.boolean().default(true),
      /** `block`: every attribute key passes except the blocked ones. `allow`: only `allow_keys` pass. */
      mode: z.enum(['block', 'allow']).default('block'),
      /** Keys that pass (`*` wildcards); in allow mode every other top-level attribute key is dropped. */
      allow_keys: z.array(z.string().min(1)).default([]),
      /** Keys dropped, in addition to the built-in list (password, token, authorization, cookie, ...). */
      block_keys: z.array(z.string().min(1)).default([]),
      /** Value detectors to run: email, card, ip, bearer, url_secret. */
      detectors: z.array(z.enum(DETECTORS as [string, ...string[]])).default([...DETECTORS]),
      /** What an email, card number or IP found in a value becomes: a `[REDACTED:email]` mask or a keyed pseudonym. */
      action: z.enum(['mask', 'pseudonymize']).default('mask'),
      /** HMAC-SHA256 key of the pseudonyms (16+ characters); better from SONDE_HMAC_KEY than from the file. */
      hmac_key: z.string().default(''),
      /**
       * Keys whose whole value becomes its pseudonym (enduser.id is emitted as enduser.pseudo.id), on top
       * of END_USER_KEYS (pseudonymized with hmac_key, dropped without it).
       */
      pseudonymize_keys: z.array(z.string().min(1)).default([]),
    })
    .superRefine((v, ctx) => {
      if (!v.enabled) return;
      try {
        parseRedactionConfig(toRedactionConfig(v));
      } catch (err) {
        // "redaction.hmac_key: required ..." → path hmac_key, message "required ..."; never holds the key.
        const m = /^redaction\.([a-z_]+)(?:\[\d+\])?: (.*)$/s.exec((err as Error).message);
        ctx.addIssue({ code: 'custom', path: m ? [m[1]] : [], message: m ? m[2] : (err as Error).message });
      }
    })
    .prefault({}),
  // --- trace_store (embedded trace store with Tempo's query API: src/trace-store/) ---
  trace_store: z
    .strictObject({
      ...embeddedStore('traces.db'),
      /** Attribute keys (on spans or resources) indexed for tag search; service.name, name, status, kind and duration always are. */
      indexed_attributes: z
        .array(z.string().min(1))
        .default(['http.route', 'http.request.method', 'http.response.status_code', 'db.system.name']),
    })
    .prefault({}),
  // --- end trace_store ---
  // --- log_store (embedded log store with Loki's query API, on the same engine: src/log-store/, src/blob-store/) ---
  log_store: z
    .strictObject({
      ...embeddedStore('logs.db'),
      /** Loki's query API: the largest `limit` a log query may ask for (Loki's max_entries_limit_per_query). */
      max_entries_limit_per_query: positiveInt.default(5000),
      /** Loki's query API: series a metric query may return (Loki's max_query_series). */
      max_query_series: positiveInt.default(500),
      /** Loki's query API: series (or label names) in one bucket of an `/index/volume(_range)` answer (Loki's volume_max_series). */
      volume_max_series: positiveInt.default(1000),
      /** Loki's query API: the longest time range a query may cover (Loki's max_query_length). */
      max_query_length: duration.default(721 * 3600_000),
      /** Loki's query API: queries answered at once; more are refused with 429 + Retry-After. */
      max_concurrent_queries: positiveInt.default(8),
    })
    .prefault({}),
  // --- end log_store ---
  debug: z
    .strictObject({
      /** How many recent items of each signal are kept in memory for GET /debug/recent (0 turns it off). */
      recent_items: z.number().int().nonnegative().default(1000),
      /** /debug/recent responses being rendered and sent at once; more are answered 503 + Retry-After. */
      max_concurrent_renders: positiveInt.default(4),
      /** A /debug/recent response whose client takes nothing for this long is cut off (its connection closed). */
      write_timeout: duration.default(30_000).refine((ms) => ms > 0, 'must be more than 0'),
    })
    .prefault({}),
  log: z
    .strictObject({
      /** pino level: fatal, error, warn, info, debug, trace or silent. At debug, every request is logged. */
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Interval of the "received" summary line at info level (0 turns it off). */
      summary_interval: duration.default(60_000),
    })
    .prefault({}),
  /** Bounded time to drain in-flight requests on SIGTERM/SIGINT. */
  shutdown_timeout: duration.default(10_000),
  /** Directory for persistent state (export queue, trace store). */
  data_dir: z.string().min(1).default('./.sonde-data'),
});

/**
 * End-user id keys: pseudonymized when `redaction.hmac_key` is set, dropped otherwise (never passed in
 * clear). Listing one in `allow_keys` by its exact name lets it pass.
 */
export const END_USER_KEYS: readonly string[] = ['enduser.id', 'user.id'];

/** The `redaction:` section as @sonde/redact takes it (END_USER_KEYS added to pseudonymize_keys or block_keys). */
export function toRedactionConfig(r: {
  mode: 'block' | 'allow';
  allow_keys: string[];
  block_keys: string[];
  detectors: string[];
  action: 'mask' | 'pseudonymize';
  hmac_key: string;
  pseudonymize_keys: string[];
}): RedactionConfig {
  const keyed = r.hmac_key !== '';
  const allowed = new Set(r.allow_keys.map((k) => k.toLowerCase()));
  const endUser = END_USER_KEYS.filter((k) => !allowed.has(k));
  return {
    mode: r.mode,
    allow_keys: r.allow_keys,
    block_keys: keyed ? r.block_keys : [...new Set([...r.block_keys, ...endUser])],
    detectors: r.detectors as RedactionConfig['detectors'],
    action: r.action,
    hmac_key: keyed ? r.hmac_key : undefined,
    pseudonymize_keys: keyed ? [...new Set([...r.pseudonymize_keys, ...endUser])] : r.pseudonymize_keys,
  };
}

/** The validated configuration, with every default filled in. */
export type ReceiverConfig = z.output<typeof configSchema>;
/** What a configuration file may contain (every key optional). */
export type ReceiverConfigInput = z.input<typeof configSchema>;

/**
 * The receiver's own metrics, on the admin port's /metrics. Names follow the Collector's
 * (`otelcol_receiver_accepted_spans` → `sonde_receiver_accepted_spans_total`) so that people who know
 * one know the other. Every metric is registered on a private registry, never prom-client's global one.
 */
import { type Counter, collectDefaultMetrics, type Histogram, Registry } from 'prom-client';
import { type MetricHandles, type MetricTable, registerMetrics } from './metrics/define';
import type { Signal } from './model';

export type Transport = 'http' | 'grpc';

/** The limits whose hits are counted in sonde_receiver_limit_hits_total{limit}. */
export type LimitName =
  | 'max_request_body_size'
  | 'max_items_per_request'
  | 'max_attributes_per_item'
  | 'max_attribute_value_length'
  | 'max_any_value_depth'
  | 'max_in_flight_bytes'
  | 'memory_limit'
  /** debug.max_concurrent_renders (/debug/recent). */
  | 'max_concurrent_renders'
  /** admin.max_pipelined_requests (signal label empty). */
  | 'max_pipelined_requests'
  | 'max_histogram_buckets'
  | 'max_label_value_length'
  | 'max_labels_per_series'
  /** Loki's query API (log_store.*; signal="logs"): refused queries. */
  | 'max_entries_limit_per_query'
  | 'max_query_series'
  | 'max_volume_series'
  | 'max_query_length'
  | 'max_concurrent_queries'
  | 'query_timeout';

/**
 * The intake's and the admin port's self-metrics (`src/intake/`, `src/admin/`, `src/pipeline/attribute-limits.ts`).
 */
export const RECEIVER_METRICS = {
  acceptedSpans: {
    type: 'counter',
    name: 'sonde_receiver_accepted_spans_total',
    help: 'spans accepted into the pipeline',
    labels: ['transport'],
  },
  acceptedMetricPoints: {
    type: 'counter',
    name: 'sonde_receiver_accepted_metric_points_total',
    help: 'metric points accepted into the pipeline',
    labels: ['transport'],
  },
  acceptedLogRecords: {
    type: 'counter',
    name: 'sonde_receiver_accepted_log_records_total',
    help: 'log records accepted into the pipeline',
    labels: ['transport'],
  },
  refusedSpans: {
    type: 'counter',
    name: 'sonde_receiver_refused_spans_total',
    help: 'spans that were decoded but refused (partial success, overload), by reason',
    labels: ['transport', 'reason'],
  },
  refusedMetricPoints: {
    type: 'counter',
    name: 'sonde_receiver_refused_metric_points_total',
    help: 'metric points that were decoded but refused (partial success, overload), by reason',
    labels: ['transport', 'reason'],
  },
  refusedLogRecords: {
    type: 'counter',
    name: 'sonde_receiver_refused_log_records_total',
    help: 'log records that were decoded but refused (partial success, overload), by reason',
    labels: ['transport', 'reason'],
  },
  refusedRequests: {
    type: 'counter',
    name: 'sonde_receiver_refused_requests_total',
    help: 'Export requests refused whole (malformed, too large, overloaded, ...), by reason',
    labels: ['signal', 'transport', 'reason'],
  },
  requests: {
    type: 'counter',
    name: 'sonde_receiver_requests_total',
    help: 'Export requests by outcome: success, partial_success or refused',
    labels: ['signal', 'transport', 'outcome'],
  },
  requestDuration: {
    type: 'histogram',
    name: 'sonde_receiver_request_duration_seconds',
    help: 'Time from a request body being read to its response, in seconds',
    labels: ['signal', 'transport'],
    unit: 'seconds',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  },
  receivedBytes: {
    type: 'counter',
    name: 'sonde_receiver_received_bytes_total',
    help: 'Request body bytes received, after decompression',
    labels: ['signal', 'transport'],
    unit: 'bytes',
  },
  limitHits: {
    type: 'counter',
    name: 'sonde_receiver_limit_hits_total',
    help: 'Times a configured limit was hit (items truncated, dropped or refused), by limit',
    labels: ['signal', 'limit'],
  },
  inFlightBytes: {
    type: 'gauge',
    name: 'sonde_receiver_in_flight_bytes',
    help: 'Request bytes being processed now (decompressed, plus the estimated size of their decoded form)',
    unit: 'bytes',
  },
  inFlightBytesLimit: {
    type: 'gauge',
    name: 'sonde_receiver_in_flight_bytes_limit',
    help: 'overload.max_in_flight_bytes: the capacity that sonde_receiver_in_flight_bytes is measured against',
  },
  adminRefusedRequests: {
    type: 'counter',
    name: 'sonde_admin_refused_requests_total',
    help: 'Admin port requests refused, by reason (unauthenticated: no valid admin.auth bearer token)',
    labels: ['reason'],
  },
  connectionsRefused: {
    type: 'counter',
    name: 'sonde_receiver_connections_refused_total',
    help: 'Connections closed on arrival because the listener had max_connections open, by listener',
    labels: ['listener'],
  },
  corsPreflights: {
    type: 'counter',
    name: 'sonde_receiver_cors_preflights_total',
    help: 'CORS preflights (OPTIONS) on OTLP/HTTP, by outcome: allowed, origin_not_allowed, cors_disabled; not export requests',
    labels: ['signal', 'outcome'],
  },
  requestTimeouts: {
    type: 'counter',
    name: 'sonde_receiver_request_timeouts_total',
    help: 'Connections closed (and gRPC calls ended) by a timeout (read_header, read, write, idle), by listener and kind',
    labels: ['listener', 'kind'],
  },
} as const satisfies MetricTable;

type Handles = MetricHandles<typeof RECEIVER_METRICS>;

export interface RequestMetrics {
  receivedBytes: Counter.Internal;
  accepted: Counter.Internal;
  duration: Histogram.Internal<string>;
  success: Counter.Internal;
  partialSuccess: Counter.Internal;
  refused: Counter.Internal;
}

export class SelfMetrics {
  readonly registry = new Registry();
  private readonly accepted: Record<Signal, Handles['acceptedSpans']>;
  private readonly refused: Record<Signal, Handles['refusedSpans']>;
  readonly refusedRequests: Handles['refusedRequests'];
  readonly requests: Handles['requests'];
  readonly requestDuration: Handles['requestDuration'];
  readonly receivedBytes: Handles['receivedBytes'];
  readonly limitHits: Handles['limitHits'];
  readonly inFlightBytes: Handles['inFlightBytes'];
  readonly inFlightBytesLimit: Handles['inFlightBytesLimit'];
  readonly adminRefusedRequests: Handles['adminRefusedRequests'];
  readonly connectionsRefused: Handles['connectionsRefused'];
  readonly requestTimeouts: Handles['requestTimeouts'];
  readonly corsPreflights: Handles['corsPreflights'];

  /**
   * The bytes in flight now (set by the intake's Admission), read when /metrics is scraped: the gauge
   * is not set on every acquire and release (four times a request, each hashing its labels).
   */
  inFlightBytesNow: () => number = () => 0;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const self = this;
    const m = registerMetrics(this.registry, RECEIVER_METRICS, {
      inFlightBytes() {
        this.set(self.inFlightBytesNow());
      },
    });
    this.accepted = { traces: m.acceptedSpans, metrics: m.acceptedMetricPoints, logs: m.acceptedLogRecords };
    this.refused = { traces: m.refusedSpans, metrics: m.refusedMetricPoints, logs: m.refusedLogRecords };
    this.refusedRequests = m.refusedRequests;
    this.requests = m.requests;
    this.requestDuration = m.requestDuration;
    this.receivedBytes = m.receivedBytes;
    this.limitHits = m.limitHits;
    this.inFlightBytes = m.inFlightBytes;
    this.inFlightBytesLimit = m.inFlightBytesLimit;
    this.adminRefusedRequests = m.adminRefusedRequests;
    this.connectionsRefused = m.connectionsRefused;
    this.corsPreflights = m.corsPreflights;
    this.requestTimeouts = m.requestTimeouts;
    // The event-loop-delay sampler fires every eventLoopMonitoringPrecision ms: prom-client's 10 ms
    // default woke an idle receiver 100 times a second; at 100 ms a blocked loop still shows in the
    // lag gauges (the delayed tick records it), with 10 samples a second.
    if (options.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'sonde_', eventLoopMonitoringPrecision: 100 });
  }

  private readonly perRequest = new Map<string, RequestMetrics>();

  /**
   * The metrics every request touches, bound to its signal and transport once (prom-client's label
   * lookup hashes the label object on every call, which shows at thousands of requests a second).
   */
  forRequest(signal: Signal, transport: Transport): RequestMetrics {
    const key = `${signal}/${transport}`;
    let m = this.perRequest.get(key);
    if (!m) {
      const labels = { signal, transport };
      m = {
        receivedBytes: this.receivedBytes.labels(labels),
        accepted: this.accepted[signal].labels({ transport }),
        duration: this.requestDuration.labels(labels),
        success: this.requests.labels({ ...labels, outcome: 'success' }),
        partialSuccess: this.requests.labels({ ...labels, outcome: 'partial_success' }),
        refused: this.requests.labels({ ...labels, outcome: 'refused' }),
      };
      this.perRequest.set(key, m);
    }
    return m;
  }

  countRefusedItems(signal: Signal, transport: Transport, reason: string, items: number): void {
    if (items > 0) this.refused[signal].inc({ transport, reason }, items);
  }
}

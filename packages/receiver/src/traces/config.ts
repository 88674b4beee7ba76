/**
 * The sections of the metrics derived from spans: `span_metrics` (traces_spanmetrics_*) and
 * `service_graph` (traces_service_graph_*), with the consumers' defaults (Tempo's metrics-generator's),
 * and their conversion to the consumers' options.
 */
import { z } from 'zod';
import { duration, positiveInt } from '../config/fields';
import {
  DEFAULT_SERVICE_GRAPH_BUCKETS,
  DEFAULT_SERVICE_GRAPH_MAX_ITEMS,
  DEFAULT_SERVICE_GRAPH_WAIT_MS,
  type ServiceGraphOptions,
} from './service-graph';
import { DEFAULT_LATENCY_BUCKETS, type SpanMetricsOptions } from './span-metrics';

/** Span, else resource, attribute whose number (≥ 1) is a span's adjusted count when its tracestate has no `ot=th` sampling threshold (Tempo's span_multiplier_key); empty for none. */
const spanMultiplierKey = z.string().default('');

export const spanMetricsSection = z
  .strictObject({
    /** RED metrics from spans (traces_spanmetrics_*), as Tempo's metrics-generator writes them. */
    enabled: z.boolean().default(true),
    /** Extra label dimensions: attribute keys looked up on the span, then on its resource. */
    dimensions: z.array(z.string()).default([]),
    /** Label every series with `service_version` (the resource's service.version), so releases can be compared; bounded by max_series_per_metric. */
    service_version: z.boolean().default(true),
    span_multiplier_key: spanMultiplierKey,
    /** Latency histogram bounds in seconds; Tempo's default is 2 ms doubling up to 16.384 s. */
    latency_buckets: z.array(z.number().positive()).default(DEFAULT_LATENCY_BUCKETS),
    /** Most series per span metric; the rest fold into one otel_metric_overflow="true" series. */
    max_series_per_metric: positiveInt.default(10_000),
    /** Series without spans for this long disappear. */
    metric_expiration: duration.default(15 * 60_000),
  })
  .prefault({});

export const serviceGraphSection = z
  .strictObject({
    /** Service-graph metrics from client/server and producer/consumer span pairs (traces_service_graph_*). */
    enabled: z.boolean().default(true),
    /** How long half of an edge waits for its other half. */
    wait: duration.default(DEFAULT_SERVICE_GRAPH_WAIT_MS),
    /** Edges waiting at once; spans past it are dropped and counted. */
    max_items: positiveInt.default(DEFAULT_SERVICE_GRAPH_MAX_ITEMS),
    span_multiplier_key: spanMultiplierKey,
    /** Request latency histogram bounds in seconds (Tempo's default). */
    latency_buckets: z.array(z.number().positive()).default(DEFAULT_SERVICE_GRAPH_BUCKETS),
    /** Most series per service-graph metric. */
    max_series_per_metric: positiveInt.default(10_000),
    /** Series without requests for this long disappear. */
    metric_expiration: duration.default(15 * 60_000),
  })
  .prefault({});

export type SpanMetricsConfig = z.output<typeof spanMetricsSection>;
export type ServiceGraphConfig = z.output<typeof serviceGraphSection>;

export function toSpanMetricsOptions(c: SpanMetricsConfig): SpanMetricsOptions {
  return {
    dimensions: c.dimensions,
    serviceVersion: c.service_version,
    spanMultiplierKey: c.span_multiplier_key,
    latencyBuckets: c.latency_buckets,
    maxSeriesPerMetric: c.max_series_per_metric,
    metricExpirationMs: c.metric_expiration,
  };
}

export function toServiceGraphOptions(c: ServiceGraphConfig): ServiceGraphOptions {
  return {
    waitMs: c.wait,
    maxItems: c.max_items,
    latencyBuckets: c.latency_buckets,
    maxSeriesPerMetric: c.max_series_per_metric,
    metricExpirationMs: c.metric_expiration,
    spanMultiplierKey: c.span_multiplier_key,
  };
}

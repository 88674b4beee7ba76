/**
 * The `prometheus:` section (OTLP metrics exposed on /metrics), whose bounds default to the
 * consumer's own (PROMETHEUS_DEFAULTS), and the conversion to PrometheusOptions.
 */
import { z } from 'zod';
import { duration, positiveInt } from '../config/fields';
import { PROMETHEUS_DEFAULTS, type PrometheusOptions } from './consumer';

export const prometheusSection = z
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
    max_histogram_buckets: z.number().int().min(2).default(PROMETHEUS_DEFAULTS.maxHistogramBuckets),
    /** Longest label value (UTF-16 code units); longer values are truncated. 0 means no limit. */
    max_label_value_length: z.number().int().nonnegative().default(PROMETHEUS_DEFAULTS.maxLabelValueLength),
    /** Most labels on a series (le and quantile not counted); the point's attributes past it are left out, by name order. */
    max_labels_per_series: positiveInt.default(PROMETHEUS_DEFAULTS.maxLabelsPerSeries),
    /** Delta points that ended longer ago than this (by the receiver's clock) are not added to their cumulative series (counted); 0 means no limit (the library's default when the option is left out). */
    max_delta_age: duration.default(24 * 60 * 60_000),
  })
  .prefault({});

export type PrometheusConfig = z.output<typeof prometheusSection>;

/** The consumer's options from the section; `onLimit` and `takenElsewhere` are the caller's. */
export function toPrometheusOptions(
  c: PrometheusConfig,
  hooks: Pick<PrometheusOptions, 'onLimit' | 'takenElsewhere'>,
): PrometheusOptions {
  return {
    metricExpirationMs: c.metric_expiration,
    maxSeriesPerMetric: c.max_series_per_metric,
    promoteResourceAttributes: c.promote_resource_attributes,
    maxHistogramBuckets: c.max_histogram_buckets,
    maxLabelValueLength: c.max_label_value_length,
    maxLabelsPerSeries: c.max_labels_per_series,
    maxDeltaAgeMs: c.max_delta_age,
    ...hooks,
  };
}

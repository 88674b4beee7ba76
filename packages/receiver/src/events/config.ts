/** The `event_metrics:` section (sonde_events_total from log records that carry an event name) and its conversion. */
import { z } from 'zod';
import { duration, positiveInt } from '../config/fields';
import type { EventMetricsOptions } from './event-metrics';

export const eventMetricsSection = z
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
  .prefault({});

export type EventMetricsConfig = z.output<typeof eventMetricsSection>;

export function toEventMetricsOptions(c: EventMetricsConfig): EventMetricsOptions {
  return {
    categoryAttribute: c.category_attribute,
    dimensions: c.dimensions,
    maxSeriesPerMetric: c.max_series_per_metric,
    metricExpirationMs: c.metric_expiration,
  };
}

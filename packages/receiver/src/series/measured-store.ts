/**
 * A MetricStore as every stage that writes series to /metrics needs it: with its self-metrics on the
 * receiver's registry, all named from one prefix, and a timer that removes expired series.
 *
 * - `<prefix>_dropped_points_total{reason}`: updates not recorded (conflicts, temporality, old deltas, overflow)
 * - `<prefix>_series_resets_total`: cumulative series restarted (new start times; deltas never reset)
 * - `<prefix>_overflow_points_total`: updates folded into an otel_metric_overflow="true" series
 * - `<prefix>_expired_series_total`: series removed after their expiration
 * - `<prefix>_series`: series on /metrics now
 */
import type { Registry } from 'prom-client';
import { registerMetrics } from '../metrics/define';
import { measuredStoreMetrics } from './metrics';
import type { PromType } from './naming';
import { type Family, MetricStore, type StoreOptions } from './store';

export interface MeasuredStore {
  store: MetricStore;
  /** Stops the expiry timer. */
  stop(): void;
}

export function createMeasuredStore(
  prefix: string,
  what: string,
  options: StoreOptions,
  registry: Registry,
  onConflict: (family: Family, type: PromType, unit: string) => void,
  now: () => number = Date.now,
  onConflictingWriter?: (family: Family, labels: string) => void,
): MeasuredStore {
  const { dropped, resets, overflow, expired } = registerMetrics(registry, measuredStoreMetrics(prefix, what), {
    // Read at scrape time, once the store below exists.
    series() {
      this.set(store.activeSeries);
    },
  });
  const store = new MetricStore(
    options,
    {
      dropped: (reason, points) => dropped.inc({ reason }, points),
      reset: () => resets.inc(),
      overflow: () => overflow.inc(),
      expired: (n) => expired.inc(n),
      conflictingWriter: onConflictingWriter,
    },
    onConflict,
  );
  const sweeper = setInterval(() => store.sweep(now()), Math.max(1000, options.metricExpirationMs / 10));
  sweeper.unref();
  return { store, stop: () => clearInterval(sweeper) };
}

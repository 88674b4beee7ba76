/**
 * The `log_store:` section: the embedded store's shared keys (blob-store/config.ts) and the limits of
 * Loki's query API, whose defaults are the API's own (LOKI_API_DEFAULTS); its conversion to the store's
 * and the API's options.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { embeddedStoreFields, toBlobStoreOptions } from '../blob-store/config';
import { duration, positiveInt } from '../config/fields';
import { LOKI_API_DEFAULTS, type LokiApiOptions } from './api';
import { LOG_STORE_DURABILITY, type LogStoreOptions } from './log-store';

export const logStoreSection = z
  .strictObject({
    ...embeddedStoreFields('logs.db', LOG_STORE_DURABILITY),
    /** Loki's query API: the largest `limit` a log query may ask for (Loki's max_entries_limit_per_query). */
    max_entries_limit_per_query: positiveInt.default(LOKI_API_DEFAULTS.maxEntriesLimitPerQuery),
    /** Loki's query API: series a metric query may return (Loki's max_query_series). */
    max_query_series: positiveInt.default(LOKI_API_DEFAULTS.maxQuerySeries),
    /** Loki's query API: series (or label names) in one bucket of an `/index/volume(_range)` answer (Loki's volume_max_series). */
    volume_max_series: positiveInt.default(LOKI_API_DEFAULTS.maxVolumeSeries),
    /** Loki's query API: the longest time range a query may cover (Loki's max_query_length). */
    max_query_length: duration.default(Number(LOKI_API_DEFAULTS.maxQueryLengthNs / 1_000_000n)),
    /** Loki's query API: queries answered at once; more are refused with 429 + Retry-After. */
    max_concurrent_queries: positiveInt.default(LOKI_API_DEFAULTS.maxConcurrentQueries),
  })
  .prefault({});

export type LogStoreConfig = z.output<typeof logStoreSection>;

export function toLogStoreOptions(c: LogStoreConfig, dataDir: string): LogStoreOptions {
  return toBlobStoreOptions(c, dataDir);
}

/** Loki's query API over the log store: log_store's query limits; `onLimit` counts each refusal by one. */
export function toLokiApiOptions(c: LogStoreConfig, onLimit: (limit: string) => void, logger: Logger): LokiApiOptions {
  return {
    maxEntriesLimitPerQuery: c.max_entries_limit_per_query,
    maxQuerySeries: c.max_query_series,
    maxVolumeSeries: c.volume_max_series,
    maxQueryLengthNs: BigInt(c.max_query_length) * 1_000_000n,
    queryTimeoutMs: c.query_timeout,
    maxConcurrentQueries: c.max_concurrent_queries,
    onLimit,
    logger,
  };
}

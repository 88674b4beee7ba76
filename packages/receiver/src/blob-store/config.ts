/**
 * The keys both embedded stores (trace_store, log_store) have, because they run on one engine
 * (engine.ts): the database file, retention, size bound, write queue, durability and query threads.
 * The keys' defaults for the engine's optional options are the engine's own (BLOB_STORE_DEFAULTS).
 */
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { duration, positiveInt, size } from '../config/fields';
import { onFullKey, STORE_DROP_OLDEST } from '../queue/on-full';
import { BLOB_STORE_DEFAULTS, type BlobStoreOptions, type Durability } from './engine';

/**
 * A store section's shared keys. `file` is the default database file in data_dir; `auto` turns a
 * store on when its backend (tempo.endpoint, loki.endpoint) is empty.
 */
export const embeddedStoreFields = (file: string, durability: Durability = BLOB_STORE_DEFAULTS.durability) => ({
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
  /** When the write queue is full (queue/on-full.ts): refuse new requests with 503 + Retry-After, or accept them without storing (drop_newest, counted; the former spelling drop is still read, with a deprecation line). No drop_oldest: a queued request is already acknowledged. */
  on_full: onFullKey({
    supported: ['refuse', 'drop_newest'],
    formers: ['drop'],
    unsupported: { drop_oldest: STORE_DROP_OLDEST },
    default: 'refuse',
  }),
  /** wal: a request is journaled and fdatasynced before it is acknowledged, and replayed after a crash; wal_async: journaled (written, so kill -9 loses nothing) before it is acknowledged, fdatasynced in the background (a power loss can lose the last milliseconds); memory: acknowledged once queued (a crash loses the queue). */
  durability: z.enum(['wal', 'wal_async', 'memory']).default(durability),
  /** With durability: wal, how long the log waits to gather concurrent requests into one write and fdatasync (0: none; each sync takes the requests that arrived during the previous one); with wal_async, how long between two background fdatasyncs (0: back to back). */
  wal_sync_interval: duration.default(BLOB_STORE_DEFAULTS.walSyncIntervalMs),
  /** A write transaction takes at most this many bytes of requests (fewer, larger transactions cost less per item)... */
  batch_max_size: size.default(16 * 1024 * 1024),
  /** ...and waits at most this long for more. */
  batch_timeout: duration.default(100),
  /** How often retention runs. */
  retention_check_interval: duration.default(30_000),
  /** A query running longer is answered 504 and stopped. */
  query_timeout: duration.default(BLOB_STORE_DEFAULTS.queryTimeoutMs).refine((ms) => ms > 0, 'must be more than 0'),
  /** Reader threads answering queries: a slow query holds one of them (at most query_timeout). */
  query_workers: positiveInt.max(64).default(BLOB_STORE_DEFAULTS.queryWorkers),
});

/** The shared keys, once parsed. */
export type EmbeddedStoreConfig = z.output<z.ZodObject<ReturnType<typeof embeddedStoreFields>>>;

/** Whether a store is on: `true`, or `auto` with no backend endpoint to forward to. */
export function storeEnabled(c: Pick<EmbeddedStoreConfig, 'enabled'>, backendEndpoint: string): boolean {
  return c.enabled === true || (c.enabled === 'auto' && !backendEndpoint);
}

/** The engine's options from a store section; a relative path is taken in data_dir. */
export function toBlobStoreOptions(c: EmbeddedStoreConfig, dataDir: string): BlobStoreOptions {
  return {
    path: isAbsolute(c.path) ? c.path : join(dataDir, c.path),
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

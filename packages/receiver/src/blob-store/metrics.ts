/**
 * The self-metrics of an embedded store (the engine in engine.ts): one table for both stores,
 * parameterised by the store's metric prefix (`sonde_trace_store`, `sonde_log_store`), the word for
 * what it stores (`spans`, `records`), how logs name it (`trace store`) and its config section.
 */
import type { MetricTable } from '../metrics/define';

export interface StoreMetricNames {
  /** `sonde_trace_store` */
  metricPrefix: string;
  /** `spans` */
  items: string;
  /** `trace store` */
  what: string;
  /** `trace_store` */
  configKey: string;
}

export function blobStoreMetrics({ metricPrefix: p, items, what, configKey }: StoreMetricNames) {
  const Items = items[0].toUpperCase() + items.slice(1);
  return {
    written: {
      type: 'counter',
      name: `${p}_${items}_written_total`,
      help: `${Items} written to the embedded ${what}`,
    },
    dropped: {
      type: 'counter',
      name: `${p}_dropped_${items}_total`,
      help: `${Items} accepted by the receiver but not stored, by reason (queue_full: the write queue was full with on_full: drop_newest, or the request was larger than it; write_error)`,
      labels: ['reason'],
    },
    refused: {
      type: 'counter',
      name: `${p}_refused_requests_total`,
      help: `Requests refused (503 + Retry-After) because the ${what} write queue was full`,
    },
    deleted: {
      type: 'counter',
      name: `${p}_retention_deleted_${items}_total`,
      help: `${Items} removed by retention (age or size)`,
    },
    usedBytes: {
      type: 'gauge',
      name: `${p}_bytes`,
      help: `Bytes of the ${what} database in use on disk (live pages)`,
      unit: 'bytes',
    },
    maxBytes: {
      type: 'gauge',
      name: `${p}_max_bytes`,
      help: `Size bound of the ${what} (${configKey}.max_size)`,
      unit: 'bytes',
    },
    queueBytes: {
      type: 'gauge',
      name: `${p}_queue_bytes`,
      help: `Bytes of protobuf waiting for the ${what} writer thread`,
      unit: 'bytes',
    },
    queueCapacityBytes: {
      type: 'gauge',
      name: `${p}_queue_capacity_bytes`,
      help: `Bound of the bytes waiting for the ${what} writer thread (${configKey}.queue_size)`,
      unit: 'bytes',
    },
    walReplayed: {
      type: 'counter',
      name: `${p}_wal_replayed_${items}_total`,
      help: `${Items} replayed from the ${what} write-ahead log at start (acknowledged, not yet in the database)`,
    },
    walErrors: {
      type: 'counter',
      name: `${p}_wal_errors_total`,
      help: `Writes or syncs of the ${what} write-ahead log that failed (disk full, I/O error); their requests were refused with 503`,
    },
    queryDuration: {
      type: 'histogram',
      name: `${p}_query_duration_seconds`,
      help: `Time to answer a query from the ${what}, by endpoint`,
      labels: ['endpoint'],
      unit: 'seconds',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    },
    queryTimeouts: {
      type: 'counter',
      name: `${p}_query_timeouts_total`,
      help: `Queries answered 504 because they ran past ${configKey}.query_timeout, by endpoint`,
      labels: ['endpoint'],
    },
    readerRestarts: {
      type: 'counter',
      name: `${p}_reader_restarts_total`,
      help: 'Reader threads terminated (and replaced) because they did not stop a query past its time budget',
    },
  } as const satisfies MetricTable;
}

/** With `durability: wal` only: read from the write-ahead log at scrape time. */
export function blobStoreWalMetrics({ metricPrefix: p, what }: StoreMetricNames) {
  return {
    walBytes: {
      type: 'counter',
      name: `${p}_wal_bytes_total`,
      help: `Bytes appended to the ${what} write-ahead log (record headers included)`,
      unit: 'bytes',
    },
    walSyncs: {
      type: 'counter',
      name: `${p}_wal_syncs_total`,
      help: `fdatasyncs of the ${what} write-ahead log (each made a group of requests durable)`,
    },
    walDiskBytes: {
      type: 'gauge',
      name: `${p}_wal_disk_bytes`,
      help: `Bytes of the ${what} write-ahead log segments on disk`,
      unit: 'bytes',
    },
  } as const satisfies MetricTable;
}

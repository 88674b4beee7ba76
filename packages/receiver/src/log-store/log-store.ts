/**
 * The embedded log store, as a logs consumer and a `LogSource` (loki-entry.ts) for the LogQL engine and
 * Loki's query API: the blob store engine (src/blob-store/engine.ts: byte-bounded write queue with
 * `admit`/`on_full`, write-ahead log, writer thread, reader threads with a query budget, retention
 * and size bound) over the log database (log-db.ts: whole requests in compressed blobs, stream
 * postings, a trace-id index, time extents). Reads run on the reader threads; `select` reads pages of
 * entries (each a query within log_store.query_timeout), so that a `limit` stops reading early.
 */
import type { Registry } from 'prom-client';
import { BlobStore, type BlobStoreOptions, workerScript } from '../blob-store/engine';
import type { Checkpoint } from '../blob-store/reader-protocol';
import type { Logger } from '../logger';
import { encodeLogsRequest } from '../otlp/protobuf/encode-logs';
import { requestPayload } from '../queue/admission';
import { LogDb, type SelectCursor, type SelectPage, VOLUME_LABELS, type VolumeGroup, type VolumeQuery } from './log-db';
import type { LogReaderQuery } from './log-protocol';
import type { LabelMatcher, LogSelection, LogSource, LokiEntry, StreamVolume } from './loki-entry';
import { InvalidMatcherError } from './matchers';
import { LOG_STORE_METRIC_NAMES } from './metrics';

export type LogStoreOptions = BlobStoreOptions;

/**
 * The log store's durability when none is given: `wal_async` (answered once the request is written to
 * the write-ahead log, synced right after), as Loki's ingesters do not sync per push either; the trace
 * store keeps the engine's `wal`.
 */
export const LOG_STORE_DURABILITY = 'wal_async' satisfies BlobStoreOptions['durability'];

/** Entries in a selection's first page; later pages grow to MAX_PAGE. */
const FIRST_PAGE = 1000;
const MAX_PAGE = 16_000;

/** Answers a reader query on a connection (reader thread, or the admin thread when none runs). */
export function answer(db: LogDb, q: LogReaderQuery, checkpoint: Checkpoint): unknown {
  switch (q.op) {
    case 'select':
      return db.selectPage(q, checkpoint);
    case 'labelNames':
      return db.labelNames(q.startNs, q.endNs, q.matchers);
    case 'labelValues':
      return db.labelValues(q.name, q.startNs, q.endNs, q.matchers);
    case 'series':
      return db.series(q.selectors, q.startNs, q.endNs);
    case 'stats':
      return db.stats(q.matchers, q.startNs, q.endNs, checkpoint);
    case 'volume':
      return db.volume(q.matchers, q.bounds, checkpoint);
    case 'countVolume':
      return db.countVolume(q, checkpoint);
  }
}

export class LogStore extends BlobStore<'logs', LogReaderQuery, LogDb> implements LogSource {
  constructor(options: LogStoreOptions, registry: Registry, logger: Logger) {
    super(
      { durability: LOG_STORE_DURABILITY, ...options },
      {
        signal: 'logs',
        ...LOG_STORE_METRIC_NAMES,
        writerScript: workerScript(__dirname, 'log-writer-worker.js'),
        readerScript: workerScript(__dirname, 'log-reader-worker.js'),
        extraSettings: {},
        // A changed request (redaction, attribute limits) is encoded again, into a buffer of about its
        // arrived size (no growing copies).
        encode: (batch) =>
          requestPayload(batch, (data) =>
            encodeLogsRequest(data, batch.context.raw ? batch.context.raw.length + 256 : 4096),
          ),
        openLocal: (path) => LogDb.open(path, { reader: true }),
        errorOf: (name, message) => (name === 'InvalidMatcherError' ? new InvalidMatcherError(message) : undefined),
      },
      registry,
      logger,
    );
  }

  private ask<T>(q: LogReaderQuery, signal?: AbortSignal): Promise<T> {
    return this.query<T>(q, (db, checkpoint) => answer(db, q, checkpoint) as T, signal);
  }

  async *select(selection: LogSelection): AsyncIterable<LokiEntry> {
    const { signal, ...rest } = selection;
    let after: SelectCursor | undefined;
    let max = FIRST_PAGE;
    for (;;) {
      const page = await this.ask<SelectPage>({ op: 'select', ...rest, after, max }, signal);
      for (const e of page.entries) yield e;
      if (!page.next) return;
      after = page.next;
      max = Math.min(max * 4, MAX_PAGE);
    }
  }

  readonly countVolumeLabels = VOLUME_LABELS;

  /** Counts by level and detected_level in step windows, from the store's level index (log-db.ts). */
  countVolume(q: VolumeQuery, signal?: AbortSignal): Promise<VolumeGroup[]> {
    return this.ask({ op: 'countVolume', ...q }, signal);
  }

  labelNames(startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): Promise<string[]> {
    return this.ask({ op: 'labelNames', startNs, endNs, matchers });
  }

  labelValues(name: string, startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): Promise<string[]> {
    return this.ask({ op: 'labelValues', name, startNs, endNs, matchers });
  }

  series(selectors: LabelMatcher[][], startNs: bigint, endNs: bigint): Promise<Record<string, string>[]> {
    return this.ask({ op: 'series', selectors, startNs, endNs });
  }

  stats(
    matchers: LabelMatcher[],
    startNs: bigint,
    endNs: bigint,
  ): Promise<{ streams: number; chunks: number; bytes: number; entries: number }> {
    return this.ask({ op: 'stats', matchers, startNs, endNs });
  }

  volume(matchers: LabelMatcher[], bounds: bigint[], signal?: AbortSignal): Promise<StreamVolume[]> {
    return this.ask({ op: 'volume', matchers, bounds }, signal);
  }
}

/**
 * The embedded trace store, as a traces consumer: the blob store engine (src/blob-store/engine.ts:
 * byte-bounded write queue with `admit`/`on_full`, write-ahead log, writer thread, reader threads
 * with a query budget, retention and size bound) over the trace database (db.ts: spans indexed by
 * blob-index.ts into postings, trace-id buckets with bloom filters and tag values; scanned by
 * scan.ts). Queries (the Tempo API) run on the reader threads (reader-worker.ts).
 */
import type { Registry } from 'prom-client';
import { BlobStore, type BlobStoreOptions, workerScript } from '../blob-store/engine';
import type { Logger } from '../logger';
import { encodeTraceRequest } from '../otlp/protobuf/encode-traces';
import { requestPayload } from '../queue/admission';
import { TraceDb } from './db';
import { TRACE_STORE_METRIC_NAMES } from './metrics';
import type { ReaderQuery } from './reader-protocol';
import { type SearchOptions, type SearchResult, search, tagNames, tagValues } from './search';
import { type SpansetQuery, UnsupportedQueryError } from './traceql';

export interface TraceStoreOptions extends BlobStoreOptions {
  /** Attribute keys (looked up on spans and resources) indexed for search. */
  indexedAttributes: string[];
}

export class TraceStore extends BlobStore<'traces', ReaderQuery, TraceDb> {
  declare readonly options: TraceStoreOptions;

  constructor(options: TraceStoreOptions, registry: Registry, logger: Logger) {
    super(
      options,
      {
        signal: 'traces',
        ...TRACE_STORE_METRIC_NAMES,
        writerScript: workerScript(__dirname, 'writer-worker.js'),
        readerScript: workerScript(__dirname, 'reader-worker.js'),
        extraSettings: { indexedAttributes: options.indexedAttributes },
        encode: (batch) => requestPayload(batch, encodeTraceRequest),
        openLocal: (path) => TraceDb.open(path, { reader: true, indexedAttributes: options.indexedAttributes }),
        errorOf: (name, message) => (name === 'UnsupportedQueryError' ? new UnsupportedQueryError(message) : undefined),
      },
      registry,
      logger,
    );
  }

  /** The stored chunks (encoded ResourceSpans) of a trace, read on the reader thread. */
  async traceChunks(traceId: Buffer, startNs?: bigint, endNs?: bigint, signal?: AbortSignal): Promise<Buffer[]> {
    const r = await this.query<Buffer[] | { data: Uint8Array; lengths: number[] }>(
      { op: 'trace', traceId, startNs, endNs },
      (db, checkpoint) => db.traceChunks(traceId, startNs, endNs, checkpoint),
      signal,
    );
    if (Array.isArray(r)) return r;
    const data = Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
    const out: Buffer[] = [];
    let at = 0;
    for (const n of r.lengths) {
      out.push(data.subarray(at, at + n));
      at += n;
    }
    return out;
  }

  search(query: SpansetQuery, options: SearchOptions, signal?: AbortSignal): Promise<SearchResult> {
    return this.query(
      { op: 'search', query, options },
      (db, checkpoint) => search(db, query, options, checkpoint),
      signal,
    );
  }

  tagNames(signal?: AbortSignal): Promise<{ resource: string[]; span: string[] }> {
    return this.query({ op: 'tagNames' }, (db, checkpoint) => tagNames(db, checkpoint), signal);
  }

  tagValues(tag: string, limit: number, signal?: AbortSignal): Promise<{ type: string; value: string }[]> {
    return this.query({ op: 'tagValues', tag, limit }, (db) => tagValues(db, tag, limit), signal);
  }
}

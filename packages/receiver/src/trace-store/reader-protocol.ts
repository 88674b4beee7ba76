/** Messages between the TraceStore (admin server's thread) and its reader threads. */
import type { SearchOptions } from './search';
import type { SpansetQuery } from './traceql';

export interface ReaderSettings {
  path: string;
  indexedAttributes: string[];
  /**
   * One Int32 the admin thread sets to the id of a query to stop (its deadline passed, or its client
   * left); the reader checks it, and the query's deadline, between the steps of a query.
   */
  cancel: SharedArrayBuffer;
}

export type ReaderQuery =
  | { op: 'trace'; traceId: Uint8Array; startNs?: bigint; endNs?: bigint }
  | { op: 'search'; query: SpansetQuery; options: SearchOptions }
  | { op: 'tagNames' }
  | { op: 'tagValues'; tag: string; limit: number };

/** `deadline`: Date.now() past which the query stops (QueryTimeoutError). */
export type ToReader = (ReaderQuery & { type: 'query'; id: number; deadline: number }) | { type: 'close' };

export type FromReader =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; name: string; message: string };

/** A query ran past trace_store.query_timeout (answered 504). */
export class QueryTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryTimeoutError';
  }
}

/** A query was stopped because its client left (or its answer was no longer wanted). */
export class QueryCancelledError extends Error {
  constructor(message = 'the query was cancelled') {
    super(message);
    this.name = 'QueryCancelledError';
  }
}

/** No reader could answer (a reader thread failed): answered 503, the client may retry. */
export class ReaderUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReaderUnavailableError';
  }
}

/** Called between the steps of a query (blobs, traces): throws once the query must stop. */
export type Checkpoint = () => void;

export const NO_CHECKPOINT: Checkpoint = () => {};

/** A checkpoint that throws QueryTimeoutError past `deadline` (Date.now()), and QueryCancelledError when `cancelled()`. */
export function checkpointFor(deadline: number, cancelled: () => boolean = () => false): Checkpoint {
  return () => {
    if (cancelled()) throw new QueryCancelledError();
    if (Date.now() > deadline) throw new QueryTimeoutError('the query ran past trace_store.query_timeout');
  };
}

export function timeoutMessage(timeoutMs: number): string {
  return `the query ran past trace_store.query_timeout (${timeoutMs} ms) and was stopped: narrow it (a shorter time range, an attribute equality, a smaller limit)`;
}

/** Messages between a blob store (admin server's thread) and its reader threads, and the query budget's errors. */

/** A query to a reader, with its id and deadline (Date.now() past which the query stops: QueryTimeoutError). */
export type ToReader<Q = { op: string }> = (Q & { type: 'query'; id: number; deadline: number }) | { type: 'close' };

export type FromReader =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; name: string; message: string };

/** A query ran past its store's query_timeout (answered 504). */
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
export function checkpointFor(
  deadline: number,
  cancelled: () => boolean = () => false,
  configKey = 'trace_store',
): Checkpoint {
  return () => {
    if (cancelled()) throw new QueryCancelledError();
    if (Date.now() > deadline) throw new QueryTimeoutError(`the query ran past ${configKey}.query_timeout`);
  };
}

export function timeoutMessage(timeoutMs: number, configKey = 'trace_store'): string {
  return `the query ran past ${configKey}.query_timeout (${timeoutMs} ms) and was stopped: narrow it (a shorter time range, an attribute equality, a smaller limit)`;
}

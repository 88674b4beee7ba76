/** Messages between the TraceStore (admin server's thread) and its reader threads (generic parts: src/blob-store/reader-protocol.ts). */
import type { ToReader as BlobToReader } from '../blob-store/reader-protocol';
import type { SearchOptions } from './search';
import type { SpansetQuery } from './traceql';

export {
  type Checkpoint,
  checkpointFor,
  type FromReader,
  NO_CHECKPOINT,
  QueryCancelledError,
  QueryTimeoutError,
  ReaderUnavailableError,
  timeoutMessage,
} from '../blob-store/reader-protocol';

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
export type ToReader = BlobToReader<ReaderQuery>;

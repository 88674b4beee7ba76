/** Messages between the TraceStore (admin server's thread) and its reader thread. */
import type { SearchOptions } from './search';
import type { SpansetQuery } from './traceql';

export interface ReaderSettings {
  path: string;
  indexedAttributes: string[];
}

export type ReaderQuery =
  | { op: 'trace'; traceId: Uint8Array; startNs?: bigint; endNs?: bigint }
  | { op: 'search'; query: SpansetQuery; options: SearchOptions }
  | { op: 'tagNames' }
  | { op: 'tagValues'; tag: string; limit: number };

export type ToReader = (ReaderQuery & { type: 'query'; id: number }) | { type: 'close' };

export type FromReader =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; name: string; message: string };

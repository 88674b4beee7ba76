/** Messages between the TraceStore consumer (intake thread) and its writer thread. */

export interface WriterSettings {
  path: string;
  indexedAttributes: string[];
  retentionMs: number;
  maxBytes: number;
  batchMaxBytes: number;
  flushIntervalMs: number;
  retentionIntervalMs: number;
  onFull: 'refuse' | 'drop';
}

export type ToWriter =
  | { type: 'write'; body: Uint8Array; receivedMs: number }
  | { type: 'flush'; id: number }
  | { type: 'retention' }
  | { type: 'close' };

export type FromWriter =
  | { type: 'ready'; usedBytes: number; recreatedFromVersion?: number; schemaVersion: number }
  | { type: 'failed'; message: string }
  | { type: 'written'; bytes: number; spans: number; requests: number; ms: number; scanFailed: number }
  | { type: 'write-failed'; bytes: number; spans: number; message: string }
  | { type: 'retention'; batches: number; spans: number; usedBytes: number }
  | { type: 'retention-failed'; message: string }
  | { type: 'flushed'; id: number }
  | { type: 'closed' };

/** Messages between a blob store's consumer (intake thread) and its writer thread (writer-loop.ts). */
import type { WalPosition } from './wal';

export type { WalPosition } from './wal';

export interface WriterSettings {
  path: string;
  retentionMs: number;
  maxBytes: number;
  batchMaxBytes: number;
  flushIntervalMs: number;
  retentionIntervalMs: number;
  /** The store's on_full, its former spelling mapped (queue/on-full.ts). */
  onFull: 'refuse' | 'drop_newest';
  /** wal, wal_async: every write records its log position, and commits with synchronous = FULL (see engine.ts). */
  durability: 'wal' | 'wal_async' | 'memory';
}

/** A request to store: its protobuf, when it arrived, and (with a write-ahead log) where its record ends. */
export interface WriteItem {
  body: Uint8Array;
  receivedMs: number;
  position?: WalPosition;
}

export type ToWriter =
  /** The requests consumed in one turn of the intake thread's event loop, in order: one message for them all. */
  { type: 'writes'; items: WriteItem[] } | { type: 'flush'; id: number } | { type: 'retention' } | { type: 'close' };

/** `spans`: items (spans, log records), as each store counts them. */
export type FromWriter =
  | {
      type: 'ready';
      usedBytes: number;
      recreatedFromVersion?: number;
      schemaVersion: number;
      /** Where the write-ahead log's records stop being stored (undefined: none is). */
      walPosition?: WalPosition;
    }
  | { type: 'failed'; message: string }
  | {
      type: 'written';
      bytes: number;
      spans: number;
      requests: number;
      ms: number;
      scanFailed: number;
      /** The write-ahead log position the batch ended at, now committed. */
      position?: WalPosition;
    }
  | { type: 'write-failed'; bytes: number; spans: number; message: string }
  | { type: 'retention'; batches: number; spans: number; usedBytes: number }
  | { type: 'retention-failed'; message: string }
  | { type: 'flushed'; id: number }
  | { type: 'closed' };

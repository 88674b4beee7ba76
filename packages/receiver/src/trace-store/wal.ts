/** The trace store's write-ahead log: the blob store's (src/blob-store/wal.ts). */
export {
  BlobWal as TraceWal,
  type ReplayRecord,
  type WalOptions,
  type WalPosition,
  type WalRecovery,
} from '../blob-store/wal';

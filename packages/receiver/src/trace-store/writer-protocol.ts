/** Messages between the TraceStore consumer (intake thread) and its writer thread (src/blob-store/writer-protocol.ts). */
import type { WriterSettings as BlobWriterSettings } from '../blob-store/writer-protocol';

export type { FromWriter, ToWriter, WalPosition } from '../blob-store/writer-protocol';

export interface WriterSettings extends BlobWriterSettings {
  indexedAttributes: string[];
}

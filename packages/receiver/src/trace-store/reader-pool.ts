/** The trace store's reader threads: the blob store's pool (src/blob-store/reader-pool.ts). */
export { ReaderPool, type ReaderPoolOptions } from '../blob-store/reader-pool';

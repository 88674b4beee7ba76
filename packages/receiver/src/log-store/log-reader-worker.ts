/** The log store's reader thread: the blob store's reader loop (src/blob-store/reader-loop.ts) answering LogSource's queries. */
import { runReader } from '../blob-store/reader-loop';
import { LogDb } from './log-db';
import type { LogReaderQuery } from './log-protocol';
import { answer } from './log-store';

runReader<LogReaderQuery, LogDb>(
  'log_store',
  (settings) => LogDb.open(settings.path, { reader: true }),
  (db, q, checkpoint) => ({ result: answer(db, q, checkpoint) }),
);

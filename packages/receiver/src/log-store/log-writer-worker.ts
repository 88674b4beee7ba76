/** The log store's writer thread: the blob store's writer loop (src/blob-store/writer-loop.ts) over the log database. */
import { workerData } from 'node:worker_threads';
import { runWriter } from '../blob-store/writer-loop';
import type { WriterSettings } from '../blob-store/writer-protocol';
import { LOG_SCHEMA_VERSION, LogDb } from './log-db';

const settings = workerData as WriterSettings;

runWriter(settings, LOG_SCHEMA_VERSION, () => {
  const db = LogDb.open(settings.path);
  return {
    write: (bodies, receivedMs, position) => db.write(bodies, receivedMs, position),
    enforceRetention: (now, retentionMs, maxBytes) => db.enforceRetention(now, retentionMs, maxBytes),
    usedBytes: () => db.usedBytes(),
    walPosition: () => db.walPosition(),
    recreated: db.recreated,
    exec: (sql) => db.db.exec(sql),
    close: () => db.close(),
  };
});

/**
 * The trace store's writer thread: the blob store's writer loop (src/blob-store/writer-loop.ts) over
 * the trace database (db.ts), which indexes each request's spans (blob-index.ts).
 */
import { workerData } from 'node:worker_threads';
import { runWriter } from '../blob-store/writer-loop';
import { SCHEMA_VERSION, TraceDb } from './db';
import type { WriterSettings } from './writer-protocol';

const settings = workerData as WriterSettings;

runWriter(settings, SCHEMA_VERSION, () => {
  const db = TraceDb.open(settings.path, { indexedAttributes: settings.indexedAttributes });
  return {
    write: (bodies, receivedMs, position) => {
      const r = db.write(bodies, receivedMs, position);
      return { items: r.spans, bytes: r.bytes, failed: r.failed };
    },
    enforceRetention: (now, retentionMs, maxBytes) => {
      const r = db.enforceRetention(now, retentionMs, maxBytes);
      return { batches: r.batches, items: r.spans };
    },
    usedBytes: () => db.usedBytes(),
    walPosition: () => db.walPosition(),
    recreated: db.recreated,
    exec: (sql) => db.db.exec(sql),
    close: () => db.close(),
  };
});

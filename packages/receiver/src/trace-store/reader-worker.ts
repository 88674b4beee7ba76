/**
 * The trace store's reader thread: answers the Tempo API's queries (trace by id, search, tag names and
 * values) through its own read-only connection, so that SQLite's synchronous reads never hold up the
 * intake's thread, and intake work never sits between a query's steps. WAL mode lets it read while the
 * writer thread writes. A query stops at its next step (a blob, a trace) once its deadline passes or
 * the admin thread cancels it (ReaderSettings.cancel); the admin thread terminates a reader that does
 * not stop in time, and starts another.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TraceDb } from './db';
import { checkpointFor, type FromReader, type ReaderSettings, type ToReader } from './reader-protocol';
import { search, tagNames, tagValues } from './search';

const settings = workerData as ReaderSettings;
const port = parentPort;
if (!port) throw new Error('reader-worker.ts runs as a worker thread (started by TraceStore)');
const post = (m: FromReader, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
const cancel = new Int32Array(settings.cancel);

let db: TraceDb;
try {
  db = TraceDb.open(settings.path, { reader: true, indexedAttributes: settings.indexedAttributes });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
  throw err;
}

port.on('message', (m: ToReader) => {
  if (m.type === 'close') {
    db.close();
    port.close();
    return;
  }
  const id = m.id;
  const checkpoint = checkpointFor(m.deadline, () => Atomics.load(cancel, 0) === id);
  try {
    checkpoint();
    switch (m.op) {
      case 'trace': {
        // One buffer with the chunks end to end (one transfer), and their lengths.
        const chunks = db.traceChunks(Buffer.from(m.traceId), m.startNs, m.endNs, checkpoint);
        const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) {
          data.set(c, at);
          at += c.length;
        }
        post(
          {
            type: 'result',
            id: m.id,
            result: { data, lengths: chunks.map((c) => c.length) },
          },
          [data.buffer],
        );
        break;
      }
      case 'search':
        post({ type: 'result', id: m.id, result: search(db, m.query, m.options, checkpoint) });
        break;
      case 'tagNames':
        post({ type: 'result', id: m.id, result: tagNames(db, checkpoint) });
        break;
      case 'tagValues':
        post({ type: 'result', id: m.id, result: tagValues(db, m.tag, m.limit) });
        break;
    }
  } catch (err) {
    post({ type: 'error', id: m.id, name: (err as Error).name, message: (err as Error).message });
  }
});

post({ type: 'ready' });

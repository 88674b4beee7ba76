/**
 * A blob store's reader thread: answers its store's queries through its own read-only connection, so
 * that SQLite's synchronous reads never hold up the intake's thread, and intake work never sits
 * between a query's steps. WAL mode lets it read while the writer thread writes. A query stops at its
 * next step (a blob) once its deadline passes or the admin thread cancels it (the `cancel` flag); the
 * admin thread terminates a reader that does not stop in time, and starts another (reader-pool.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Checkpoint, checkpointFor, type FromReader, type ToReader } from './reader-protocol';

/** A query's answer, and the buffers to move (not copy) with it. */
export interface ReaderAnswer {
  result: unknown;
  transfer?: ArrayBuffer[];
}

/** Runs the reader loop on this worker thread: `handle` answers a query on the connection `open` returns. */
export function runReader<Q extends { op: string }, Db extends { close(): void }>(
  configKey: string,
  open: (settings: { path: string; cancel: SharedArrayBuffer } & Record<string, unknown>) => Db,
  handle: (db: Db, query: Q, checkpoint: Checkpoint) => ReaderAnswer,
): void {
  const settings = workerData as { path: string; cancel: SharedArrayBuffer } & Record<string, unknown>;
  const port = parentPort;
  if (!port) throw new Error('the reader runs as a worker thread (started by its store)');
  const post = (m: FromReader, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const cancel = new Int32Array(settings.cancel);

  let db: Db;
  try {
    db = open(settings);
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
    throw err;
  }

  port.on('message', (m: ToReader<Q>) => {
    if (m.type === 'close') {
      db.close();
      port.close();
      return;
    }
    const id = m.id;
    const checkpoint = checkpointFor(m.deadline, () => Atomics.load(cancel, 0) === id, configKey);
    try {
      checkpoint();
      const answer = handle(db, m as unknown as Q, checkpoint);
      post({ type: 'result', id, result: answer.result }, answer.transfer);
    } catch (err) {
      post({ type: 'error', id, name: (err as Error).name, message: (err as Error).message });
    }
  });

  post({ type: 'ready' });
}

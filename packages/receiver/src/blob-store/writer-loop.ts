/**
 * A blob store's writer thread: receives request bodies from the store's consumer (engine.ts), writes
 * them to SQLite in batched transactions through the store's database (`StoreWriter`: how a request
 * is indexed is the signal's part), and applies retention on a timer. SQLite calls are synchronous:
 * here they never hold up the intake's thread.
 */
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import type { WalPosition } from './wal';
import type { FromWriter, ToWriter, WriterSettings } from './writer-protocol';

const WRITER_NICENESS = 10;

/** What the writer loop needs of a store's database (TraceDb, LogDb). */
export interface StoreWriter {
  /** Writes bodies in one transaction; throws (rolled back) with `items` lost on failure. */
  write(
    bodies: readonly Buffer[],
    receivedMs: number,
    walPosition?: WalPosition,
  ): { items: number; bytes: number; failed: number };
  enforceRetention(nowMs: number, retentionMs: number, maxBytes: number): { batches: number; items: number };
  usedBytes(): number;
  walPosition(): WalPosition | undefined;
  /** Set at open when a store written with another schema version was removed. */
  recreated: { fromVersion: number } | undefined;
  /** Runs SQL on the connection (pragmas). */
  exec(sql: string): void;
  close(): void;
}

/** A failed write's lost items, when the store knows them. */
export function lostItems(err: unknown): number {
  const n = (err as { items?: unknown; spans?: unknown }).items ?? (err as { spans?: unknown }).spans;
  return typeof n === 'number' ? n : 0;
}

/** Runs the writer loop on this worker thread over the database `open` returns. */
export function runWriter(settings: WriterSettings, schemaVersion: number, open: () => StoreWriter): void {
  // With on_full: drop_newest (the former drop), the store is best effort: the writer yields the CPU to intake (on Linux,
  // setpriority(PRIO_PROCESS, 0) concerns the calling thread only, so this lowers this thread's priority
  // and not the receiver's). With refuse, intake waits for the store anyway when the queue is full, so
  // the writer keeps the receiver's priority.
  if (settings.onFull === 'drop_newest') {
    try {
      setPriority(0, WRITER_NICENESS);
    } catch {
      // Not permitted or not supported here: the writer runs at the receiver's priority.
    }
  }
  const port = parentPort;
  if (!port) throw new Error('the writer runs as a worker thread (started by its store)');
  const post = (m: FromWriter) => port.postMessage(m);

  let db: StoreWriter;
  try {
    db = open();
    // With the write-ahead log, a committed transaction lets its log segments be deleted: it must survive
    // a power loss too (NORMAL syncs SQLite's own WAL at checkpoints only), at one fsync per transaction.
    if (settings.durability !== 'memory') db.exec('PRAGMA synchronous = FULL');
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
    throw err;
  }

  let pending: { body: Uint8Array; receivedMs: number; position?: WalPosition }[] = [];
  let pendingBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let closing = false;

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const items = pending;
    const bytes = pendingBytes;
    pending = [];
    pendingBytes = 0;
    const started = performance.now();
    let receivedMs = 0;
    let position: WalPosition | undefined;
    const bodies: Buffer[] = [];
    for (const item of items) {
      bodies.push(Buffer.from(item.body.buffer, item.body.byteOffset, item.body.byteLength));
      if (item.receivedMs > receivedMs) receivedMs = item.receivedMs;
      const p = item.position;
      if (
        p &&
        (!position || p.segment > position.segment || (p.segment === position.segment && p.offset > position.offset))
      ) {
        position = p;
      }
    }
    try {
      const written = db.write(bodies, receivedMs, position);
      post({
        type: 'written',
        bytes,
        spans: written.items,
        requests: items.length,
        ms: performance.now() - started,
        scanFailed: written.failed,
        position,
      });
    } catch (err) {
      post({ type: 'write-failed', bytes, spans: lostItems(err), message: (err as Error).message });
    }
  }

  function retention(): void {
    try {
      const removed = db.enforceRetention(Date.now(), settings.retentionMs, settings.maxBytes);
      post({ type: 'retention', batches: removed.batches, spans: removed.items, usedBytes: db.usedBytes() });
    } catch (err) {
      post({ type: 'retention-failed', message: (err as Error).message });
    }
  }

  port.on('message', (m: ToWriter) => {
    if (m.type === 'writes') {
      for (const item of m.items) {
        pending.push(item);
        pendingBytes += item.body.byteLength;
        if (pendingBytes >= settings.batchMaxBytes) flush();
      }
      if (pending.length > 0 && !timer && !closing) timer = setTimeout(flush, settings.flushIntervalMs);
    } else if (m.type === 'flush') {
      flush();
      post({ type: 'flushed', id: m.id });
    } else if (m.type === 'retention') {
      retention();
    } else if (m.type === 'close') {
      closing = true;
      flush();
      clearInterval(retentionTimer);
      try {
        db.exec('PRAGMA optimize');
        db.close();
      } finally {
        post({ type: 'closed' });
        port.close();
      }
    }
  });

  retention();
  const retentionTimer = setInterval(retention, settings.retentionIntervalMs);
  post({
    type: 'ready',
    usedBytes: db.usedBytes(),
    recreatedFromVersion: db.recreated?.fromVersion,
    schemaVersion,
    walPosition: db.walPosition(),
  });
}

/**
 * The trace store's reader pool as the last resort of the query time budget: a reader stuck in one
 * step (it never reaches a checkpoint) is answered for at the deadline, terminated after the grace
 * period and replaced, so that the next queries are served. The readers here are stand-ins that
 * speak the reader protocol (the real reader stops at its checkpoints: trace-store-query-safety.test.ts).
 */
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { ReaderPool } from '../src/trace-store/reader-pool';
import { QueryTimeoutError } from '../src/trace-store/reader-protocol';

/** Answers tagNames at once; a search spins forever without looking at its deadline or cancel flag. */
const STUCK_READER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.type === 'close') return process.exit(0);
  if (m.op === 'search') for (;;) {}
  parentPort.postMessage({ type: 'result', id: m.id, result: { resource: [], span: ['ok'] } });
});
parentPort.postMessage({ type: 'ready' });
`;

test('a reader stuck past the deadline is answered for, terminated and replaced', async () => {
  let terminated = 0;
  const pool = new ReaderPool({
    size: 1,
    timeoutMs: 1000,
    graceMs: 200,
    spawn: (cancel) => new Worker(STUCK_READER, { eval: true, workerData: { cancel } }),
    logger: pino({ level: 'silent' }),
    onTerminate: () => terminated++,
  });
  await pool.start();
  try {
    const started = Date.now();
    const stuck = pool.run({ op: 'search', query: [{ kind: 'all' }], options: {} as never });
    // Queued behind it on the one reader: answered at its own deadline too.
    const queued = pool.run({ op: 'tagNames' });
    await expect(stuck).rejects.toBeInstanceOf(QueryTimeoutError);
    await expect(queued).rejects.toBeInstanceOf(QueryTimeoutError);
    expect(Date.now() - started).toBeLessThan(2500);
    // The reader is terminated after the grace period and replaced: the next query is answered.
    while (terminated === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(pool.run({ op: 'tagNames' })).resolves.toStrictEqual({ resource: [], span: ['ok'] });
    expect(terminated).toBe(1);
    expect(pool.available).toBe(true);
  } finally {
    await pool.close();
  }
});

/** Takes a while to say it is ready (as a real reader opening its database on a loaded machine does). */
const SLOW_START_READER = `
const { parentPort, workerData } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.type === 'close') return process.exit(0);
  parentPort.postMessage({ type: 'result', id: m.id, result: { resource: [], span: [] } });
});
setTimeout(() => parentPort.postMessage({ type: 'ready' }), workerData.delayMs);
`;

test('close waits for every reader thread, those still starting and those being terminated, to exit', async () => {
  const workers: Worker[] = [];
  let n = 0;
  const pool = new ReaderPool({
    size: 3,
    timeoutMs: 1000,
    graceMs: 200,
    // The first reader starts at once (start() waits for it), the others only after 300 ms.
    spawn: (cancel) => {
      const w = new Worker(SLOW_START_READER, { eval: true, workerData: { cancel, delayMs: n++ === 0 ? 0 : 300 } });
      workers.push(w);
      return w;
    },
    logger: pino({ level: 'silent' }),
  });
  await pool.start();
  const exited = workers.map((w) => new Promise<boolean>((resolve) => w.once('exit', () => resolve(true))));
  await pool.close();
  // Once close() resolves, no reader thread may still run (a real one would still hold the database).
  const state = await Promise.all(exited.map((e) => Promise.race([e, Promise.resolve(false)])));
  expect(state).toStrictEqual([true, true, true]);
});

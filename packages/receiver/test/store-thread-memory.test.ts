/**
 * The embedded stores' threads (a writer and query_workers readers per store) have their own V8
 * heaps. Left at Node's defaults, each may commit a young generation sized from the machine's memory
 * (192 MiB on a 16 GiB machine): a reader that scans many blobs grows into it and keeps it, which is
 * most of what the trace store added to the receiver's resident memory in the fuzz runs. They start
 * with a small one (STORE_THREAD_YOUNG_GENERATION_MB).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as WorkerThreads from 'node:worker_threads';
import { STORE_THREAD_YOUNG_GENERATION_MB } from '../src/blob-store/engine';
import { startTestReceiver, type TestReceiver } from './helpers';

// The module object itself (an `import * as` gets a copy): the store's `new Worker` reads it from there.
const workerThreads = jest.requireActual<typeof WorkerThreads>('node:worker_threads');
const started: { script: string; worker: WorkerThreads.Worker }[] = [];
const NodeWorker = workerThreads.Worker;
let dir: string;
let t: TestReceiver | undefined;

beforeAll(() => {
  // Every thread started from here on is recorded (the store starts its threads with this class).
  Object.defineProperty(workerThreads, 'Worker', {
    configurable: true,
    writable: true,
    value: class extends NodeWorker {
      constructor(script: string | URL, options?: WorkerThreads.WorkerOptions) {
        super(script, options);
        started.push({ script: String(script), worker: this });
      }
    },
  });
  dir = mkdtempSync(join(tmpdir(), 'sonde-thread-memory-'));
});

afterAll(async () => {
  await t?.close();
  Object.defineProperty(workerThreads, 'Worker', { configurable: true, writable: true, value: NodeWorker });
  rmSync(dir, { recursive: true, force: true });
});

test('the trace and log stores start their writer and reader threads with a small young generation', async () => {
  t = await startTestReceiver({
    data_dir: dir,
    trace_store: { enabled: true, query_workers: 2 },
    log_store: { enabled: true, query_workers: 2 },
  });
  // The readers start with the store; a query waits for them.
  for (const path of ['/api/search?q=%7B%20%7D', '/loki/api/v1/labels']) {
    expect((await fetch(t.admin + path)).status).toBe(200);
  }
  const stores = started.filter((s) => /(trace|log)-store/.test(s.script));
  // A writer and two readers per store.
  expect(stores.map((s) => s.script.replace(/.*\//, '')).sort()).toStrictEqual([
    'log-reader-worker.js',
    'log-reader-worker.js',
    'log-writer-worker.js',
    'reader-worker.js',
    'reader-worker.js',
    'writer-worker.js',
  ]);
  for (const { script, worker } of stores) {
    expect([script, worker.resourceLimits?.maxYoungGenerationSizeMb]).toStrictEqual([
      script,
      STORE_THREAD_YOUNG_GENERATION_MB,
    ]);
  }
});

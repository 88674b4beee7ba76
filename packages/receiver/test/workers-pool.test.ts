/**
 * The intake worker pool's own recovery, with a stand-in worker script (test/fixtures/flaky-intake-worker.js)
 * that fails to start while a marker file exists: a worker that stops is replaced even when the
 * first starts of its replacement fail, close() stops a worker that is still starting, and a worker
 * that does not answer within overload.worker_request_timeout is stopped, its requests answered 503.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/logger';
import { OverloadedError } from '../src/otlp/errors';
import { SelfMetrics } from '../src/self-metrics';
import { IntakeWorkers } from '../src/workers/pool';
import type { WorkerSettings } from '../src/workers/protocol';

const SCRIPT = join(__dirname, 'fixtures', 'flaky-intake-worker.js');

let dir: string;
let marker: string;
let heartbeat: string;
let pool: IntakeWorkers | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sonde-workers-pool-'));
  marker = join(dir, 'fail');
  heartbeat = join(dir, 'heartbeat');
});

afterEach(async () => {
  await pool?.close();
  pool = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function startPool(readyDelayMs = 0, more: { hang?: boolean; requestTimeoutMs?: number } = {}) {
  return IntakeWorkers.start(
    {
      count: 1,
      maxInFlightPerWorker: 4,
      retryAfterSeconds: 1,
      requestTimeoutMs: more.requestTimeoutMs,
      settings: { failMarker: marker, heartbeat, readyDelayMs, hang: more.hang } as unknown as WorkerSettings,
      script: SCRIPT,
    },
    new SelfMetrics({ defaultMetrics: false }),
    createLogger('silent'),
  );
}

/** Whether the pool takes a request now (a worker is ready), rather than refusing it. */
async function takes(workers: IntakeWorkers): Promise<boolean> {
  try {
    const answer = await workers.process('traces', 'protobuf', Buffer.from([]));
    return answer.ok;
  } catch (err) {
    if (err instanceof OverloadedError) return false;
    throw err;
  }
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a stopped worker is replaced even when its replacement fails to start at first', async () => {
  pool = await startPool();
  const workers = pool;
  expect(await takes(workers)).toBe(true);
  writeFileSync(marker, '');
  await workers.crash(0);
  // The replacement fails to start (once a second) while the marker exists: requests are refused.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  expect(await takes(workers)).toBe(false);
  rmSync(marker);
  // The next attempt starts: the slot has a worker again.
  await waitFor(() => takes(workers), 5_000);
}, 15_000);

/**
 * When the worker last wrote its heartbeat (ms since epoch). writeFileSync empties the file before it
 * writes: an empty read is a beat being written, read again.
 */
async function lastBeat(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const text = readFileSync(heartbeat, 'utf8');
    if (text !== '') return Number(text);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('the heartbeat file stayed empty');
}

test('close() also stops a worker that is still starting', async () => {
  // Each worker takes 1.5 s to be ready; the replacement of a stopped one starts a second after the
  // stopped one did, so within 0.5 s of the crash here, and is ready 1.5 s later.
  pool = await startPool(1_500);
  const workers = pool;
  await workers.crash(0);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(await takes(workers)).toBe(false); // the replacement runs, and is not ready yet
  expect(Date.now() - (await lastBeat())).toBeLessThan(500);
  await workers.close();
  // No worker is left running: none writes its heartbeat any more (one left behind would go on).
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(Date.now() - (await lastBeat())).toBeGreaterThan(700);
}, 15_000);

test('a worker that takes longer than the request timeout is stopped: its requests get 503', async () => {
  pool = await startPool(0, { hang: true, requestTimeoutMs: 400 });
  const started = performance.now();
  const answers = await Promise.all([1, 2].map(() => pool?.process('logs', 'protobuf', Buffer.from([1]))));
  const waited = performance.now() - started;
  for (const answer of answers) {
    expect(answer?.ok).toBe(false);
    if (answer && !answer.ok) expect(answer.error.httpStatus).toBe(503);
  }
  expect(waited).toBeGreaterThanOrEqual(400);
  expect(waited).toBeLessThan(3_000);
}, 15_000);

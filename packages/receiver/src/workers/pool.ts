/**
 * The intake workers (`workers` ≥ 1): worker threads that decode, validate and process (redaction,
 * attribute limits) trace and log requests, each with its own processors built from the same
 * configuration (intake-worker.ts). The main thread sends a copy of a request's body to the least
 * busy worker (its ArrayBuffer transferred) and gets back the outcome: the counts and messages of the
 * partial success, the protobuf payload when it is not the body as received (moved back), the
 * batch's skeleton for the model consumers (skeleton.ts) and the processors' counter increments.
 *
 * - Bounded: each worker holds at most `maxInFlightPerWorker` requests; when every worker holds that
 *   many, a request is refused with 503 + Retry-After (counted `max_requests_per_worker`).
 * - A worker that stops (an exception, out of memory) does not stop the receiver: its requests in
 *   hand are answered 503 + Retry-After (the client retries), the failure is logged, and a new worker
 *   takes its place (at most one start a second per slot).
 */
import { Worker } from 'node:worker_threads';
import type { Counter, Registry } from 'prom-client';
import { workerScript } from '../blob-store/engine';
import type { ReceiverConfig } from '../config/schema';
import type { Logger } from '../logger';
import { asOtlpError, OtlpError, OverloadedError } from '../otlp/errors';
import type { Encoding } from '../otlp/responses';
import type { SelfMetrics } from '../self-metrics';
import { resolveWorkers } from './config';
import {
  type CounterIncrement,
  copiedArrayBuffer,
  type FailedRequest,
  type ProcessRequest,
  type WorkerAnswer,
  type WorkerSettings,
} from './protocol';
import { skeletonKeys } from './skeleton';

export interface IntakeWorkersOptions {
  count: number;
  maxInFlightPerWorker: number;
  /** Longest a worker may take over one request before it is stopped and replaced, ms (0: no limit). */
  requestTimeoutMs?: number;
  /** The Retry-After of a refusal, in seconds. */
  retryAfterSeconds: number;
  settings: WorkerSettings;
  /** The worker script; defaults to the built intake-worker.js. */
  script?: string;
}

interface Slot {
  index: number;
  /** The worker taking requests (undefined while none is ready). */
  worker: Worker | undefined;
  /** A worker started and not ready yet (close() stops it too). */
  starting: Worker | undefined;
  /** Requests sent to this worker and not answered yet. */
  pending: Map<number, (answer: WorkerAnswer) => void>;
  /**
   * When the worker last answered, or was handed a request while it had none (performance.now()):
   * the request it works on now has taken it since then (it takes its requests one at a time).
   */
  progressAt: number;
  startedAt: number;
}

const RESTART_INTERVAL_MS = 1000;

export class IntakeWorkers {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closing = false;
  /** Looks for a worker over `requestTimeoutMs` on a request (none when there is no limit). */
  private watchdog: NodeJS.Timeout | undefined;

  private constructor(
    private readonly options: IntakeWorkersOptions,
    private readonly metrics: SelfMetrics,
    private readonly logger: Logger,
  ) {}

  /** Starts `options.count` workers; resolves once each has built its pipeline, or rejects with the first failure. */
  static async start(options: IntakeWorkersOptions, metrics: SelfMetrics, logger: Logger): Promise<IntakeWorkers> {
    const pool = new IntakeWorkers(options, metrics, logger);
    try {
      await Promise.all(
        Array.from({ length: options.count }, (_, index) => {
          const slot: Slot = {
            index,
            worker: undefined,
            starting: undefined,
            pending: new Map(),
            progressAt: 0,
            startedAt: 0,
          };
          pool.slots.push(slot);
          return pool.launch(slot);
        }),
      );
    } catch (err) {
      await pool.close();
      throw err;
    }
    const timeout = options.requestTimeoutMs ?? 0;
    if (timeout > 0) {
      pool.watchdog = setInterval(() => pool.stopStuck(timeout), Math.min(1000, timeout));
      pool.watchdog.unref();
    }
    return pool;
  }

  /**
   * Stops every worker that has spent `timeoutMs` or more on its current request (a worker stuck in a
   * loop would otherwise hold its requests, and their bytes in admission, for good): its requests get
   * 503 and a new worker takes its place, as after a crash. Time spent waiting behind the worker's
   * earlier requests does not count: an overloaded worker is not a stuck one.
   */
  private stopStuck(timeoutMs: number): void {
    const now = performance.now();
    for (const slot of this.slots) {
      const worker = slot.worker;
      if (!worker || slot.pending.size === 0 || now - slot.progressAt < timeoutMs) continue;
      this.logger.error(
        { worker: slot.index, timeoutMs, requests: slot.pending.size },
        'an intake worker took longer than overload.worker_request_timeout over a request; it is stopped and replaced',
      );
      void worker.terminate();
    }
  }

  get count(): number {
    return this.slots.length;
  }

  /** Requests being processed by the workers now. */
  get inFlight(): number {
    let n = 0;
    for (const slot of this.slots) n += slot.pending.size;
    return n;
  }

  /**
   * Processes one request on the least busy worker, which gets a copy of `body` (the caller keeps it).
   * Resolves with the worker's answer (a failed one carries the error to answer); throws an
   * OverloadedError when every worker has its `max_requests_per_worker` in hand, or when none runs.
   */
  process(signal: 'traces' | 'logs', encoding: Encoding, body: Buffer): Promise<WorkerAnswer> {
    const slot = this.leastBusy();
    if (!slot?.worker) {
      this.metrics.limitHits.inc({ signal, limit: 'max_requests_per_worker' });
      throw new OverloadedError(
        `every intake worker is busy (overload.max_requests_per_worker); retry after ${this.options.retryAfterSeconds}s`,
        this.options.retryAfterSeconds,
      );
    }
    const id = this.nextId++;
    const { buffer, offset, length } = copiedArrayBuffer(body);
    const request: ProcessRequest = { id, signal, encoding, buffer, offset, length };
    const worker = slot.worker;
    return new Promise<WorkerAnswer>((resolve, reject) => {
      if (slot.pending.size === 0) slot.progressAt = performance.now();
      slot.pending.set(id, resolve);
      try {
        worker.postMessage(request, [buffer]);
      } catch (err) {
        // Not sent (the copy could not be moved): the slot must not wait for an answer.
        slot.pending.delete(id);
        reject(err);
      }
    });
  }

  private leastBusy(): Slot | undefined {
    let best: Slot | undefined;
    for (const slot of this.slots) {
      if (!slot.worker || slot.pending.size >= this.options.maxInFlightPerWorker) continue;
      if (!best || slot.pending.size < best.pending.size) best = slot;
    }
    return best;
  }

  /** Starts the worker of `slot`; resolves once it is ready, rejects if it fails before. */
  private launch(slot: Slot): Promise<void> {
    slot.startedAt = Date.now();
    return new Promise<void>((resolve, reject) => {
      let worker: Worker;
      try {
        worker = new Worker(this.options.script ?? workerScript(__dirname, 'intake-worker.js'), {
          workerData: this.options.settings,
        });
      } catch (err) {
        // No thread (ERR_WORKER_INIT_FAILED, e.g. out of memory): the caller decides (start fails, a restart retries).
        reject(err);
        return;
      }
      slot.starting = worker;
      let ready = false;
      worker.on('message', (message: WorkerAnswer | { ready: true }) => {
        if ('ready' in message) {
          ready = true;
          slot.starting = undefined;
          if (this.closing) void worker.terminate();
          else slot.worker = worker;
          resolve();
          return;
        }
        const answer = slot.pending.get(message.id);
        slot.pending.delete(message.id);
        slot.progressAt = performance.now();
        answer?.(message);
      });
      worker.on('error', (err) => {
        if (!ready) reject(new Error(`an intake worker could not start: ${err.message}`, { cause: err }));
        else this.logger.error({ err, worker: slot.index }, 'an intake worker failed; it is restarted');
      });
      worker.on('exit', (code) => {
        if (slot.starting === worker) slot.starting = undefined;
        if (slot.worker === worker) slot.worker = undefined;
        if (!ready) {
          reject(new Error(`an intake worker exited (code ${code}) before it was ready`));
          return;
        }
        this.failPending(slot);
        if (this.closing) return;
        this.logger.warn({ worker: slot.index, code }, 'an intake worker stopped; a new one takes its place');
        this.restart(slot);
      });
    });
  }

  /**
   * Starts a new worker in `slot` (one start a second at most), and again after each start that
   * fails, until one is ready or the pool closes: a slot is never left without a worker for good.
   */
  private restart(slot: Slot): void {
    const wait = Math.max(0, slot.startedAt + RESTART_INTERVAL_MS - Date.now());
    setTimeout(() => {
      if (this.closing) return;
      this.launch(slot).catch((err: unknown) => {
        this.logger.error({ err, worker: slot.index }, 'an intake worker could not be restarted; trying again');
        this.restart(slot);
      });
    }, wait).unref();
  }

  /** Answers the requests a stopped worker had in hand: 503, the client retries. */
  private failPending(slot: Slot): void {
    const error = new OverloadedError('an intake worker stopped while processing the request; retry after 1s', 1);
    for (const [id, answer] of slot.pending) answer(failed(id, error));
    slot.pending.clear();
  }

  /** Stops the workers (after the listeners drained: nothing is in hand then). */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.watchdog);
    await Promise.all(this.slots.flatMap((slot) => [slot.worker?.terminate(), slot.starting?.terminate()]));
    for (const slot of this.slots) this.failPending(slot);
  }

  /** Stops worker `index` abruptly, as a crash would (tests). */
  async crash(index: number): Promise<void> {
    await this.slots[index]?.worker?.terminate();
  }
}

/** The intake workers `workers` asks for (resolveWorkers), started; undefined for none (single-thread mode). */
export async function startIntakeWorkers(
  config: ReceiverConfig,
  metrics: SelfMetrics,
  logger: Logger,
): Promise<IntakeWorkers | undefined> {
  const count = resolveWorkers(config.workers);
  if (count === 0) return undefined;
  return IntakeWorkers.start(
    {
      count,
      maxInFlightPerWorker: config.overload.max_requests_per_worker,
      requestTimeoutMs: config.overload.worker_request_timeout,
      retryAfterSeconds: Math.max(1, Math.round(config.overload.retry_after / 1000)),
      settings: { config, keys: skeletonKeys(config) },
    },
    metrics,
    logger,
  );
}

function failed(id: number, error: OtlpError): FailedRequest {
  return {
    id,
    ok: false,
    error: {
      message: error.message,
      httpStatus: error.httpStatus,
      grpcCode: error.grpcCode as FailedRequest['error']['grpcCode'],
      reason: error.reason,
      retryAfterSeconds: error.retryAfterSeconds,
    },
    counters: [],
  };
}

/** The error a worker answered with, as the one single-thread mode would have thrown. */
export function workerError(error: FailedRequest['error'], logger: Logger): OtlpError {
  if (error.internal) {
    const err = new Error(error.message);
    err.stack = error.stack;
    return asOtlpError(err, logger);
  }
  return new OtlpError(error.message, error.httpStatus, error.grpcCode, error.reason, error.retryAfterSeconds);
}

/** Applies a worker's counter increments to the main thread's counters of the same names. */
export function applyCounters(registry: Registry, counters: CounterIncrement[]): void {
  for (const [name, labels, value] of counters) {
    (registry.getSingleMetric(name) as Counter | undefined)?.inc(labels, value);
  }
}

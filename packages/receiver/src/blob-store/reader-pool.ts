/**
 * A blob store's reader threads (the trace store's reader-worker.ts, the log store's): each answers one query at a time; queries wait
 * in a queue for the next free reader. Every query has a deadline (trace_store.query_timeout, log_store.query_timeout, counted
 * from its arrival, its time in the queue included): at the deadline it is answered with
 * QueryTimeoutError and stopped: the reader sees the query's deadline (and a cancel flag in shared
 * memory, also set when the client leaves) between the query's steps and gives up; a reader that has
 * not given up `graceMs` later is terminated and replaced, so that no query holds a reader for long.
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../logger';
import {
  type FromReader,
  QueryCancelledError,
  QueryTimeoutError,
  ReaderUnavailableError,
  type ToReader,
  timeoutMessage,
} from './reader-protocol';

export interface ReaderPoolOptions {
  /** Reader threads. */
  size: number;
  /** A query's time budget, from its arrival. */
  timeoutMs: number;
  /** How long a reader may take to stop a query past its deadline before it is terminated. */
  graceMs: number;
  /** Starts a reader thread with this cancel flag (ReaderSettings.cancel). */
  spawn: (cancel: SharedArrayBuffer) => Worker;
  logger: Logger;
  /** Called when a reader is terminated because it did not stop in time. */
  onTerminate?: () => void;
  /** The store, as log messages name it (default: trace store). */
  what?: string;
  /** The store's config section, as timeout messages name it (default: trace_store). */
  configKey?: string;
  /** A reader's error of a store-specific class, rebuilt from its name (else undefined). */
  errorOf?: (name: string, message: string) => Error | undefined;
}

interface Job<Q = { op: string }> {
  id: number;
  query: Q;
  deadline: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  settled: boolean;
  timer: NodeJS.Timeout;
  slot?: Slot<Q>;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot<Q = { op: string }> {
  worker: Worker;
  cancel: Int32Array;
  job?: Job<Q>;
  killTimer?: NodeJS.Timeout;
}

const MAX_ID = 2 ** 31 - 1;

export class ReaderPool<Q extends { op: string } = { op: string } & Record<string, unknown>> {
  private readonly slots = new Set<Slot<Q>>();
  private readonly queue: Job<Q>[] = [];
  private nextId = 0;
  private closing = false;
  /** Every reader thread that has not exited yet: starting, serving, or being terminated. */
  private readonly live = new Set<Worker>();

  constructor(private readonly options: ReaderPoolOptions) {}

  private get what(): string {
    return this.options.what ?? 'trace store';
  }

  /** Starts the readers; rejects when the first cannot start (the caller then reads on its own thread). */
  async start(): Promise<void> {
    await this.spawn();
    for (let i = 1; i < this.options.size; i++) {
      this.spawn().catch((err) => this.options.logger.warn({ err }, `a ${this.what} reader thread did not start`));
    }
  }

  /** Whether any reader runs (false: every reader failed). */
  get available(): boolean {
    return this.slots.size > 0;
  }

  /** Runs a query on a reader; rejects with QueryTimeoutError at its deadline, QueryCancelledError on `signal`. */
  run<T>(query: Q, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(new QueryCancelledError());
    this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
    const id = this.nextId;
    return new Promise<T>((resolve, reject) => {
      const job: Job<Q> = {
        id,
        query,
        deadline: Date.now() + this.options.timeoutMs,
        resolve: resolve as (v: unknown) => void,
        reject,
        settled: false,
        timer: setTimeout(() => this.expire(job), this.options.timeoutMs),
        signal,
      };
      job.timer.unref();
      if (signal) {
        job.onAbort = () => this.abort(job);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.dispatch();
    });
  }

  private settle(job: Job<Q>, err: Error | undefined, result?: unknown): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    if (err) job.reject(err);
    else job.resolve(result);
  }

  /** Hands queued queries to free readers. */
  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.job) continue;
      const job = this.queue.shift() as Job<Q>;
      slot.job = job;
      job.slot = slot;
      slot.worker.postMessage({ ...job.query, type: 'query', id: job.id, deadline: job.deadline } satisfies ToReader);
    }
  }

  /** The deadline passed: answered now; a reader running it is told to stop, and terminated if it does not. */
  private expire(job: Job<Q>): void {
    this.settle(job, new QueryTimeoutError(timeoutMessage(this.options.timeoutMs, this.options.configKey)));
    this.stop(job);
  }

  /** The client left: a queued query is dropped, a running one told to stop. */
  private abort(job: Job<Q>): void {
    this.settle(job, new QueryCancelledError('the client closed the connection'));
    this.stop(job);
  }

  private stop(job: Job<Q>): void {
    const slot = job.slot;
    if (!slot) {
      const at = this.queue.indexOf(job);
      if (at >= 0) this.queue.splice(at, 1);
      return;
    }
    if (slot.job !== job) return;
    Atomics.store(slot.cancel, 0, job.id);
    if (!slot.killTimer) {
      slot.killTimer = setTimeout(() => this.terminate(slot, job), this.options.graceMs);
      slot.killTimer.unref();
    }
  }

  /** A reader that did not give up a query in time: terminated and replaced. */
  private terminate(slot: Slot<Q>, job: Job<Q>): void {
    if (slot.job !== job || !this.slots.has(slot)) return;
    this.options.logger.warn(
      { op: job.query.op, graceMs: this.options.graceMs },
      `a ${this.what} reader did not stop a query past its deadline: terminated, and another started`,
    );
    this.options.onTerminate?.();
    this.slots.delete(slot);
    void slot.worker.terminate();
    this.replace();
  }

  private replace(): void {
    if (this.closing) return;
    this.spawn().catch((err) => {
      this.options.logger.error({ err }, `a ${this.what} reader thread could not be started again`);
      if (this.slots.size === 0) this.failQueue();
    });
  }

  private failQueue(): void {
    for (const job of this.queue.splice(0)) {
      this.settle(job, new ReaderUnavailableError(`no ${this.what} reader thread runs; retry the query`));
    }
  }

  private spawn(): Promise<void> {
    const cancel = new SharedArrayBuffer(4);
    const worker = this.options.spawn(cancel);
    worker.unref();
    this.live.add(worker);
    worker.once('exit', () => this.live.delete(worker));
    const slot: Slot<Q> = { worker, cancel: new Int32Array(cancel) };
    return new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on('message', (m: FromReader) => {
        if (m.type === 'ready') {
          started = true;
          if (this.closing) {
            void worker.terminate();
            resolve();
            return;
          }
          this.slots.add(slot);
          resolve();
          this.dispatch();
          return;
        }
        if (m.type === 'failed') {
          reject(new Error(m.message));
          return;
        }
        const job = slot.job;
        if (!job || job.id !== m.id) return;
        slot.job = undefined;
        job.slot = undefined;
        if (slot.killTimer) clearTimeout(slot.killTimer);
        slot.killTimer = undefined;
        if (m.type === 'result') this.settle(job, undefined, m.result);
        else this.settle(job, readerError(m.name, m.message, this.options));
        this.dispatch();
      });
      worker.on('error', (err) => {
        if (!started) reject(err);
        else this.options.logger.error({ err }, `a ${this.what} reader thread failed; another is started`);
      });
      worker.on('exit', () => {
        if (!started) {
          // Terminated by close() while starting: not a failure to report.
          if (this.closing) resolve();
          else reject(new Error(`the ${this.what} reader thread exited while starting`));
          return;
        }
        if (!this.slots.delete(slot)) return;
        if (slot.killTimer) clearTimeout(slot.killTimer);
        const job = slot.job;
        slot.job = undefined;
        if (job) {
          this.settle(job, new ReaderUnavailableError(`the ${this.what} reader thread exited; retry the query`));
        }
        this.replace();
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.failQueue();
    const slots = [...this.slots];
    this.slots.clear();
    await Promise.all(
      slots.map(async (slot) => {
        if (slot.killTimer) clearTimeout(slot.killTimer);
        const exited = new Promise((resolve) => slot.worker.once('exit', resolve));
        slot.worker.postMessage({ type: 'close' } satisfies ToReader);
        await Promise.race([exited, sleep(2000)]);
        await slot.worker.terminate();
        if (slot.job) this.settle(slot.job, new ReaderUnavailableError(`the ${this.what} is closing`));
      }),
    );
    // Readers still starting (start() waits for the first only) and readers terminated past their
    // grace: once close() resolves, no thread holds the database.
    await Promise.all([...this.live].map((w) => w.terminate()));
  }
}

/** A reader's error, as the class the API answers it by. */
function readerError(name: string, message: string, options: ReaderPoolOptions): Error {
  const own = options.errorOf?.(name, message);
  if (own) return own;
  switch (name) {
    case 'QueryTimeoutError':
      return new QueryTimeoutError(timeoutMessage(options.timeoutMs, options.configKey));
    case 'QueryCancelledError':
      return new QueryCancelledError(message);
    default: {
      const err = new Error(message);
      err.name = name;
      return err;
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

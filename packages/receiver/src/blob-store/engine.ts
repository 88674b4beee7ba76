/**
 * The storage engine shared by the embedded trace store and log store, as a consumer: `consume` hands
 * the request's protobuf to a writer thread (worker_threads, writer-loop.ts) through a queue bounded in
 * bytes, and returns; the writer batches it into SQLite through the store's database (the signal's
 * part: how a request is indexed and scanned). When the queue is full, `admit` refuses new requests
 * before they are decoded (503 + Retry-After, so clients retry), or, with `on_full: drop_newest` (the
 * former `drop`), the request is accepted and not stored (counted). The admission decision and the
 * refusal are the queue layer's (queue/admission.ts), shared with the exporters; a store has no
 * `drop_oldest` (what it queued is acknowledged, and journaled with a write-ahead log). Queries run
 * on reader threads, each with its own read-only connection, within a time budget (reader-pool.ts).
 *
 * Durability (`durability`): with `wal` (the default), `consume` first appends the request to the
 * write-ahead log (wal.ts) and resolves, so that the response is sent, only once the record is
 * durable (fdatasync, shared by the requests of a group); a request the log cannot take is refused
 * with 503. `start` replays the records that SQLite does not hold yet before the receiver listens.
 * With `wal_async`, `consume` resolves once the request is written to the log (the kernel holds it:
 * kill -9 loses nothing) and the log's fdatasyncs run in the background, back to back: a machine
 * crash or power loss can lose the requests acknowledged since the last sync began (milliseconds).
 * With `memory`, requests are acknowledged once queued: a crash loses what the queue holds (up to
 * `queueBytes`) and the transaction being written.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../logger';
import { registerMetrics } from '../metrics/define';
import type { Signal } from '../model';
import { GrpcCode, OtlpError } from '../otlp/errors';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { QueueAdmission, shuttingDown } from '../queue/admission';
import { type FormerOnFull, normalizeOnFull, STORE_DROP_OLDEST, type StoreOnFull } from '../queue/on-full';
import { encodeRecord, HEADER_BYTES } from '../record-log';
import { blobStoreMetrics, blobStoreWalMetrics } from './metrics';
import { ReaderPool } from './reader-pool';
import { type Checkpoint, checkpointFor } from './reader-protocol';
import { BlobWal, type WalPosition, type WalRecovery } from './wal';
import type { FromWriter, ToWriter, WriteItem, WriterSettings } from './writer-protocol';

export type Durability = 'wal' | 'wal_async' | 'memory';

export interface BlobStoreOptions {
  /** The SQLite file. */
  path: string;
  retentionMs: number;
  maxBytes: number;
  /** Bound of the write queue (bytes of protobuf waiting for the writer thread). */
  queueBytes: number;
  /**
   * When the write queue is full (queue/on-full.ts): refuse (503 + Retry-After) or drop_newest (accepted,
   * not stored, counted); `drop` is the former spelling of drop_newest. No drop_oldest: a queued
   * request is already acknowledged (and journaled).
   */
  onFull: StoreOnFull | FormerOnFull;
  batchMaxBytes: number;
  flushIntervalMs: number;
  retentionIntervalMs: number;
  /**
   * wal: requests are journaled and fdatasynced before they are acknowledged; wal_async: journaled
   * (written) before, fdatasynced in the background; memory: queued only.
   */
  durability?: Durability;
  /** The write-ahead log's directory (default: the database's path + `.journal`). */
  walDir?: string;
  /** wal: how long the log waits to gather a group of requests before its write and fdatasync; wal_async: between two background fdatasyncs (ms, default 0). */
  walSyncIntervalMs?: number;
  /** Size at which the log begins a new segment (default 16 MiB). */
  walSegmentBytes?: number;
  /** A query's time budget (<store>.query_timeout), in ms. */
  queryTimeoutMs?: number;
  /** Reader threads answering queries (<store>.query_workers). */
  queryWorkers?: number;
}

/** What the engine takes when an optional option is left out (and what the config keys default to). */
export const BLOB_STORE_DEFAULTS = {
  durability: 'wal',
  walSyncIntervalMs: 0,
  queryTimeoutMs: 30_000,
  queryWorkers: 2,
} as const satisfies Partial<BlobStoreOptions>;

/** What differs between the stores built on the engine. */
export interface StoreKind<S extends Signal, Db> {
  signal: S;
  /** As logs and errors name the store: `trace store`. */
  what: string;
  /** The config section: `trace_store`. */
  configKey: string;
  /** Metric name prefix: `sonde_trace_store`. */
  metricPrefix: string;
  /** What the store counts, in metric names: `spans`, `records`. */
  items: string;
  /** The writer and reader thread scripts (compiled JavaScript). */
  writerScript: string;
  readerScript: string;
  /** Settings for the writer and reader threads beyond the engine's (indexed attributes). */
  extraSettings: Record<string, unknown>;
  /** The request as protobuf (the raw body when the pipeline did not change it). */
  encode(batch: Batch<S>): Buffer;
  /** A read-only connection on this thread, for queries when no reader thread runs. */
  openLocal(path: string): Db;
  /** A reader's error of a store-specific class (rebuilt from its name). */
  errorOf?: (name: string, message: string) => Error | undefined;
}

const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

/** How long a reader may take to stop a query past its budget before it is terminated (and replaced). */
const READER_GRACE_MS = 1000;

/**
 * The young generation (MiB) of the store's threads' V8 heaps. Node's default is sized from the
 * machine's memory (192 MiB with 16 GiB), per thread: a reader scanning many blobs allocates fast, V8
 * grows its young generation to that and keeps it committed. Measured with both stores on (six
 * threads) under writes and searches: a reader's heap levelled off at 160 MiB committed (5-80 MiB
 * used) with the default, 40-110 MiB with 8; the writers stay under 20 MiB either way.
 */
export const STORE_THREAD_YOUNG_GENERATION_MB = 16;
const STORE_THREAD_LIMITS = { maxYoungGenerationSizeMb: STORE_THREAD_YOUNG_GENERATION_MB };

export class BlobStore<S extends Signal, Q extends { op: string }, Db extends { close(): void }>
  implements Consumer<S>
{
  readonly name: string;
  private readonly worker: Worker;
  private reader: Db | undefined;
  /** The reader threads (queries), once started; undefined when they failed (queries then run here). */
  private readers: ReaderPool<Q> | undefined;
  private queued = 0;
  private stopping = false;
  private closed: Promise<void> | undefined;
  private readonly ready: Promise<void>;
  private flushes = new Map<number, () => void>();
  /** Requests consumed in this turn of the event loop, posted to the writer together (postWrite). */
  private writes: WriteItem[] = [];
  private nextFlush = 0;
  private workerExited = false;
  private wal: BlobWal | undefined;
  /** What the write-ahead log's recovery found at start (durability: wal). */
  walRecovery: WalRecovery | undefined;
  /** Where the write-ahead log's records stop being stored in SQLite, as the writer said when ready. */
  private walCommitted: WalPosition | undefined;
  private walErrorLoggedAt = 0;

  /** The byte-bounded admission into the write queue (on_full), shared with the exporters (queue/admission.ts). */
  private readonly admission: QueueAdmission;
  private readonly written: Counter;
  private readonly dropped: Counter<'reason'>;
  private readonly refused: Counter;
  private readonly deleted: Counter;
  private readonly usedBytes: Gauge;
  private readonly queueGauge: Gauge;
  private readonly walReplayed: Counter;
  private readonly walErrors: Counter;
  readonly queryDuration: Histogram<'endpoint'>;
  readonly queryTimeouts: Counter<'endpoint'>;
  private readonly readerRestarts: Counter;

  constructor(
    readonly options: BlobStoreOptions,
    private readonly kind: StoreKind<S, Db>,
    registry: Registry,
    protected readonly logger: Logger,
  ) {
    this.name = kind.configKey.replace('_', '-');
    const { what, items } = kind;
    const onFull = normalizeOnFull(options.onFull);
    if (onFull !== 'refuse' && onFull !== 'drop_newest') {
      throw new Error(
        `${kind.configKey}.on_full: ${onFull === 'drop_oldest' ? STORE_DROP_OLDEST : `"${onFull}" is not refuse or drop_newest`}`,
      );
    }
    this.admission = new QueueAdmission({
      capacityBytes: options.queueBytes,
      onFull,
      queue: `the ${what} write queue`,
      sizeKey: `${kind.configKey}.queue_size`,
    });
    const m = registerMetrics(registry, blobStoreMetrics(kind));
    this.written = m.written;
    this.dropped = m.dropped;
    // Both reasons exist from the start (at 0), so that rate() and the alert on drops have a series to read.
    for (const reason of ['queue_full', 'write_error']) this.dropped.inc({ reason }, 0);
    this.refused = m.refused;
    this.deleted = m.deleted;
    this.usedBytes = m.usedBytes;
    m.maxBytes.set(options.maxBytes);
    this.queueGauge = m.queueBytes;
    m.queueCapacityBytes.set(options.queueBytes);
    this.walReplayed = m.walReplayed;
    this.walErrors = m.walErrors;
    this.queryDuration = m.queryDuration;
    this.queryTimeouts = m.queryTimeouts;
    this.readerRestarts = m.readerRestarts;
    if (this.durability !== 'memory') {
      const wal = () => this.wal;
      registerMetrics(registry, blobStoreWalMetrics(kind), {
        walBytes() {
          this.reset();
          this.inc(wal()?.bytesWritten ?? 0);
        },
        walSyncs() {
          this.reset();
          this.inc(wal()?.syncs ?? 0);
        },
        walDiskBytes() {
          this.set(wal()?.diskBytes ?? 0);
        },
      });
    }

    const settings: WriterSettings & Record<string, unknown> = {
      ...kind.extraSettings,
      path: options.path,
      retentionMs: options.retentionMs,
      maxBytes: options.maxBytes,
      batchMaxBytes: options.batchMaxBytes,
      flushIntervalMs: options.flushIntervalMs,
      retentionIntervalMs: options.retentionIntervalMs,
      onFull,
      durability: this.durability,
    };
    this.worker = new Worker(kind.writerScript, { workerData: settings, resourceLimits: STORE_THREAD_LIMITS });
    this.worker.unref();
    let readyResolve: () => void;
    let readyReject: (err: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    this.worker.on('message', (m: FromWriter) => {
      switch (m.type) {
        case 'ready':
          this.usedBytes.set(m.usedBytes);
          this.walCommitted = m.walPosition;
          if (m.recreatedFromVersion !== undefined) {
            this.logger.warn(
              { path: options.path, fromVersion: m.recreatedFromVersion, schemaVersion: m.schemaVersion },
              `the ${what} was written with another schema version: recreated empty (its data is not migrated)`,
            );
          }
          readyResolve();
          break;
        case 'failed':
          readyReject(new Error(`cannot open the ${what} at ${options.path}: ${m.message}`));
          break;
        case 'written':
          this.release(m.bytes);
          this.written.inc(m.spans);
          if (m.position) this.wal?.committed(m.position);
          break;
        case 'write-failed':
          this.release(m.bytes);
          this.dropped.inc({ reason: 'write_error' }, m.spans);
          this.logger.error(
            { err: m.message, [items]: m.spans },
            `the ${what} could not write a batch (disk full or unwritable?); its ${items} are dropped`,
          );
          break;
        case 'retention':
          this.usedBytes.set(m.usedBytes);
          if (m.spans > 0) {
            this.deleted.inc(m.spans);
            this.logger.debug({ batches: m.batches, [items]: m.spans }, `${what} retention removed old ${items}`);
          }
          break;
        case 'retention-failed':
          this.logger.error({ err: m.message }, `${what} retention failed; it runs again on its next interval`);
          break;
        case 'flushed':
          this.flushes.get(m.id)?.();
          this.flushes.delete(m.id);
          break;
        case 'closed':
          break;
      }
    });
    this.worker.on('error', (err) => {
      readyReject(err);
      this.logger.error({ err }, `the ${what} writer thread failed; ${items} are no longer stored`);
    });
    this.worker.on('exit', () => {
      this.workerExited = true;
      for (const done of this.flushes.values()) done();
      this.flushes.clear();
    });
  }

  /** Resolves once the database is open (rejects when it cannot be). */
  async start(): Promise<void> {
    await this.ready;
    if (this.durability !== 'memory') await this.openWal();
    else if (existsSync(this.walDir)) {
      // Left by a run with durability: wal (a crash, then a switch to memory): its acknowledged
      // requests are stored, then the log goes.
      await this.openWal();
      await this.wal?.close();
      this.wal = undefined;
      rmSync(this.walDir, { recursive: true, force: true });
    }
    this.reader = this.kind.openLocal(this.options.path);
    await this.startReader();
  }

  get durability(): Durability {
    return this.options.durability ?? BLOB_STORE_DEFAULTS.durability;
  }

  /** The write-ahead log's directory. */
  get walDir(): string {
    return this.options.walDir ?? `${this.options.path}.journal`;
  }

  /** Opens the write-ahead log and replays into SQLite what it holds that SQLite does not. */
  private async openWal(): Promise<void> {
    const wal = BlobWal.open(this.walDir, {
      segmentBytes: this.options.walSegmentBytes ?? WAL_SEGMENT_BYTES,
      syncIntervalMs: this.options.walSyncIntervalMs ?? BLOB_STORE_DEFAULTS.walSyncIntervalMs,
      sync: this.durability === 'wal_async' ? 'background' : 'before',
    });
    wal.onSyncError = (err) =>
      this.walFailed(err, 'requests acknowledged since the last sync may be lost if the machine stops');
    this.wal = wal;
    const recovery = await wal.recover(this.walCommitted, async (records, receivedMs) => {
      for (const r of records) {
        this.queued += r.body.byteLength;
        this.postWrite({ body: r.body, receivedMs, position: r.end });
      }
      await this.flush();
    });
    this.walRecovery = recovery;
    this.queueGauge.set(this.queued);
    this.walReplayed.inc(recovery.spans);
    if (recovery.records > 0 || recovery.truncatedBytes > 0 || recovery.corruptSegments > 0) {
      this.logger.warn(
        { dir: this.walDir, ...recovery },
        `replayed the ${this.kind.what} write-ahead log: acknowledged requests that were not in the database yet`,
      );
    }
  }

  /** A query's time budget, in ms. */
  get queryTimeoutMs(): number {
    return this.options.queryTimeoutMs ?? BLOB_STORE_DEFAULTS.queryTimeoutMs;
  }

  /** Starts the reader threads; when none can start, queries run on this thread (logged). */
  private async startReader(): Promise<void> {
    const pool = new ReaderPool<Q>({
      size: this.options.queryWorkers ?? BLOB_STORE_DEFAULTS.queryWorkers,
      timeoutMs: this.queryTimeoutMs,
      graceMs: READER_GRACE_MS,
      spawn: (cancel) =>
        new Worker(this.kind.readerScript, {
          workerData: { ...this.kind.extraSettings, path: this.options.path, cancel },
          resourceLimits: STORE_THREAD_LIMITS,
        }),
      logger: this.logger,
      onTerminate: () => this.readerRestarts.inc(),
      what: this.kind.what,
      configKey: this.kind.configKey,
      errorOf: this.kind.errorOf,
    });
    try {
      await pool.start();
    } catch (err) {
      this.logger.warn({ err }, `the ${this.kind.what} reader thread did not start; queries run on the admin thread`);
      await pool.close();
      return;
    }
    this.readers = pool;
  }

  /**
   * Runs a query on a reader thread (`signal`: its client left), or here when none runs; within the
   * time budget either way (here, only at the query's steps).
   */
  protected query<T>(q: Q, here: (db: Db, checkpoint: Checkpoint) => T, signal?: AbortSignal): Promise<T> {
    const readers = this.readers;
    if (!readers?.available) {
      try {
        return Promise.resolve(
          here(
            this.db,
            checkpointFor(Date.now() + this.queryTimeoutMs, () => !!signal?.aborted, this.kind.configKey),
          ),
        );
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return readers.run<T>(q, signal);
  }

  /** Whether queries run on reader threads (false: they failed, and queries run on this thread). */
  get readerThread(): boolean {
    return this.readers?.available ?? false;
  }

  /** The read connection for queries on this thread. */
  get db(): Db {
    if (!this.reader) throw new Error(`the ${this.kind.what} is not started`);
    return this.reader;
  }

  get queuedBytes(): number {
    return this.queued;
  }

  private release(bytes: number): void {
    this.queued -= bytes;
    this.queueGauge.set(this.queued);
  }

  admit(bytes: number): void {
    if (this.stopping) throw shuttingDown();
    if (this.admission.verdict(bytes, this.queued) === 'refuse') {
      this.refused.inc();
      throw this.admission.full();
    }
  }

  consume(batch: Batch<S>): void | Promise<void> {
    if (this.workerExited) {
      this.dropped.inc({ reason: 'write_error' }, batch.itemCount);
      return;
    }
    const raw = this.kind.encode(batch);
    switch (this.admission.verdict(raw.length, this.queued)) {
      case 'accept':
        break;
      case 'refuse':
        this.refused.inc();
        throw this.admission.full();
      default:
        // drop_newest, and a request larger than the whole queue whatever on_full says: accepted, not stored.
        this.dropped.inc({ reason: 'queue_full' }, batch.itemCount);
        return;
    }
    if (this.wal) return this.journal(raw, batch.itemCount, batch.context.receivedAt);
    // A copy with its own ArrayBuffer, moved (not cloned) to the writer thread.
    const body = new Uint8Array(raw);
    this.queued += body.byteLength;
    this.queueGauge.set(this.queued);
    this.postWrite({ body, receivedMs: batch.context.receivedAt });
  }

  /**
   * Appends the request to the write-ahead log and, once it is durable, hands it to the writer thread:
   * resolves then (the request is acknowledged), or rejects with a 503 when the log cannot take it.
   */
  private async journal(raw: Buffer, items: number, receivedMs: number): Promise<void> {
    const wal = this.wal as BlobWal;
    if (this.stopping) throw shuttingDown();
    // One buffer with its own ArrayBuffer: written to the log, then moved (not cloned) to the writer.
    const record = encodeRecord(raw, items);
    this.queued += raw.length;
    this.queueGauge.set(this.queued);
    let position: WalPosition;
    try {
      position = await wal.append(record);
    } catch (err) {
      this.release(raw.length);
      this.walFailed(err as Error, 'requests are refused with 503');
      throw new OtlpError(
        `the ${this.kind.what} cannot write to disk now; retry after 1s`,
        503,
        GrpcCode.UNAVAILABLE,
        'storage_error',
        1,
      );
    }
    if (this.workerExited) {
      // Kept in the log: stored at the next start.
      this.release(raw.length);
      return;
    }
    const body = record.subarray(HEADER_BYTES);
    this.postWrite({ body, receivedMs, position });
  }

  /** A write or sync of the log failed: counted, and logged once a second at most (a full disk fails every group). */
  private walFailed(err: Error, consequence: string): void {
    this.walErrors.inc();
    const now = Date.now();
    if (now - this.walErrorLoggedAt < 1000) return;
    this.walErrorLoggedAt = now;
    this.logger.error(
      { err: err.message, dir: this.walDir },
      `the ${this.kind.what} could not write its write-ahead log (disk full or unwritable?); ${consequence}`,
    );
  }

  private post(m: ToWriter, transfer: ArrayBuffer[] = []): void {
    // What follows a write (a flush, close) reaches the writer after it.
    if (m.type !== 'writes') this.postWrites();
    this.worker.postMessage(m, transfer);
  }

  /**
   * Hands a request to the writer thread, its buffer moved (not cloned), with the others consumed in
   * the same turn of the event loop: one message per turn (a message costs the intake thread several
   * microseconds whatever it carries).
   */
  private postWrite(item: WriteItem): void {
    this.writes.push(item);
    if (this.writes.length === 1) setImmediate(this.postWrites);
  }

  private readonly postWrites = (): void => {
    if (this.writes.length === 0) return;
    const items = this.writes;
    this.writes = [];
    const transfer = [...new Set(items.map((i) => i.body.buffer as ArrayBuffer))];
    this.post({ type: 'writes', items }, transfer);
  };

  /** Resolves once everything consumed so far is written (tests, benchmarks). */
  flush(): Promise<void> {
    if (this.workerExited) return Promise.resolve();
    const id = this.nextFlush++;
    return new Promise((resolve) => {
      this.flushes.set(id, resolve);
      this.post({ type: 'flush', id });
    });
  }

  /** Runs retention now (tests); resolves once it ran. */
  async enforceRetention(): Promise<void> {
    this.post({ type: 'retention' });
    await this.flush();
  }

  async shutdown(): Promise<void> {
    this.closed ??= (async () => {
      this.stopping = true;
      // The appends under way finish (their requests are answered) before the writer is closed.
      await this.wal?.close();
      if (!this.workerExited) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 10_000);
          this.worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          this.post({ type: 'close' });
        });
      }
      const readers = this.readers;
      this.readers = undefined;
      await readers?.close();
      this.reader?.close();
      this.reader = undefined;
    })();
    return this.closed;
  }
}

/**
 * A worker thread's script (`<dir>/<name>`): compiled JavaScript under dist/ next to the caller (when
 * it runs from dist/), or, when it runs from its TypeScript source (jest), the built one in dist/ (the
 * package is built before its tests). `dir` is the caller's `__dirname`.
 */
export function workerScript(dir: string, name: string): string {
  const here = join(dir, name);
  if (existsSync(here)) return here;
  const parts = dir.split(/[\\/]/);
  const built = join(dir, '..', '..', 'dist', parts[parts.length - 1], name);
  if (existsSync(built)) return built;
  throw new Error(`a store's thread script is missing (${here}); build the receiver (npm run build)`);
}

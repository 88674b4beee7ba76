/**
 * The embedded trace store, as a traces consumer: `consume` hands the request's protobuf to a writer
 * thread (worker_threads) through a queue bounded in bytes, and returns; the writer batches it into
 * SQLite (see writer-worker.ts, db.ts). When the queue is full, `admit` refuses new requests before
 * they are decoded (503 + Retry-After, so clients retry), or, with `on_full: drop`, the request is
 * accepted and not stored (counted). Queries (the Tempo API) run on reader threads, each with its own
 * read-only connection (reader-worker.ts), within a time budget (reader-pool.ts).
 *
 * Durability (`durability`): with `wal` (the default), `consume` first appends the request to the
 * write-ahead log (wal.ts) and resolves, so that the response is sent, only once the record is
 * durable (fdatasync, shared by the requests of a group); a request the log cannot take is refused
 * with 503. `start` replays the records that SQLite does not hold yet before the receiver listens.
 * With `memory`, requests are acknowledged once queued: a crash loses what the queue holds (up to
 * `queueBytes`) and the transaction being written.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../logger';
import { GrpcCode, OtlpError, OverloadedError } from '../otlp/errors';
import { encodeTraceRequest } from '../otlp/protobuf/encode-traces';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { encodeRecord, HEADER_BYTES } from '../record-log';
import { TraceDb } from './db';
import { ReaderPool } from './reader-pool';
import { type Checkpoint, checkpointFor, type ReaderQuery, type ReaderSettings } from './reader-protocol';
import { type SearchOptions, type SearchResult, search, tagNames, tagValues } from './search';
import type { SpansetQuery } from './traceql';
import { TraceWal, type WalRecovery } from './wal';
import type { FromWriter, ToWriter, WalPosition, WriterSettings } from './writer-protocol';

export interface TraceStoreOptions {
  /** The SQLite file. */
  path: string;
  retentionMs: number;
  maxBytes: number;
  /** Bound of the write queue (bytes of protobuf waiting for the writer thread). */
  queueBytes: number;
  onFull: 'refuse' | 'drop';
  batchMaxBytes: number;
  flushIntervalMs: number;
  retentionIntervalMs: number;
  /** Attribute keys (looked up on spans and resources) indexed for search. */
  indexedAttributes: string[];
  /** wal: requests are journaled (durable) before they are acknowledged; memory: queued only. */
  durability?: 'wal' | 'memory';
  /** The write-ahead log's directory (default: the database's path + `.journal`). */
  walDir?: string;
  /** How long the log waits to gather a group of requests before its write and fdatasync (ms, default 0). */
  walSyncIntervalMs?: number;
  /** Size at which the log begins a new segment (default 16 MiB). */
  walSegmentBytes?: number;
  /** A query's time budget (trace_store.query_timeout), in ms. */
  queryTimeoutMs?: number;
  /** Reader threads answering queries (trace_store.query_workers). */
  queryWorkers?: number;
}

const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

/** How long a reader may take to stop a query past its budget before it is terminated (and replaced). */
const READER_GRACE_MS = 1000;

export class TraceStore implements Consumer<'traces'> {
  readonly name = 'trace-store';
  private readonly worker: Worker;
  private reader: TraceDb | undefined;
  /** The reader threads (queries), once started; undefined when they failed (queries then run here). */
  private readers: ReaderPool | undefined;
  private queued = 0;
  private stopping = false;
  private closed: Promise<void> | undefined;
  private readonly ready: Promise<void>;
  private flushes = new Map<number, () => void>();
  private nextFlush = 0;
  private workerExited = false;
  private wal: TraceWal | undefined;
  /** What the write-ahead log's recovery found at start (durability: wal). */
  walRecovery: WalRecovery | undefined;
  /** Where the write-ahead log's records stop being stored in SQLite, as the writer said when ready. */
  private walCommitted: WalPosition | undefined;
  private walErrorLoggedAt = 0;

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
    readonly options: TraceStoreOptions,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    const registers = [registry];
    this.written = new Counter({
      name: 'sonde_trace_store_spans_written_total',
      help: 'Spans written to the embedded trace store',
      registers,
    });
    this.dropped = new Counter({
      name: 'sonde_trace_store_dropped_spans_total',
      help: 'Spans accepted by the receiver but not stored, by reason (queue_full with on_full: drop, write_error)',
      labelNames: ['reason'] as const,
      registers,
    });
    this.refused = new Counter({
      name: 'sonde_trace_store_refused_requests_total',
      help: 'Trace requests refused (503 + Retry-After) because the trace store write queue was full',
      registers,
    });
    this.deleted = new Counter({
      name: 'sonde_trace_store_retention_deleted_spans_total',
      help: 'Spans removed by retention (age or size)',
      registers,
    });
    this.usedBytes = new Gauge({
      name: 'sonde_trace_store_bytes',
      help: 'Bytes of the trace store database in use on disk (live pages)',
      registers,
    });
    new Gauge({
      name: 'sonde_trace_store_max_bytes',
      help: 'Size bound of the trace store (trace_store.max_size)',
      registers,
    }).set(options.maxBytes);
    this.queueGauge = new Gauge({
      name: 'sonde_trace_store_queue_bytes',
      help: 'Bytes of protobuf waiting for the trace store writer thread',
      registers,
    });
    if (this.durability === 'wal') {
      const wal = () => this.wal;
      new Counter({
        name: 'sonde_trace_store_wal_bytes_total',
        help: 'Bytes appended to the trace store write-ahead log (record headers included)',
        registers,
        collect() {
          this.reset();
          this.inc(wal()?.bytesWritten ?? 0);
        },
      });
      new Counter({
        name: 'sonde_trace_store_wal_syncs_total',
        help: 'fdatasyncs of the trace store write-ahead log (each made a group of requests durable)',
        registers,
        collect() {
          this.reset();
          this.inc(wal()?.syncs ?? 0);
        },
      });
      new Gauge({
        name: 'sonde_trace_store_wal_disk_bytes',
        help: 'Bytes of the trace store write-ahead log segments on disk',
        registers,
        collect() {
          this.set(wal()?.diskBytes ?? 0);
        },
      });
    }
    this.walReplayed = new Counter({
      name: 'sonde_trace_store_wal_replayed_spans_total',
      help: 'Spans replayed from the trace store write-ahead log at start (acknowledged, not yet in the database)',
      registers,
    });
    this.walErrors = new Counter({
      name: 'sonde_trace_store_wal_errors_total',
      help: 'Writes or syncs of the trace store write-ahead log that failed (disk full, I/O error); their requests were refused with 503',
      registers,
    });
    this.queryDuration = new Histogram({
      name: 'sonde_trace_store_query_duration_seconds',
      help: 'Time to answer a Tempo API query from the trace store, by endpoint',
      labelNames: ['endpoint'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.queryTimeouts = new Counter({
      name: 'sonde_trace_store_query_timeouts_total',
      help: 'Tempo API queries answered 504 because they ran past trace_store.query_timeout, by endpoint',
      labelNames: ['endpoint'] as const,
      registers,
    });
    this.readerRestarts = new Counter({
      name: 'sonde_trace_store_reader_restarts_total',
      help: 'Reader threads terminated (and replaced) because they did not stop a query past its time budget',
      registers,
    });

    const settings: WriterSettings = {
      path: options.path,
      indexedAttributes: options.indexedAttributes,
      retentionMs: options.retentionMs,
      maxBytes: options.maxBytes,
      batchMaxBytes: options.batchMaxBytes,
      flushIntervalMs: options.flushIntervalMs,
      retentionIntervalMs: options.retentionIntervalMs,
      onFull: options.onFull,
      durability: this.durability,
    };
    this.worker = new Worker(workerScript('writer-worker.js'), { workerData: settings });
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
              'the trace store was written with another schema version: recreated empty (its traces are not migrated)',
            );
          }
          readyResolve();
          break;
        case 'failed':
          readyReject(new Error(`cannot open the trace store at ${options.path}: ${m.message}`));
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
            { err: m.message, spans: m.spans },
            'the trace store could not write a batch (disk full or unwritable?); its spans are dropped',
          );
          break;
        case 'retention':
          this.usedBytes.set(m.usedBytes);
          if (m.spans > 0) {
            this.deleted.inc(m.spans);
            this.logger.debug({ batches: m.batches, spans: m.spans }, 'trace store retention removed old spans');
          }
          break;
        case 'retention-failed':
          this.logger.error({ err: m.message }, 'trace store retention failed; it runs again on its next interval');
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
      this.logger.error({ err }, 'the trace store writer thread failed; traces are no longer stored');
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
    if (this.durability === 'wal') await this.openWal();
    else if (existsSync(this.walDir)) {
      // Left by a run with durability: wal (a crash, then a switch to memory): its acknowledged
      // requests are stored, then the log goes.
      await this.openWal();
      await this.wal?.close();
      this.wal = undefined;
      rmSync(this.walDir, { recursive: true, force: true });
    }
    this.reader = TraceDb.open(this.options.path, {
      reader: true,
      indexedAttributes: this.options.indexedAttributes,
    });
    await this.startReader();
  }

  get durability(): 'wal' | 'memory' {
    return this.options.durability ?? 'wal';
  }

  /** The write-ahead log's directory. */
  get walDir(): string {
    return this.options.walDir ?? `${this.options.path}.journal`;
  }

  /** Opens the write-ahead log and replays into SQLite what it holds that SQLite does not. */
  private async openWal(): Promise<void> {
    const wal = TraceWal.open(this.walDir, {
      segmentBytes: this.options.walSegmentBytes ?? WAL_SEGMENT_BYTES,
      syncIntervalMs: this.options.walSyncIntervalMs ?? 0,
    });
    this.wal = wal;
    const recovery = await wal.recover(this.walCommitted, async (records, receivedMs) => {
      for (const r of records) {
        this.queued += r.body.byteLength;
        this.post({ type: 'write', body: r.body, receivedMs, position: r.end }, [r.body.buffer as ArrayBuffer]);
      }
      await this.flush();
    });
    this.walRecovery = recovery;
    this.queueGauge.set(this.queued);
    this.walReplayed.inc(recovery.spans);
    if (recovery.records > 0 || recovery.truncatedBytes > 0 || recovery.corruptSegments > 0) {
      this.logger.warn(
        { dir: this.walDir, ...recovery },
        'replayed the trace store write-ahead log: acknowledged requests that were not in the database yet',
      );
    }
  }

  /** A query's time budget, in ms. */
  get queryTimeoutMs(): number {
    return this.options.queryTimeoutMs ?? 30_000;
  }

  /** Starts the reader threads; when none can start, queries run on this thread (logged). */
  private async startReader(): Promise<void> {
    const pool = new ReaderPool({
      size: this.options.queryWorkers ?? 2,
      timeoutMs: this.queryTimeoutMs,
      graceMs: READER_GRACE_MS,
      spawn: (cancel) => {
        const settings: ReaderSettings = {
          path: this.options.path,
          indexedAttributes: this.options.indexedAttributes,
          cancel,
        };
        return new Worker(workerScript('reader-worker.js'), { workerData: settings });
      },
      logger: this.logger,
      onTerminate: () => this.readerRestarts.inc(),
    });
    try {
      await pool.start();
    } catch (err) {
      this.logger.warn({ err }, 'the trace store reader thread did not start; queries run on the admin thread');
      await pool.close();
      return;
    }
    this.readers = pool;
  }

  /**
   * Runs a query on a reader thread (`signal`: its client left), or here when none runs; within the
   * time budget either way (here, only at the query's steps).
   */
  private query<T>(q: ReaderQuery, here: (db: TraceDb, checkpoint: Checkpoint) => T, signal?: AbortSignal): Promise<T> {
    const readers = this.readers;
    if (!readers?.available) {
      try {
        return Promise.resolve(
          here(
            this.db,
            checkpointFor(Date.now() + this.queryTimeoutMs, () => !!signal?.aborted),
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

  /** The stored chunks (encoded ResourceSpans) of a trace, read on the reader thread. */
  async traceChunks(traceId: Buffer, startNs?: bigint, endNs?: bigint, signal?: AbortSignal): Promise<Buffer[]> {
    const r = await this.query<Buffer[] | { data: Uint8Array; lengths: number[] }>(
      { op: 'trace', traceId, startNs, endNs },
      (db, checkpoint) => db.traceChunks(traceId, startNs, endNs, checkpoint),
      signal,
    );
    if (Array.isArray(r)) return r;
    const data = Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
    const out: Buffer[] = [];
    let at = 0;
    for (const n of r.lengths) {
      out.push(data.subarray(at, at + n));
      at += n;
    }
    return out;
  }

  search(query: SpansetQuery, options: SearchOptions, signal?: AbortSignal): Promise<SearchResult> {
    return this.query(
      { op: 'search', query, options },
      (db, checkpoint) => search(db, query, options, checkpoint),
      signal,
    );
  }

  tagNames(signal?: AbortSignal): Promise<{ resource: string[]; span: string[] }> {
    return this.query({ op: 'tagNames' }, (db, checkpoint) => tagNames(db, checkpoint), signal);
  }

  tagValues(tag: string, limit: number, signal?: AbortSignal): Promise<{ type: string; value: string }[]> {
    return this.query({ op: 'tagValues', tag, limit }, (db) => tagValues(db, tag, limit), signal);
  }

  /** The read connection for queries. */
  get db(): TraceDb {
    if (!this.reader) throw new Error('the trace store is not started');
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
    if (this.stopping) throw new OverloadedError('the receiver is shutting down; retry after 1s', 1);
    if (
      this.options.onFull === 'refuse' &&
      bytes <= this.options.queueBytes &&
      this.queued + bytes > this.options.queueBytes
    ) {
      this.refused.inc();
      throw new OverloadedError('the trace store write queue is full (trace_store.queue_size); retry after 1s', 1);
    }
  }

  consume(batch: Batch<'traces'>): void | Promise<void> {
    if (this.workerExited) {
      this.dropped.inc({ reason: 'write_error' }, batch.itemCount);
      return;
    }
    const raw = batch.context.raw && !batch.context.modified ? batch.context.raw : encodeTraceRequest(batch.data);
    if (this.queued + raw.length > this.options.queueBytes) {
      if (this.options.onFull === 'refuse' && raw.length <= this.options.queueBytes) {
        this.refused.inc();
        throw new OverloadedError('the trace store write queue is full (trace_store.queue_size); retry after 1s', 1);
      }
      this.dropped.inc({ reason: 'queue_full' }, batch.itemCount);
      return;
    }
    if (this.wal) return this.journal(raw, batch.itemCount, batch.context.receivedAt);
    // A copy with its own ArrayBuffer, moved (not cloned) to the writer thread.
    const body = new Uint8Array(raw);
    this.queued += body.byteLength;
    this.queueGauge.set(this.queued);
    this.post({ type: 'write', body, receivedMs: batch.context.receivedAt }, [body.buffer]);
  }

  /**
   * Appends the request to the write-ahead log and, once it is durable, hands it to the writer thread:
   * resolves then (the request is acknowledged), or rejects with a 503 when the log cannot take it.
   */
  private async journal(raw: Buffer, spans: number, receivedMs: number): Promise<void> {
    const wal = this.wal as TraceWal;
    if (this.stopping) throw new OverloadedError('the receiver is shutting down; retry after 1s', 1);
    // One buffer with its own ArrayBuffer: written to the log, then moved (not cloned) to the writer.
    const record = encodeRecord(raw, spans);
    this.queued += raw.length;
    this.queueGauge.set(this.queued);
    let position: WalPosition;
    try {
      position = await wal.append(record);
    } catch (err) {
      this.release(raw.length);
      this.walErrors.inc();
      // Once a second at most: a full disk fails every request of every group.
      const now = Date.now();
      if (now - this.walErrorLoggedAt >= 1000) {
        this.walErrorLoggedAt = now;
        this.logger.error(
          { err: (err as Error).message, dir: this.walDir },
          'the trace store could not write its write-ahead log (disk full or unwritable?); requests are refused with 503',
        );
      }
      throw new OtlpError(
        'the trace store cannot write to disk now; retry after 1s',
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
    this.post({ type: 'write', body, receivedMs, position }, [record.buffer as ArrayBuffer]);
  }

  private post(m: ToWriter, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(m, transfer);
  }

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
 * A worker thread's script (writer-worker.js, reader-worker.js): compiled JavaScript next to this file
 * (dist/), or, when this file runs from its TypeScript source (jest), the built one in dist/ (the
 * package is built before its tests).
 */
function workerScript(name: string): string {
  const here = join(__dirname, name);
  if (existsSync(here)) return here;
  const built = join(__dirname, '..', '..', 'dist', 'trace-store', name);
  if (existsSync(built)) return built;
  throw new Error(`the trace store's thread script is missing (${here}); build the receiver (npm run build)`);
}

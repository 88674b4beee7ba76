/**
 * The Tempo exporter: forwards traces to Tempo (or any OTLP/HTTP traces endpoint) as protobuf, the
 * way the Collector's otlphttp exporter with exporterhelper does (core `exporter/exporterhelper`):
 *
 * - `consume` only enqueues, into an in-memory queue bounded in bytes (`queueBytes`). When the queue
 *   is full it either refuses the request with 503 + Retry-After (`refuse`, so that the client keeps
 *   the data and retries) or drops the oldest queued data (`drop_oldest`); both are counted.
 * - The payload is the request body as received when nothing changed it (no re-encoding), else the
 *   model encoded again. Protobuf ExportTraceServiceRequests concatenate into a valid one (field 1
 *   is repeated), so a batch is the concatenation of queued payloads, up to `batchMaxBytes` or after
 *   `batchTimeoutMs`.
 * - Up to `concurrency` requests in flight, each its own batch (the Collector's
 *   `sending_queue.num_consumers`), so one slow round trip does not hold up the rest. Network errors,
 *   timeouts and 429/502/503/504 are retried with exponential backoff and full jitter (honouring
 *   Retry-After) for at most `retry.maxElapsedMs`; any other non-2xx status drops the batch at once. Every span that does not reach Tempo is counted in
 *   `sonde_exporter_send_failed_spans_total{reason}` and logged.
 * - `shutdown` stops accepting, flushes within `shutdownTimeoutMs` and counts what is left.
 * - With `persistentDir`, the queue is a DiskQueue (disk-queue.ts) in that directory instead of
 *   memory: same bound, same refuse/drop_oldest behaviour, but a batch leaves the queue only once
 *   Tempo took it (2xx) or it was dropped for good (a rejection, retries exhausted, drop_oldest), so
 *   what was accepted survives a restart, kill -9 included, and is sent at the next start (at least
 *   once: a batch in flight when the process died is sent again). Concurrent batches are acknowledged
 *   as they finish, in any order; the persisted position only moves past a prefix of finished ones.
 *   At shutdown, what is left stays on disk instead of being dropped.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { Agent, request } from 'undici';
import type { ResourceSpans } from '../model';
import { OverloadedError, PayloadTooLargeError } from '../otlp/errors';
import { encodeTraceRequest } from '../otlp/protobuf/encode-traces';
import { ProtoReader } from '../otlp/protobuf/reader';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { DiskQueue, DiskQueueFullError, type DiskRecord } from './disk-queue';
import { GzipWorker } from './gzip-worker';

const gzip = promisify(gzipCallback);

export interface RetryOptions {
  /** First backoff bound (ms). */
  initialMs: number;
  /** Largest backoff bound (ms). */
  maxMs: number;
  /** Give up on a batch once this long (ms) has passed since its first attempt. */
  maxElapsedMs: number;
  multiplier: number;
}

/** TLS for an https endpoint, as the Collector's configtls client settings. */
export interface TlsOptions {
  /** PEM CA certificates to trust instead of the system's. */
  ca?: string | Buffer;
  /** PEM client certificate and key (mutual TLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Accept any server certificate (testing only). */
  insecureSkipVerify?: boolean;
  /** Server name to verify and send in SNI instead of the endpoint's host. */
  serverName?: string;
}

export interface TempoExporterOptions {
  /** Full URL, including the path (`http://tempo:4318/v1/traces`); see tempoEndpoint(). */
  endpoint: string;
  tls?: TlsOptions;
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  /** Per-request timeout (ms). */
  timeoutMs: number;
  /** Bound of the in-memory queue, in bytes of (uncompressed) protobuf. */
  queueBytes: number;
  onFull: 'refuse' | 'drop_oldest';
  /** A batch is sent once this many bytes are queued... */
  batchMaxBytes: number;
  /** ...or once its oldest payload has waited this long (ms). */
  batchTimeoutMs: number;
  /** Requests in flight at once, each with its own batch. */
  concurrency: number;
  retry: RetryOptions;
  /** How long shutdown() tries to flush the queue (ms). */
  shutdownTimeoutMs: number;
  /**
   * Directory of a persistent queue on local disk (created if needed); undefined: in memory. Only one
   * process may use a directory at a time.
   */
  persistentDir?: string;
  /** Test hook: the jitter source, a number in [0, 1). */
  random?: () => number;
}

export const DEFAULT_TEMPO_EXPORTER_OPTIONS = {
  headers: {},
  compression: 'gzip',
  timeoutMs: 10_000,
  queueBytes: 64 * 1024 * 1024,
  onFull: 'refuse',
  batchMaxBytes: 4 * 1024 * 1024,
  batchTimeoutMs: 200,
  concurrency: 4,
  retry: { initialMs: 1000, maxMs: 30_000, maxElapsedMs: 300_000, multiplier: 1.5 },
  shutdownTimeoutMs: 5000,
} as const satisfies Omit<TempoExporterOptions, 'endpoint'>;

export type TempoExporterOptionsInput = Pick<TempoExporterOptions, 'endpoint'> &
  Partial<Omit<TempoExporterOptions, 'endpoint' | 'retry'>> & { retry?: Partial<RetryOptions> };

export type SendFailedReason =
  | 'rejected_4xx'
  | 'rejected_5xx'
  | 'rejected_partial'
  | 'retries_exhausted'
  | 'queue_full'
  | 'too_large'
  | 'dropped_oldest'
  | 'disk_error'
  | 'shutdown';

interface QueueItem {
  payload: Buffer;
  spans: number;
  enqueuedAt: number;
}

/** A batch taken from the queue: in flight until `settle` (sent or dropped) or `release` (kept). */
interface Taken {
  payloads: Buffer[];
  spans: number;
  bytes: number;
  /** The records on disk (persistent queue). */
  records?: DiskRecord[];
}

/** The export queue: in memory, or on disk. Bytes and counts leave out the batches in flight... */
interface ExportQueue {
  readonly waitingBytes: number;
  /** ...but these: bytes accepted and not yet done with (waiting, and in batches in flight; on disk, what it holds). */
  readonly heldBytes: number;
  readonly waitingCount: number;
  readonly waitingSpans: number;
  /** When the oldest waiting payload was queued (ms since epoch). */
  oldestAt(): number | undefined;
  push(payload: Buffer, spans: number): void;
  /** Drops the oldest waiting payload; undefined when none waits. */
  dropOldest(): { bytes: number; spans: number } | undefined;
  /** Takes the oldest waiting payloads up to `maxBytes` (at least one) as a batch in flight. */
  take(maxBytes: number): Taken;
  /** A batch in flight is done with (delivered, or dropped for good). */
  settle(batch: Taken): void;
  /** A batch in flight was abandoned at shutdown. */
  release(batch: Taken): void;
  /** At shutdown: empties the queue (memory) or keeps it for the next start (disk). */
  close(): void;
}

class MemoryQueue implements ExportQueue {
  private readonly items: QueueItem[] = [];
  private bytes = 0;
  private inFlightBytes = 0;

  get waitingBytes(): number {
    return this.bytes;
  }

  get heldBytes(): number {
    return this.bytes + this.inFlightBytes;
  }

  get waitingCount(): number {
    return this.items.length;
  }

  get waitingSpans(): number {
    return this.items.reduce((n, item) => n + item.spans, 0);
  }

  oldestAt(): number | undefined {
    return this.items[0]?.enqueuedAt;
  }

  push(payload: Buffer, spans: number): void {
    // A body that is a view on a larger buffer (a gRPC frame, the Buffer pool) is copied, so that the
    // queue holds only what it counts.
    const owned = payload.byteLength < payload.buffer.byteLength ? Buffer.from(payload) : payload;
    this.items.push({ payload: owned, spans, enqueuedAt: Date.now() });
    this.bytes += payload.length;
  }

  dropOldest(): { bytes: number; spans: number } | undefined {
    const old = this.items.shift();
    if (!old) return undefined;
    this.bytes -= old.payload.length;
    return { bytes: old.payload.length, spans: old.spans };
  }

  take(maxBytes: number): Taken {
    const taken: Taken = { payloads: [], spans: 0, bytes: 0 };
    while (this.items.length > 0) {
      const next = this.items[0];
      if (taken.payloads.length > 0 && taken.bytes + next.payload.length > maxBytes) break;
      this.items.shift();
      taken.payloads.push(next.payload);
      taken.spans += next.spans;
      taken.bytes += next.payload.length;
    }
    this.bytes -= taken.bytes;
    this.inFlightBytes += taken.bytes;
    return taken;
  }

  settle(batch: Taken): void {
    this.inFlightBytes -= batch.bytes;
  }

  release(batch: Taken): void {
    this.inFlightBytes -= batch.bytes;
  }

  close(): void {
    this.items.length = 0;
    this.bytes = 0;
    this.inFlightBytes = 0;
  }
}

/**
 * The queue as a DiskQueue: batches in flight stay on disk (unacknowledged) until settled. They are
 * always the oldest unacknowledged records (taken in order; a settled one is acknowledged), so what
 * waits is what comes after the first `inFlight` of them.
 */
class PersistentQueue implements ExportQueue {
  private inFlight = 0;
  private inFlightBytes = 0;
  private inFlightSpans = 0;

  constructor(readonly disk: DiskQueue) {}

  get waitingBytes(): number {
    return this.disk.bytes - this.inFlightBytes;
  }

  /** Every unacknowledged byte on disk (batches in flight stay there until Tempo took them), kept after close. */
  get heldBytes(): number {
    return this.disk.bytes;
  }

  get waitingCount(): number {
    return this.disk.length - this.inFlight;
  }

  get waitingSpans(): number {
    return this.disk.spans - this.inFlightSpans;
  }

  oldestAt(): number | undefined {
    return this.disk.oldestAppendedAt(this.inFlight);
  }

  push(payload: Buffer, spans: number): void {
    this.disk.append(payload, spans);
  }

  dropOldest(): { bytes: number; spans: number } | undefined {
    const { records, bytes, spans } = this.disk.ack(1, this.inFlight);
    return records === 0 ? undefined : { bytes, spans };
  }

  take(maxBytes: number): Taken {
    const records = this.disk.peek(maxBytes, this.inFlight);
    const taken: Taken = { payloads: [], spans: 0, bytes: 0, records };
    for (const r of records) {
      taken.payloads.push(r.payload);
      taken.spans += r.spanCount;
      taken.bytes += r.payload.length;
    }
    this.inFlight += records.length;
    this.inFlightBytes += taken.bytes;
    this.inFlightSpans += taken.spans;
    return taken;
  }

  settle(batch: Taken): void {
    this.release(batch);
    this.disk.ackRecords(batch.records ?? []);
  }

  release(batch: Taken): void {
    this.inFlight -= batch.records?.length ?? 0;
    this.inFlightBytes -= batch.bytes;
    this.inFlightSpans -= batch.spans;
  }

  close(): void {
    this.disk.close();
  }
}

type AttemptResult =
  | { kind: 'ok'; status: number; rejected: number; message: string }
  | { kind: 'retry'; outcome: string; detail: string; retryAfterMs: number | undefined }
  | { kind: 'reject'; status: number; detail: string }
  | { kind: 'aborted' };

/** Statuses worth retrying, as exporterhelper/otlphttp decide (the OTLP/HTTP spec's list). */
const RETRYABLE = new Set([429, 502, 503, 504]);

export class TempoExporter implements Consumer<'traces'> {
  readonly name = 'tempo';
  readonly options: TempoExporterOptions;

  private readonly queue: ExportQueue;
  private stopping = false;
  /** Aborted when the shutdown bound passes: in-flight requests and backoff sleeps end at once. */
  private readonly abort = new AbortController();
  /** Senders waiting for data (woken by an enqueue or shutdown). */
  private readonly waiting = new Set<() => void>();
  /** Senders waiting for the oldest payload's batch timeout. */
  private timing = 0;
  /** When the next attempt of a retried batch is due (ms since epoch), for Retry-After hints. */
  private nextAttemptAt = 0;
  private readonly senders: Promise<void>;
  /** Keep-alive connections to the endpoint (TLS as configured), one per sender at most. */
  private readonly agent: Agent;
  private readonly gzipper: GzipWorker;
  private shutdownPromise: Promise<void> | undefined;

  private readonly sentSpans: Counter;
  private readonly failedSpans: Counter<'reason'>;
  private readonly retries: Counter;
  private readonly requests: Counter<'outcome'>;
  private readonly duration: Histogram<'outcome'>;
  private inFlightRequests = 0;

  constructor(
    options: TempoExporterOptionsInput,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.options = {
      ...DEFAULT_TEMPO_EXPORTER_OPTIONS,
      ...options,
      retry: { ...DEFAULT_TEMPO_EXPORTER_OPTIONS.retry, ...options.retry },
    } as TempoExporterOptions;
    checkHeaders(this.options.headers);
    this.queue = this.openQueue();
    this.gzipper = new GzipWorker(1, this.options.batchMaxBytes);
    const tls = this.options.tls ?? {};
    this.agent = new Agent({
      connections: Math.max(1, this.options.concurrency),
      keepAliveTimeout: 30_000,
      connect: {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: tls.insecureSkipVerify !== true,
        servername: tls.serverName,
      },
    });
    this.sentSpans = new Counter({
      name: 'sonde_exporter_sent_spans_total',
      help: 'Spans accepted by Tempo (2xx)',
      registers: [registry],
    });
    this.failedSpans = new Counter({
      name: 'sonde_exporter_send_failed_spans_total',
      help: 'Spans that did not reach Tempo, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    this.retries = new Counter({
      name: 'sonde_exporter_retries_total',
      help: 'Export requests retried after a network error, a timeout or a 429/502/503/504',
      registers: [registry],
    });
    this.requests = new Counter({
      name: 'sonde_exporter_requests_total',
      help: 'Export requests to Tempo by outcome (success, status_<code>, network_error, timeout)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'sonde_exporter_request_duration_seconds',
      help: 'Time of each export request to Tempo, by outcome (success, status_<code>, network_error, timeout)',
      labelNames: ['outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    const self = this;
    new Gauge({
      name: 'sonde_exporter_in_flight_requests',
      help: 'Export requests to Tempo in flight now (at most tempo.concurrency)',
      registers: [registry],
      collect() {
        this.set(self.inFlightRequests);
      },
    });
    new Gauge({
      name: 'sonde_exporter_queue_bytes',
      help: 'Bytes of protobuf accepted and not yet sent to Tempo: waiting in the export queue or in requests in flight (with tempo.persistent_queue, every byte the queue holds on disk)',
      registers: [registry],
      collect() {
        this.set(self.queue.heldBytes);
      },
    });
    new Gauge({
      name: 'sonde_exporter_queue_capacity_bytes',
      help: 'Bound of the Tempo export queue (tempo.queue_size)',
      registers: [registry],
    }).set(this.options.queueBytes);
    this.senders = Promise.all(
      Array.from({ length: Math.max(1, this.options.concurrency) }, () =>
        this.run().catch((err: unknown) => {
          this.logger.error({ err }, 'a Tempo export sender stopped on an unexpected error');
        }),
      ),
    ).then(() => {});
  }

  /** Bytes waiting in the queue. */
  get queuedBytes(): number {
    return this.queue.waitingBytes;
  }

  /** Whether the queue is on disk (persistentDir). */
  get persistent(): boolean {
    return this.queue instanceof PersistentQueue;
  }

  private openQueue(): ExportQueue {
    const { persistentDir, queueBytes, batchMaxBytes, concurrency } = this.options;
    if (persistentDir === undefined) return new MemoryQueue();
    // queueBytes bounds what waits; the batches in flight (each at most max(batchMaxBytes, one payload,
    // which is at most queueBytes)) stay on disk too until Tempo took them.
    const disk = DiskQueue.open(persistentDir, {
      maxBytes: queueBytes + Math.max(1, concurrency) * Math.max(batchMaxBytes, queueBytes),
    });
    const { records, spans, bytes, truncatedBytes, corruptSegments } = disk.recovery;
    if (truncatedBytes > 0 || corruptSegments > 0) {
      this.logger.warn(
        { dir: persistentDir, truncatedBytes, corruptSegments },
        'the persistent Tempo export queue had a torn or corrupt tail (a crash during a write): it was cut off',
      );
    }
    if (records > 0) {
      this.logger.info(
        { dir: persistentDir, spans, bytes, requests: records },
        'spans left in the persistent Tempo export queue by the previous run are sent again',
      );
    }
    return new PersistentQueue(disk);
  }

  /**
   * With `refuse`, turns a request away before it is decoded when the queue cannot take it (its
   * decompressed size stands for the payload's), so an outage costs no decoding of refused data.
   */
  admit(bytes: number): void {
    if (this.stopping) throw new OverloadedError('the receiver is shutting down; retry after 1s', 1);
    const { queueBytes, onFull } = this.options;
    if (onFull === 'refuse' && bytes <= queueBytes && this.queue.waitingBytes + bytes > queueBytes) {
      const seconds = this.retryAfterSeconds();
      throw new OverloadedError(`the Tempo export queue is full (tempo.queue_size); retry after ${seconds}s`, seconds);
    }
  }

  consume(batch: Batch<'traces'>): void {
    if (this.stopping) throw new OverloadedError('the receiver is shutting down; retry after 1s', 1);
    const { raw, modified } = batch.context;
    const payload = !modified && raw ? raw : encodeTraceRequest(batch.data);
    const spans = countSpans(batch.data);
    if (payload.length === 0 || spans === 0) return;
    const { queueBytes, onFull } = this.options;
    if (payload.length > queueBytes) {
      this.fail('too_large', spans);
      throw new PayloadTooLargeError(
        `the request (${payload.length} bytes) is larger than the Tempo export queue (tempo.queue_size, ${queueBytes} bytes)`,
      );
    }
    if (this.queue.waitingBytes + payload.length > queueBytes) {
      if (onFull === 'refuse') this.refuseFull(spans);
      let droppedSpans = 0;
      let droppedItems = 0;
      while (this.queue.waitingBytes + payload.length > queueBytes) {
        const old = this.queue.dropOldest();
        if (!old) break;
        droppedSpans += old.spans;
        droppedItems++;
      }
      this.fail('dropped_oldest', droppedSpans);
      this.logger.warn(
        { droppedSpans, droppedRequests: droppedItems },
        'the Tempo export queue is full (tempo.queue_size): dropped the oldest queued spans',
      );
    }
    try {
      this.queue.push(payload, spans);
    } catch (err) {
      if (err instanceof DiskQueueFullError) this.refuseFull(spans);
      this.fail('disk_error', spans);
      this.logger.error({ err }, 'could not write to the persistent Tempo export queue');
      throw new OverloadedError('the Tempo export queue could not store the request; retry after 5s', 5);
    }
    this.wake();
  }

  private refuseFull(spans: number): never {
    this.fail('queue_full', spans);
    const seconds = this.retryAfterSeconds();
    throw new OverloadedError(`the Tempo export queue is full (tempo.queue_size); retry after ${seconds}s`, seconds);
  }

  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.doShutdown();
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<void> {
    this.stopping = true;
    this.wake();
    const deadline = Date.now() + this.options.shutdownTimeoutMs;
    const timer = setTimeout(() => this.abort.abort(), this.options.shutdownTimeoutMs);
    // Every wait of a sender ends when `abort` fires (see untilAborted), so this is bounded by
    // shutdown_timeout even if the HTTP client or the gzip worker never settles.
    await this.senders;
    clearTimeout(timer);
    const aborted = this.abort.signal.aborted;
    this.abort.abort();
    // close() waits for requests in flight; after the bound, anything left is cut (destroy). Closing
    // takes what is left of shutdown_timeout, or CLOSE_GRACE_MS past it at most.
    const closing = aborted ? this.agent.destroy() : this.agent.close();
    await within(
      Promise.all([closing.catch(() => {}), this.gzipper.close().catch(() => {})]),
      Math.max(CLOSE_GRACE_MS, deadline - Date.now()),
    );
    if (this.queue.waitingCount > 0) {
      const spans = this.queue.waitingSpans;
      if (this.persistent) {
        this.logger.warn(
          { spans },
          'the Tempo export queue was not flushed within tempo.shutdown_timeout: spans kept on disk for the next start',
        );
      } else {
        this.fail('shutdown', spans);
        this.logger.warn(
          { spans },
          'the Tempo export queue was not flushed within tempo.shutdown_timeout: spans dropped',
        );
      }
    }
    try {
      this.queue.close();
    } catch (err) {
      this.logger.error({ err }, 'could not close the persistent Tempo export queue');
    }
  }

  /** One sender (of `concurrency`): waits for data, batches it, sends one batch at a time. */
  private async run(): Promise<void> {
    const { batchMaxBytes, batchTimeoutMs } = this.options;
    for (;;) {
      if (this.abort.signal.aborted) return;
      if (this.queue.waitingCount === 0) {
        if (this.stopping) return;
        await this.idle(undefined);
        continue;
      }
      if (!this.stopping && this.queue.waitingBytes < batchMaxBytes) {
        const age = Date.now() - (this.queue.oldestAt() ?? 0);
        if (age < batchTimeoutMs) {
          this.timing++;
          await this.idle(batchTimeoutMs - age);
          this.timing--;
          continue;
        }
      }
      const batch = this.queue.take(batchMaxBytes);
      this.wake(); // more may wait for another sender
      const delivered = await this.send(batch);
      if (!delivered) {
        this.queue.release(batch);
        continue;
      }
      try {
        this.queue.settle(batch);
      } catch (err) {
        // The position could not be persisted: the batch may be sent again after a restart.
        this.logger.error({ err }, 'could not record a sent batch in the persistent Tempo export queue');
      }
    }
  }

  /**
   * Sends a batch, retrying as configured. True when it is done with (delivered, or dropped for good
   * and counted); false when shutdown cut it short (counted as dropped unless the queue is on disk,
   * which keeps it for the next start).
   */
  private async send(batch: Taken): Promise<boolean> {
    const { retry, compression } = this.options;
    const { spans, payloads } = batch;
    let body: Buffer;
    try {
      body =
        compression === 'gzip'
          ? await untilAborted(this.compress(payloads), this.abort.signal)
          : payloads.length === 1
            ? payloads[0]
            : Buffer.concat(payloads);
    } catch (err) {
      if (!this.abort.signal.aborted) throw err;
      this.abandoned(spans);
      return false;
    }
    const started = Date.now();
    let bound = retry.initialMs;
    for (;;) {
      const attemptStarted = performance.now();
      this.inFlightRequests++;
      const result = await this.attempt(body);
      this.inFlightRequests--;
      const outcome =
        result.kind === 'ok' ? 'success' : result.kind === 'reject' ? `status_${result.status}` : undefined;
      const seconds = (performance.now() - attemptStarted) / 1000;
      if (result.kind === 'retry') this.duration.observe({ outcome: result.outcome }, seconds);
      else if (outcome) this.duration.observe({ outcome }, seconds);
      switch (result.kind) {
        case 'ok': {
          this.requests.inc({ outcome: 'success' });
          // Tempo (like any OTLP receiver) may refuse part of the request in a partial_success.
          const rejected = Math.min(result.rejected, spans);
          this.sentSpans.inc(spans - rejected);
          if (rejected > 0 || result.message) {
            this.fail('rejected_partial', rejected);
            this.logger.warn(
              { rejectedSpans: rejected, spans, message: result.message },
              'Tempo accepted an export request in part (partial_success); the rejected spans are dropped',
            );
          }
          return true;
        }
        case 'aborted':
          this.abandoned(spans);
          return false;
        case 'reject': {
          this.requests.inc({ outcome: `status_${result.status}` });
          this.fail(result.status < 500 ? 'rejected_4xx' : 'rejected_5xx', spans);
          this.logger.error(
            { status: result.status, response: result.detail, spans },
            'Tempo rejected an export request; its spans are dropped',
          );
          return true;
        }
        case 'retry': {
          this.requests.inc({ outcome: result.outcome });
          const backoff = Math.min(bound, retry.maxMs) * (this.options.random ?? Math.random)();
          const wait = result.retryAfterMs ?? backoff;
          const elapsed = Date.now() - started;
          if (elapsed + wait > retry.maxElapsedMs) {
            this.fail('retries_exhausted', spans);
            this.logger.error(
              { reason: result.detail, spans, elapsedMs: elapsed },
              'Tempo export failed after retrying for tempo.retry.max_elapsed_time; its spans are dropped',
            );
            return true;
          }
          this.logger.debug({ reason: result.detail, waitMs: Math.round(wait) }, 'Tempo export failed; retrying');
          this.retries.inc();
          this.nextAttemptAt = Date.now() + wait;
          const slept = await this.sleep(wait);
          this.nextAttemptAt = 0;
          if (!slept) {
            this.abandoned(spans);
            return false;
          }
          bound = Math.min(bound * retry.multiplier, retry.maxMs);
        }
      }
    }
  }

  /** gzip (level 1) of the concatenated payloads, on the gzip worker; on the thread pool should it fail. */
  private async compress(payloads: Buffer[]): Promise<Buffer> {
    try {
      return await this.gzipper.gzip(payloads);
    } catch (err) {
      this.logger.warn({ err }, 'the gzip worker failed; compressing on the thread pool instead');
      return gzip(payloads.length === 1 ? payloads[0] : Buffer.concat(payloads), { level: 1 });
    }
  }

  private async attempt(body: Buffer): Promise<AttemptResult> {
    const { endpoint, headers, compression, timeoutMs } = this.options;
    if (this.abort.signal.aborted) return { kind: 'aborted' };
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([timeout, this.abort.signal]);
    let status: number;
    let responseHeaders: Record<string, string | string[] | undefined>;
    let text: Buffer;
    try {
      // The request and its body end when `signal` fires, even should the client not settle them.
      const response = await untilAborted(
        request(endpoint, {
          method: 'POST',
          body,
          headers: {
            ...headers,
            'content-type': 'application/x-protobuf',
            ...(compression === 'gzip' ? { 'content-encoding': 'gzip' } : {}),
          },
          dispatcher: this.agent,
          signal,
        }),
        signal,
      );
      status = response.statusCode;
      responseHeaders = response.headers;
      text = Buffer.from(await untilAborted(response.body.arrayBuffer(), signal));
    } catch (err) {
      if (this.abort.signal.aborted) return { kind: 'aborted' };
      if (timeout.aborted) {
        return {
          kind: 'retry',
          outcome: 'timeout',
          detail: `no answer within ${timeoutMs} ms`,
          retryAfterMs: undefined,
        };
      }
      const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
      const detail = e.cause?.code ?? e.code ?? e.cause?.message ?? e.message;
      return { kind: 'retry', outcome: 'network_error', detail, retryAfterMs: undefined };
    }
    if (status >= 200 && status < 300) return { kind: 'ok', status, ...partialSuccess(text, responseHeaders) };
    const detail = text.toString('utf8', 0, Math.min(text.length, 200));
    if (RETRYABLE.has(status)) {
      const retryAfter = responseHeaders['retry-after'];
      return {
        kind: 'retry',
        outcome: `status_${status}`,
        detail: `HTTP ${status}${detail ? `: ${detail}` : ''}`,
        retryAfterMs: parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : null),
      };
    }
    return { kind: 'reject', status, detail };
  }

  /** Waits for an enqueue or shutdown, or `ms` if given. */
  private idle(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      const waiting = this.waiting;
      function done() {
        clearTimeout(timer);
        waiting.delete(done);
        resolve();
      }
      waiting.add(done);
    });
  }

  /**
   * Wakes waiting senders when there is work for them: all of them at shutdown or when a full batch
   * waits, else one when data waits and no sender is already timing the batch timeout (so each
   * enqueue does not re-arm every sender's timer).
   */
  private wake(): void {
    if (this.waiting.size === 0) return;
    if (this.stopping || this.queue.waitingBytes >= this.options.batchMaxBytes) {
      for (const done of [...this.waiting]) done();
    } else if (this.queue.waitingCount > 0 && this.timing === 0) {
      const [first] = this.waiting;
      first();
    }
  }

  /** Sleeps `ms`; false when shutdown's bound cut it short. */
  private sleep(ms: number): Promise<boolean> {
    const signal = this.abort.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The Retry-After hint for a refused request: the current backoff if the sender waits, else 1 s. */
  private retryAfterSeconds(): number {
    const remaining = this.nextAttemptAt - Date.now();
    return Math.min(30, Math.max(1, Math.ceil(remaining / 1000)));
  }

  private abandoned(spans: number): void {
    if (this.persistent) {
      this.logger.warn(
        { spans },
        'Tempo export abandoned at shutdown (tempo.shutdown_timeout): kept on disk for the next start',
      );
    } else {
      this.fail('shutdown', spans);
      this.logger.warn({ spans }, 'Tempo export abandoned at shutdown (tempo.shutdown_timeout)');
    }
  }

  private fail(reason: SendFailedReason, spans: number): void {
    if (spans > 0) this.failedSpans.inc({ reason }, spans);
  }
}

/** How long past shutdown_timeout shutdown waits at most for the HTTP client and the gzip worker to close. */
const CLOSE_GRACE_MS = 100;

/** `promise`, or a rejection with the signal's reason as soon as `signal` fires (whichever comes first). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Waits for `promise`, at most `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * The `partial_success` of an ExportTraceServiceResponse (protobuf, or JSON when the endpoint answers
 * in JSON): rejected spans and the message. Anything unreadable counts as a full success, as the
 * Collector's otlphttp exporter treats it.
 */
export function partialSuccess(
  body: Buffer,
  headers: Record<string, string | string[] | undefined>,
): { rejected: number; message: string } {
  const none = { rejected: 0, message: '' };
  if (body.length === 0) return none;
  const type = String(headers['content-type'] ?? '');
  try {
    if (type.includes('json')) {
      const p = (
        JSON.parse(body.toString('utf8')) as { partialSuccess?: { rejectedSpans?: unknown; errorMessage?: unknown } }
      ).partialSuccess;
      return { rejected: Number(p?.rejectedSpans ?? 0) || 0, message: String(p?.errorMessage ?? '') };
    }
    const r = new ProtoReader(body);
    while (r.pos < body.length) {
      const tag = r.uint32();
      if (tag >>> 3 !== 1 || (tag & 7) !== 2) {
        r.skip(tag & 7);
        continue;
      }
      const end = r.delimitedEnd();
      const out = { rejected: 0, message: '' };
      while (r.pos < end) {
        const t = r.uint32();
        if (t === 0x08) out.rejected = r.uint64Number();
        else if (t === 0x12) out.message = r.string();
        else r.skip(t & 7);
      }
      return out;
    }
  } catch {
    // An unreadable body is not a reason to send the batch again.
  }
  return none;
}

function countSpans(data: readonly ResourceSpans[]): number {
  let n = 0;
  for (const rs of data) for (const ss of rs.scopeSpans) n += ss.spans.length;
  return n;
}

/** Retry-After as delta-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - Date.now());
}

/**
 * Headers `tempo.headers` may not set: the connection's and the message framing's (RFC 9110 §7.6.1,
 * §8.6, §6.1), which the HTTP client sets itself. Overriding them made every export fail.
 */
const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/**
 * Why a header of `tempo.headers` cannot be sent, or undefined when it can: a name that is not an
 * RFC 9110 token, a value with CR, LF, NUL or another control character, or a header the HTTP client
 * owns (FORBIDDEN_HEADERS). Names the header, never quotes its value (it may be a credential).
 */
export function headerProblem(name: string, value: string): string | undefined {
  try {
    validateHeaderName(name);
  } catch {
    return `${JSON.stringify(name)} is not a valid header name (an RFC 9110 token: letters, digits and !#$%&'*+-.^_\`|~, no spaces or separators)`;
  }
  if (FORBIDDEN_HEADERS.has(name.toLowerCase())) {
    return `the ${JSON.stringify(name)} header cannot be set: the exporter's HTTP client sets it (connection and message framing)`;
  }
  try {
    validateHeaderValue(name, value);
  } catch {
    return `the value of ${JSON.stringify(name)} holds a character a header value cannot have (CR, LF, NUL or another control character)`;
  }
  return undefined;
}

/** Throws on the first header that cannot be sent (see headerProblem). */
export function checkHeaders(headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    const problem = headerProblem(name, value);
    if (problem) throw new Error(problem);
  }
}

/**
 * `SONDE_TEMPO_HEADERS`: `key=value,key2=value2`, as OTEL_EXPORTER_OTLP_HEADERS (W3C Baggage-like;
 * keys and values are trimmed and percent-decoded). Empty entries are skipped. Throws on an entry
 * that is not key=value and on a header that cannot be sent (checkHeaders).
 */
export function parseHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  const entries = text.split(',');
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i].trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const key = eq > 0 ? decode(entry.slice(0, eq).trim()) : '';
    if (key === '') throw new Error(`SONDE_TEMPO_HEADERS: entry ${i + 1} is not key=value`);
    headers[key.toLowerCase()] = decode(entry.slice(eq + 1).trim());
  }
  checkHeaders(headers);
  return headers;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * `SONDE_TEMPO_ENDPOINT`: a base URL as in OTEL_EXPORTER_OTLP_ENDPOINT; `/v1/traces` is appended
 * unless the URL already has a path other than `/`.
 */
export function tempoEndpoint(base: string): string {
  const url = new URL(base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`the Tempo endpoint must be an http(s) URL, not ${url.protocol}`);
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/traces';
  return url.toString();
}

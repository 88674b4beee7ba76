/**
 * An OTLP/HTTP exporter, signal-agnostic: the Tempo exporter (traces, tempo-exporter.ts) and the Loki
 * exporter (logs, loki-exporter.ts) are instances of it with their signal's encoder and item count
 * (`ExportSignal`). It works the way the Collector's otlphttp exporter with exporterhelper does (core
 * `exporter/exporterhelper`):
 *
 * - `consume` only enqueues, into an in-memory queue bounded in bytes (`queueBytes`). When the queue
 *   is full it refuses the request with 503 + Retry-After (`refuse`, so that the client keeps the
 *   data and retries), accepts it without queuing it (`drop_newest`) or drops the oldest queued data
 *   (`drop_oldest`); each is counted. The admission decision, the refusal and the drop of the oldest
 *   are the queue layer's (queue/admission.ts), shared with the embedded stores.
 * - The payload is the request body as received when nothing changed it (no re-encoding), else the
 *   model encoded again (queue/admission.ts, requestPayload). Protobuf Export*ServiceRequests concatenate into a valid one (field 1 is
 *   repeated), so a batch is the concatenation of queued payloads, up to `batchMaxBytes` or after
 *   `batchTimeoutMs`.
 * - Up to `concurrency` requests in flight, each its own batch (the Collector's
 *   `sending_queue.num_consumers`), so one slow round trip does not hold up the rest. Network errors,
 *   timeouts and 429/502/503/504 are retried with exponential backoff and full jitter (honouring
 *   Retry-After) for at most `retry.maxElapsedMs`; any other non-2xx status drops the batch at once.
 *   A zstd-compressed request answered 415, or 400 naming the encoding (an endpoint without zstd), is
 *   not a rejection: the exporter falls back to gzip for good and sends the batch again at once. A
 *   zstd request answered any other 400 before the endpoint ever accepted zstd is sent once more
 *   with gzip: if that gets through, the exporter falls back to gzip for good (an older receiver
 *   that reads zstd bytes as protobuf); if not, the batch is rejected, once.
 *   Any 2xx is a success; its body, when there is one, may hold a partial_success (Loki answers 204
 *   with an empty body). Every item that does not reach the backend is counted in
 *   `sonde_exporter_send_failed_<items>_total{exporter,reason}` and logged.
 * - Tenants: a request let in by a bearer token with a tenant (otlp.auth.bearer_tokens_file) carries
 *   it (`batch.context.tenant`), and its data is sent with `X-Scope-OrgID: <tenant>` in place of any
 *   configured one; data without a tenant is sent with the configured headers. A batch never mixes
 *   tenants: it is the oldest payloads of one tenant in a row (queue order is kept), and the
 *   persistent queue keeps each payload's tenant across a restart.
 * - `shutdown` stops accepting, flushes within `shutdownTimeoutMs` and counts what is left.
 * - With `persistentDir`, the queue is a DiskQueue (disk-queue.ts) in that directory instead of
 *   memory: same bound, same on_full behaviour, but a batch leaves the queue only once
 *   the backend took it (2xx) or it was dropped for good (a rejection, retries exhausted, drop_oldest),
 *   so what was accepted survives a restart, kill -9 included, and is sent at the next start (at
 *   least once: a batch in flight when the process died is sent again). Concurrent batches are
 *   acknowledged as they finish, in any order; the persisted position only moves past a prefix of
 *   finished ones. At shutdown, what is left stays on disk instead of being dropped.
 *
 * Self-metrics (`sonde_exporter_*`) are shared by every exporter in a registry and told apart by the
 * `exporter` label (`tempo`, `loki`); the item counters are per kind of item, as the Collector's
 * (`sonde_exporter_sent_spans_total`, `sonde_exporter_sent_log_records_total`).
 */
import type { Logger } from 'pino';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type * as Undici from 'undici';
import type { Agent } from 'undici';
import { type MetricHandles, registerMetrics } from '../metrics/define';
import type { Signal, SignalData } from '../model';
import { OverloadedError, PayloadTooLargeError } from '../otlp/errors';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { dropOldestUntilFits, QueueAdmission, requestPayload, shuttingDown } from '../queue/admission';
import type { OnFull } from '../queue/on-full';
import { type CompressionAlgorithm, CompressWorker, compressOnThreadPool } from './compress-worker';
import { DiskQueue, DiskQueueFullError } from './disk-queue';
import { type ExportQueue, MemoryQueue, PersistentQueue, type Taken } from './export-queue';
import { checkHeaders, parseRetryAfter, partialSuccess } from './http';
import { EXPORTER_METRICS, exporterItemMetrics } from './metrics';

/** What an exporter carries: its signal, how it is encoded and counted, and how it is named. */
export interface ExportSignal<S extends Signal> {
  /** The exporter's name: the `exporter` label of the self-metrics, the consumer's name (`tempo`). */
  name: string;
  /** The backend, in log lines and errors (`Tempo`). */
  backend: string;
  /** The config section, in log lines and errors (`tempo`: `tempo.queue_size`). */
  section: string;
  /** What the items are called in log lines and metric help (`spans`, `log records`)... */
  items: string;
  /** ...in metric names (`spans`: sonde_exporter_sent_spans_total)... */
  metricItems: string;
  /** ...and the JSON name of partial_success's rejected count (`rejectedSpans`). */
  jsonRejectedField: string;
  /** Encodes the (possibly modified) data as an Export*ServiceRequest in protobuf. */
  encode(data: SignalData[S]): Buffer;
  /** The items in `data`. */
  count(data: SignalData[S]): number;
}

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

export interface OtlpHttpExporterOptions {
  /** Full URL, including the path (`http://tempo:4318/v1/traces`); see otlpEndpoint(). */
  endpoint: string;
  tls?: TlsOptions;
  headers: Record<string, string>;
  /**
   * How request bodies are compressed (level 1). A zstd request answered 415, or 400 naming the
   * encoding, switches the exporter to gzip for good and is sent again at once (see `send`).
   */
  compression: Compression;
  /** Per-request timeout (ms). */
  timeoutMs: number;
  /** Bound of the in-memory queue, in bytes of (uncompressed) protobuf. */
  queueBytes: number;
  /** When the queue is full (queue/on-full.ts): refuse (503 + Retry-After), drop_newest or drop_oldest. */
  onFull: OnFull;
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

/** The exporters' `Content-Encoding`s. */
export type Compression = CompressionAlgorithm | 'none';

/** The compression level of both algorithms: the cheapest, as the Collector's otlphttp exporter. */
const COMPRESSION_LEVEL = 1;

export const DEFAULT_EXPORTER_OPTIONS = {
  headers: {},
  compression: 'zstd',
  timeoutMs: 10_000,
  queueBytes: 64 * 1024 * 1024,
  onFull: 'refuse',
  batchMaxBytes: 4 * 1024 * 1024,
  batchTimeoutMs: 200,
  concurrency: 4,
  retry: { initialMs: 1000, maxMs: 30_000, maxElapsedMs: 300_000, multiplier: 1.5 },
  shutdownTimeoutMs: 5000,
} as const satisfies Omit<OtlpHttpExporterOptions, 'endpoint'>;

export type OtlpHttpExporterOptionsInput = Pick<OtlpHttpExporterOptions, 'endpoint'> &
  Partial<Omit<OtlpHttpExporterOptions, 'endpoint' | 'retry'>> & { retry?: Partial<RetryOptions> };

export type SendFailedReason =
  | 'rejected_4xx'
  | 'rejected_5xx'
  | 'rejected_partial'
  | 'retries_exhausted'
  | 'queue_full'
  | 'too_large'
  | 'dropped_oldest'
  | 'dropped_newest'
  | 'disk_error'
  | 'shutdown';

type AttemptResult =
  | { kind: 'ok'; status: number; rejected: number; message: string }
  | { kind: 'retry'; outcome: string; detail: string; retryAfterMs: number | undefined }
  | { kind: 'reject'; status: number; detail: string }
  | { kind: 'aborted' };

/** Statuses worth retrying, as exporterhelper/otlphttp decide (the OTLP/HTTP spec's list). */
const RETRYABLE = new Set([429, 502, 503, 504]);

export class OtlpHttpExporter<S extends Signal> implements Consumer<S> {
  readonly name: string;
  readonly options: OtlpHttpExporterOptions;

  private readonly queue: ExportQueue;
  /** The byte-bounded admission into `queue` (on_full), shared with the stores (queue/admission.ts). */
  private readonly admission: QueueAdmission;
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
  private readonly compressor: CompressWorker;
  /**
   * What request bodies are compressed with now: `options.compression`, until the endpoint turns
   * zstd down (415, or 400 naming the encoding); gzip from then on.
   */
  private compression: Compression;
  /** Whether the endpoint has accepted a zstd-compressed request (then a 400 is the batch's own). */
  private zstdAccepted = false;
  private shutdownPromise: Promise<void> | undefined;
  private readonly sentItems: Counter<'exporter'>;
  private readonly failedItems: Counter<'exporter' | 'reason'>;

  private readonly metrics: ExporterMetrics;
  /** This exporter's `exporter` label. */
  private readonly label: { exporter: string };
  /** Requests in flight now (sonde_exporter_in_flight_requests). */
  inFlightRequests = 0;

  constructor(
    readonly signal: ExportSignal<S>,
    options: OtlpHttpExporterOptionsInput,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.name = signal.name;
    this.options = {
      ...DEFAULT_EXPORTER_OPTIONS,
      ...options,
      retry: { ...DEFAULT_EXPORTER_OPTIONS.retry, ...options.retry },
    } as OtlpHttpExporterOptions;
    checkHeaders(this.options.headers);
    this.queue = this.openQueue();
    this.admission = new QueueAdmission({
      capacityBytes: this.options.queueBytes,
      onFull: this.options.onFull,
      queue: `the ${signal.backend} export queue`,
      sizeKey: `${signal.section}.queue_size`,
      retryAfterSeconds: () => this.retryAfterSeconds(),
    });
    this.compression = this.options.compression;
    this.compressor = new CompressWorker(COMPRESSION_LEVEL, this.options.batchMaxBytes);
    const tls = this.options.tls ?? {};
    // undici (its HTTP parser is WebAssembly) adds ~28 MiB of RSS: loaded only when an exporter is
    // made, not by every receiver that imports this module.
    const { Agent } = undici();
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
    this.label = { exporter: signal.name };
    this.metrics = ExporterMetrics.of(registry);
    this.metrics.add(this);
    const itemCounters = this.metrics.items(signal.metricItems);
    this.sentItems = itemCounters.sent;
    this.failedItems = itemCounters.failed;
    this.senders = Promise.all(
      Array.from({ length: Math.max(1, this.options.concurrency) }, () =>
        this.run().catch((err: unknown) => {
          this.logger.error({ err }, `a ${signal.backend} export sender stopped on an unexpected error`);
        }),
      ),
    ).then(() => {});
  }

  /** Bytes waiting in the queue. */
  get queuedBytes(): number {
    return this.queue.waitingBytes;
  }

  /** Bytes accepted and not yet done with (sonde_exporter_queue_bytes). */
  get heldBytes(): number {
    return this.queue.heldBytes;
  }

  /** Whether the queue is on disk (persistentDir). */
  get persistent(): boolean {
    return this.queue instanceof PersistentQueue;
  }

  private openQueue(): ExportQueue {
    const { persistentDir, queueBytes, batchMaxBytes, concurrency } = this.options;
    if (persistentDir === undefined) return new MemoryQueue();
    // queueBytes bounds what waits; the batches in flight (each at most max(batchMaxBytes, one payload,
    // which is at most queueBytes)) stay on disk too until the backend took them.
    const disk = DiskQueue.open(persistentDir, {
      maxBytes: queueBytes + Math.max(1, concurrency) * Math.max(batchMaxBytes, queueBytes),
    });
    const { records, spans: items, bytes, truncatedBytes, corruptSegments } = disk.recovery;
    const { backend } = this.signal;
    if (truncatedBytes > 0 || corruptSegments > 0) {
      this.logger.warn(
        { dir: persistentDir, truncatedBytes, corruptSegments },
        `the persistent ${backend} export queue had a torn or corrupt tail (a crash during a write): it was cut off`,
      );
    }
    if (records > 0) {
      this.logger.info(
        { dir: persistentDir, [this.signal.metricItems]: items, bytes, requests: records },
        `${this.signal.items} left in the persistent ${backend} export queue by the previous run are sent again`,
      );
    }
    return new PersistentQueue(disk);
  }

  /**
   * With `refuse`, turns a request away before it is decoded when the queue cannot take it (its
   * decompressed size stands for the payload's), so an outage costs no decoding of refused data.
   */
  admit(bytes: number): void {
    if (this.stopping) throw shuttingDown();
    this.admission.admit(bytes, this.queue.waitingBytes);
  }

  consume(batch: Batch<S>): void {
    if (this.stopping) throw shuttingDown();
    const { backend, section, items: itemsName } = this.signal;
    const payload = requestPayload(batch, (data) => this.signal.encode(data));
    // A batch from an intake worker holds only a skeleton of its items: its count is theirs.
    const items = batch.derived ? batch.itemCount : this.signal.count(batch.data);
    if (payload.length === 0 || items === 0) return;
    const { queueBytes } = this.options;
    switch (this.admission.verdict(payload.length, this.queue.waitingBytes)) {
      case 'accept':
        break;
      case 'too_large':
        this.fail('too_large', items);
        throw new PayloadTooLargeError(
          `the request (${payload.length} bytes) is larger than the ${backend} export queue (${section}.queue_size, ${queueBytes} bytes)`,
        );
      case 'refuse':
        this.refuseFull(items);
        break;
      case 'drop_newest':
        this.fail('dropped_newest', items);
        this.logger.warn(
          { [`dropped_${this.signal.metricItems}`]: items },
          `the ${backend} export queue is full (${section}.queue_size): dropped the new ${itemsName}`,
        );
        return;
      case 'drop_oldest': {
        const dropped = dropOldestUntilFits(this.queue, payload.length, queueBytes);
        this.fail('dropped_oldest', dropped.items);
        this.logger.warn(
          { [`dropped_${this.signal.metricItems}`]: dropped.items, droppedRequests: dropped.requests },
          `the ${backend} export queue is full (${section}.queue_size): dropped the oldest queued ${itemsName}`,
        );
      }
    }
    try {
      this.queue.push(payload, items, batch.context.tenant);
    } catch (err) {
      if (err instanceof DiskQueueFullError) this.refuseFull(items);
      this.fail('disk_error', items);
      this.logger.error({ err }, `could not write to the persistent ${backend} export queue`);
      throw new OverloadedError(`the ${backend} export queue could not store the request; retry after 5s`, 5);
    }
    this.wake();
  }

  private refuseFull(items: number): never {
    this.fail('queue_full', items);
    throw this.admission.full();
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
    // shutdown_timeout even if the HTTP client or the compression worker never settles.
    await this.senders;
    clearTimeout(timer);
    const aborted = this.abort.signal.aborted;
    this.abort.abort();
    // close() waits for requests in flight; after the bound, anything left is cut (destroy). Closing
    // takes what is left of shutdown_timeout, or CLOSE_GRACE_MS past it at most.
    const closing = aborted ? this.agent.destroy() : this.agent.close();
    await within(
      Promise.all([closing.catch(() => {}), this.compressor.close().catch(() => {})]),
      Math.max(CLOSE_GRACE_MS, deadline - Date.now()),
    );
    if (this.queue.waitingCount > 0) {
      const items = this.queue.waitingItems;
      const { backend, section, items: itemsName } = this.signal;
      if (this.persistent) {
        this.logger.warn(
          { [this.signal.metricItems]: items },
          `the ${backend} export queue was not flushed within ${section}.shutdown_timeout: ${itemsName} kept on disk for the next start`,
        );
      } else {
        this.fail('shutdown', items);
        this.logger.warn(
          { [this.signal.metricItems]: items },
          `the ${backend} export queue was not flushed within ${section}.shutdown_timeout: ${itemsName} dropped`,
        );
      }
    }
    try {
      this.queue.close();
    } catch (err) {
      this.logger.error({ err }, `could not close the persistent ${this.signal.backend} export queue`);
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
        this.logger.error(
          { err },
          `could not record a sent batch in the persistent ${this.signal.backend} export queue`,
        );
      }
    }
  }

  /**
   * Sends a batch, retrying as configured. True when it is done with (delivered, or dropped for good
   * and counted); false when shutdown cut it short (counted as dropped unless the queue is on disk,
   * which keeps it for the next start).
   */
  private async send(batch: Taken): Promise<boolean> {
    const { retry } = this.options;
    const { items, payloads, tenant } = batch;
    const { backend, section, items: itemsName } = this.signal;
    let encoding: Compression | undefined;
    let body: Buffer = Buffer.alloc(0);
    // A zstd request answered 400 without naming the encoding, before the endpoint ever accepted
    // zstd: this batch is sent once more with gzip, to tell a bad batch from an endpoint that reads
    // zstd bytes as protobuf (a Collector receiver from before zstd passed unknown encodings
    // through, and then fails to parse them); `zstdRefusal` is that answer.
    let zstdRefusal: { status: number; detail: string } | undefined;
    const started = Date.now();
    let bound = retry.initialMs;
    for (;;) {
      // Compressed again only when the exporter fell back to gzip since (this batch or another), or
      // this batch is being tried with gzip.
      const wanted = zstdRefusal ? 'gzip' : this.compression;
      if (encoding !== wanted) {
        encoding = wanted;
        try {
          body = await this.body(payloads, encoding);
        } catch (err) {
          if (!this.abort.signal.aborted) throw err;
          this.abandoned(items);
          return false;
        }
      }
      const attemptStarted = performance.now();
      this.inFlightRequests++;
      const result = await this.attempt(body, tenant, encoding);
      this.inFlightRequests--;
      const outcome =
        result.kind === 'ok' ? 'success' : result.kind === 'reject' ? `status_${result.status}` : undefined;
      const seconds = (performance.now() - attemptStarted) / 1000;
      if (result.kind === 'retry') this.metrics.duration.observe({ ...this.label, outcome: result.outcome }, seconds);
      else if (outcome) this.metrics.duration.observe({ ...this.label, outcome }, seconds);
      switch (result.kind) {
        case 'ok': {
          this.metrics.requests.inc({ ...this.label, outcome: 'success' });
          if (encoding === 'zstd') this.zstdAccepted = true;
          // gzip got through where zstd did not: the endpoint does not read zstd.
          else if (zstdRefusal) this.fallBackToGzip(zstdRefusal.status, zstdRefusal.detail);
          // The backend (like any OTLP receiver) may refuse part of the request in a partial_success.
          const rejected = Math.min(result.rejected, items);
          this.sentItems.inc(this.label, items - rejected);
          if (rejected > 0 || result.message) {
            this.fail('rejected_partial', rejected);
            this.logger.warn(
              {
                [`rejected_${this.signal.metricItems}`]: rejected,
                [this.signal.metricItems]: items,
                message: result.message,
              },
              `${backend} accepted an export request in part (partial_success); the rejected ${itemsName} are dropped`,
            );
          }
          return true;
        }
        case 'aborted':
          this.abandoned(items);
          return false;
        case 'reject': {
          this.metrics.requests.inc({ ...this.label, outcome: `status_${result.status}` });
          if (encoding === 'zstd' && refusesEncoding(result.status, result.detail)) {
            this.fallBackToGzip(result.status, result.detail);
            continue; // the same batch, gzip-compressed, at once: nothing is dropped
          }
          if (encoding === 'zstd' && result.status === 400 && !this.zstdAccepted) {
            zstdRefusal = { status: result.status, detail: result.detail };
            continue; // once more with gzip, at once; a second 400 is the batch's own
          }
          this.fail(result.status < 500 ? 'rejected_4xx' : 'rejected_5xx', items);
          this.logger.error(
            { status: result.status, response: result.detail, [this.signal.metricItems]: items },
            `${backend} rejected an export request; its ${itemsName} are dropped`,
          );
          return true;
        }
        case 'retry': {
          this.metrics.requests.inc({ ...this.label, outcome: result.outcome });
          const backoff = Math.min(bound, retry.maxMs) * (this.options.random ?? Math.random)();
          const wait = result.retryAfterMs ?? backoff;
          const elapsed = Date.now() - started;
          if (elapsed + wait > retry.maxElapsedMs) {
            this.fail('retries_exhausted', items);
            this.logger.error(
              { reason: result.detail, [this.signal.metricItems]: items, elapsedMs: elapsed },
              `${backend} export failed after retrying for ${section}.retry.max_elapsed_time; its ${itemsName} are dropped`,
            );
            return true;
          }
          this.logger.debug({ reason: result.detail, waitMs: Math.round(wait) }, `${backend} export failed; retrying`);
          this.metrics.retries.inc(this.label);
          this.nextAttemptAt = Date.now() + wait;
          const slept = await this.sleep(wait);
          this.nextAttemptAt = 0;
          if (!slept) {
            this.abandoned(items);
            return false;
          }
          bound = Math.min(bound * retry.multiplier, retry.maxMs);
        }
      }
    }
  }

  /** A batch's request body: its payloads concatenated, compressed with `encoding`; rejects when shutdown's bound passes. */
  private body(payloads: Buffer[], encoding: Compression): Promise<Buffer> {
    if (encoding === 'none') return Promise.resolve(payloads.length === 1 ? payloads[0] : Buffer.concat(payloads));
    return untilAborted(this.compress(encoding, payloads), this.abort.signal);
  }

  /** `algorithm` (level 1) of the concatenated payloads, on the compression worker; on the thread pool should it fail. */
  private async compress(algorithm: CompressionAlgorithm, payloads: Buffer[]): Promise<Buffer> {
    try {
      return await this.compressor.compress(algorithm, payloads);
    } catch (err) {
      this.logger.warn({ err }, 'the compression worker failed; compressing on the thread pool instead');
      return compressOnThreadPool(algorithm, COMPRESSION_LEVEL, payloads);
    }
  }

  /**
   * The endpoint does not take zstd: gzip from now on, for every batch of this exporter, with one
   * warning (batches already compressed with zstd, in flight on other senders, fall back quietly).
   */
  private fallBackToGzip(status: number, detail: string): void {
    if (this.compression !== 'zstd') return;
    this.compression = 'gzip';
    const { backend, section } = this.signal;
    this.logger.warn(
      { status, response: detail, endpoint: this.options.endpoint },
      `${backend} does not accept zstd-compressed requests (HTTP ${status}): the ${backend} exporter sends gzip from now on, ` +
        `the refused batch included (nothing was dropped); set \`compression: gzip\` in the \`${section}:\` section to start with gzip`,
    );
  }

  private async attempt(body: Buffer, tenant: string | undefined, compression: Compression): Promise<AttemptResult> {
    const { endpoint, timeoutMs } = this.options;
    const headers = tenant === undefined ? this.options.headers : withTenant(this.options.headers, tenant);
    if (this.abort.signal.aborted) return { kind: 'aborted' };
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([timeout, this.abort.signal]);
    let status: number;
    let responseHeaders: Record<string, string | string[] | undefined>;
    let text: Buffer;
    try {
      // The request and its body end when `signal` fires, even should the client not settle them.
      const response = await untilAborted(
        undici().request(endpoint, {
          method: 'POST',
          body,
          headers: {
            ...headers,
            'content-type': 'application/x-protobuf',
            ...(compression === 'none' ? {} : { 'content-encoding': compression }),
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
    if (status >= 200 && status < 300) {
      return { kind: 'ok', status, ...partialSuccess(text, responseHeaders, this.signal.jsonRejectedField) };
    }
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

  private abandoned(items: number): void {
    const { backend, section } = this.signal;
    if (this.persistent) {
      this.logger.warn(
        { [this.signal.metricItems]: items },
        `${backend} export abandoned at shutdown (${section}.shutdown_timeout): kept on disk for the next start`,
      );
    } else {
      this.fail('shutdown', items);
      this.logger.warn(
        { [this.signal.metricItems]: items },
        `${backend} export abandoned at shutdown (${section}.shutdown_timeout)`,
      );
    }
  }

  private fail(reason: SendFailedReason, items: number): void {
    if (items > 0) this.failedItems.inc({ ...this.label, reason }, items);
  }
}

/**
 * The `sonde_exporter_*` self-metrics of a registry, shared by its exporters (each labelled
 * `exporter`): prom-client allows one metric of a name per registry.
 */
class ExporterMetrics {
  private static readonly byRegistry = new WeakMap<Registry, ExporterMetrics>();

  static of(registry: Registry): ExporterMetrics {
    let m = ExporterMetrics.byRegistry.get(registry);
    if (!m) {
      m = new ExporterMetrics(registry);
      ExporterMetrics.byRegistry.set(registry, m);
    }
    return m;
  }

  /** The exporters the gauges report (after shutdown too: the queue bytes a persistent queue keeps). */
  private readonly exporters = new Set<OtlpHttpExporter<Signal>>();
  private readonly itemCounters = new Map<string, MetricHandles<ReturnType<typeof exporterItemMetrics>>>();
  readonly retries: Counter<'exporter'>;
  readonly requests: Counter<'exporter' | 'outcome'>;
  readonly duration: Histogram<'exporter' | 'outcome'>;
  private readonly capacity: Gauge<'exporter'>;

  private constructor(private readonly registry: Registry) {
    const exporters = this.exporters;
    const m = registerMetrics(registry, EXPORTER_METRICS, {
      inFlightRequests() {
        for (const e of exporters) this.set({ exporter: e.name }, e.inFlightRequests);
      },
      queueBytes() {
        for (const e of exporters) this.set({ exporter: e.name }, e.heldBytes);
      },
    });
    this.retries = m.retries;
    this.requests = m.requests;
    this.duration = m.duration;
    this.capacity = m.queueCapacityBytes;
  }

  add(e: OtlpHttpExporter<Signal>): void {
    this.exporters.add(e);
    this.capacity.set({ exporter: e.name }, e.options.queueBytes);
  }

  /** sonde_exporter_sent_<items>_total and sonde_exporter_send_failed_<items>_total, made once. */
  items(metricItems: string): MetricHandles<ReturnType<typeof exporterItemMetrics>> {
    let c = this.itemCounters.get(metricItems);
    if (!c) {
      c = registerMetrics(this.registry, exporterItemMetrics(metricItems));
      this.itemCounters.set(metricItems, c);
    }
    return c;
  }
}

/** How long past shutdown_timeout shutdown waits at most for the HTTP client and the compression worker to close. */
const CLOSE_GRACE_MS = 100;

/**
 * Whether a rejection of a zstd-compressed request is the endpoint turning the encoding down: 415,
 * or 400 whose body names the content encoding or zstd (the Collector's confighttp, Tempo's OTLP receiver included,
 * answers `400 unsupported Content-Encoding: zstd` when zstd is not in its compression_algorithms).
 */
function refusesEncoding(status: number, detail: string): boolean {
  return status === 415 || (status === 400 && /content.?encoding|zstd/i.test(detail));
}

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

/** The configured headers with `X-Scope-OrgID` set to the tenant (in place of a static one, whatever its case). */
function withTenant(headers: Record<string, string>, tenant: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'x-scope-orgid') out[k] = v;
  out['X-Scope-OrgID'] = tenant;
  return out;
}

let undiciModule: typeof Undici | undefined;

/** undici, required on first use (see the constructor). */
function undici(): typeof Undici {
  undiciModule ??= require('undici') as typeof Undici;
  return undiciModule;
}

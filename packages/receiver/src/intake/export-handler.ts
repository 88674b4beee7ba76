/**
 * The one path every OTLP export request takes, whatever its transport:
 * admission → decode → validate → pipeline (processors, consumers) → response, with the
 * self-metrics and the debug log line on the way. HTTP and gRPC only adapt their framing to it.
 */
import type { Logger } from 'pino';
import { ITEM_NAME, type Signal } from '../model';
import { asOtlpError, type OtlpError } from '../otlp/errors';
import type { PartialSuccess } from '../otlp/responses';
import type { Batch, Pipeline } from '../pipeline/pipeline';
import type { SelfMetrics } from '../self-metrics';
import { applyCounters, type IntakeWorkers, workerError } from '../workers/pool';
import { type PackedSkeleton, unpackSkeleton } from '../workers/skeleton';
import type { Admission } from './admission';
import { type ExportRequest, type HandlerOptions, prepareBatch } from './prepare';
import type { Rejection } from './validate';

/** Totals since start, for the periodic summary log line. */
export type Received = Record<Signal, number>;

export class ExportHandler {
  readonly received: Received = { traces: 0, metrics: 0, logs: 0 };

  constructor(
    private readonly options: HandlerOptions,
    private readonly pipeline: Pipeline,
    private readonly admission: Admission,
    private readonly metrics: SelfMetrics,
    private readonly logger: Logger,
    /** The intake workers that decode and process traces and logs; none: all on this thread. */
    private readonly workers?: IntakeWorkers,
  ) {}

  /** Handles one request; resolves with the partial success to report, or rejects with an OtlpError. */
  async handle<S extends Signal>(req: ExportRequest<S>): Promise<PartialSuccess | undefined> {
    const { signal, transport, body } = req;
    const m = this.metrics.forRequest(signal, transport);
    m.receivedBytes.inc(body.length);
    const reserved = req.reservedBytes ?? 0;
    // What decompression added to the bytes the transport already holds for the request.
    const extra = Math.max(0, body.length - reserved);
    try {
      this.admission.acquire(signal, extra, reserved);
    } catch (err) {
      throw this.refused(req, err);
    }
    // What this call holds in flight: the bytes decompression added, then the decoded size too.
    let held = extra;
    try {
      this.pipeline.for(signal).admit(body.length);
      if (this.workers && signal !== 'metrics') {
        return await this.handleOnWorker(req as ExportRequest<'traces' | 'logs'>, (bytes) => {
          this.admission.hold(bytes);
          held += bytes;
        });
      }
      const pipeline = this.pipeline.for(signal);
      const { batch, rejection, decodedBytes } = prepareBatch(
        req,
        this.options,
        this.metrics.limitHits,
        pipeline.readsEveryAttribute(),
      );
      // Memory admission counts what the request became once decoded, not only its bytes, until it is done.
      this.admission.hold(decodedBytes);
      held += decodedBytes;
      if (batch.itemCount > 0) await pipeline.consume(batch);
      return this.answer(req, batch.itemCount, rejection, rejection.messages.concat(batch.warnings));
    } catch (err) {
      throw this.refused(req, err);
    } finally {
      this.admission.release(held);
    }
  }

  /**
   * Decode, validation and the processors on an intake worker (src/workers/), the consumers here: the
   * byte consumers take the worker's payload (the body itself when the worker left it as it came),
   * the model consumers its skeleton of the batch.
   */
  private async handleOnWorker<S extends 'traces' | 'logs'>(
    req: ExportRequest<S>,
    hold: (decodedBytes: number) => void,
  ): Promise<PartialSuccess | undefined> {
    const { signal } = req;
    const bytes = req.body.length;
    const done = await (this.workers as IntakeWorkers).process(signal, req.encoding, req.body);
    applyCounters(this.metrics.registry, done.counters);
    if (!done.ok) throw workerError(done.error, this.logger);
    hold(done.decodedBytes);
    const rejection: Rejection = {
      kept: done.kept,
      count: done.rejected,
      overLimit: done.overLimit,
      messages: done.messages,
    };
    const warnings = done.warnings;
    if (done.kept > 0) {
      // The worker sends a payload back only when it is not the body as received.
      const payload = done.payload;
      const batch: Batch<S> = {
        signal,
        data: unpackSkeleton(signal, done.skeleton as PackedSkeleton),
        itemCount: done.kept,
        context: {
          transport: req.transport,
          encoding: req.encoding,
          receivedAt: Date.now(),
          raw: payload ? Buffer.from(payload.buffer, payload.offset, payload.length) : req.body,
          modified: false,
          tenant: req.tenant,
        },
        warnings,
        decodeStats: undefined,
        derived: done.derived ?? {},
      };
      await this.pipeline.for(signal).deliver(batch);
    }
    return this.answer(req, done.kept, rejection, rejection.messages.concat(warnings), bytes);
  }

  /** Counts an accepted request, logs it at debug, and gives its partial success (undefined for full success). */
  private answer<S extends Signal>(
    req: ExportRequest<S>,
    kept: number,
    rejection: Rejection,
    messages: string[],
    bytes = req.body.length,
  ): PartialSuccess | undefined {
    const { signal, transport } = req;
    if (kept > 0) this.metrics.forRequest(signal, transport).accepted.inc(kept);
    this.metrics.countRefusedItems(signal, transport, 'invalid', rejection.count - rejection.overLimit);
    this.metrics.countRefusedItems(signal, transport, 'too_many_items', rejection.overLimit);
    this.received[signal] += kept;
    this.finish(req, messages.length > 0 ? 'partialSuccess' : 'success');
    if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug(
        { signal, transport, encoding: req.encoding, items: kept, rejected: rejection.count, bytes },
        `received ${kept} ${ITEM_NAME[signal]}`,
      );
    }
    if (messages.length === 0) return undefined;
    return { rejected: rejection.count, errorMessage: messages.join('; ') };
  }

  /**
   * Before the body is read (HTTP: `bytes` is its declared length, at most its decompressed size, 0
   * when it is not declared; gRPC: an estimate from the call's headers on): counts them in flight
   * while the body is read. Or, reserving nothing, throws what
   * `handle` would refuse the request with now (memory, in-flight bytes, a full export or store
   * queue), without counting the refusal (the caller answers through `refused`). Pair with `release`.
   */
  reserve(signal: Signal, bytes: number): void {
    this.admission.acquire(signal, bytes);
    try {
      this.pipeline.for(signal).admit(bytes);
    } catch (err) {
      this.admission.release(bytes);
      throw err;
    }
  }

  /** While a body of undeclared length arrives: counts `bytes` more in flight for a request that holds `held`, or throws as `reserve`. */
  reserveMore(signal: Signal, bytes: number, held: number): void {
    this.admission.acquire(signal, bytes, held);
  }

  release(bytes: number): void {
    this.admission.release(bytes);
  }

  /** Counts and logs a refused request; returns the OtlpError to answer with. */
  refused<S extends Signal>(req: Omit<ExportRequest<S>, 'body' | 'encoding'>, err: unknown): OtlpError {
    const error = asOtlpError(err, this.logger);
    this.metrics.refusedRequests.inc({ signal: req.signal, transport: req.transport, reason: error.reason });
    this.finish(req, 'refused');
    this.logger.debug(
      { signal: req.signal, transport: req.transport, status: error.httpStatus, reason: error.reason },
      error.message,
    );
    return error;
  }

  private finish<S extends Signal>(
    req: Omit<ExportRequest<S>, 'body' | 'encoding'>,
    outcome: 'success' | 'partialSuccess' | 'refused',
  ): void {
    const m = this.metrics.forRequest(req.signal, req.transport);
    m[outcome].inc();
    m.duration.observe((performance.now() - req.startedAt) / 1000);
  }
}

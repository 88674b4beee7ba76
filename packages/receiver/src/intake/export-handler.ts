/**
 * The one path every OTLP export request takes, whatever its transport:
 * admission → decode → validate → pipeline (processors, consumers) → response, with the
 * self-metrics and the debug log line on the way. HTTP and gRPC only adapt their framing to it.
 */
import type { Logger } from 'pino';
import { ITEM_NAME, type Signal, type SignalData } from '../model';
import { GrpcCode, OtlpError, TooManyStructuresError } from '../otlp/errors';
import { BYTES_PER_STRUCTURE, type DecodeLimits, type DecodeStats } from '../otlp/limits';
import type { Encoding, PartialSuccess } from '../otlp/responses';
import type { Batch, Pipeline } from '../pipeline/pipeline';
import type { SelfMetrics, Transport } from '../self-metrics';
import type { Admission } from './admission';
import { decodeRequest } from './decode';
import { validateRequest } from './validate';

export interface ExportRequest<S extends Signal> {
  signal: S;
  transport: Transport;
  encoding: Encoding;
  /** The decompressed body. */
  body: Buffer;
  /** When reading the request began (performance.now()), for the duration histogram. */
  startedAt: number;
  /** Bytes of this request already counted in flight by the transport while it read the body (`reserve`); the caller releases them. */
  reservedBytes?: number;
  /** The tenant of the sender's bearer token, if any. */
  tenant?: string;
}

export interface HandlerOptions {
  decodeLimits: DecodeLimits;
  maxItemsPerRequest: number;
}

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
      const stats: DecodeStats = { longestString: 0, mostAttributes: 0, structures: 0 };
      let data: SignalData[S];
      try {
        data = decodeRequest(signal, req.encoding, body, this.options.decodeLimits, stats);
      } catch (err) {
        if (err instanceof TooManyStructuresError) {
          this.metrics.limitHits.inc({ signal, limit: 'max_decoded_structures' });
        }
        throw err;
      }
      // Memory admission counts what the request became once decoded, not only its bytes, until it is done.
      const decodedBytes = Math.round((stats.structures ?? 0) * BYTES_PER_STRUCTURE);
      this.admission.hold(decodedBytes);
      held += decodedBytes;
      const rejection = validateRequest(signal, data, this.options.maxItemsPerRequest);
      if (rejection.overLimit > 0) this.metrics.limitHits.inc({ signal, limit: 'max_items_per_request' });
      const batch: Batch<S> = {
        signal,
        data,
        itemCount: rejection.kept,
        context: {
          transport,
          encoding: req.encoding,
          receivedAt: Date.now(),
          raw: req.encoding === 'protobuf' ? body : undefined,
          modified: rejection.count > 0,
          tenant: req.tenant,
        },
        warnings: [],
        decodeStats: req.encoding === 'protobuf' ? stats : undefined,
      };
      if (batch.itemCount > 0) {
        await this.pipeline.for(signal).consume(batch);
        m.accepted.inc(batch.itemCount);
      }
      this.metrics.countRefusedItems(signal, transport, 'invalid', rejection.count - rejection.overLimit);
      this.metrics.countRefusedItems(signal, transport, 'too_many_items', rejection.overLimit);
      this.received[signal] += batch.itemCount;
      const messages = rejection.messages.concat(batch.warnings);
      this.finish(req, messages.length > 0 ? 'partialSuccess' : 'success');
      if (this.logger.isLevelEnabled('debug')) {
        this.logger.debug(
          {
            signal,
            transport,
            encoding: req.encoding,
            items: batch.itemCount,
            rejected: rejection.count,
            bytes: body.length,
          },
          `received ${batch.itemCount} ${ITEM_NAME[signal]}`,
        );
      }
      if (messages.length === 0) return undefined;
      return { rejected: rejection.count, errorMessage: messages.join('; ') };
    } catch (err) {
      throw this.refused(req, err);
    } finally {
      this.admission.release(held);
    }
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

/** Any failure as an OtlpError: unknown errors become 500 (and are logged, being bugs). */
export function asOtlpError(err: unknown, logger: Logger): OtlpError {
  if (err instanceof OtlpError) return err;
  logger.error({ err }, 'internal error while handling an export request');
  return new OtlpError(
    'internal error in the receiver; the request was not processed',
    500,
    GrpcCode.INTERNAL,
    'internal',
  );
}

import type { Signal, SignalData } from '../model';
import { TooManyStructuresError } from '../otlp/errors';
import { BYTES_PER_STRUCTURE, type DecodeLimits, type DecodeStats } from '../otlp/limits';
import type { Encoding } from '../otlp/responses';
import type { Batch } from '../pipeline/pipeline';
import type { SelfMetrics, Transport } from '../self-metrics';
import { decodeRequest } from './decode';
import { type Rejection, validateRequest } from './validate';

/** One OTLP export request, as the transports hand it to ExportHandler.handle. */
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
  /** Decode traces in full at intake (debug.full_decode), never lean (otlp/protobuf/lean.ts). */
  fullDecode?: boolean;
}

/**
 * Decodes and validates a request into the batch the processors and consumers take (on the main
 * thread, or on an intake worker): counts the limit hits of decoding and of the per-request item limit.
 */
export function prepareBatch<S extends Signal>(
  req: Pick<ExportRequest<S>, 'signal' | 'transport' | 'encoding' | 'body' | 'tenant'>,
  options: HandlerOptions,
  limitHits: SelfMetrics['limitHits'],
  /** Whether a processor of the signal reads every attribute (the request is then decoded in full). */
  readsEveryAttribute = false,
): { batch: Batch<S>; rejection: Rejection; decodedBytes: number } {
  const { signal, body } = req;
  const stats: DecodeStats = { longestString: 0, mostAttributes: 0, structures: 0 };
  let data: SignalData[S];
  try {
    const lean = !options.fullDecode && !readsEveryAttribute;
    data = decodeRequest(signal, req.encoding, body, options.decodeLimits, stats, lean);
  } catch (err) {
    if (err instanceof TooManyStructuresError) limitHits.inc({ signal, limit: 'max_decoded_structures' });
    throw err;
  }
  const decodedBytes = Math.round((stats.structures ?? 0) * BYTES_PER_STRUCTURE);
  const rejection = validateRequest(signal, data, options.maxItemsPerRequest);
  if (rejection.overLimit > 0) limitHits.inc({ signal, limit: 'max_items_per_request' });
  const batch: Batch<S> = {
    signal,
    data,
    itemCount: rejection.kept,
    context: {
      transport: req.transport,
      encoding: req.encoding,
      receivedAt: Date.now(),
      raw: req.encoding === 'protobuf' ? body : undefined,
      modified: rejection.count > 0,
      tenant: req.tenant,
    },
    warnings: [],
    decodeStats: req.encoding === 'protobuf' ? stats : undefined,
  };
  return { batch, rejection, decodedBytes };
}

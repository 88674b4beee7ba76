/**
 * Admission into a queue bounded in bytes, shared by the exporters (export/otlp-http-exporter.ts)
 * and the embedded stores (blob-store/engine.ts), as the Collector's exporterhelper queue is shared
 * by its exporters: one decision, one refusal, one way to drop the oldest, one payload choice. What
 * each counts stays its own (its self-metrics and their reason labels are unchanged).
 *
 * - The payload is the request body as received (no re-encoding) unless a processor modified the
 *   batch (requestPayload).
 * - A request larger than the whole queue never fits (`too_large`); one that fits the free space is
 *   accepted; else `on_full` decides (on-full.ts): refuse (503 + Retry-After), drop the new request,
 *   or drop the oldest queued ones until it fits (dropOldestUntilFits).
 * - `admit` makes the refuse decision before the request is decoded, from its (decompressed) size,
 *   so that a full queue costs no decoding of refused data.
 */

import type { Signal, SignalData } from '../model';
import { OverloadedError } from '../otlp/errors';
import { applyPatch, PatchError } from '../otlp/protobuf/patch';
import type { Batch } from '../pipeline/pipeline';
import type { OnFull } from './on-full';

export type Verdict = 'accept' | 'too_large' | OnFull;

export interface QueueAdmissionOptions {
  /** The queue's bound, in bytes of protobuf. */
  capacityBytes: number;
  onFull: OnFull;
  /** The queue, in errors: `the Tempo export queue`, `the trace store write queue`. */
  queue: string;
  /** The key of its bound, in errors: `tempo.queue_size`. */
  sizeKey: string;
  /** The Retry-After of a refusal, in seconds (default 1). */
  retryAfterSeconds?: () => number;
}

export class QueueAdmission {
  constructor(readonly options: QueueAdmissionOptions) {}

  /** What a request of `bytes` meets with `queued` bytes waiting. */
  verdict(bytes: number, queued: number): Verdict {
    const { capacityBytes, onFull } = this.options;
    if (bytes > capacityBytes) return 'too_large';
    if (queued + bytes <= capacityBytes) return 'accept';
    return onFull;
  }

  /** Before decoding: throws the refusal when the queue (refuse) cannot take `bytes` now but could when empty. */
  admit(bytes: number, queued: number): void {
    if (this.verdict(bytes, queued) === 'refuse') throw this.full();
  }

  /** The refusal: 503 + Retry-After, naming the queue and its size key. */
  full(): OverloadedError {
    const seconds = this.options.retryAfterSeconds?.() ?? 1;
    return new OverloadedError(
      `${this.options.queue} is full (${this.options.sizeKey}); retry after ${seconds}s`,
      seconds,
    );
  }
}

/** The refusal of a request that arrives while its queue's owner shuts down. */
export function shuttingDown(): OverloadedError {
  return new OverloadedError('the receiver is shutting down; retry after 1s', 1);
}

/** A queue that can drop its oldest waiting request (the export queues). */
export interface DropsOldest {
  readonly waitingBytes: number;
  /** Removes the oldest waiting request; undefined when none waits. */
  dropOldest(): { items: number } | undefined;
}

/** Drops the oldest waiting requests until `bytes` more fit in `capacityBytes`; what it dropped. */
export function dropOldestUntilFits(
  queue: DropsOldest,
  bytes: number,
  capacityBytes: number,
): { items: number; requests: number } {
  let items = 0;
  let requests = 0;
  while (queue.waitingBytes + bytes > capacityBytes) {
    const old = queue.dropOldest();
    if (!old) break;
    items += old.items;
    requests++;
  }
  return { items, requests };
}

/**
 * The bytes to queue: the request body as received, unless a processor modified the batch (or it came
 * as JSON); then the body with the processors' patch applied (otlp/protobuf/patch.ts) when they kept
 * one, else the data encoded anew; either once for every consumer of the batch (kept in `context.encoded`).
 */
export function requestPayload<S extends Signal>(batch: Batch<S>, encode: (data: SignalData[S]) => Buffer): Buffer {
  const { context } = batch;
  if (!context.modified && context.raw) return context.raw;
  if (context.encoded) return context.encoded;
  if (context.raw && context.patch) {
    try {
      context.encoded = applyPatch(context.raw, context.patch);
      return context.encoded;
    } catch (err) {
      if (!(err instanceof PatchError)) throw err;
      // An edit the body does not have where the decoder said (a tag written in more bytes than needed): encoded anew.
      context.patch = undefined;
    }
  }
  context.encoded = encode(batch.data);
  return context.encoded;
}

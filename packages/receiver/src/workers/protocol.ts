/**
 * The messages between the main thread and an intake worker (intake-worker.ts, pool.ts). A request's
 * body goes to the worker as a copy, and the main thread keeps its own: a payload comes back (moved,
 * its ArrayBuffer transferred) only when it is not the body as received. Each buffer a thread is
 * handed counts towards its heap's external memory until a collection finds it unused, and the main
 * thread, which allocates little, collects seldom: receiving every payload back made V8 run a full
 * collection there every 100 ms or so (docs/performance-history.md, 2026-12-05 evening).
 */
import type { ReceiverConfig } from '../config/schema';
import type { Signal } from '../model';
import type { GrpcCode, RefusalReason } from '../otlp/errors';
import type { Encoding } from '../otlp/responses';
import type { RecordedOps } from './recorded-store';
import type { PackedSkeleton, SkeletonKeys } from './skeleton';

export interface WorkerSettings {
  config: ReceiverConfig;
  keys: SkeletonKeys;
}

export interface ProcessRequest {
  id: number;
  signal: Exclude<Signal, 'metrics'>;
  encoding: Encoding;
  /** The decompressed body: `length` bytes of `buffer` from `offset`. */
  buffer: ArrayBuffer;
  offset: number;
  length: number;
}

/** A counter increment the worker's processors made, applied to the main thread's counter of that name. */
export type CounterIncrement = [name: string, labels: Record<string, string>, value: number];

export interface ProcessedRequest {
  id: number;
  ok: true;
  /** Items accepted, rejected (invalid or over the per-request limit), and the messages for partial success. */
  kept: number;
  rejected: number;
  overLimit: number;
  messages: string[];
  warnings: string[];
  /** The estimated size of what the request decoded into (memory admission). */
  decodedBytes: number;
  /**
   * The protobuf to forward and store when it is not the body as received (patched or encoded anew);
   * absent when no item was kept, or when the body is forwarded as it came (the main thread has it).
   */
  payload?: { buffer: ArrayBuffer; offset: number; length: number };
  /** The batch reduced to what the main thread's model consumers read (skeleton.ts). */
  skeleton?: PackedSkeleton;
  /** What consumers of the main thread take from here, by consumer name (span metrics' and event counts' recorded updates). */
  derived?: Record<string, RecordedOps>;
  counters: CounterIncrement[];
}

export interface FailedRequest {
  id: number;
  ok: false;
  /** An OtlpError's fields, or `internal` with the message of a bug (logged on the main thread). */
  error: {
    message: string;
    httpStatus: number;
    grpcCode: (typeof GrpcCode)[keyof typeof GrpcCode];
    reason: RefusalReason;
    retryAfterSeconds?: number;
    internal?: boolean;
    stack?: string;
  };
  counters: CounterIncrement[];
}

export type WorkerAnswer = ProcessedRequest | FailedRequest;

/** A copy of the bytes of `buf` in an ArrayBuffer of their own, to transfer. */
export function copiedArrayBuffer(buf: Uint8Array): { buffer: ArrayBuffer; offset: number; length: number } {
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return { buffer: copy.buffer, offset: 0, length: copy.byteLength };
}

/** The bytes of `buf` as a transferable ArrayBuffer: its own when it spans it whole, else a copy. */
export function ownArrayBuffer(buf: Uint8Array): { buffer: ArrayBuffer; offset: number; length: number } {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) {
    return { buffer: buf.buffer, offset: 0, length: buf.byteLength };
  }
  return copiedArrayBuffer(buf);
}

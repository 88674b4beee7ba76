/**
 * Admission control: refuses work the receiver cannot take now, so that overload turns into
 * retryable refusals (429/503 with Retry-After) instead of lost data or a crash.
 *
 * - In-flight bytes: the bytes of requests being read (over HTTP, from their headers on: as declared
 *   by Content-Length, or as they arrive) or processed (decompressed). A request that would take
 *   the total over `max_in_flight_bytes` is refused with 429 (gRPC RESOURCE_EXHAUSTED + RetryInfo);
 *   a single request is always admitted when nothing else is in flight.
 * - Memory: when resident memory is over `memory_limit` (checked every `memory_check_interval`),
 *   every request is refused with 503 (gRPC UNAVAILABLE + RetryInfo) until it falls back under.
 */

import type { Signal } from '../model';
import { GrpcCode, OtlpError, OverloadedError } from '../otlp/errors';
import type { SelfMetrics } from '../self-metrics';

export interface AdmissionOptions {
  maxInFlightBytes: number;
  /** 0 turns the memory check off. */
  memoryLimit: number;
  memoryCheckInterval: number;
  retryAfterMs: number;
}

export class Admission {
  private inFlight = 0;
  private overMemory = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly retryAfterSeconds: number;

  constructor(
    private readonly options: AdmissionOptions,
    private readonly metrics: SelfMetrics,
  ) {
    this.retryAfterSeconds = Math.max(1, Math.ceil(options.retryAfterMs / 1000));
    metrics.inFlightBytesLimit.set(options.maxInFlightBytes);
    metrics.inFlightBytesNow = () => this.inFlight;
    if (options.memoryLimit > 0) {
      this.timer = setInterval(() => {
        this.overMemory = process.memoryUsage.rss() > options.memoryLimit;
      }, options.memoryCheckInterval);
      this.timer.unref();
    }
  }

  /**
   * Reserves `bytes` for a request that holds `held` already, or throws a retryable OtlpError. Pair
   * with `release`.
   */
  acquire(signal: Signal, bytes: number, held = 0): void {
    this.check(signal, bytes, held);
    this.inFlight += bytes;
  }

  /** Throws the retryable OtlpError that `acquire` would throw for `bytes` now, reserving nothing. */
  check(signal: Signal, bytes: number, held = 0): void {
    if (this.overMemory) {
      this.metrics.limitHits.inc({ signal, limit: 'memory_limit' });
      throw new OverloadedError(
        `the receiver is over its memory limit (overload.memory_limit); retry after ${this.retryAfterSeconds}s`,
        this.retryAfterSeconds,
      );
    }
    if (this.inFlight > held && this.inFlight + bytes > this.options.maxInFlightBytes) {
      this.metrics.limitHits.inc({ signal, limit: 'max_in_flight_bytes' });
      throw new OtlpError(
        `the receiver is processing ${this.inFlight} bytes, at its limit (overload.max_in_flight_bytes); retry after ${this.retryAfterSeconds}s`,
        429,
        GrpcCode.RESOURCE_EXHAUSTED,
        'overloaded',
        this.retryAfterSeconds,
      );
    }
  }

  /**
   * Adds `bytes` to what an admitted request holds (its decoded size, known once decoded), so that the
   * requests that come meanwhile are measured against it; never refuses (the memory is taken). Pair with `release`.
   */
  hold(bytes: number): void {
    this.inFlight += bytes;
  }

  release(bytes: number): void {
    this.inFlight -= bytes;
  }

  get inFlightBytes(): number {
    return this.inFlight;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

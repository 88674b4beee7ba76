/**
 * The in-process pipeline: for each signal, processors run in order on a decoded batch (they may
 * change it), then every consumer receives it. Later stages (Prometheus exposition, span metrics,
 * Tempo export) are consumers added with `pipeline.for(signal).addConsumer(...)`.
 */

import type { Signal, SignalData } from '../model';
import type { DecodeStats } from '../otlp/limits';
import { RawPatch } from '../otlp/protobuf/patch';
import type { Encoding } from '../otlp/responses';
import type { Transport } from '../self-metrics';

export interface ReceiveContext {
  transport: Transport;
  encoding: Encoding;
  /** When the request body was read (ms since epoch). */
  receivedAt: number;
  /** The decompressed request body when it was protobuf, so that an exporter can forward it unchanged. */
  raw: Buffer | undefined;
  /** Set by any processor that changes the data: `raw` then no longer matches it. */
  modified: boolean;
  /**
   * While it is defined, `raw` with this patch applied is the protobuf of `data`: processors that
   * record their changes as edits of `raw` (`patchesRaw`) add to it; any other change drops it
   * (SignalPipeline.consume), and the data is then encoded anew (queue/admission.ts, requestPayload).
   */
  patch?: RawPatch;
  /**
   * The protobuf of `data` once a consumer encoded it (a modified batch, or one that arrived as JSON):
   * a store and an exporter both taking the batch encode it once (queue/admission.ts, requestPayload).
   */
  encoded?: Buffer;
  /**
   * The tenant written after the sender's bearer token (otlp.auth.bearer_tokens_file), if any: the
   * exporters send its data with `X-Scope-OrgID: <tenant>`.
   */
  tenant?: string;
}

export interface Batch<S extends Signal> {
  signal: S;
  data: SignalData[S];
  itemCount: number;
  context: ReceiveContext;
  /** Notes for the client (sent as partial_success.error_message with 0 rejected). */
  warnings: string[];
  /** What the decoder saw, when it tells (protobuf does); processors use it to skip work. */
  decodeStats: DecodeStats | undefined;
  /**
   * Set when an intake worker decoded and processed the batch (`workers`, src/workers/): what it
   * derived there for consumers of the main thread, by consumer name (span metrics' and event metrics'
   * recorded updates). `data` is then only the skeleton the other model consumers read
   * (src/workers/skeleton.ts), and `context.raw` the payload.
   */
  derived?: Record<string, unknown>;
}

export interface Processor<S extends Signal> {
  readonly name: string;
  /**
   * True when every change the processor makes to a batch is also recorded in `context.patch` (when
   * the batch has one). A processor without it that changes the batch drops the patch.
   */
  readonly patchesRaw?: boolean;
  /**
   * True for a processor that reads every attribute of every batch (redaction): the intake then
   * decodes traces in full rather than lean (otlp/protobuf/lean.ts), which costs less when every
   * attribute is read anyway.
   */
  readonly readsEveryAttribute?: boolean;
  process(batch: Batch<S>): void;
}

export interface Consumer<S extends Signal> {
  readonly name: string;
  /**
   * Called before a request of `bytes` (decompressed) is decoded: throwing an OtlpError (e.g.
   * OverloadedError) refuses it there, so no work is spent on data that would be turned away.
   */
  admit?(bytes: number): void;
  /** Takes the batch. Throwing an OtlpError (e.g. OverloadedError) refuses the request with its status. */
  consume(batch: Batch<S>): void | Promise<void>;
  /** Flushes and releases what the consumer holds; called once on receiver shutdown. */
  shutdown?(): Promise<void>;
}

export class SignalPipeline<S extends Signal> {
  private readonly processors: Processor<S>[] = [];
  private readonly consumers: Consumer<S>[] = [];

  constructor(readonly signal: S) {}

  addProcessor(processor: Processor<S>): this {
    this.processors.push(processor);
    return this;
  }

  addConsumer(consumer: Consumer<S>): this {
    this.consumers.push(consumer);
    return this;
  }

  removeConsumer(consumer: Consumer<S>): void {
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
  }

  /** Whether a processor reads every attribute (see Processor.readsEveryAttribute). */
  readsEveryAttribute(): boolean {
    return this.processors.some((p) => p.readsEveryAttribute === true);
  }

  /** Lets every consumer refuse a request before it is decoded (backpressure). */
  admit(bytes: number): void {
    for (const c of this.consumers) c.admit?.(bytes);
  }

  async consume(batch: Batch<S>): Promise<void> {
    this.process(batch);
    await this.deliver(batch);
  }

  /** Runs the processors on the batch (they may change it, recording their edits in `context.patch`). */
  process(batch: Batch<S>): void {
    const context = batch.context;
    if (context.raw && !context.modified) context.patch = new RawPatch();
    for (const p of this.processors) {
      if (p.patchesRaw) {
        p.process(batch);
        continue;
      }
      // Told apart from an earlier processor's change: a change this one made drops the patch.
      const before = context.modified;
      context.modified = false;
      p.process(batch);
      if (context.modified) context.patch = undefined;
      else context.modified = before;
    }
  }

  /** Hands the batch, already processed (here or on an intake worker), to every consumer in order. */
  async deliver(batch: Batch<S>): Promise<void> {
    for (const c of this.consumers) {
      const pending = c.consume(batch);
      if (pending) await pending;
    }
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.shutdown?.()));
  }
}

export class Pipeline {
  readonly traces = new SignalPipeline('traces');
  readonly metrics = new SignalPipeline('metrics');
  readonly logs = new SignalPipeline('logs');

  for<S extends Signal>(signal: S): SignalPipeline<S> {
    return this[signal] as unknown as SignalPipeline<S>;
  }

  async shutdown(): Promise<void> {
    await Promise.all([this.traces.shutdown(), this.metrics.shutdown(), this.logs.shutdown()]);
  }
}

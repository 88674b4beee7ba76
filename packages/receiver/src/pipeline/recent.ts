/**
 * Consumer that keeps the most recent telemetry of each signal in memory, so that a newcomer can see
 * what arrived (GET /debug/recent on the admin port). Bounded by item count per signal: whole
 * requests are evicted oldest first once the newer ones hold `maxItems`; the newest request is
 * always kept (so one request may exceed the bound, up to limits.max_items_per_request).
 *
 * With a `codec`, a protobuf request is kept as its payload (the body as received, as the processors'
 * patch made it, or encoded anew when it changed otherwise: requestPayload) and decoded again when
 * read: off the JavaScript heap, the last `maxItems` items are not copied by every young-generation
 * collection (at 10,000 spans a second, a tenth of the receiver's CPU), and lean spans
 * (otlp/protobuf/lean.ts), which reference their whole request body, are not kept. A JSON request is
 * kept decoded, as without a codec.
 */
import type { Signal, SignalData } from '../model';
import { requestPayload } from '../queue/admission';
import type { Transport } from '../self-metrics';
import type { Batch, Consumer } from './pipeline';

export interface RecentEntry<S extends Signal> {
  receivedAt: number;
  transport: Transport;
  itemCount: number;
  readonly data: SignalData[S];
}

/** How a signal's requests are kept as protobuf: decoded again when read. */
export interface RecentCodec<S extends Signal> {
  decode(payload: Buffer): SignalData[S];
  encode(data: SignalData[S]): Buffer;
}

/** A request kept as its protobuf payload, decoded when its data is read. */
class PayloadEntry<S extends Signal> implements RecentEntry<S> {
  constructor(
    readonly receivedAt: number,
    readonly transport: Transport,
    readonly itemCount: number,
    private readonly payload: Buffer,
    private readonly codec: RecentCodec<S>,
  ) {}

  get data(): SignalData[S] {
    return this.codec.decode(this.payload);
  }
}

export class RecentTelemetry<S extends Signal> implements Consumer<S> {
  readonly name = 'recent';
  private entries: RecentEntry<S>[] = [];
  private items = 0;

  constructor(
    readonly maxItems: number,
    private readonly codec?: RecentCodec<S>,
  ) {}

  consume(batch: Batch<S>): void {
    if (this.maxItems === 0 || batch.itemCount === 0) return;
    const { context } = batch;
    const codec = this.codec;
    const asProtobuf = codec !== undefined && context.raw !== undefined;
    this.entries.push(
      asProtobuf
        ? new PayloadEntry(
            context.receivedAt,
            context.transport,
            batch.itemCount,
            requestPayload(batch, (data) => codec.encode(data)),
            codec,
          )
        : {
            receivedAt: context.receivedAt,
            transport: context.transport,
            itemCount: batch.itemCount,
            data: batch.data,
          },
    );
    this.items += batch.itemCount;
    while (this.entries.length > 1 && this.items - this.entries[0].itemCount >= this.maxItems) {
      this.items -= this.entries[0].itemCount;
      this.entries.shift();
    }
  }

  /** Entries newest first, as many as hold at most `limit` items (at least one entry). */
  recent(limit = this.maxItems): RecentEntry<S>[] {
    const out: RecentEntry<S>[] = [];
    let n = 0;
    for (let i = this.entries.length - 1; i >= 0 && (out.length === 0 || n + this.entries[i].itemCount <= limit); i--) {
      out.push(this.entries[i]);
      n += this.entries[i].itemCount;
    }
    return out;
  }

  get itemCount(): number {
    return this.items;
  }
}

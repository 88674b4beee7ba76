/**
 * Consumer that keeps the most recent telemetry of each signal in memory, so that a newcomer can see
 * what arrived (GET /debug/recent on the admin port). Bounded by item count per signal: whole
 * requests are evicted oldest first once the newer ones hold `maxItems`; the newest request is
 * always kept (so one request may exceed the bound, up to limits.max_items_per_request).
 */
import type { Signal, SignalData } from '../model';
import type { Transport } from '../self-metrics';
import type { Batch, Consumer } from './pipeline';

export interface RecentEntry<S extends Signal> {
  receivedAt: number;
  transport: Transport;
  itemCount: number;
  data: SignalData[S];
}

export class RecentTelemetry<S extends Signal> implements Consumer<S> {
  readonly name = 'recent';
  private entries: RecentEntry<S>[] = [];
  private items = 0;

  constructor(readonly maxItems: number) {}

  consume(batch: Batch<S>): void {
    if (this.maxItems === 0 || batch.itemCount === 0) return;
    this.entries.push({
      receivedAt: batch.context.receivedAt,
      transport: batch.context.transport,
      itemCount: batch.itemCount,
      data: batch.data,
    });
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

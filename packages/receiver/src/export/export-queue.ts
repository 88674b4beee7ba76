/**
 * The export queue of an OtlpHttpExporter (otlp-http-exporter.ts): in memory, or on disk (a
 * DiskQueue). Payloads are protobuf export requests; `items` counts what each holds (spans, log
 * records), for the self-metrics.
 */
import type { DiskQueue, DiskRecord } from './disk-queue';

export interface QueueItem {
  payload: Buffer;
  count: number;
  enqueuedAt: number;
  tenant: string | undefined;
}

/** A batch taken from the queue: in flight until `settle` (sent or dropped) or `release` (kept). */
export interface Taken {
  payloads: Buffer[];
  items: number;
  bytes: number;
  /** The records on disk (persistent queue). */
  records?: DiskRecord[];
  /** The tenant of every payload of the batch (a batch never mixes tenants). */
  tenant: string | undefined;
}

/** The export queue: in memory, or on disk. Bytes and counts leave out the batches in flight... */
export interface ExportQueue {
  readonly waitingBytes: number;
  /** ...but these: bytes accepted and not yet done with (waiting, and in batches in flight; on disk, what it holds). */
  readonly heldBytes: number;
  readonly waitingCount: number;
  readonly waitingItems: number;
  /** When the oldest waiting payload was queued (ms since epoch). */
  oldestAt(): number | undefined;
  push(payload: Buffer, items: number, tenant?: string): void;
  /** Drops the oldest waiting payload; undefined when none waits. */
  dropOldest(): { bytes: number; items: number } | undefined;
  /**
   * Takes the oldest waiting payloads up to `maxBytes` (at least one) as a batch in flight, stopping
   * before a payload of another tenant than the first's.
   */
  take(maxBytes: number): Taken;
  /** A batch in flight is done with (delivered, or dropped for good). */
  settle(batch: Taken): void;
  /** A batch in flight was abandoned at shutdown. */
  release(batch: Taken): void;
  /** At shutdown: empties the queue (memory) or keeps it for the next start (disk). */
  close(): void;
}

export class MemoryQueue implements ExportQueue {
  private readonly queued: QueueItem[] = [];
  private bytes = 0;
  private inFlightBytes = 0;

  get waitingBytes(): number {
    return this.bytes;
  }

  get heldBytes(): number {
    return this.bytes + this.inFlightBytes;
  }

  get waitingCount(): number {
    return this.queued.length;
  }

  get waitingItems(): number {
    return this.queued.reduce((n, item) => n + item.count, 0);
  }

  oldestAt(): number | undefined {
    return this.queued[0]?.enqueuedAt;
  }

  push(payload: Buffer, items: number, tenant?: string): void {
    // A body that is a view on a larger buffer (a gRPC frame, the Buffer pool) is copied, so that the
    // queue holds only what it counts.
    const owned = payload.byteLength < payload.buffer.byteLength ? Buffer.from(payload) : payload;
    this.queued.push({ payload: owned, count: items, enqueuedAt: Date.now(), tenant });
    this.bytes += payload.length;
  }

  dropOldest(): { bytes: number; items: number } | undefined {
    const old = this.queued.shift();
    if (!old) return undefined;
    this.bytes -= old.payload.length;
    return { bytes: old.payload.length, items: old.count };
  }

  take(maxBytes: number): Taken {
    const taken: Taken = { payloads: [], items: 0, bytes: 0, tenant: this.queued[0]?.tenant };
    while (this.queued.length > 0) {
      const next = this.queued[0];
      if (next.tenant !== taken.tenant) break;
      if (taken.payloads.length > 0 && taken.bytes + next.payload.length > maxBytes) break;
      this.queued.shift();
      taken.payloads.push(next.payload);
      taken.items += next.count;
      taken.bytes += next.payload.length;
    }
    this.bytes -= taken.bytes;
    this.inFlightBytes += taken.bytes;
    return taken;
  }

  settle(batch: Taken): void {
    this.inFlightBytes -= batch.bytes;
  }

  release(batch: Taken): void {
    this.inFlightBytes -= batch.bytes;
  }

  close(): void {
    this.queued.length = 0;
    this.bytes = 0;
    this.inFlightBytes = 0;
  }
}

/**
 * The queue as a DiskQueue: batches in flight stay on disk (unacknowledged) until settled. They are
 * always the oldest unacknowledged records (taken in order; a settled one is acknowledged), so what
 * waits is what comes after the first `inFlight` of them.
 */
export class PersistentQueue implements ExportQueue {
  private inFlight = 0;
  private inFlightBytes = 0;
  private inFlightItems = 0;

  constructor(readonly disk: DiskQueue) {}

  get waitingBytes(): number {
    return this.disk.bytes - this.inFlightBytes;
  }

  /** Every unacknowledged byte on disk (batches in flight stay there until the backend took them), kept after close. */
  get heldBytes(): number {
    return this.disk.bytes;
  }

  get waitingCount(): number {
    return this.disk.length - this.inFlight;
  }

  get waitingItems(): number {
    return this.disk.spans - this.inFlightItems;
  }

  oldestAt(): number | undefined {
    return this.disk.oldestAppendedAt(this.inFlight);
  }

  push(payload: Buffer, items: number, tenant?: string): void {
    this.disk.append(payload, items, tenant);
  }

  dropOldest(): { bytes: number; items: number } | undefined {
    const { records, bytes, spans } = this.disk.ack(1, this.inFlight);
    return records === 0 ? undefined : { bytes, items: spans };
  }

  take(maxBytes: number): Taken {
    const records = this.disk.peek(maxBytes, this.inFlight);
    const taken: Taken = { payloads: [], items: 0, bytes: 0, records, tenant: records[0]?.tenant };
    for (const r of records) {
      taken.payloads.push(r.payload);
      taken.items += r.spanCount;
      taken.bytes += r.payload.length;
    }
    this.inFlight += records.length;
    this.inFlightBytes += taken.bytes;
    this.inFlightItems += taken.items;
    return taken;
  }

  settle(batch: Taken): void {
    this.release(batch);
    this.disk.ackRecords(batch.records ?? []);
  }

  release(batch: Taken): void {
    this.inFlight -= batch.records?.length ?? 0;
    this.inFlightBytes -= batch.bytes;
    this.inFlightItems -= batch.items;
  }

  close(): void {
    this.disk.close();
  }
}

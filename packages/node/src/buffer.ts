/**
 * A bounded FIFO of encoded OTLP requests waiting to be sent: while the transmission gate is closed,
 * while the receiver is unreachable, or both. Bounded in bytes; when full, the oldest requests are
 * dropped and counted. Two backends: in memory (default), or on disk (`dir`): one file per request,
 * written before `push` returns, deleted once sent; files left by a previous run are picked up at start.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Signal } from './types';

export interface BufferedRequest {
  signal: Signal;
  /** Items in the request (spans, data points, log records), for drop accounting. */
  items: number;
  bytes: number;
  /** The encoded request (in memory), or undefined when it lives on disk. */
  body?: Uint8Array;
  file?: string;
}

export type DropListener = (signal: Signal, items: number, reason: 'buffer_full') => void;

const FILE_RE = /^(\d{16})-(traces|metrics|logs)-(\d+)\.otlp$/;

export class RequestBuffer {
  private readonly queue: BufferedRequest[] = [];
  private total = 0;
  /** Next file sequence number: monotonic, continuing after files left by a previous run. */
  private seq = Date.now() * 1000;

  constructor(
    readonly maxBytes: number,
    private readonly onDrop: DropListener,
    readonly dir?: string,
  ) {
    if (dir) this.load(dir);
  }

  get bytes(): number {
    return this.total;
  }

  get length(): number {
    return this.queue.length;
  }

  push(signal: Signal, body: Uint8Array, items: number): void {
    if (body.byteLength > this.maxBytes) {
      this.onDrop(signal, items, 'buffer_full');
      return;
    }
    while (this.total + body.byteLength > this.maxBytes && this.queue.length > 0) {
      const oldest = this.queue.shift()!;
      this.total -= oldest.bytes;
      this.remove(oldest);
      this.onDrop(oldest.signal, oldest.items, 'buffer_full');
    }
    const entry: BufferedRequest = { signal, items, bytes: body.byteLength };
    if (this.dir) {
      const file = path.join(this.dir, `${String(this.seq++).padStart(16, '0')}-${signal}-${items}.otlp`);
      try {
        fs.writeFileSync(file, body);
        entry.file = file;
      } catch {
        entry.body = body; // disk full or gone: keep it in memory, still within the byte bound
      }
    } else {
      entry.body = body;
    }
    this.queue.push(entry);
    this.total += entry.bytes;
  }

  peek(): BufferedRequest | undefined {
    return this.queue[0];
  }

  read(entry: BufferedRequest): Uint8Array | undefined {
    if (entry.body) return entry.body;
    try {
      return entry.file ? fs.readFileSync(entry.file) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Removes the head (sent, or unreadable). */
  shift(): void {
    const head = this.queue.shift();
    if (!head) return;
    this.total -= head.bytes;
    this.remove(head);
  }

  /** Empties the in-memory part at shutdown; files stay for the next start. Returns what was lost. */
  dropMemory(): { signal: Signal; items: number }[] {
    const lost: { signal: Signal; items: number }[] = [];
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const e = this.queue[i];
      if (e.file) continue;
      lost.push({ signal: e.signal, items: e.items });
      this.queue.splice(i, 1);
      this.total -= e.bytes;
    }
    return lost;
  }

  private remove(entry: BufferedRequest): void {
    if (!entry.file) return;
    try {
      fs.unlinkSync(entry.file);
    } catch {
      // already gone
    }
  }

  private load(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    const files = fs
      .readdirSync(dir)
      .filter((f) => FILE_RE.test(f))
      .sort();
    for (const name of files) {
      const m = FILE_RE.exec(name)!;
      const file = path.join(dir, name);
      let size: number;
      try {
        size = fs.statSync(file).size;
      } catch {
        continue;
      }
      this.queue.push({ signal: m[2] as Signal, items: Number(m[3]), bytes: size, file });
      this.seq = Math.max(this.seq, Number(m[1]) + 1);
      this.total += size;
    }
    while (this.total > this.maxBytes && this.queue.length > 0) {
      const oldest = this.queue.shift()!;
      this.total -= oldest.bytes;
      this.remove(oldest);
      this.onDrop(oldest.signal, oldest.items, 'buffer_full');
    }
  }
}

/**
 * Compression off the main thread, for the exporters' batches: zstd or gzip, at a fixed level.
 * `zlib.gzip` and `zlib.zstdCompress` already compress on libuv's thread pool, but their stream
 * machinery still costs the main thread about 3.4 ms per 4 MiB batch (gzip; process.threadCpuUsage
 * on the bench machine), and concatenating a batch's payloads into a fresh 4 MiB buffer costs more
 * again in page faults. That is the thread that decodes every request.
 *
 * Here the payloads are copied into a reused ArrayBuffer (warm memory: a plain memcpy; a
 * SharedArrayBuffer would be copied into with V8's slower race-safe copy), which is moved (not
 * copied) to a worker thread running `zstdCompressSync` or `gzipSync`, and moved back with the
 * result; the main thread's share is the copy and one message each way. Arenas are kept for reuse,
 * one per compression in flight (the exporter has at most `concurrency`), each at least `arenaBytes`.
 *
 * The worker starts on first use and is unref'd (it never keeps the process alive). If it cannot
 * start or dies, compression falls back to `zlib.zstdCompress` / `zlib.gzip` on the thread pool.
 */
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { constants, gzip as gzipCallback, zstdCompress as zstdCallback } from 'node:zlib';

/** What the exporters compress with: `Content-Encoding` names them the same. */
export type CompressionAlgorithm = 'zstd' | 'gzip';

const gzipAsync = promisify(gzipCallback);
const zstdAsync = promisify(zstdCallback);

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { gzipSync, zstdCompressSync, constants } = require('node:zlib');
parentPort.on('message', ({ id, arena, length, algorithm, level }) => {
  try {
    const input = Buffer.from(arena, 0, length);
    const zipped =
      algorithm === 'zstd'
        ? zstdCompressSync(input, { params: { [constants.ZSTD_c_compressionLevel]: level } })
        : gzipSync(input, { level });
    // Moved, not cloned, to the main thread: a copy here when zlib's output does not own its memory.
    const own = zipped.byteOffset === 0 && zipped.byteLength === zipped.buffer.byteLength;
    const out = own ? zipped : new Uint8Array(zipped);
    parentPort.postMessage({ id, out, arena }, [out.buffer, arena]);
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err), arena }, [arena]);
  }
});
`;

interface Pending {
  algorithm: CompressionAlgorithm;
  resolve: (out: Buffer) => void;
  reject: (err: Error) => void;
}

interface Reply {
  id: number;
  out?: Uint8Array;
  error?: string;
  /** The arena, moved back for reuse. */
  arena: ArrayBuffer;
}

export class CompressWorker {
  private worker: Worker | undefined;
  private failed = false;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  /** Arenas not in use. */
  private readonly arenas: ArrayBuffer[] = [];

  /**
   * @param level the compression level, for either algorithm (gzip 1–9, zstd 1–22)
   * @param arenaBytes size of a new arena (the usual batch size), so that batches of slightly
   *   different sizes reuse one arena rather than each allocating a fresh one
   */
  constructor(
    private readonly level: number,
    private readonly arenaBytes = 0,
  ) {}

  /** `algorithm`'s compression of the concatenation of `parts`. */
  async compress(algorithm: CompressionAlgorithm, parts: readonly Buffer[]): Promise<Buffer> {
    const worker = this.start();
    if (!worker) return compressOnThreadPool(algorithm, this.level, parts);
    let length = 0;
    for (const p of parts) length += p.length;
    const arena = this.takeArena(length);
    const view = new Uint8Array(arena);
    let offset = 0;
    for (const p of parts) {
      view.set(p, offset);
      offset += p.length;
    }
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { algorithm, resolve, reject });
      worker.postMessage({ id, arena, length, algorithm, level: this.level }, [arena]);
    });
  }

  private takeArena(length: number): ArrayBuffer {
    for (let i = 0; i < this.arenas.length; i++) {
      if (this.arenas[i].byteLength >= length) return this.arenas.splice(i, 1)[0];
    }
    // None large enough: drop the smallest spare, so the number of arenas stays at the number in use.
    if (this.arenas.length > 0) this.arenas.shift();
    return new ArrayBuffer(Math.max(length, this.arenaBytes));
  }

  private start(): Worker | undefined {
    if (this.worker || this.failed) return this.worker;
    try {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      worker.unref();
      worker.on('message', (m: Reply) => {
        if (!this.failed) this.arenas.push(m.arena);
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.out) p.resolve(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
        else p.reject(new Error(`${p.algorithm} compression failed: ${m.error}`));
      });
      const fail = (err: Error) => {
        this.failed = true;
        this.worker = undefined;
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => {
        if (this.worker === worker) fail(new Error(`the compression worker exited (code ${code})`));
      });
      this.worker = worker;
    } catch {
      this.failed = true;
    }
    return this.worker;
  }

  /** Stops the worker; later calls compress on the thread pool. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.failed = true;
    this.arenas.length = 0;
    if (worker) await worker.terminate();
  }
}

/** `algorithm`'s compression of the concatenation of `parts` with zlib on libuv's thread pool. */
export function compressOnThreadPool(
  algorithm: CompressionAlgorithm,
  level: number,
  parts: readonly Buffer[],
): Promise<Buffer> {
  const input = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  // The same options as the worker's.
  return algorithm === 'zstd'
    ? zstdAsync(input, { params: { [constants.ZSTD_c_compressionLevel]: level } })
    : gzipAsync(input, { level });
}

/**
 * The exporters' compression worker: zstd and gzip output that decompresses to the concatenated
 * input, arenas reused, fallback to the thread pool when the worker is gone.
 */
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { type CompressionAlgorithm, CompressWorker } from '../src/export/compress-worker';

const part = (n: number) => Buffer.from(`span ${n} `.repeat(20_000));

const DECOMPRESS: Record<CompressionAlgorithm, (b: Buffer) => Buffer> = {
  zstd: zstdDecompressSync,
  gzip: gunzipSync,
};
/** The magic numbers each algorithm's output starts with. */
const MAGIC: Record<CompressionAlgorithm, string> = { zstd: '28b52ffd', gzip: '1f8b' };

describe.each(['zstd', 'gzip'] as const)('%s', (algorithm) => {
  const decompress = DECOMPRESS[algorithm];

  test('compresses the concatenation of the parts on the worker, concurrently, leaving the parts intact', async () => {
    const w = new CompressWorker(1);
    try {
      const batches = [[part(1), part(2)], [part(3)], [part(4), part(5), part(6)]];
      const outs = await Promise.all(batches.map((parts) => w.compress(algorithm, parts)));
      outs.forEach((out, i) => {
        expect(out.subarray(0, MAGIC[algorithm].length / 2).toString('hex')).toBe(MAGIC[algorithm]);
        expect(out.length).toBeLessThan(Buffer.concat(batches[i]).length / 10);
        expect(decompress(out).equals(Buffer.concat(batches[i]))).toBe(true);
      });
      expect(batches[0][0].equals(part(1))).toBe(true);
      // Arenas are reused: a smaller batch after larger ones still compresses exactly.
      const small = await w.compress(algorithm, [Buffer.from('x')]);
      expect(decompress(small).toString()).toBe('x');
    } finally {
      await w.close();
    }
  });

  test('once the worker is gone, compression falls back to the thread pool', async () => {
    const w = new CompressWorker(1);
    await w.compress(algorithm, [part(1)]);
    await w.close();
    const out = await w.compress(algorithm, [part(2), part(3)]);
    expect(out.subarray(0, MAGIC[algorithm].length / 2).toString('hex')).toBe(MAGIC[algorithm]);
    expect(decompress(out).equals(Buffer.concat([part(2), part(3)]))).toBe(true);
  });
});

test('one worker compresses with either algorithm, batch by batch', async () => {
  const w = new CompressWorker(1);
  try {
    const [z, g] = await Promise.all([w.compress('zstd', [part(7)]), w.compress('gzip', [part(7)])]);
    expect(zstdDecompressSync(z).equals(part(7))).toBe(true);
    expect(gunzipSync(g).equals(part(7))).toBe(true);
  } finally {
    await w.close();
  }
});

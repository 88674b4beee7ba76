/** The exporter's gzip worker: output that gunzips to the concatenated input, arenas reused, fallback when the worker is gone. */
import { gunzipSync } from 'node:zlib';
import { GzipWorker } from '../src/export/gzip-worker';

const part = (n: number) => Buffer.from(`span ${n} `.repeat(20_000));

test('compresses the concatenation of the parts on the worker, concurrently, leaving the parts intact', async () => {
  const w = new GzipWorker(1);
  try {
    const batches = [[part(1), part(2)], [part(3)], [part(4), part(5), part(6)]];
    const outs = await Promise.all(batches.map((parts) => w.gzip(parts)));
    outs.forEach((out, i) => {
      expect(gunzipSync(out).equals(Buffer.concat(batches[i]))).toBe(true);
    });
    expect(batches[0][0].equals(part(1))).toBe(true);
    // Arenas are reused: a smaller batch after larger ones still compresses exactly.
    const small = await w.gzip([Buffer.from('x')]);
    expect(gunzipSync(small).toString()).toBe('x');
  } finally {
    await w.close();
  }
});

test('once the worker is gone, compression falls back to the thread pool', async () => {
  const w = new GzipWorker(1);
  await w.gzip([part(1)]);
  await w.close();
  const out = await w.gzip([part(2), part(3)]);
  expect(gunzipSync(out).equals(Buffer.concat([part(2), part(3)]))).toBe(true);
});

/**
 * The export outage case alone, for two settings of the Tempo exporter side by side
 * (`node bench/outage-ab.ts [rounds] [slices]`): a receiver exporting to a closed port is loaded
 * until its export queue is full and intake refuses (503), in slices of 3 s (default 16, as the
 * bench); once with `compression: zstd` (the default) and once with `gzip`, alternating, a fresh
 * receiver each time, and with OTHER_BIN (another build's bin/sonde-receiver.js) that build too,
 * with gzip. Prints each slice's RSS peak, so that a growth after the queue filled shows. PIN=1
 * pins the receivers to CPU 1 and this process (the client) to CPU 0, as `npm run bench -- --pin`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outage } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';
import { enablePinning, startReceiver, startSink } from './proc.ts';

const rounds = Number(process.argv[2] ?? 2);
const sliceCount = Number(process.argv[3] ?? 16);
if (process.env.PIN === '1')
  console.log(enablePinning() ? 'pinned: receivers on CPU 1, the client on CPU 0' : 'pinning not possible here');
const work = mkdtempSync(join(tmpdir(), 'sonde-outage-ab-'));
const payload = makePayload(await makeSpans(800), 100, 8);
const probe = await startSink();
const closedPort = probe.port;
await probe.stop();
try {
  for (let round = 0; round < rounds; round++) {
    for (const compression of process.env.OTHER_BIN ? ['zstd', 'gzip', 'other'] : ['zstd', 'gzip']) {
      const config = join(work, `${compression}.yaml`);
      writeFileSync(config, `tempo:\n  compression: ${compression === 'other' ? 'gzip' : compression}\n`);
      const server = await startReceiver({
        bin: compression === 'other' ? process.env.OTHER_BIN : undefined,
        dataDir: join(work, `${compression}-${round}`),
        args: ['--config', config],
        env: { SONDE_TEMPO_ENDPOINT: `http://127.0.0.1:${closedPort}` },
      });
      try {
        const slices = await outage(server, payload, 10, sliceCount, 3);
        const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
        const each = slices.map((s) => `${mib(s.rssMax)} MiB (${s.ok} accepted)`);
        console.log(`round ${round + 1} ${compression}: RSS peak per slice ${each.join(' → ')}`);
      } finally {
        await server.stop();
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * The steady case (100 requests of 100 spans a second) against several servers, alternating, with
 * each thread's CPU (`node bench/steady-ab.ts [--seconds 15] [--rounds 3] VARIANT...`), so that two
 * builds or two sets of flags are compared under the same machine load. VARIANTs are written as
 * bench/variants.ts says: `sink`, `decode-sink`, `redact-sink`, or a receiver `name[:key=value]...`
 * (another build, node flags, the receiver's arguments, environment). Every round starts each server afresh, warms it
 * up 5 s, then measures; prints each run's CPU per request (main thread, the rest) and the medians.
 * With --together, each round runs every server at once (each with its own client), so that they share
 * the machine's load of the moment: on a shared machine, the pairwise comparison is then much steadier.
 *
 *   node bench/steady-ab.ts receiver sink
 *   node bench/steady-ab.ts base:bin=/tmp/base/bin/sonde-receiver.js new sink
 *   node bench/steady-ab.ts default 'single:node=--single-threaded-gc'
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { steady } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';
import { type Server, threadCpuByKind } from './proc.ts';
import { parseVariant } from './variants.ts';

/** CPU seconds of the main thread and of all the others. */
function mainAndOthers(pid: number): { main: number; other: number } {
  const cpu = threadCpuByKind(pid);
  return { main: cpu.main, other: cpu.all - cpu.main };
}

const { values, positionals } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    together: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const variants = (positionals.length > 0 ? positionals : ['receiver', 'sink']).map(parseVariant);
const payload = makePayload(await makeSpans(400), 100, 4);
const results = new Map<string, { main: number; other: number }[]>(variants.map((v) => [v.name, []]));
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

/** One round with every server running and measured at once (each sent its own 100 requests a second). */
async function together(round: number): Promise<void> {
  const dirs = variants.map(() => mkdtempSync(join(tmpdir(), 'sonde-bench-steady-ab-')));
  const servers: Server[] = [];
  try {
    for (let i = 0; i < variants.length; i++) servers.push(await variants[i].start(dirs[i]));
    await Promise.all(
      servers.map((server) => steady(server, payload, { requestsPerSec: 100, warmupSec: 5, durationSec: 1 })),
    );
    const before = servers.map((server) => mainAndOthers(server.pid));
    const runs = await Promise.all(
      servers.map((server) => steady(server, payload, { requestsPerSec: 100, warmupSec: 0, durationSec: seconds })),
    );
    const after = servers.map((server) => mainAndOthers(server.pid));
    for (let i = 0; i < variants.length; i++) {
      const r = runs[i];
      const main = ((after[i].main - before[i].main) * 1e6) / r.sent;
      const other = ((after[i].other - before[i].other) * 1e6) / r.sent;
      results.get(variants[i].name)?.push({ main, other });
      console.log(
        `round ${round + 1} ${variants[i].name.padEnd(10)} ${r.ok}/${r.sent} ok; µs CPU/request: main ${main.toFixed(0)}, other threads ${other.toFixed(0)}, total ${(main + other).toFixed(0)}; load ${load()}`,
      );
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

for (let round = 0; round < rounds; round++) {
  if (values.together) {
    await together(round);
    continue;
  }
  for (const variant of variants) {
    const dataDir = mkdtempSync(join(tmpdir(), 'sonde-bench-steady-ab-'));
    const server = await variant.start(dataDir);
    try {
      await steady(server, payload, { requestsPerSec: 100, warmupSec: 5, durationSec: 1 });
      const before = mainAndOthers(server.pid);
      const r = await steady(server, payload, { requestsPerSec: 100, warmupSec: 0, durationSec: seconds });
      const after = mainAndOthers(server.pid);
      const main = ((after.main - before.main) * 1e6) / r.sent;
      const other = ((after.other - before.other) * 1e6) / r.sent;
      results.get(variant.name)?.push({ main, other });
      console.log(
        `round ${round + 1} ${variant.name.padEnd(10)} ${r.ok}/${r.sent} ok; µs CPU/request: main ${main.toFixed(0)}, other threads ${other.toFixed(0)}, total ${(main + other).toFixed(0)}; load ${load()}`,
      );
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log('medians, µs CPU per request (main thread + other threads = total):');
for (const [name, rs] of results) {
  const m = median(rs.map((r) => r.main));
  const o = median(rs.map((r) => r.other));
  const t = median(rs.map((r) => r.main + r.other));
  console.log(`  ${name.padEnd(10)} ${m.toFixed(0)} + ${o.toFixed(0)} = ${t.toFixed(0)}`);
}

/**
 * The receiver's CPU per log record, per thread (`node bench/log-thread-cpu.ts [requests] [rounds]`):
 * receivers with the log store off, and on with durability wal_async and memory, each sent the same
 * `requests` requests of 100 records (10 at a time, the bench's payload), in alternating rounds; the CPU
 * of each of the receiver's threads (utime + stime of /proc/<pid>/task/<tid>/stat) over the sending is
 * divided by the records sent. CPU, not throughput: other processes on the machine slow a run, they do
 * not add to its threads' CPU (much: caches and frequency aside).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postProtobuf } from './load.ts';
import { logsRequest } from './log-store-bench.ts';
import { type Server, startReceiver, threadCpu } from './proc.ts';

async function send(port: number, bodies: Buffer[], count: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 10 });
  let next = 0;
  let failed = 0;
  const one = async (body: Buffer) => {
    if ((await postProtobuf(port, agent, '/v1/logs', body)) !== 200) failed++;
  };
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < count) await one(bodies[next++ % bodies.length]);
    }),
  );
  agent.destroy();
  return failed;
}

async function drain(_server: Server, wait: number): Promise<void> {
  await new Promise((r) => setTimeout(r, wait));
}

const requests = Number(process.argv[2] ?? 3000);
const rounds = Number(process.argv[3] ?? 3);
const now = BigInt(Date.now()) * 1_000_000n;
const bodies = Array.from({ length: 40 }, (_, v) =>
  logsRequest(v % 20, 100, now + BigInt(v) * 100_000_000n, 1_000_000n, v * 100),
);
const work = mkdtempSync(join(tmpdir(), 'sonde-bench-log-threads-'));
const modes = ['off', 'wal_async', 'memory'] as const;
const servers: { mode: string; server: Server }[] = [];
const totals = new Map<string, Map<string, number>>();
try {
  for (const mode of modes) {
    const config = join(work, `${mode}.yaml`);
    writeFileSync(config, mode === 'off' ? '{}\n' : `log_store:\n  durability: ${mode}\n`);
    const server = await startReceiver({
      dataDir: join(work, mode),
      env: { SONDE_LOG_STORE: mode === 'off' ? 'false' : 'true' },
      args: ['--config', config],
      nodeArgs: process.env.SONDE_BENCH_PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SONDE_BENCH_PROFILE_DIR}`, `--cpu-prof-name=${mode}.cpuprofile`]
        : [],
    });
    servers.push({ mode, server });
  }
  await new Promise((r) => setTimeout(r, 1000));
  for (let round = 0; round < rounds; round++) {
    for (const { mode, server } of servers) {
      await send(server.port, bodies, 200); // warm-up
      await drain(server, 500);
      const before = threadCpu(server.pid);
      const t0 = performance.now();
      const failed = await send(server.port, bodies, requests);
      const wall = performance.now() - t0;
      await drain(server, 600); // the writer's batch (batch_timeout 100 ms) and its transaction
      const after = threadCpu(server.pid);
      const byThread = new Map<string, number>();
      for (const [tid, a] of after) {
        const b = before.get(tid);
        const d = a.cpu - (b?.cpu ?? 0);
        if (d <= 0) continue;
        const key = tid === server.pid ? 'main' : a.name;
        byThread.set(key, (byThread.get(key) ?? 0) + d);
      }
      const records = requests * 100;
      const per = [...byThread].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${((v * 1e6) / records).toFixed(2)}`);
      const total = [...byThread.values()].reduce((a, b) => a + b, 0);
      console.log(
        `round ${round} ${mode}: ${((total * 1e6) / records).toFixed(2)} µs/record (${per.join(', ')}); ${Math.round(records / (wall / 1000))} records/s wall, ${failed} failed; load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
      );
      const t = totals.get(mode) ?? new Map<string, number>();
      for (const [k, v] of byThread) t.set(k, (t.get(k) ?? 0) + v);
      totals.set(mode, t);
    }
  }
  for (const [mode, t] of totals) {
    const records = requests * 100 * rounds;
    const total = [...t.values()].reduce((a, b) => a + b, 0);
    console.log(
      `${mode}: ${((total * 1e6) / records).toFixed(2)} µs/record; ${[...t]
        .sort((x, y) => y[1] - x[1])
        .map(([k, v]) => `${k} ${((v * 1e6) / records).toFixed(2)}`)
        .join(', ')}`,
    );
  }
} finally {
  await Promise.all(servers.map((s) => s.server.stop()));
  rmSync(work, { recursive: true, force: true });
}

/**
 * The log store writer's CPU cost per record (`node bench/log-writer-cpu.ts [records] [preload]`): what
 * the writer thread does per batch (LogDb.write: index pass, zstd, SQLite), timed with
 * process.cpuUsage on this thread alone, in batches of 16 MiB as the writer's default, into a store that
 * already holds `preload` records; then the parts alone (index pass, compression) over the same bodies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packBlob } from '../dist/blob-store/blob-db.js';
import { LogDb } from '../dist/index.js';
import { indexLogsRequest } from '../dist/log-store/log-index.js';
import { logsRequest } from './log-store-bench.ts';
import { profiledIf } from './profile.ts';

const PER_REQUEST = 100;
const BATCH_BYTES = 16 * 1024 * 1024;

function bodies(count: number, seq0: number): Buffer[] {
  const now = BigInt(Date.now()) * 1_000_000n;
  return Array.from({ length: count }, (_, i) =>
    logsRequest(i % 20, PER_REQUEST, now + BigInt(i) * 100_000_000n, 1_000_000n, seq0 + i * PER_REQUEST),
  );
}

function cpuUs(f: () => void): number {
  const t = process.cpuUsage();
  f();
  const d = process.cpuUsage(t);
  return d.user + d.system;
}

function writeAll(db: LogDb, list: Buffer[]): void {
  for (let at = 0; at < list.length; ) {
    const batch: Buffer[] = [];
    let bytes = 0;
    while (at < list.length && bytes < BATCH_BYTES) {
      batch.push(list[at]);
      bytes += list[at].length;
      at++;
    }
    db.write(batch, Date.now());
  }
}

const records = Number(process.argv[2] ?? 500_000);
const preload = Number(process.argv[3] ?? 200_000);
const work = mkdtempSync(join(tmpdir(), 'sonde-bench-log-cpu-'));
try {
  const db = LogDb.open(join(work, 'logs.db'));
  db.db.exec('PRAGMA synchronous = FULL');
  writeAll(db, bodies(preload / PER_REQUEST, 0));
  const list = bodies(records / PER_REQUEST, preload);
  const bytes = list.reduce((n, b) => n + b.length, 0);
  // SONDE_BENCH_PROFILE=<file>: a CPU profile of the timed writes (Chrome DevTools format).
  const write = cpuUs(() => profiledIf(() => writeAll(db, list)));
  const index = cpuUs(() => {
    for (const b of list) indexLogsRequest(b, 0n, () => {});
  });
  let packed = 0;
  const pack = cpuUs(() => {
    for (let i = 0; i < list.length; i += 12) packed += packBlob(list.slice(i, i + 12)).length;
  });
  db.close();
  const per = (us: number) => (us / records).toFixed(3);
  console.log(
    `${records} records (${(bytes / records).toFixed(0)} B each) over ${preload} preloaded: write ${per(write)} µs/record` +
      ` (index pass ${per(index)}, zstd ${per(pack)} at ratio ${(bytes / packed).toFixed(2)}, rest ${per(write - index - pack)})`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * The intake workers' section of the benchmark (`npm run bench -- workers`, and in the full run):
 * two receivers with the bench's defaults, `workers: 0` and `workers: auto`, neither pinned to a CPU
 * (a receiver with workers needs more than one), loaded in alternating slices by the same client with
 * 500-span requests. bench/workers-ab.ts compares any worker count, with the main thread's share.
 */

import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type * as WorkersConfig from '../src/workers/config.ts';
import { compareMaxThroughput, type MaxThroughputSettings, type ThroughputResult } from './load.ts';
import type { Payload } from './payloads.ts';
import { startReceiver } from './proc.ts';

/** What `workers: auto` resolves to (the built receiver's own rule). */
const { resolveWorkers } = createRequire(import.meta.url)('../dist/workers/config.js') as typeof WorkersConfig;

export interface WorkersBenchResult {
  single: ThroughputResult;
  multi: ThroughputResult;
  /** The worker threads `auto` starts on this machine. */
  count: number;
}

/** Undefined on a machine where `auto` starts no worker (one core). */
export async function runWorkersBench(
  payload: Payload,
  settings: MaxThroughputSettings,
  work: string,
  log: (line: string) => void,
): Promise<WorkersBenchResult | undefined> {
  // The machine's CPUs, not this process's: under --pin the bench process runs on one only.
  const count = resolveWorkers('auto', cpus().length);
  if (count === 0) {
    log('intake workers: skipped (workers: auto starts none on one core)');
    return undefined;
  }
  log(
    `intake workers: workers 0 against auto (${count}), ${payload.spansPerRequest} spans/request, neither pinned ` +
      `(both may use every CPU, as the client does), ${settings.rounds} alternating slices`,
  );
  const servers = await Promise.all(
    ['0', 'auto'].map((n) =>
      startReceiver({ dataDir: join(work, `workers-${n}`), env: { SONDE_WORKERS: n }, pin: false }),
    ),
  );
  try {
    const [single, multi] = await compareMaxThroughput(
      servers.map((server, i) => ({ ...server, name: i === 0 ? 'workers 0' : `workers ${count}` })),
      payload,
      settings,
      log,
    );
    return { single, multi, count };
  } finally {
    for (const server of servers) await server.stop();
  }
}

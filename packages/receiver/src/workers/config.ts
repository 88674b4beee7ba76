/**
 * `workers` (top level): how many worker threads decode and process traces and logs (src/workers/).
 * `0` keeps everything on the main thread; `auto` is the available cores (os.availableParallelism())
 * capped at MAX_AUTO_WORKERS, and 0 on a single core (a worker there only adds a hop).
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';

/** `auto` never starts more than this many workers (the main thread's share caps what more would give). */
export const MAX_AUTO_WORKERS = 8;
/** An explicit count may go up to this. */
export const MAX_WORKERS = 64;

export const workersField = z
  .union([
    z.literal('auto'),
    z.number().int().min(0).max(MAX_WORKERS),
    // From the environment (SONDE_WORKERS) every value is a string.
    z
      .string()
      .regex(/^\d+$/, 'expected auto or a whole number of worker threads')
      .transform(Number)
      .pipe(z.number().int().min(0).max(MAX_WORKERS)),
  ])
  .default(0);

export type WorkersSetting = z.output<typeof workersField>;

/** The number of worker threads to start for `setting` on a machine with `cores` cores. */
export function resolveWorkers(setting: WorkersSetting, cores = availableParallelism()): number {
  if (setting !== 'auto') return setting;
  return cores <= 1 ? 0 : Math.min(cores, MAX_AUTO_WORKERS);
}

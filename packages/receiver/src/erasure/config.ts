/** The `erasure:` section (POST /api/admin/erase) and the opening of the tombstones it configures. */
import { join } from 'node:path';
import { z } from 'zod';
import { positiveInt } from '../config/fields';
import { Erasure } from './erasure';

export const erasureSection = z
  .strictObject({
    /** POST /api/admin/erase on the admin port: tombstones one subject's data in the embedded stores. */
    enabled: z.boolean().default(true),
    /** Attribute keys whose value identifies a subject; the trace store indexes them so their traces can be found. */
    subject_keys: z.array(z.string().min(1)).default(['enduser.pseudo.id', 'user.pseudo.id', 'sonde.consent.subject']),
    /** Most traces one erasure may tombstone (more: the call is refused, nothing erased). */
    max_traces: positiveInt.default(10_000),
  })
  .prefault({});

export type ErasureConfig = z.output<typeof erasureSection>;

/**
 * The erasure tombstones (<data_dir>/erasure.json), read; undefined when erasure is off. A tombstone is
 * kept for `retentionMs`, the longest retention of the stores. A file that cannot be read throws.
 */
export function openErasure(c: ErasureConfig, dataDir: string, retentionMs: number): Erasure | undefined {
  if (!c.enabled) return undefined;
  const erasure = new Erasure({
    file: join(dataDir, 'erasure.json'),
    subjectKeys: c.subject_keys,
    retentionMs,
    maxTraces: c.max_traces,
  });
  erasure.load();
  return erasure;
}

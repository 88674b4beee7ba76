/**
 * The one `on_full` vocabulary of the receiver's queues, the exporters' (`tempo:`, `loki:`) and the
 * embedded stores' (`trace_store:`, `log_store:`): what a queue bounded in bytes does with a request
 * that does not fit.
 *
 * - `refuse`: the request is answered 503 + Retry-After (before it is decoded when its size is known),
 *   so that the client keeps the data and retries. The default everywhere.
 * - `drop_newest`: the request is accepted (200) and its data is not queued (counted).
 * - `drop_oldest`: the oldest queued requests are dropped (counted) until the new one fits. Exporters
 *   only: a store's queued request is already acknowledged to its client, and, with a write-ahead log
 *   (durability wal or wal_async), journaled: dropping it would break that promise.
 *
 * Former spelling, still read: the stores' `drop` is `drop_newest` (one deprecation line at load).
 */
import { z } from 'zod';

export const ON_FULL = ['refuse', 'drop_newest', 'drop_oldest'] as const;
export type OnFull = (typeof ON_FULL)[number];

/** What a store's queue can do: no drop_oldest (see above). */
export type StoreOnFull = Exclude<OnFull, 'drop_oldest'>;

/** Former spellings and what they are now. */
export const FORMER_ON_FULL = { drop: 'drop_newest' } as const satisfies Record<string, OnFull>;
export type FormerOnFull = keyof typeof FORMER_ON_FULL;

/** The current spelling of an on_full value (a former one mapped). */
export function normalizeOnFull<T extends OnFull>(value: T | FormerOnFull): T | (typeof FORMER_ON_FULL)[FormerOnFull] {
  return value in FORMER_ON_FULL ? FORMER_ON_FULL[value as FormerOnFull] : (value as T);
}

/** Why a store has no drop_oldest, in its config error. */
export const STORE_DROP_OLDEST =
  'drop_oldest is not supported by a store: the requests its queue holds are already acknowledged (and, with durability wal or wal_async, journaled); use refuse or drop_newest';

/**
 * A section's `on_full` key: the vocabulary's values its queue supports (`unsupported` says why the
 * others are not), and the former spellings it still reads (`formers`), mapped to the current ones.
 */
export function onFullKey<T extends OnFull>(options: {
  supported: readonly T[];
  formers?: readonly FormerOnFull[];
  unsupported?: Partial<Record<OnFull, string>>;
  default: T;
}) {
  const { supported, formers = [], unsupported = {} } = options;
  return z
    .string()
    .default(options.default)
    .transform((v, ctx): T => {
      const value = (formers as readonly string[]).includes(v) ? normalizeOnFull(v as FormerOnFull) : v;
      if ((supported as readonly string[]).includes(value)) return value as T;
      const why = unsupported[value as OnFull];
      ctx.addIssue({
        code: 'custom',
        message:
          why ??
          `"${v}" is not one of ${supported.join(', ')}${formers.length > 0 ? ` (or the former ${formers.join(', ')})` : ''}`,
      });
      return z.NEVER;
    });
}

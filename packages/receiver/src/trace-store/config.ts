/**
 * The `trace_store:` section: the embedded store's shared keys (blob-store/config.ts) and the indexed
 * attributes, and its conversion to TraceStoreOptions.
 */
import { z } from 'zod';
import { embeddedStoreFields, toBlobStoreOptions } from '../blob-store/config';
import type { TraceStoreOptions } from './trace-store';

export const traceStoreSection = z
  .strictObject({
    ...embeddedStoreFields('traces.db'),
    /** Attribute keys (on spans or resources) indexed for tag search; service.name, name, status, kind and duration always are. */
    indexed_attributes: z
      .array(z.string().min(1))
      .default(['http.route', 'http.request.method', 'http.response.status_code', 'db.system.name']),
  })
  .prefault({});

export type TraceStoreConfig = z.output<typeof traceStoreSection>;

/** The store's options; `alsoIndexed` are keys indexed besides indexed_attributes (erasure's subject keys). */
export function toTraceStoreOptions(
  c: TraceStoreConfig,
  dataDir: string,
  alsoIndexed: readonly string[] = [],
): TraceStoreOptions {
  return {
    ...toBlobStoreOptions(c, dataDir),
    indexedAttributes: [...new Set([...c.indexed_attributes, ...alsoIndexed])],
  };
}

/**
 * runLoad(): shoppers at a steady request rate. Each request is one step of a shopper's visit:
 * view a product (60%), add it to the cart (28%), check out (12%). 50 shoppers; every fifth one has
 * opted out of product analytics (`x-consent: product=0`); the others send `product=1`.
 */
import { CATALOG } from './catalog';

export interface LoadOptions {
  /** Storefront base URL. */
  url: string;
  /** Requests per second. */
  rps: number;
  /** How long; Infinity runs until `signal` aborts. */
  durationMs: number;
  /** Number of distinct shoppers (default 50). */
  users?: number;
  /** Share of shoppers who opted out of `product` consent (default 0.2). */
  optOutShare?: number;
  /** Most requests in flight at once (default 64); beyond it, ticks are skipped and counted. */
  maxInFlight?: number;
  signal?: AbortSignal;
  /** Called every `progressEveryMs` (default 10 s) with the totals so far. */
  onProgress?: (stats: LoadStats) => void;
  progressEveryMs?: number;
}

export interface LoadStats {
  requests: number;
  /** Network errors and 5xx. */
  errors: number;
  skipped: number;
  byStatus: Record<string, number>;
  byAction: Record<string, number>;
}

type Action = 'view' | 'add' | 'checkout';

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)];
}

export async function runLoad(options: LoadOptions): Promise<LoadStats> {
  const users = options.users ?? 50;
  const optOutEvery = Math.round(1 / Math.max(0.0001, options.optOutShare ?? 0.2));
  const maxInFlight = options.maxInFlight ?? 64;
  const stats: LoadStats = { requests: 0, errors: 0, skipped: 0, byStatus: {}, byAction: {} };
  const base = options.url.replace(/\/+$/, '');
  const inFlight = new Set<Promise<void>>();

  const one = async (): Promise<void> => {
    const u = Math.floor(Math.random() * users);
    const headers: Record<string, string> = { 'x-user': `shopper-${u}`, 'content-type': 'application/json' };
    // Every shopper states a choice, so that the storefront records granted and withdrawn choices
    // alike (sonde_consent_people) and the opt-out share is a share of all shoppers.
    headers['x-consent'] = isOptedOut(u) ? 'product=0' : 'product=1';
    const r = Math.random();
    const action: Action = r < 0.6 ? 'view' : r < 0.88 ? 'add' : 'checkout';
    const product = pick(CATALOG);
    stats.byAction[action] = (stats.byAction[action] ?? 0) + 1;
    try {
      let res: Response;
      if (action === 'view') res = await fetch(`${base}/products/${product.sku}`, { headers });
      else if (action === 'add')
        res = await fetch(`${base}/cart/items`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ sku: product.sku, qty: 1 + Math.floor(Math.random() * 2) }),
        });
      else res = await fetch(`${base}/checkout`, { method: 'POST', headers });
      await res.arrayBuffer();
      stats.byStatus[res.status] = (stats.byStatus[res.status] ?? 0) + 1;
      if (res.status >= 500) stats.errors++;
    } catch {
      stats.errors++;
      stats.byStatus.network = (stats.byStatus.network ?? 0) + 1;
    }
    stats.requests++;
  };
  function isOptedOut(u: number): boolean {
    return u % optOutEvery === 0;
  }

  const start = Date.now();
  let issued = 0;
  let lastProgress = start;
  const progressEvery = options.progressEveryMs ?? 10000;
  while (!options.signal?.aborted) {
    const now = Date.now();
    if (now - start >= options.durationMs) break;
    const due = Math.floor(((now - start) / 1000) * options.rps);
    while (issued < due) {
      issued++;
      if (inFlight.size >= maxInFlight) {
        stats.skipped++;
        continue;
      }
      const p = one().finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (options.onProgress && now - lastProgress >= progressEvery) {
      lastProgress = now;
      options.onProgress({ ...stats });
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all([...inFlight]);
  return stats;
}

/**
 * The keyed HMAC-SHA256 behind pseudonyms, in Node (node:crypto), memoised per value. Browsers get
 * hmac.browser.ts instead (the package's `browser` field maps dist/hmac.js to dist/hmac.browser.js).
 */
import { createHmac, createSecretKey } from 'node:crypto';

/** The first `length` hex characters of HMAC-SHA256(key, value), memoised (at most `maxMemo` values). */
export function hmacOf(key: string, length: number, maxMemo: number): (value: string) => string {
  const secret = createSecretKey(Buffer.from(key, 'utf8'));
  const cache = new Map<string, string>();
  return (value: string) => {
    let p = cache.get(value);
    if (p === undefined) {
      p = createHmac('sha256', secret).update(value, 'utf8').digest('hex').slice(0, length);
      if (cache.size >= maxMemo) cache.clear();
      cache.set(value, p);
    }
    return p;
  };
}

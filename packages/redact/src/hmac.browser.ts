/**
 * The keyed HMAC-SHA256 behind pseudonyms, in a browser: WebCrypto, which is asynchronous, while the
 * redactor is synchronous. So pseudonyms are computed ahead: a value not computed yet is noted as
 * pending and gets a placeholder; `computePendingPseudonyms()` computes what is pending with
 * crypto.subtle, after which the same redaction, run again, gives the real pseudonyms (that is what
 * @sonde/web does before an export). Same key and value, same pseudonym as hmac.ts in Node.
 */

interface KeyState {
  length: number;
  maxMemo: number;
  cache: Map<string, string>;
  pending: Set<string>;
  key: ReturnType<typeof crypto.subtle.importKey> | undefined;
}

const keys = new Map<string, KeyState>();

/** What a value pending its pseudonym reads as until it is computed. */
export const PENDING_PSEUDONYM = 'pending';

export function hmacOf(key: string, length: number, maxMemo: number): (value: string) => string {
  let state = keys.get(key);
  if (!state) {
    state = { length, maxMemo, cache: new Map(), pending: new Set(), key: undefined };
    keys.set(key, state);
  }
  const s = state;
  return (value: string) => {
    const p = s.cache.get(value);
    if (p !== undefined) return p;
    s.pending.add(value);
    return PENDING_PSEUDONYM.padEnd(s.length, '0').slice(0, s.length);
  };
}

/** Whether some redaction since the last computation met a value without its pseudonym. */
export function hasPendingPseudonyms(): boolean {
  for (const s of keys.values()) if (s.pending.size > 0) return true;
  return false;
}

/** Computes every pending pseudonym with WebCrypto (HMAC-SHA256). */
export async function computePendingPseudonyms(): Promise<void> {
  const enc = new TextEncoder();
  for (const [raw, s] of keys) {
    if (s.pending.size === 0) continue;
    s.key ??= crypto.subtle.importKey('raw', enc.encode(raw), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const k = await s.key;
    const values = [...s.pending];
    s.pending.clear();
    for (const value of values) {
      const sig = new Uint8Array(await crypto.subtle.sign('HMAC', k, enc.encode(value)));
      let hex = '';
      for (const b of sig) hex += b.toString(16).padStart(2, '0');
      if (s.cache.size >= s.maxMemo) s.cache.clear();
      s.cache.set(value, hex.slice(0, s.length));
    }
  }
}

/**
 * Consent per category, as in @sonde/node: `diagnostics` (traces, errors), `performance` (web vitals
 * and other metrics) and `product` (track() events, sessions). `product` is off until granted.
 * Global Privacy Control (`navigator.globalPrivacyControl`) and Do Not Track (`navigator.doNotTrack`)
 * withdraw every category but the `essential` ones at start; a later choice the person makes
 * (`consent.set`, `consent.record`) wins, as it is the person's own.
 */
import { PSEUDONYM_LENGTH } from '@sonde/redact';
export const CATEGORIES = ['diagnostics', 'performance', 'product'] as const;
export type Category = (typeof CATEGORIES)[number];
export type ConsentMap = Partial<Record<Category, boolean>>;

export const CONSENT_CATEGORY_ATTRIBUTE = 'sonde.consent.category';

export function isCategory(value: unknown): value is Category {
  return typeof value === 'string' && (CATEGORIES as readonly string[]).includes(value);
}

export type Listener = (category: Category, granted: boolean) => void;

export class ConsentState {
  private readonly granted: Record<Category, boolean> = { diagnostics: true, performance: true, product: false };
  private readonly listeners: Listener[] = [];

  init(initial: ConsentMap): void {
    for (const c of CATEGORIES) if (initial[c] !== undefined) this.granted[c] = initial[c] === true;
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  set(category: Category, granted: boolean): void {
    if (!isCategory(category))
      throw new TypeError(`unknown consent category ${String(category)}; use one of ${CATEGORIES.join(', ')}`);
    if (typeof granted !== 'boolean')
      throw new TypeError(`consent.set(${category}, granted): granted must be a boolean`);
    const changed = this.granted[category] !== granted;
    this.granted[category] = granted;
    if (changed) for (const l of this.listeners) l(category, granted);
  }

  get(category: Category): boolean {
    return this.granted[category] === true;
  }

  snapshot(): Record<Category, boolean> {
    return { ...this.granted };
  }
}

/** The browser's opt-out signal, if any: GPC first (it is the legally meaningful one), then DNT. */
export function browserOptOut(): 'global_privacy_control' | 'do_not_track' | undefined {
  const nav = navigator as Navigator & { globalPrivacyControl?: boolean; doNotTrack?: string | null };
  if (nav.globalPrivacyControl === true) return 'global_privacy_control';
  const dnt = nav.doNotTrack ?? (globalThis as { doNotTrack?: string }).doNotTrack;
  if (dnt === '1' || dnt === 'yes') return 'do_not_track';
  return undefined;
}

/**
 * A subject's pseudonym: the first PSEUDONYM_LENGTH (16) lowercase hex characters of
 * HMAC-SHA256(key, value), WebCrypto's; the same value @sonde/node's consent.record and the redactor's
 * `enduser.pseudo.id` give for the same key and id.
 */
export async function pseudonymOf(key: string, value: string): Promise<string> {
  const enc = new TextEncoder();
  const k = await crypto.subtle.importKey('raw', enc.encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', k, enc.encode(value)));
  let hex = '';
  for (const b of sig) hex += b.toString(16).padStart(2, '0');
  return hex.slice(0, PSEUDONYM_LENGTH);
}

/**
 * The pipeline processors' config: the `redaction:` section and its translation to @sonde/redact's
 * RedactionConfig, and the attribute limits (from `limits:`, a section of the intake's).
 */
import { DETECTORS, parseRedactionConfig, type RedactionConfig } from '@sonde/redact';
import { z } from 'zod';

/**
 * End-user id keys: pseudonymized when `redaction.hmac_key` is set, dropped otherwise (never passed in
 * clear). Listing one in `allow_keys` by its exact name lets it pass.
 */
export const END_USER_KEYS: readonly string[] = ['enduser.id', 'user.id'];

export const redactionSection = z
  .strictObject({
    /**
     * Apply the redaction rules (@sonde/redact) to everything received, before any consumer sees it.
     * On by default: services not instrumented with Sonde send personal data and secrets unredacted.
     */
    enabled: z.boolean().default(true),
    /** `block`: every attribute key passes except the blocked ones. `allow`: only `allow_keys` pass. */
    mode: z.enum(['block', 'allow']).default('block'),
    /** Keys that pass (`*` wildcards); in allow mode every other top-level attribute key is dropped. */
    allow_keys: z.array(z.string().min(1)).default([]),
    /** Keys dropped, in addition to the built-in list (password, token, authorization, cookie, ...). */
    block_keys: z.array(z.string().min(1)).default([]),
    /** Value detectors to run: email, card, ip, bearer, url_secret. */
    detectors: z.array(z.enum(DETECTORS as [string, ...string[]])).default([...DETECTORS]),
    /** What an email, card number or IP found in a value becomes: a `[REDACTED:email]` mask or a keyed pseudonym. */
    action: z.enum(['mask', 'pseudonymize']).default('mask'),
    /** HMAC-SHA256 key of the pseudonyms (16+ characters); better from SONDE_HMAC_KEY than from the file. */
    hmac_key: z.string().default(''),
    /**
     * Keys whose whole value becomes its pseudonym (enduser.id is emitted as enduser.pseudo.id), on top
     * of END_USER_KEYS (pseudonymized with hmac_key, dropped without it).
     */
    pseudonymize_keys: z.array(z.string().min(1)).default([]),
  })
  .superRefine((v, ctx) => {
    if (!v.enabled) return;
    try {
      parseRedactionConfig(toRedactionConfig(v));
    } catch (err) {
      // "redaction.hmac_key: required ..." → path hmac_key, message "required ..."; never holds the key.
      const m = /^redaction\.([a-z_]+)(?:\[\d+\])?: (.*)$/s.exec((err as Error).message);
      ctx.addIssue({ code: 'custom', path: m ? [m[1]] : [], message: m ? m[2] : (err as Error).message });
    }
  })
  .prefault({});

/** The `redaction:` section as @sonde/redact takes it (END_USER_KEYS added to pseudonymize_keys or block_keys). */
export function toRedactionConfig(r: {
  mode: 'block' | 'allow';
  allow_keys: string[];
  block_keys: string[];
  detectors: string[];
  action: 'mask' | 'pseudonymize';
  hmac_key: string;
  pseudonymize_keys: string[];
}): RedactionConfig {
  const keyed = r.hmac_key !== '';
  const allowed = new Set(r.allow_keys.map((k) => k.toLowerCase()));
  const endUser = END_USER_KEYS.filter((k) => !allowed.has(k));
  return {
    mode: r.mode,
    allow_keys: r.allow_keys,
    block_keys: keyed ? r.block_keys : [...new Set([...r.block_keys, ...endUser])],
    detectors: r.detectors as RedactionConfig['detectors'],
    action: r.action,
    hmac_key: keyed ? r.hmac_key : undefined,
    pseudonymize_keys: keyed ? [...new Set([...r.pseudonymize_keys, ...endUser])] : r.pseudonymize_keys,
  };
}

/** The attribute-limits processor's bounds, from `limits:`. */
export function toAttributeLimits(limits: { max_attributes_per_item: number; max_attribute_value_length: number }) {
  return {
    maxAttributesPerItem: limits.max_attributes_per_item,
    maxAttributeValueLength: limits.max_attribute_value_length,
  };
}

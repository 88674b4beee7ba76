/**
 * Redaction configuration: one shape for the SDK (JSON, environment) and the receiver (YAML), in
 * snake_case. `parseRedactionConfig` validates it by hand (no dependency) and names the bad key in
 * its errors; it never puts the HMAC key, or any other value it was given, in an error message.
 */

/** What the value detectors look for. */
export type Detector = 'email' | 'card' | 'ip' | 'bearer' | 'url_secret';

export const DETECTORS: readonly Detector[] = ['email', 'card', 'ip', 'bearer', 'url_secret'];

export interface RedactionConfig {
  /** 'block' (default): every key passes except the blocked ones. 'allow': only the allowed keys pass. */
  mode?: 'block' | 'allow';
  /** Keys that pass ('*' matches any run of characters). In allow mode, every other key is dropped. */
  allow_keys?: string[];
  /** Keys that are dropped, added to DEFAULT_BLOCK_KEYS. */
  block_keys?: string[];
  /** Detectors run on string values; default: all. */
  detectors?: Detector[];
  /** What a value found by the email, card or ip detector becomes (secrets are always masked). Default 'mask'. */
  action?: 'mask' | 'pseudonymize';
  /** HMAC-SHA256 key of the pseudonyms (at least 16 characters). Never logged, never in errors. */
  hmac_key?: string;
  /** Keys whose whole value is replaced by its pseudonym (and renamed: enduser.id becomes enduser.pseudo.id). */
  pseudonymize_keys?: string[];
}

/**
 * Keys dropped in every mode unless allowed by their exact name. Matched case-insensitively; '*'
 * matches any run of characters. Chosen to hit credentials without hitting counters such as
 * gen_ai.usage.input_tokens.
 */
export const DEFAULT_BLOCK_KEYS: readonly string[] = [
  '*password*',
  '*passwd*',
  '*secret*',
  'token',
  '*.token',
  '*_token',
  '*-token',
  '*api_key*',
  '*apikey*',
  '*api-key*',
  '*private_key*',
  '*authorization',
  'cookie',
  '*.cookie',
  '*set-cookie',
  'http.request.header.authorization',
  'http.request.header.proxy-authorization',
  'http.request.header.cookie',
  'http.request.header.x-api-key',
  'http.request.header.x-auth-token',
  'http.response.header.set-cookie',
];

/** Shortest HMAC key accepted. */
export const MIN_HMAC_KEY_LENGTH = 16;

const KNOWN_KEYS = new Set([
  'mode',
  'allow_keys',
  'block_keys',
  'detectors',
  'action',
  'hmac_key',
  'pseudonymize_keys',
]);

/** An invalid redaction configuration. The message names the key; it never holds the HMAC key. */
export class RedactionConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedactionConfigError';
  }
}

function stringList(input: Record<string, unknown>, key: string): string[] | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new RedactionConfigError(`redaction.${key}: expected a list of strings`);
  v.forEach((e, i) => {
    if (typeof e !== 'string' || e === '') {
      throw new RedactionConfigError(`redaction.${key}[${i}]: expected a non-empty string`);
    }
  });
  return [...v];
}

/**
 * Validates a redaction configuration (an object as parsed from YAML or JSON) and returns a copy of
 * it. Throws a RedactionConfigError naming the bad key. A comma-separated string is accepted for
 * the list keys (handy from an environment variable).
 */
export function parseRedactionConfig(input: unknown): RedactionConfig {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new RedactionConfigError(`redaction: expected an object with the keys ${[...KNOWN_KEYS].join(', ')}`);
  }
  const raw = { ...(input as Record<string, unknown>) };
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new RedactionConfigError(
        `redaction: unknown key ${JSON.stringify(key)}: expected one of ${[...KNOWN_KEYS].join(', ')}`,
      );
    }
    const v = raw[key];
    if (typeof v === 'string' && key.endsWith('s') && key !== 'hmac_key') {
      raw[key] = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    }
  }
  const out: RedactionConfig = {};
  if (raw.mode !== undefined) {
    if (raw.mode !== 'block' && raw.mode !== 'allow') {
      throw new RedactionConfigError("redaction.mode: expected 'block' or 'allow'");
    }
    out.mode = raw.mode;
  }
  if (raw.action !== undefined) {
    if (raw.action !== 'mask' && raw.action !== 'pseudonymize') {
      throw new RedactionConfigError("redaction.action: expected 'mask' or 'pseudonymize'");
    }
    out.action = raw.action;
  }
  const allow = stringList(raw, 'allow_keys');
  if (allow) out.allow_keys = allow;
  const block = stringList(raw, 'block_keys');
  if (block) out.block_keys = block;
  const pseudo = stringList(raw, 'pseudonymize_keys');
  if (pseudo) out.pseudonymize_keys = pseudo;
  const detectors = stringList(raw, 'detectors');
  if (detectors) {
    detectors.forEach((d, i) => {
      if (!(DETECTORS as readonly string[]).includes(d)) {
        throw new RedactionConfigError(
          `redaction.detectors[${i}]: unknown detector, expected one of ${DETECTORS.join(', ')}`,
        );
      }
    });
    out.detectors = detectors as Detector[];
  }
  if (raw.hmac_key !== undefined && raw.hmac_key !== null && raw.hmac_key !== '') {
    if (typeof raw.hmac_key !== 'string') throw new RedactionConfigError('redaction.hmac_key: expected a string');
    if (raw.hmac_key.length < MIN_HMAC_KEY_LENGTH) {
      throw new RedactionConfigError(
        `redaction.hmac_key: too short, use at least ${MIN_HMAC_KEY_LENGTH} random characters (e.g. \`openssl rand -hex 32\`)`,
      );
    }
    out.hmac_key = raw.hmac_key;
  }
  const needsKey = out.action === 'pseudonymize' || (out.pseudonymize_keys?.length ?? 0) > 0;
  if (needsKey && out.hmac_key === undefined) {
    throw new RedactionConfigError(
      "redaction.hmac_key: required when action is 'pseudonymize' or pseudonymize_keys is set; " +
        'give a secret of at least 16 characters (e.g. `openssl rand -hex 32`), from a secret store or the environment',
    );
  }
  return out;
}

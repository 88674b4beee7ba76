/**
 * The redactor: decides per attribute key (keep, drop, pseudonymize; memoised) and runs the value
 * detectors on strings and URLs. One instance per configuration; it holds the HMAC key inside a
 * closure only, so neither JSON.stringify nor util.inspect of it can show the key.
 */
import { DEFAULT_BLOCK_KEYS, DETECTORS, type Detector, parseRedactionConfig, type RedactionConfig } from './config';
import {
  type Found,
  features,
  findBearer,
  findCards,
  findEmails,
  findIPv4,
  findIPv6,
  findUrlSecrets,
  HAS_EQUALS,
  HAS_PERCENT,
  HAS_PLUS,
  isSecretParam,
  MAY_BEARER,
  MAY_CARD,
  MAY_EMAIL,
  MAY_IPV4,
  MAY_IPV6,
  MAY_URL_SECRET,
} from './detectors';
import { hmacOf } from './hmac';

export type KeyAction = 'keep' | 'drop' | 'pseudonymize';

/** A value of an OpenTelemetry JS `Attributes` object. */
export type AttributeValue = unknown;

export interface Redactor {
  /** What happens to an attribute with this key (memoised). */
  keyAction(key: string): KeyAction;
  /** Runs the detectors on a string (as a URL when `key` is a URL attribute); the same instance when nothing matched. */
  redactString(value: string, key?: string): string;
  /** Masks secret query parameters and userinfo, and runs the detectors on the path, query and fragment. */
  redactUrl(url: string): string;
  /** The keyed HMAC-SHA256 pseudonym of a value: PSEUDONYM_LENGTH hex characters. Throws without hmac_key. */
  pseudonym(value: string): string;
  /**
   * Runs the detectors on any value: a string, a number (card numbers), an array, or a map such as
   * a structured log body, recursively. Keys of nested maps follow the block list and
   * pseudonymize_keys in both modes (allow mode picks top-level attribute keys only). The key rules
   * are not applied to `key` itself; it only tells URL attributes apart. The same value when nothing
   * changed; a changed array or map is a copy.
   */
  redactValue(value: unknown, key?: string): unknown;
  /** Applies key rules and detectors to an OTel JS attributes object; returns the same object when nothing changed. */
  redactAttributes(attrs: Record<string, unknown>): { attributes: Record<string, unknown>; redacted: number };
  /** Counts by reason: key_dropped, pseudonymized, and one per detector. */
  readonly stats: { [reason: string]: number };
}

/** Hex characters kept of the HMAC-SHA256 (64 bits: collisions are negligible below billions of values). */
export const PSEUDONYM_LENGTH = 16;

/** Attribute keys whose string value is a URL (or part of one) and goes through redactUrl. */
export const URL_KEYS: ReadonlySet<string> = new Set([
  'url.full',
  'url.original',
  'url.path',
  'url.query',
  'url.fragment',
  'http.url',
  'http.target',
  'http.route.full',
]);

/** The key under which a pseudonymized attribute is emitted: enduser.id → enduser.pseudo.id, user.email → user.email.pseudo. */
export function pseudonymKey(key: string): string {
  if (key === 'id') return 'pseudo.id';
  if (key.endsWith('.pseudo.id') || key.endsWith('.pseudo')) return key;
  if (key.endsWith('.id')) return `${key.slice(0, -3)}.pseudo.id`;
  return `${key}.pseudo`;
}

/** Deepest nesting redactValue walks; deeper values are replaced by '[REDACTED:too_deep]'. */
const MAX_DEPTH = 32;

/**
 * Strings remembered as clean: up to 512 characters, and at most MAX_CLEAN_STRINGS of them.
 * Telemetry repeats its values (hosts, routes, user agents, statements), often as the same string
 * object (the receiver's decoder hands one out again for values up to 160 bytes; an SDK gets
 * literals), whose hash is cached. Text up to SCAN_FIRST_LENGTH characters is scanned by the
 * pre-check before the memo is asked, and remembered only when a detector must run: in a busy
 * receiver the set's entries are seldom in the CPU caches, and a lookup that misses them costs more
 * than scanning a short string. Low-cardinality values are found before either, in their key's
 * table of recent clean values (KeyDecision).
 */
const MAX_MEMO_LENGTH = 512;
const SCAN_FIRST_LENGTH = 24;
const MAX_CLEAN_STRINGS = 4096;
/** The clean-URL memo pauses for URL_MEMO_PAUSE URLs when less than this share was found in it while it filled. */
const URL_MEMO_MIN_HIT_RATE = 1 / 8;
const URL_MEMO_PAUSE = 65536;

function remember(set: Set<string>, s: string): void {
  if (set.size >= MAX_CLEAN_STRINGS) set.clear();
  set.add(s);
}

/** Most keys remembered by keyAction; past it the memo starts afresh (keys are normally few). */
const MAX_MEMO = 10_000;

/** How redactString reads a value, by its key: as text, or by the URL rules (a whole URL, a query, a fragment). */
const TEXT = 0;
const WHOLE_URL = 1;
const QUERY = 2;
const FRAGMENT = 3;
type ValueKind = typeof TEXT | typeof WHOLE_URL | typeof QUERY | typeof FRAGMENT;

function valueKindOf(key: string): ValueKind {
  if (!URL_KEYS.has(key)) return TEXT;
  if (key === 'url.query') return QUERY;
  if (key === 'url.fragment') return FRAGMENT;
  return WHOLE_URL;
}

/** Text shorter than the shortest email (a@b.io) is left alone. */
const MIN_TEXT_LENGTH = 6;

/** Clean values remembered per key: 2^RECENT_BITS slots. */
const RECENT_BITS = 6;
const RECENT_SLOTS = 1 << RECENT_BITS;
/**
 * Longest value remembered per key (the receiver's decoder hands out the same string object for
 * values up to 160 bytes), and how many keys get such a table: together at most 64 × 160 × 256
 * characters (2.6 M), about what the clean-string memo may hold (4,096 × 512).
 */
const MAX_RECENT_LENGTH = 160;
const MAX_RECENT_KEYS = 256;

/** Where a key's clean value would be remembered: by its length and its first, middle and last characters (of the first 40). */
function recentSlot(s: string): number {
  const n = s.length;
  // Characters among the first 40 only, which share the CPU cache line of the string's header.
  const end = Math.min(n, 40);
  const h = Math.imul(
    n ^ (s.charCodeAt(0) << 8) ^ (s.charCodeAt(end >> 1) << 16) ^ (s.charCodeAt(end - 1) << 24),
    0x9e3779b1,
  );
  return h >>> (32 - RECENT_BITS);
}

/**
 * What keyAction decided for a key, and how its string values are read. It also remembers the
 * decision asked for right after it (attribute sets repeat their keys in the same order, so the
 * next key is usually the same string again and costs one comparison instead of a Map lookup),
 * and a few of the key's values found clean, by length (a key's values repeat, and the receiver's
 * decoder hands out the same string object for a value it saw before, so comparing costs nothing).
 */
class KeyDecision {
  next: KeyDecision | undefined = undefined;
  /** Values found in `recent`, and not found, since its last review. */
  hits = 0;
  misses = 0;
  constructor(
    readonly key: string,
    readonly action: KeyAction,
    readonly kind: ValueKind,
    /**
     * Clean values by recentSlot; none for URLs (their values seldom repeat), past MAX_RECENT_KEYS
     * keys, and once a key's values proved too varied (ids, tenants): then a miss only costs.
     */
    public recent: string[] | undefined,
  ) {}
}

/**
 * A key's table of recent clean values is reviewed every RECENT_TRIAL values not found there, and
 * given up when fewer than RECENT_TRIAL / 8 were found meanwhile.
 */
const RECENT_TRIAL = 1024;

/** Compiles glob patterns ('*' = any run of characters) into an exact-name set and one regex, case-insensitively. */
class KeyMatcher {
  private readonly exact = new Set<string>();
  private readonly re: RegExp | undefined;

  constructor(patterns: readonly string[]) {
    const globs: string[] = [];
    for (const p of patterns) {
      const lower = p.toLowerCase();
      if (lower.includes('*')) globs.push(lower.split('*').map(escapeRe).join('.*'));
      else this.exact.add(lower);
    }
    this.re = globs.length > 0 ? new RegExp(`^(?:${globs.join('|')})$`) : undefined;
  }

  hasExact(lowerKey: string): boolean {
    return this.exact.has(lowerKey);
  }

  matches(lowerKey: string): boolean {
    return this.exact.has(lowerKey) || (this.re?.test(lowerKey) ?? false);
  }
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** Characters re-escaped when a decoded URL component is put back. */
const URL_UNSAFE = /[\s%&#?+=/\\"<>]/g;
const encodeLight = (s: string) => s.replace(URL_UNSAFE, (c) => encodeURIComponent(c));

function safeDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

class RedactorImpl implements Redactor {
  readonly stats: { [reason: string]: number } = {
    key_dropped: 0,
    pseudonymized: 0,
    email: 0,
    card: 0,
    ip: 0,
    bearer: 0,
    url_secret: 0,
  };

  readonly #memo = new Map<string, KeyDecision>();
  /**
   * The decision keyAction last returned: a caller asks keyAction(key) and then
   * redactString(value, key) with the same key, which then costs one comparison (of the same
   * string, usually) instead of a lookup in URL_KEYS.
   */
  #last: KeyDecision = new KeyDecision('', 'keep', TEXT, undefined);
  /** Decisions in #memo that have a table of recent clean values. */
  #recentTables = 0;
  readonly #secretNames = new Map<string, boolean>();
  readonly #nestedMemo = new Map<string, KeyAction>();
  readonly #cleanText = new Set<string>();
  readonly #cleanUrls = new Set<string>();
  /** URLs found in #cleanUrls since it was last cleared. */
  #urlMemoHits = 0;
  /** URLs still to redact without #cleanUrls (paused: too few were found in it). */
  #urlMemoPause = 0;
  /** Query strings found clean when nothing else in their URL could hold personal data (only secret names matter then). */
  readonly #cleanQueries = new Set<string>();
  readonly #allow: KeyMatcher;
  readonly #block: KeyMatcher;
  readonly #pseudo: KeyMatcher;
  readonly #allowMode: boolean;
  readonly #on: Record<Detector, boolean>;
  /** The MAY_* bits of the enabled detectors. */
  readonly #enabledBits: number;
  readonly #pseudonymizeValues: boolean;
  readonly #hmac: ((value: string) => string) | undefined;

  constructor(config: RedactionConfig) {
    this.#allowMode = config.mode === 'allow';
    this.#allow = new KeyMatcher(config.allow_keys ?? []);
    this.#block = new KeyMatcher([...DEFAULT_BLOCK_KEYS, ...(config.block_keys ?? [])]);
    this.#pseudo = new KeyMatcher(config.pseudonymize_keys ?? []);
    const detectors = config.detectors ?? DETECTORS;
    this.#on = { email: false, card: false, ip: false, bearer: false, url_secret: false };
    for (const d of detectors) this.#on[d] = true;
    const bit: Record<Detector, number> = {
      email: MAY_EMAIL,
      card: MAY_CARD,
      ip: MAY_IPV4 | MAY_IPV6,
      bearer: MAY_BEARER,
      url_secret: MAY_URL_SECRET,
    };
    this.#enabledBits = detectors.reduce((bits, d) => bits | bit[d], 0);
    this.#pseudonymizeValues = config.action === 'pseudonymize';
    this.#hmac = config.hmac_key === undefined ? undefined : hmacOf(config.hmac_key, PSEUDONYM_LENGTH, MAX_MEMO);
  }

  keyAction(key: string): KeyAction {
    const last = this.#last;
    let known = last.next;
    if (known === undefined || known.key !== key) {
      known = this.#memo.get(key) ?? this.#newDecision(key);
      last.next = known;
    }
    this.#last = known;
    return known.action;
  }

  #newDecision(key: string): KeyDecision {
    if (this.#memo.size >= MAX_MEMO) {
      this.#memo.clear();
      this.#recentTables = 0;
    }
    const kind = valueKindOf(key);
    const recent = kind === TEXT && this.#recentTables < MAX_RECENT_KEYS;
    if (recent) this.#recentTables++;
    const decision = new KeyDecision(
      key,
      this.#decide(key),
      kind,
      recent ? new Array<string>(RECENT_SLOTS).fill('') : undefined,
    );
    this.#memo.set(key, decision);
    return decision;
  }

  #decide(key: string): KeyAction {
    const lower = key.toLowerCase();
    let action: KeyAction;
    if (this.#pseudo.matches(lower)) action = 'pseudonymize';
    else if (this.#allow.hasExact(lower)) action = 'keep';
    else if (this.#block.matches(lower)) action = 'drop';
    else if (this.#allow.matches(lower)) action = 'keep';
    else action = this.#allowMode ? 'drop' : 'keep';
    return action;
  }

  pseudonym(value: string): string {
    if (this.#hmac === undefined) {
      throw new Error('redaction: pseudonym() needs an hmac_key in the redaction configuration');
    }
    return this.#hmac(value);
  }

  redactString(value: string, key?: string): string {
    if (typeof value !== 'string') return value; // JavaScript callers may pass anything
    if (key === undefined) return this.#redactText(value);
    const last = this.#last;
    if (key !== last.key) return this.#redactAs(value, valueKindOf(key));
    const recent = last.recent;
    if (recent === undefined || value.length > MAX_RECENT_LENGTH) return this.#redactAs(value, last.kind);
    if (value.length < MIN_TEXT_LENGTH) return value;
    const slot = recentSlot(value);
    if (recent[slot] === value) {
      last.hits++;
      return value;
    }
    if (++last.misses >= RECENT_TRIAL) this.#reviewRecent(last);
    const out = this.#redactText(value);
    if (out === value) recent[slot] = value;
    return out;
  }

  /** Keeps a key's table of recent clean values only while it finds values. */
  #reviewRecent(decision: KeyDecision): void {
    if (decision.hits < RECENT_TRIAL / 8) {
      decision.recent = undefined;
      if (this.#recentTables > 0) this.#recentTables--;
    }
    decision.misses = 0;
    decision.hits = 0;
  }

  #redactAs(value: string, kind: ValueKind): string {
    if (kind === TEXT) return this.#redactText(value);
    if (kind === WHOLE_URL) return this.redactUrl(value);
    if (kind === QUERY) return this.#redactQuery(value, this.#mayHoldPersonalData(features(value), value));
    return this.#redactFragment(value, this.#mayHoldPersonalData(features(value), value));
  }

  redactUrl(url: string): string {
    if (url.length === 0) return url;
    let memo = url.length <= MAX_MEMO_LENGTH;
    if (memo) {
      if (this.#urlMemoPause > 0) {
        this.#urlMemoPause--;
        memo = false;
      } else if (this.#cleanUrls.has(url)) {
        this.#urlMemoHits++;
        return url;
      }
    }
    const out = this.#redactUrl(url);
    if (memo && out === url) {
      if (this.#cleanUrls.size >= MAX_CLEAN_STRINGS) {
        // URLs that carry ids (/orders/8412) seldom come again: when few were found while the memo
        // filled up, it costs more than it saves, and is left alone for a while.
        if (this.#urlMemoHits < MAX_CLEAN_STRINGS * URL_MEMO_MIN_HIT_RATE) this.#urlMemoPause = URL_MEMO_PAUSE;
        this.#urlMemoHits = 0;
        this.#cleanUrls.clear();
      }
      if (this.#urlMemoPause === 0) this.#cleanUrls.add(url);
    }
    return out;
  }

  #redactUrl(url: string): string {
    // Fast path: most URLs hold nothing a detector could find and no name=value pair.
    const bits = features(url);
    const text = this.#mayHoldPersonalData(bits, url);
    if (!text && (bits & MAY_EMAIL) === 0) {
      // Nothing but a secret parameter could change (no '@': no userinfo): look for one in place.
      if (!(this.#on.url_secret && (bits & HAS_EQUALS) !== 0) || !this.#hasSecretParameter(url)) return url;
    }
    let rest = url;
    let fragment: string | undefined;
    const hash = rest.indexOf('#');
    if (hash >= 0) {
      fragment = rest.slice(hash + 1);
      rest = rest.slice(0, hash);
    }
    let query: string | undefined;
    const q = rest.indexOf('?');
    if (q >= 0) {
      query = rest.slice(q + 1);
      rest = rest.slice(0, q);
    }
    let prefix = '';
    let userinfo = false;
    const scheme = rest.indexOf('://');
    if (scheme >= 0 && scheme < 32 && rest.includes('@')) {
      const authorityStart = scheme + 3;
      let slash = rest.indexOf('/', authorityStart);
      if (slash < 0) slash = rest.length;
      let authority = rest.slice(authorityStart, slash);
      const at = authority.lastIndexOf('@');
      if (at >= 0) {
        // user:password@host (as @opentelemetry/instrumentation-http does it)
        authority = `${authority.slice(0, at).includes(':') ? 'REDACTED:REDACTED' : 'REDACTED'}${authority.slice(at)}`;
        this.stats.url_secret++;
        userinfo = true;
      }
      prefix = rest.slice(0, authorityStart) + authority;
      rest = rest.slice(slash);
    }
    const path = text ? this.#redactPath(rest) : rest;
    const newQuery = query === undefined ? undefined : this.#redactQueryOf(query, text);
    const newFragment = fragment === undefined ? undefined : this.#redactFragment(fragment, text);
    if (!userinfo && path === rest && newQuery === query && newFragment === fragment) return url;
    const out =
      prefix +
      path +
      (newQuery === undefined ? '' : `?${newQuery}`) +
      (newFragment === undefined ? '' : `#${newFragment}`);
    return out;
  }

  redactAttributes(attrs: Record<string, unknown>): { attributes: Record<string, unknown>; redacted: number } {
    const keys = Object.keys(attrs);
    let out: Record<string, unknown> | undefined;
    let redacted = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      const value = attrs[key];
      const action = this.keyAction(key);
      let newKey = key;
      let newValue = value;
      if (action === 'drop') {
        this.stats.key_dropped++;
        newKey = '';
      } else if (action === 'pseudonymize') {
        newKey = pseudonymKey(key);
        newValue = Array.isArray(value) ? value.map((v) => this.#pseudonymOf(v)) : this.#pseudonymOf(value);
        this.stats.pseudonymized++;
      } else {
        newValue = this.#redactValue(value, key, 0);
      }
      if (out === undefined) {
        if (newKey === key && newValue === value) continue;
        out = {};
        for (let k = 0; k < i; k++) out[keys[k]] = attrs[keys[k]];
      }
      if (newKey !== key || newValue !== value) redacted++;
      if (newKey !== '') out[newKey] = newValue;
    }
    return { attributes: out ?? attrs, redacted };
  }

  #pseudonymOf(value: unknown): unknown {
    if (value === null || value === undefined) return value;
    return this.pseudonym(String(value));
  }

  redactValue(value: unknown, key?: string): unknown {
    return this.#redactValue(value, key ?? '', 0);
  }

  /** A value through the detectors, recursively; the same value when nothing matched. */
  #redactValue(value: unknown, key: string, depth: number): unknown {
    if (typeof value === 'string') return this.redactString(value, key);
    if (typeof value === 'number') return this.#redactNumber(value);
    if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || value instanceof Date) return value;
    if (depth >= MAX_DEPTH) return '[REDACTED:too_deep]';
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const v = value[i];
        const r = this.#redactValue(v, key, depth + 1);
        if (r !== v) {
          copy ??= value.slice();
          copy[i] = r;
        }
      }
      return copy ?? value;
    }
    const map = value as Record<string, unknown>;
    const keys = Object.keys(map);
    let out: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const v = map[k];
      const action = this.#nestedKeyAction(k);
      let newKey = k;
      let newValue = v;
      if (action === 'drop') {
        this.stats.key_dropped++;
        newKey = '';
      } else if (action === 'pseudonymize') {
        newKey = pseudonymKey(k);
        newValue = Array.isArray(v) ? v.map((e) => this.#pseudonymOf(e)) : this.#pseudonymOf(v);
        this.stats.pseudonymized++;
      } else {
        newValue = this.#redactValue(v, k, depth + 1);
      }
      if (out === undefined) {
        if (newKey === k && newValue === v) continue;
        out = {};
        for (let j = 0; j < i; j++) out[keys[j]] = map[keys[j]];
      }
      if (newKey !== '') out[newKey] = newValue;
    }
    return out ?? value;
  }

  /** Keys inside values: the block list and pseudonymize_keys apply in both modes. */
  #nestedKeyAction(key: string): KeyAction {
    if (!this.#allowMode) return this.keyAction(key);
    const known = this.#nestedMemo.get(key);
    if (known !== undefined) return known;
    const lower = key.toLowerCase();
    let action: KeyAction = 'keep';
    if (this.#pseudo.matches(lower)) action = 'pseudonymize';
    else if (!this.#allow.hasExact(lower) && this.#block.matches(lower)) action = 'drop';
    if (this.#nestedMemo.size >= MAX_MEMO) this.#nestedMemo.clear();
    this.#nestedMemo.set(key, action);
    return action;
  }

  /** A card number can travel as an integer (16 digits fit in a double below 9e15). */
  #redactNumber(value: number): number | string {
    if (!this.#on.card || value < 1e12 || !Number.isSafeInteger(value)) return value;
    const s = String(value);
    const r = this.#redactText(s);
    return r === s ? value : r;
  }

  /** Free text through every enabled detector whose pre-check passes. */
  #redactText(s: string): string {
    if (s.length < MIN_TEXT_LENGTH) return s;
    // Telemetry repeats its values (routes, user agents, statements): a string found clean is
    // remembered (bounded; see MAX_MEMO_LENGTH). Only clean strings are kept, so the memo never
    // holds personal data.
    const memo = s.length <= MAX_MEMO_LENGTH;
    let bits: number;
    if (s.length <= SCAN_FIRST_LENGTH) {
      // Short: the pre-check costs less than a lookup in a large set, whose entries are seldom in
      // the CPU caches in a busy receiver; remembered only when a detector must run.
      bits = features(s) & this.#enabledBits;
      if (bits === 0 || this.#cleanText.has(s)) return s;
    } else {
      if (memo && this.#cleanText.has(s)) return s;
      bits = features(s) & this.#enabledBits;
      if (bits === 0) {
        if (memo) remember(this.#cleanText, s);
        return s;
      }
    }
    const original = s;
    if (bits & MAY_URL_SECRET) s = this.#apply(s, findUrlSecrets(s), 'url_secret', false);
    if (bits & MAY_BEARER) s = this.#apply(s, findBearer(s), 'bearer', false);
    if (bits & MAY_CARD) s = this.#apply(s, findCards(s), 'card', true);
    // IPv6 first: ::ffff:192.0.2.1 is one address.
    if (bits & MAY_IPV6) s = this.#apply(s, findIPv6(s), 'ip', true);
    if (bits & MAY_IPV4) s = this.#apply(s, findIPv4(s), 'ip', true);
    if (bits & MAY_EMAIL) s = this.#apply(s, findEmails(s), 'email', true);
    if (memo && s === original) remember(this.#cleanText, s);
    return s;
  }

  /** Whether any detector other than url_secret's name=value pairs could match in `s` (after URL decoding). */
  /** `bits` are features(s) ('@' sets MAY_EMAIL, any '=' HAS_EQUALS). */
  #mayHoldPersonalData(bits: number, s: string): boolean {
    // Decoded, a `+` in a query is a space: a card written 4111+1111+... reads as one.
    if (bits & (HAS_PERCENT | HAS_PLUS)) bits |= features(safeDecode(s.replace(/\+/g, ' ')));
    return (bits & this.#enabledBits & ~MAY_URL_SECRET) !== 0;
  }

  #apply(s: string, found: Found[], reason: Detector, personal: boolean): string {
    if (found.length === 0) return s;
    this.stats[reason] += found.length;
    let out = '';
    let last = 0;
    for (const f of found) {
      out += s.slice(last, f.start) + this.#replacement(reason, f.value, personal);
      last = f.end;
    }
    return out + s.slice(last);
  }

  /** Secrets are always masked; personal values (email, card, ip) follow `action`. */
  #replacement(reason: Detector, value: string, personal: boolean): string {
    if (personal && this.#pseudonymizeValues) return `[${reason}:${this.pseudonym(value)}]`;
    return `[REDACTED:${reason}]`;
  }

  #redactPath(path: string): string {
    if (path.length < 7) return path;
    const segments = path.split('/');
    let changed = false;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const decoded = safeDecode(seg);
      const r = this.#redactText(decoded);
      if (r !== decoded) {
        segments[i] = seg === decoded ? r : encodeLight(r);
        changed = true;
      }
    }
    return changed ? segments.join('/') : path;
  }

  /** Masks secret parameters; with `text`, also runs the detectors on the other values. */
  /**
   * The query of a URL: when no detector can match in the URL (`text` false), only secret parameter
   * names can change it, so a query found clean is remembered (URLs differ by their path ids, their
   * queries repeat: `?locale=en-GB`).
   */
  /**
   * Whether the query or fragment of a URL has a `name=value` pair (value not empty) whose name is
   * secret: what #redactQuery would mask when no detector applies. Reads the URL in place (only the
   * names are sliced), so that a URL with ids in its path costs no copies when it holds no secret.
   */
  #hasSecretParameter(url: string): boolean {
    const hash = url.indexOf('#');
    const end = hash < 0 ? url.length : hash;
    const q = url.indexOf('?');
    if (q >= 0 && q < end && this.#hasSecretPair(url, q + 1, end)) return true;
    return hash >= 0 && this.#hasSecretPair(url, hash + 1, url.length);
  }

  /**
   * Whether a `&`-separated list of pairs in s[start, end) has a secret name with a value. Linear:
   * the next '=' is looked for again only once the pairs have passed it.
   */
  #hasSecretPair(s: string, start: number, end: number): boolean {
    let from = start;
    let eq = -2;
    while (from < end) {
      if (eq < from) {
        eq = s.indexOf('=', from);
        if (eq < 0 || eq >= end) return false;
      }
      let to = s.indexOf('&', from);
      if (to < 0 || to > end) to = end;
      if (eq + 1 < to && this.#isSecretName(safeDecode(s.slice(from, eq)))) return true;
      from = to + 1;
    }
    return false;
  }

  #redactQueryOf(query: string, text: boolean): string {
    if (text || query.length > MAX_MEMO_LENGTH) return this.#redactQuery(query, text);
    if (this.#cleanQueries.has(query)) return query;
    const out = this.#redactQuery(query, false);
    if (out === query) remember(this.#cleanQueries, query);
    return out;
  }

  #redactQuery(query: string, text: boolean): string {
    if (query.length === 0 || (!text && !(this.#on.url_secret && query.includes('=')))) return query;
    const pairs = query.split('&');
    let changed = false;
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i];
      const eq = pair.indexOf('=');
      if (eq < 0) {
        if (!text) continue;
        const r = this.#redactComponent(pair);
        if (r !== pair) {
          pairs[i] = r;
          changed = true;
        }
        continue;
      }
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (value.length === 0) continue;
      if (this.#on.url_secret && this.#isSecretName(safeDecode(name))) {
        if (!value.startsWith('[REDACTED')) {
          pairs[i] = `${name}=[REDACTED:url_secret]`;
          this.stats.url_secret++;
          changed = true;
        }
        continue;
      }
      if (!text) continue;
      const r = this.#redactComponent(value, true);
      if (r !== value) {
        pairs[i] = `${name}=${r}`;
        changed = true;
      }
    }
    return changed ? pairs.join('&') : query;
  }

  #redactFragment(fragment: string, text: boolean): string {
    // OAuth implicit flow puts access_token=... in the fragment: read it as a query when it looks like one.
    if (fragment.includes('=')) return this.#redactQuery(fragment, text);
    return text ? this.#redactComponent(fragment) : fragment;
  }

  /** A secret parameter by the built-in list or by the key block list (user_password=...). */
  #isSecretName(name: string): boolean {
    let secret = this.#secretNames.get(name);
    if (secret === undefined) {
      secret = isSecretParam(name) || this.#block.matches(name.toLowerCase());
      if (this.#secretNames.size >= MAX_MEMO) this.#secretNames.clear();
      this.#secretNames.set(name, secret);
    }
    return secret;
  }

  /** A URL component, decoded before the detectors run; in a query value `+` is a space (form encoding). */
  #redactComponent(raw: string, queryValue = false): string {
    const decoded = safeDecode(queryValue && raw.includes('+') ? raw.replace(/\+/g, ' ') : raw);
    const r = this.#redactText(decoded);
    if (r === decoded) return raw;
    return raw === decoded ? r : encodeLight(r);
  }

  toJSON(): { stats: { [reason: string]: number } } {
    return { stats: this.stats };
  }
}

/** Builds a redactor; the configuration is validated first (see parseRedactionConfig). */
export function createRedactor(config: RedactionConfig = {}): Redactor {
  return new RedactorImpl(parseRedactionConfig(config));
}

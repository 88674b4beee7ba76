/**
 * Value detectors. Each one finds spans of a string; the redactor decides what they become. They
 * are linear in the length of the string (hand-written scanners, or regexes whose every repetition
 * is bounded or anchored on a literal), and the redactor runs one only after a cheap pre-check
 * (`features`) says the string could hold a match.
 */

export interface Found {
  start: number;
  end: number;
  /** The matched text, normalised for pseudonyms (a card number's digits without separators). */
  value: string;
}

/** Pre-check bits: which detectors could match a string (see `features`). */
export const MAY_EMAIL = 1; // an '@'
export const MAY_CARD = 2; // a run of 13+ digits allowing single spaces or dashes between them
export const MAY_IPV4 = 4; // three dots in one run of digits and dots
export const MAY_IPV6 = 8; // '::', or 7+ colons
export const MAY_BEARER = 16; // 'eyJ', or 'bearer'/'basic ' in any case
export const MAY_URL_SECRET = 32; // a word character then '=', or a '"' and a ':' (JSON)
export const HAS_PERCENT = 64; // '%' (URL-encoded text: decode before deciding)
export const HAS_PLUS = 128; // '+' (a space in a form-encoded query)
export const HAS_EQUALS = 256; // '=' anywhere (a query's name=value pair)

/** Character classes of the pre-check (ASCII only; every other character is RESET). */
const RESET = 0; // ends every run: letters and most punctuation
const DIGIT = 1;
const SEPARATOR = 2; // ' ' or '-': allowed once between the digits of a card number
const DOT = 3;
const SPECIAL = 4; // ':', '@', '=', '"', '%', '+', 'B', 'b', 'J': looked at one by one (they end runs too)
const CHAR_CLASS = new Uint8Array(128);
for (let c = 48; c <= 57; c++) CHAR_CLASS[c] = DIGIT;
CHAR_CLASS[32] = SEPARATOR;
CHAR_CLASS[45] = SEPARATOR;
CHAR_CLASS[46] = DOT;
for (const c of ':@="%+BbJ') CHAR_CLASS[c.charCodeAt(0)] = SPECIAL;

/**
 * The cheap pre-check: one pass over the string, no allocation, returning MAY_* bits. A detector
 * whose bit is not set cannot match, so it does not run. Each character is first classified by a
 * table, so the common ones (letters, '/', '_', ...) cost one load and one branch.
 */
export function features(s: string): number {
  let bits = 0;
  let run = 0;
  let sep = false;
  let dotsHere = 0;
  let colons = 0;
  let quote = false;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const cls = c < 128 ? CHAR_CLASS[c] : RESET;
    if (cls === RESET) {
      run = 0;
      sep = false;
      dotsHere = 0;
      continue;
    }
    if (cls === DIGIT) {
      if (++run >= 13) bits |= MAY_CARD;
      sep = false;
      continue;
    }
    if (cls === SEPARATOR) {
      if (sep) run = 0;
      sep = true;
      dotsHere = 0;
      continue;
    }
    run = 0;
    sep = false;
    if (cls === DOT) {
      if (++dotsHere >= 3) bits |= MAY_IPV4;
      continue;
    }
    dotsHere = 0;
    switch (c) {
      case 58:
        if (++colons >= 7 || (i > 0 && s.charCodeAt(i - 1) === 58)) bits |= MAY_IPV6;
        break;
      case 64:
        bits |= MAY_EMAIL;
        break;
      case 61: // '=' right after a name (password=..., not "a = b")
        bits |= HAS_EQUALS;
        if (i > 0 && isWord(s.charCodeAt(i - 1))) bits |= MAY_URL_SECRET;
        break;
      case 34:
        quote = true;
        break;
      case 37:
        bits |= HAS_PERCENT;
        break;
      case 43:
        bits |= HAS_PLUS;
        break;
      case 66: // B
      case 98: {
        // b
        const d = s.charCodeAt(i + 1) | 32;
        if ((d === 101 /* e */ && isWordAt(s, i + 1, 'earer')) || (d === 97 /* a */ && isWordAt(s, i + 1, 'asic '))) {
          bits |= MAY_BEARER;
        }
        break;
      }
      case 74: // J, of eyJ (looked for at the rare J rather than at every e)
        if (i >= 2 && s.charCodeAt(i - 1) === 121 && s.charCodeAt(i - 2) === 101) bits |= MAY_BEARER;
        break;
    }
  }
  if (quote && colons > 0) bits |= MAY_URL_SECRET;
  return bits;
}

/** Whether `word` (lowercase) is at `i` in `s`, case-insensitively for ASCII letters. */
function isWordAt(s: string, i: number, word: string): boolean {
  if (i + word.length > s.length) return false;
  for (let k = 0; k < word.length; k++) {
    if ((s.charCodeAt(i + k) | 32) !== (word.charCodeAt(k) | 32)) return false;
  }
  return true;
}

const isDigit = (c: number) => c >= 48 && c <= 57;
/** [A-Za-z0-9_] */
const isWord = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

// ---------------------------------------------------------------------------------------------
// Email: found from each '@' by expanding left over the local part and right over the domain.

const isLocal = (c: number) =>
  isWord(c) || c === 46 /* . */ || c === 45 /* - */ || c === 43 /* + */ || c === 37 /* % */ || c === 39; /* ' */
const isDomain = (c: number) =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46;
const isAlpha = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

export function findEmails(s: string): Found[] {
  const out: Found[] = [];
  let from = 0;
  for (;;) {
    const at = s.indexOf('@', from);
    if (at < 0) break;
    from = at + 1;
    let start = at;
    while (start > 0 && at - start < 64 && isLocal(s.charCodeAt(start - 1))) start--;
    while (start < at && s.charCodeAt(start) === 46) start++; // no leading dot
    if (start === at) continue;
    if (out.length > 0 && start < out[out.length - 1].end) continue;
    let end = at + 1;
    while (end < s.length && end - at <= 253 && isDomain(s.charCodeAt(end))) end++;
    while (end > at + 1 && (s.charCodeAt(end - 1) === 46 || s.charCodeAt(end - 1) === 45)) end--;
    // The domain needs a dot and an alphabetic top-level label of 2+ letters (so pkg@1.2.3 is not an email).
    const lastDot = s.lastIndexOf('.', end - 1);
    if (lastDot <= at + 1 || end - lastDot - 1 < 2) continue;
    let alpha = true;
    for (let i = lastDot + 1; i < end; i++) {
      if (!isAlpha(s.charCodeAt(i))) {
        alpha = false;
        break;
      }
    }
    if (!alpha) continue;
    out.push({ start, end, value: s.slice(start, end) });
    from = end;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Payment card numbers: 13-19 digits, optionally in groups separated by single spaces or dashes,
// with an issuer prefix of a real card network and a valid Luhn checksum.

export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Whether the digits start like a card of a real network with a length that network issues:
 * Visa 4 (13, 16, 19), Mastercard 51-55 and 2221-2720 (16), Mir 2200-2204 (16-19), Amex 34/37 (15),
 * Diners 300-305/36/38/39 (14-19), JCB 3528-3589 (16-19), Discover and UnionPay 60/62/64/65 (16-19),
 * Maestro 50/56-58/63/67 (13-19). This rules out millisecond and nanosecond timestamps (they start with 1).
 */
export function plausibleCard(d: string): boolean {
  const len = d.length;
  if (len < 13 || len > 19) return false;
  const p2 = (d.charCodeAt(0) - 48) * 10 + d.charCodeAt(1) - 48;
  const p4 = p2 * 100 + (d.charCodeAt(2) - 48) * 10 + d.charCodeAt(3) - 48;
  switch (d.charCodeAt(0) - 48) {
    case 2:
      if (p4 >= 2221 && p4 <= 2720) return len === 16;
      return p4 >= 2200 && p4 <= 2204 && len >= 16;
    case 3:
      if (p2 === 34 || p2 === 37) return len === 15;
      if (p2 === 36 || p2 === 38 || p2 === 39 || (p4 >= 3000 && p4 <= 3059)) return len >= 14;
      return p4 >= 3528 && p4 <= 3589 && len >= 16;
    case 4:
      return len === 13 || len === 16 || len === 19;
    case 5:
      if (p2 >= 51 && p2 <= 55) return len === 16;
      return p2 === 50 || (p2 >= 56 && p2 <= 58);
    case 6:
      if (p2 === 63 || p2 === 67) return true;
      return (p2 === 60 || p2 === 62 || p2 === 64 || p2 === 65) && len >= 16;
    default:
      return false;
  }
}

export function isCardNumber(digits: string): boolean {
  return plausibleCard(digits) && luhn(digits);
}

export function findCards(s: string): Found[] {
  const out: Found[] = [];
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) {
      i++;
      continue;
    }
    const before = i > 0 ? s.charCodeAt(i - 1) : 32;
    // Inside a word, a hex id, a decimal fraction or a phone number in E.164 (+...): not a card.
    if (isWord(before) || before === 46 || before === 43) {
      while (i < n && isWord(s.charCodeAt(i))) i++;
      continue;
    }
    const groupEnds: number[] = [];
    const groupLengths: number[] = [];
    let sep = -1;
    let j = i;
    for (;;) {
      const g = j;
      while (j < n && isDigit(s.charCodeAt(j))) j++;
      groupLengths.push(j - g);
      groupEnds.push(j);
      if (groupLengths.length > 8) break;
      const sc = j + 1 < n ? s.charCodeAt(j) : -1;
      if ((sc === 32 || sc === 45) && (sep === -1 || sep === sc) && isDigit(s.charCodeAt(j + 1))) {
        sep = sc;
        j++;
        continue;
      }
      break;
    }
    const start = i;
    const end = j;
    i = end;
    const after = end < n ? s.charCodeAt(end) : 32;
    const glued = isWord(after) || (after === 46 && end + 1 < n && isDigit(s.charCodeAt(end + 1)));
    if (groupLengths.length === 1) {
      if (glued) {
        while (i < n && isWord(s.charCodeAt(i))) i++;
        continue;
      }
      const len = end - start;
      if (len >= 13 && len <= 19) {
        const digits = s.slice(start, end);
        if (isCardNumber(digits)) out.push({ start, end, value: digits });
      }
      continue;
    }
    // Grouped: groups of 3-6 digits (4-4-4-4, 4-6-5, 4-6-4, ...). The card may be followed by more
    // groups (a year, a CVV), so each prefix ending on a group boundary is tried, longest first.
    let take = 0;
    let count = 0;
    for (let k = 0; k < groupLengths.length && groupLengths[k] >= 3 && groupLengths[k] <= 6; k++) {
      count += groupLengths[k];
      if (count > 19) break;
      if (count >= 13) take = k + 1;
    }
    for (; take >= 2; take--) {
      if (take === groupLengths.length && glued) continue;
      const stop = groupEnds[take - 1];
      const digits = stripSeparators(s.slice(start, stop));
      if (digits.length >= 13 && isCardNumber(digits)) {
        out.push({ start, end: stop, value: digits });
        break;
      }
    }
  }
  return out;
}

function stripSeparators(s: string): string {
  let d = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) d += s[i];
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// IP addresses. Loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0, ::) and /8 network (N.0.0.0)
// addresses say nothing about anyone and are left alone.

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`(?<![\\w.])(?:${OCTET}\\.){3}${OCTET}(?!\\w|\\.\\d)`, 'g');
const IPV4_EXACT = new RegExp(`^(?:${OCTET}\\.){3}${OCTET}$`);
// Candidates only; validated by isIPv6. Every repetition is bounded.
const IPV6 = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)/g;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

export function isIPv6(c: string): boolean {
  let s = c;
  let extra = 0;
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!IPV4_EXACT.test(tail)) return false;
    s = s.slice(0, lastColon + 1);
    extra = 2;
    if (s.endsWith('::')) s += '0';
    else s = s.slice(0, -1);
  }
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return false;
  const check = (parts: string[]) => parts.every((p) => HEX_GROUP.test(p));
  if (dbl < 0) {
    const parts = s.split(':');
    return parts.length + extra === 8 && check(parts);
  }
  const left = s.slice(0, dbl);
  const right = s.slice(dbl + 2);
  const lp = left === '' ? [] : left.split(':');
  const rp = right === '' ? [] : right.split(':');
  if (!check(lp) || !check(rp) || lp.length + rp.length + extra > 7) return false;
  // Compressed forms need two groups and a digit, so C++ names (a::b) and prose are not addresses.
  return lp.length + rp.length + extra >= 2 && /\d/.test(c);
}

export function findIPv4(s: string): Found[] {
  const out: Found[] = [];
  IPV4.lastIndex = 0;
  for (let m = IPV4.exec(s); m !== null; m = IPV4.exec(s)) {
    const v = m[0];
    // N.0.0.0 is the base of a /8 network (no one's host), and how Chrome, Edge and Opera write their
    // version in a reduced user agent (Chrome/126.0.0.0): masking it mangled every such user agent.
    if (v.startsWith('127.') || v.endsWith('.0.0.0')) continue;
    out.push({ start: m.index, end: m.index + v.length, value: v });
  }
  return out;
}

export function findIPv6(s: string): Found[] {
  const out: Found[] = [];
  IPV6.lastIndex = 0;
  for (let m = IPV6.exec(s); m !== null; m = IPV6.exec(s)) {
    const v = m[0];
    if (m[0].length === 0) {
      IPV6.lastIndex++;
      continue;
    }
    if (!isIPv6(v)) continue;
    const lower = v.toLowerCase();
    if (lower === '::1' || lower === '::' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(lower)) continue;
    out.push({ start: m.index, end: m.index + v.length, value: v });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bearer and basic credentials, and JWTs anywhere.

const AUTH_SCHEME = /\b(Bearer|Basic)[ \t]+([A-Za-z0-9\-._~+/]+=*)/gi;
const JWT = /(?<![\w-])eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;
const TOKEN_SYMBOL = /[\d\-._~+/=]/;

/** Finds the token of `Bearer <token>` / `Basic <base64 user:pass>` (the scheme is kept) and JWTs. */
export function findBearer(s: string): Found[] {
  const out: Found[] = [];
  AUTH_SCHEME.lastIndex = 0;
  for (let m = AUTH_SCHEME.exec(s); m !== null; m = AUTH_SCHEME.exec(s)) {
    const token = m[2];
    const start = m.index + m[0].length - token.length;
    if (m[1].toLowerCase() === 'basic') {
      // Only a real user:password pair, so "Basic authentication failed" stays readable.
      if (token.length < 8 || !base64Latin1(token).includes(':')) continue;
    } else if (token.length < 16 && !(token.length >= 8 && TOKEN_SYMBOL.test(token))) {
      continue; // "Bearer token expired" is prose, not a credential
    }
    out.push({ start, end: start + token.length, value: token });
  }
  if (s.includes('eyJ')) {
    JWT.lastIndex = 0;
    for (let m = JWT.exec(s); m !== null; m = JWT.exec(s)) {
      const start = m.index;
      const end = start + m[0].length;
      if (out.some((f) => start < f.end && end > f.start)) continue;
      out.push({ start, end, value: m[0] });
    }
    out.sort((a, b) => a.start - b.start);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Secrets in query strings (and `name=value` pairs in free text).

/** Query parameter names whose value is a secret (compared case-insensitively). */
export const URL_SECRET_PARAMS: readonly string[] = [
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'auth_token',
  'api_key',
  'apikey',
  'api-key',
  'key',
  'password',
  'passwd',
  'pwd',
  'secret',
  'client_secret',
  'sig',
  'signature',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
  'x-goog-signature',
  'x-goog-credential',
  'awsaccesskeyid',
  'code',
  'auth',
  'session',
  'sessionid',
  'jsessionid',
];

/** Names too common in prose (`status code=500`) to count outside a query string (after ?, & or ;). */
const QUERY_ONLY = new Set(['key', 'code', 'auth', 'session', 'sig']);
const SECRET_PARAM_SET = new Set(URL_SECRET_PARAMS);

export function isSecretParam(name: string): boolean {
  return SECRET_PARAM_SET.has(name.toLowerCase());
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
const NAME_VALUE = new RegExp(
  `(^|[?&;#\\s,'"(])(${[...URL_SECRET_PARAMS]
    .sort((a, b) => b.length - a.length)
    .map(escapeRe)
    .join('|')})=([^&#\\s"'<>,;)]+)`,
  'gi',
);

// "password": "hunter2" in JSON text (a logged request body): the string value of a secret name.
const JSON_PAIR = new RegExp(
  `"(${[...URL_SECRET_PARAMS]
    .filter((n) => !QUERY_ONLY.has(n))
    .map(escapeRe)
    .join('|')}|authorization|cookie)"[ \\t]*:[ \\t]*"((?:[^"\\\\]|\\\\.){1,4096})"`,
  'gi',
);

/** Finds the values of secret `name=value` pairs, and of `"name": "value"` in JSON text. */
export function findUrlSecrets(s: string): Found[] {
  const out: Found[] = [];
  if (s.includes('"')) {
    JSON_PAIR.lastIndex = 0;
    for (let m = JSON_PAIR.exec(s); m !== null; m = JSON_PAIR.exec(s)) {
      const value = m[2];
      if (value.startsWith('[REDACTED')) continue;
      const end = m.index + m[0].length - 1;
      out.push({ start: end - value.length, end, value });
    }
  }
  NAME_VALUE.lastIndex = 0;
  for (let m = NAME_VALUE.exec(s); m !== null; m = NAME_VALUE.exec(s)) {
    const prefix = m[1];
    const name = m[2].toLowerCase();
    if (QUERY_ONLY.has(name) && prefix !== '?' && prefix !== '&' && prefix !== ';') continue;
    const value = m[3];
    if (value.startsWith('[REDACTED')) continue;
    const end = m.index + m[0].length;
    const start = end - value.length;
    if (out.some((f) => start < f.end && end > f.start)) continue;
    out.push({ start, end, value });
  }
  out.sort((a, b) => a.start - b.start);
  return out;
}

/** Base64 (or base64url) to latin1, leniently like Node's Buffer (which is used where it exists); '' if undecodable. */
function base64Latin1(s: string): string {
  if (typeof Buffer !== 'undefined') return Buffer.from(s, 'base64').toString('latin1');
  try {
    const t = s
      .replace(/-/g, '+')
      .replace(/_/g, '/')
      .replace(/[^A-Za-z0-9+/]/g, '');
    return atob(t + '='.repeat((4 - (t.length % 4)) % 4));
  } catch {
    return '';
  }
}

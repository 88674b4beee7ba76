/**
 * The redactor's fast paths must not change what it finds. The pre-check (`features`) is checked
 * against every detector and against its previous implementation on a large generated corpus of
 * values and near-misses (plus every string literal of the detector and redactor tests); the
 * remembered decisions (key order, clean values per key, clean URLs and queries) are checked by
 * comparing a long-lived redactor, called the way the receiver calls it, with a fresh one per value.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRedactor, type Redactor } from '../src';
import {
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
  MAY_BEARER,
  MAY_CARD,
  MAY_EMAIL,
  MAY_IPV4,
  MAY_IPV6,
  MAY_URL_SECRET,
} from '../src/detectors';

/** mulberry32: a seeded PRNG, so that a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';

/** Values a detector should find, values it should not, and the shapes in between. */
const SEEDS = [
  'alice@example.com',
  'contact: Alice.Smith+news@mail.example.co.uk, thanks',
  'jörg.müller@exämple.de',
  'пользователь@пример.рф',
  'ユーザー@例え.jp and bob@example.org',
  'x@localhost',
  'pkg@1.2.3',
  'user=jo%20e@x.example.com',
  'a@b.io',
  '4111111111111111',
  '4111 1111 1111 1111',
  '4111-1111-1111-1111',
  '4111 1111-1111 1111',
  '4111  1111 1111 1111',
  '5555-5555-5555-4444 exp 12/30',
  'amex 3782 822463 10005.',
  '1763769600123456789',
  '+4915112345670',
  '0.4532015112830366',
  'id_4111111111111111',
  '203.0.113.7',
  '10.1.2.3:8080',
  'Chrome/126.0.0.0 Safari/537.36',
  '127.0.0.1',
  '256.1.1.1',
  '10.0.19041.1',
  '2001:db8:85a3:0:0:8a2e:370:7334',
  '[2001:db8::1]:443',
  'fe80::1ff:fe23:4567:890a',
  '::ffff:192.0.2.128',
  '::1',
  'std::vector<int>',
  'aa:bb:cc:dd:ee:ff',
  '12:30:45',
  'Bearer abcdef1234567890xyz',
  'authorization: bearer 9f8e7d6c5b4a',
  'BEARER a.b-c_d~e+f/g=',
  'Basic YWxhZGRpbjpvcGVuc2VzYW1l',
  'basic\u0000YWxhZGRpbjpvcGVuc2VzYW1l',
  'Basic authentication failed',
  `token ${JWT} sent`,
  'eyJhbGciOiJIUzI1NiJ9 alone',
  'GET /cb?code=abc123&state=x',
  'login failed password=hunter2 user=bob',
  'status code=500',
  '{"user":"bob","password":"hunter2","n":1}',
  'body {"Authorization" : "Basic x", "access_token":"a\\"b"}',
  'https://shop.example.com/api/users/123456/orders?locale=en-GB',
  'https://user:pass@shop.example.com/login?next=/home',
  'https://x.example/reset?token=abc&page=2#frag',
  'https://x.example/cb#access_token=abc&state=1',
  'https://x.example/account/alice%40example.com/orders',
  'https://x.example/pay?card=4111+1111+1111+1111',
  'https://x.example/hosts/203.0.113.7/status?x=1',
  'https://[2001:db8::1]:8443/p?q=1',
  'https://s3/x?X-Amz-Signature=deadbeef&X-Amz-Date=1',
  '/api/users/:id/orders',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'UpstreamTimeoutError: upstream did not answer within 2000 ms\n    at fetchInventory (/app/dist/inventory.js:88:13)',
  'SELECT id FROM orders WHERE customer_id = $1',
  'tenant-42',
  'sku:12345',
  '550e8400-e29b-41d4-a716-446655440000',
  '4bf92f3577b34da6a3ce929d0e0e4736',
];

/** Characters the detectors care about, weighted towards them. */
const ALPHABET = [
  ...'0123456789'.repeat(3),
  ...'..::@@--  ==""%%++//??&&##;,',
  ...'eyJBbasicrEARIC_~',
  ...'abcdefxyzABCDEF',
  'ö',
  'é',
  'д',
  '例',
  '\u0000',
  '\t',
  '\n',
];

function mutate(s: string, rand: () => number): string {
  const chars = [...s];
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (chars.length + 1));
    const c = ALPHABET[Math.floor(rand() * ALPHABET.length)];
    const op = rand();
    if (op < 0.4) chars.splice(at, 0, c);
    else if (op < 0.7) chars.splice(at, 1);
    else chars[Math.min(at, chars.length - 1)] = c;
  }
  return chars.join('');
}

function randomString(rand: () => number): string {
  const n = Math.floor(rand() * 40);
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rand() * ALPHABET.length)];
  return s;
}

/** Every string literal of the existing detector and redactor tests (their vectors). */
function testVectors(): string[] {
  const out: string[] = [];
  for (const file of ['detectors.test.ts', 'redactor.test.ts']) {
    const text = readFileSync(join(__dirname, file), 'utf8');
    for (const m of text.matchAll(/'((?:[^'\\\n]|\\.)*)'/g)) {
      try {
        out.push(JSON.parse(`"${m[1].replace(/\\'/g, "'").replace(/"/g, '\\"')}"`));
      } catch {
        out.push(m[1]);
      }
    }
  }
  return out;
}

function corpus(): string[] {
  const rand = prng(20261205);
  const out = [...SEEDS, ...testVectors()];
  for (const seed of [...SEEDS]) {
    for (let k = 0; k < 150; k++) out.push(mutate(seed, rand));
    // A seed inside text, and two seeds glued together.
    out.push(`see ${seed} here`, `${seed}${SEEDS[Math.floor(rand() * SEEDS.length)]}`);
  }
  for (let k = 0; k < 20_000; k++) out.push(randomString(rand));
  return out;
}

const CORPUS = corpus();

/** The pre-check as it was before the character table (kept here as the reference). */
function previousFeatures(s: string): number {
  const isWord = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
  const isWordAt = (i: number, word: string) => {
    if (i + word.length > s.length) return false;
    for (let k = 0; k < word.length; k++) if ((s.charCodeAt(i + k) | 32) !== (word.charCodeAt(k) | 32)) return false;
    return true;
  };
  let bits = 0;
  let run = 0;
  let sep = false;
  let dotsHere = 0;
  let colons = 0;
  let quote = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++run >= 13) bits |= MAY_CARD;
      sep = false;
      continue;
    }
    if (c >= 102 && c <= 122) {
      run = 0;
      sep = false;
      dotsHere = 0;
      continue;
    }
    if (c === 32 || c === 45) {
      if (sep) run = 0;
      sep = true;
      dotsHere = 0;
      continue;
    }
    run = 0;
    sep = false;
    if (c === 46) {
      if (++dotsHere >= 3) bits |= MAY_IPV4;
      continue;
    }
    dotsHere = 0;
    if (c === 58 && (++colons >= 7 || (i > 0 && s.charCodeAt(i - 1) === 58))) bits |= MAY_IPV6;
    if (c === 64) bits |= MAY_EMAIL;
    if (c === 61 && i > 0 && isWord(s.charCodeAt(i - 1))) bits |= MAY_URL_SECRET;
    if (c === 34) quote = true;
    if (c === 37) bits |= HAS_PERCENT;
    if (c === 66 || c === 98) {
      const d = s.charCodeAt(i + 1) | 32;
      if ((d === 101 && isWordAt(i + 1, 'earer')) || (d === 97 && isWordAt(i + 1, 'asic '))) bits |= MAY_BEARER;
    }
    if (c === 101 && s.charCodeAt(i + 1) === 121 && s.charCodeAt(i + 2) === 74) bits |= MAY_BEARER;
  }
  if (quote && colons > 0) bits |= MAY_URL_SECRET;
  return bits;
}

describe('the pre-check (features)', () => {
  test(`never rules out a detector that finds something (${CORPUS.length} strings)`, () => {
    const missed: string[] = [];
    const finders: [number, (s: string) => unknown[], string][] = [
      [MAY_EMAIL, findEmails, 'email'],
      [MAY_CARD, findCards, 'card'],
      [MAY_IPV4, findIPv4, 'ipv4'],
      [MAY_IPV6, findIPv6, 'ipv6'],
      [MAY_BEARER, findBearer, 'bearer'],
      [MAY_URL_SECRET, findUrlSecrets, 'url_secret'],
    ];
    const found = new Map<string, number>();
    for (const s of CORPUS) {
      const bits = features(s);
      for (const [bit, find, name] of finders) {
        const n = find(s).length;
        if (n > 0) found.set(name, (found.get(name) ?? 0) + 1);
        if (n > 0 && (bits & bit) === 0) missed.push(`${name}: ${JSON.stringify(s)}`);
      }
    }
    expect(missed).toEqual([]);
    // The corpus does hold things for every detector to find.
    expect(Math.min(...finders.map(([, , name]) => found.get(name) ?? 0))).toBeGreaterThan(50);
  });

  test('gives the same bits as before the character table, and reports +, = and % exactly', () => {
    const different: string[] = [];
    for (const s of CORPUS) {
      const bits = features(s);
      if ((bits & ~(HAS_PLUS | HAS_EQUALS)) !== previousFeatures(s)) different.push(JSON.stringify(s));
      if (((bits & HAS_PLUS) !== 0) !== s.includes('+')) different.push(`+ ${JSON.stringify(s)}`);
      if (((bits & HAS_EQUALS) !== 0) !== s.includes('=')) different.push(`= ${JSON.stringify(s)}`);
      if (((bits & HAS_PERCENT) !== 0) !== s.includes('%')) different.push(`% ${JSON.stringify(s)}`);
      if (((bits & MAY_EMAIL) !== 0) !== s.includes('@')) different.push(`@ ${JSON.stringify(s)}`);
    }
    expect(different).toEqual([]);
  });
});

/** Free text through every detector, none skipped, in the redactor's order. */
function everyDetector(s: string): string {
  if (s.length < 6) return s; // the redactor's rule: shorter than the shortest email
  const steps: [(s: string) => { start: number; end: number }[], string][] = [
    [findUrlSecrets, 'url_secret'],
    [findBearer, 'bearer'],
    [findCards, 'card'],
    [findIPv6, 'ip'],
    [findIPv4, 'ip'],
    [findEmails, 'email'],
  ];
  for (const [find, reason] of steps) {
    let out = '';
    let last = 0;
    for (const f of find(s)) {
      out += `${s.slice(last, f.start)}[REDACTED:${reason}]`;
      last = f.end;
    }
    s = out + s.slice(last);
  }
  return s;
}

/** A new string with the same characters (as the receiver's decoder makes for a value it did not keep). */
const copy = (s: string) => [...s].join('');

const TEXT_KEYS = ['http.route', 'app.note', 'user_agent.original', 'exception.message'];
const URL_KEYS_USED = ['url.full', 'http.url', 'http.target', 'url.query', 'url.fragment'];

describe('the remembered decisions', () => {
  test('text: a long-lived redactor, called as the receiver calls it, gives what every detector gives', () => {
    const r = createRedactor();
    const rand = prng(7);
    const wrong: string[] = [];
    // Twice over, the second time with many values again as the same string and as copies.
    for (let pass = 0; pass < 2; pass++) {
      for (const s of CORPUS) {
        const key = TEXT_KEYS[Math.floor(rand() * TEXT_KEYS.length)];
        const value = rand() < 0.5 ? s : copy(s);
        expect(r.keyAction(key)).toBe('keep');
        const got = r.redactString(value, key);
        if (got !== everyDetector(s)) wrong.push(`${key} ${JSON.stringify(s)}: ${JSON.stringify(got)}`);
        if (got === s && got !== value) wrong.push(`not the same string: ${JSON.stringify(s)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('URLs, queries and fragments: a long-lived redactor gives what a new one gives', () => {
    const r = createRedactor();
    const rand = prng(11);
    const urls = CORPUS.filter((s) => /[/?=#]/.test(s));
    const wrong: string[] = [];
    for (let pass = 0; pass < 3; pass++) {
      for (const s of urls) {
        const key = URL_KEYS_USED[Math.floor(rand() * URL_KEYS_USED.length)];
        // The receiver asks about the key first; the SDK may not.
        if (rand() < 0.7) r.keyAction(key);
        const got = r.redactString(rand() < 0.5 ? s : copy(s), key);
        const expected = createRedactor().redactString(s, key);
        if (got !== expected)
          wrong.push(`${key} ${JSON.stringify(s)}: ${JSON.stringify(got)} != ${JSON.stringify(expected)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('URL parameters: generated URLs get exactly their secret parameters masked, memo paused or not', () => {
    // 30,000 URLs with ids in their paths (so the clean-URL memo pauses), then the first 3,000 again
    // (found in the memo once it remembers again). No value can hold what a detector finds, so only
    // secret names matter; the expected URL is made parameter by parameter, as the redactor's
    // rewrite does it.
    const SECRET = ['token', 'access_token', 'Token', 'api_key', 'password', 'p%61ssword', 'client_secret'];
    const PLAIN = ['locale', 'page', 'q', 'sort', 'utm_source', 'tok', 'lang', 'a%20b'];
    const rand = prng(23);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const word = () => pick(['alpha', 'beta', 'gamma', 'x', 'en-GB', 'v2', 'abc123', '[REDACTED:url_secret]']);
    const pair = (): { text: string; masked: string } => {
      if (rand() < 0.1) return { text: word(), masked: '' };
      const secret = rand() < 0.3;
      const name = secret ? pick(SECRET) : pick(PLAIN);
      const value = rand() < 0.1 ? '' : word();
      const text = `${name}=${value}`;
      const masked = secret && value !== '' && !value.startsWith('[REDACTED') ? `${name}=[REDACTED:url_secret]` : '';
      return { text, masked };
    };
    const pairs = (n: number) => {
      const made = Array.from({ length: n }, pair);
      return { text: made.map((p) => p.text).join('&'), masked: made.map((p) => p.masked || p.text).join('&') };
    };
    const cases = Array.from({ length: 30_000 }, (_, i) => {
      let url = `https://shop.example.com/api/orders/${100000 + i}/items`;
      let expected = url;
      if (rand() < 0.8) {
        const q = pairs(1 + Math.floor(rand() * 4));
        url += `?${q.text}`;
        expected += `?${q.masked}`;
      }
      if (rand() < 0.3) {
        const f =
          rand() < 0.5 ? pairs(1 + Math.floor(rand() * 2)) : { text: 'section?token=x', masked: 'section?token=x' };
        url += `#${f.text}`;
        expected += `#${f.masked}`;
      }
      return { url, expected };
    });
    const r = createRedactor();
    const wrong: string[] = [];
    for (const c of [...cases, ...cases.slice(0, 3000), ...cases.slice(0, 3000)]) {
      const got = r.redactUrl(copy(c.url));
      if (got !== c.expected) wrong.push(`${c.url}: ${got} != ${c.expected}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  test('key decisions do not depend on the order keys are asked for in', () => {
    const config = {
      block_keys: ['internal.*'],
      pseudonymize_keys: ['enduser.id'],
      allow_keys: ['internal.ok'],
      hmac_key: 'test-key-a-0123456789abcdef',
    };
    const keys = [
      'http.route',
      'url.full',
      'enduser.id',
      'internal.secret_sauce',
      'internal.ok',
      'db.password',
      'gen_ai.usage.input_tokens',
      'http.request.header.authorization',
      'Cookie',
      'app.tenant_id',
    ];
    for (const mode of ['block', 'allow'] as const) {
      const r = createRedactor({ ...config, mode });
      const rand = prng(mode === 'block' ? 1 : 2);
      const expected = new Map(keys.map((k) => [k, createRedactor({ ...config, mode }).keyAction(k)]));
      // Runs of the same order (as attribute sets repeat), broken by random keys.
      for (let i = 0; i < 5_000; i++) {
        const key = rand() < 0.8 ? keys[i % keys.length] : keys[Math.floor(rand() * keys.length)];
        expect(r.keyAction(rand() < 0.5 ? key : copy(key))).toBe(expected.get(key));
      }
    }
  });

  test('a value remembered clean for one key is still redacted under a URL key, and the other way round', () => {
    const r = createRedactor();
    // In text, code= counts only in a query (after ?, & or ;): "status code=500" is prose.
    const query = 'code=abc123&page=2';
    r.keyAction('app.note');
    expect(r.redactString(query, 'app.note')).toBe(query);
    r.keyAction('url.query');
    expect(r.redactString(query, 'url.query')).toBe('code=[REDACTED:url_secret]&page=2');
    r.keyAction('app.note');
    expect(r.redactString(query, 'app.note')).toBe(query);
    // redactString without keyAction first, with the last key asked about being another one.
    expect(r.redactString(query, 'url.query')).toBe('code=[REDACTED:url_secret]&page=2');
  });

  test('pseudonymize mode: remembered clean values do not skip a value that needs a pseudonym', () => {
    const r: Redactor = createRedactor({ action: 'pseudonymize', hmac_key: 'test-key-a-0123456789abcdef' });
    const fresh = createRedactor({ action: 'pseudonymize', hmac_key: 'test-key-a-0123456789abcdef' });
    for (let pass = 0; pass < 3; pass++) {
      for (const s of SEEDS) {
        r.keyAction('app.note');
        expect(r.redactString(copy(s), 'app.note')).toBe(fresh.redactString(s));
      }
    }
  });
});

import { inspect } from 'node:util';
import { createRedactor, PSEUDONYM_LENGTH, parseRedactionConfig, pseudonymKey, RedactionConfigError } from '../src';

const KEY_A = 'test-key-a-0123456789abcdef';
const KEY_B = 'test-key-b-0123456789abcdef';

describe('parseRedactionConfig', () => {
  test('accepts a full configuration and returns a copy', () => {
    const input = {
      mode: 'allow',
      allow_keys: ['http.*'],
      block_keys: ['ssn'],
      detectors: ['email', 'card'],
      action: 'pseudonymize',
      hmac_key: KEY_A,
      pseudonymize_keys: ['enduser.id'],
    };
    const parsed = parseRedactionConfig(input);
    expect(parsed).toEqual(input);
    expect(parsed).not.toBe(input);
  });

  test('accepts comma-separated lists (environment variables)', () => {
    expect(parseRedactionConfig({ detectors: 'email, ip', allow_keys: 'a,b' })).toEqual({
      detectors: ['email', 'ip'],
      allow_keys: ['a', 'b'],
    });
  });

  test('an empty or missing configuration is the defaults', () => {
    expect(parseRedactionConfig(undefined)).toEqual({});
    expect(parseRedactionConfig({})).toEqual({});
  });

  test.each([
    [{ mode: 'deny' }, 'redaction.mode'],
    [{ action: 'hash' }, 'redaction.action'],
    [{ detectors: ['email', 'ssn'] }, 'redaction.detectors[1]'],
    [{ allow_keys: 'x', block_keys: [1] }, 'redaction.block_keys[0]'],
    [{ allow_key: ['x'] }, 'unknown key "allow_key"'],
    [{ action: 'pseudonymize' }, 'redaction.hmac_key: required'],
    [{ pseudonymize_keys: ['enduser.id'] }, 'redaction.hmac_key: required'],
    [{ hmac_key: 'short' }, 'redaction.hmac_key: too short'],
    [{ hmac_key: 42 }, 'redaction.hmac_key: expected a string'],
    ['block', 'redaction: expected an object'],
  ])('rejects %j naming the key', (input, message) => {
    expect(() => parseRedactionConfig(input)).toThrow(RedactionConfigError);
    expect(() => parseRedactionConfig(input)).toThrow(message);
  });

  test('errors never contain the HMAC key', () => {
    const secret = 'super-secret-hmac-key-value-1234';
    for (const bad of [
      { hmac_key: secret, mode: 'nope' },
      { hmac_key: secret, detectors: ['x'] },
      { hmac_key: secret, unknown: 1 },
      { hmac_key: secret.slice(0, 8) },
    ]) {
      let message = '';
      try {
        createRedactor(bad as never);
      } catch (err) {
        message = `${(err as Error).message} ${(err as Error).stack} ${inspect(err)}`;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(secret.slice(0, 8));
    }
  });
});

describe('key rules', () => {
  test('block mode: default block list, case-insensitive, with patterns', () => {
    const r = createRedactor();
    for (const k of [
      'password',
      'db.password',
      'user_password',
      'Authorization',
      'http.request.header.authorization',
      'http.request.header.cookie',
      'http.response.header.set-cookie',
      'api_key',
      'x.apikey',
      'client_secret',
      'access_token',
      'auth.token',
      'x-csrf-token',
      'cookie',
    ]) {
      expect([k, r.keyAction(k)]).toEqual([k, 'drop']);
    }
    for (const k of [
      'http.request.method',
      'gen_ai.usage.input_tokens',
      'tokenizer',
      'url.full',
      'enduser.id',
      'cookies_enabled',
      'user_agent.original',
    ]) {
      expect([k, r.keyAction(k)]).toEqual([k, 'keep']);
    }
  });

  test('block mode: extra block_keys are added to the defaults', () => {
    const r = createRedactor({ block_keys: ['ssn', 'app.user.*'] });
    expect(r.keyAction('ssn')).toBe('drop');
    expect(r.keyAction('app.user.name')).toBe('drop');
    expect(r.keyAction('password')).toBe('drop');
    expect(r.keyAction('app.order.id')).toBe('keep');
  });

  test('allow mode: only allowed keys pass; a pattern does not reopen a blocked key, an exact name does', () => {
    const r = createRedactor({ mode: 'allow', allow_keys: ['http.*', 'service.name', 'http.request.header.cookie'] });
    expect(r.keyAction('http.request.method')).toBe('keep');
    expect(r.keyAction('HTTP.ROUTE')).toBe('keep');
    expect(r.keyAction('service.name')).toBe('keep');
    expect(r.keyAction('service.namespace')).toBe('drop');
    expect(r.keyAction('enduser.id')).toBe('drop');
    expect(r.keyAction('http.request.header.authorization')).toBe('drop'); // blocked by default, only matched by http.*
    expect(r.keyAction('http.request.header.cookie')).toBe('keep'); // allowed by its exact name
  });

  test('pseudonymize_keys wins over the other lists', () => {
    const r = createRedactor({ mode: 'allow', allow_keys: [], hmac_key: KEY_A, pseudonymize_keys: ['enduser.*'] });
    expect(r.keyAction('enduser.id')).toBe('pseudonymize');
    expect(r.keyAction('other')).toBe('drop');
  });

  test('keyAction is memoised (same answer, and the memo survives many keys)', () => {
    const r = createRedactor({ block_keys: ['k5'] });
    for (let i = 0; i < 20_000; i++) r.keyAction(`k${i}`);
    expect(r.keyAction('k5')).toBe('drop');
    expect(r.keyAction('k6')).toBe('keep');
  });
});

describe('redactUrl', () => {
  const r = createRedactor();
  test.each([
    ['https://shop.example.com/products/42?page=2', 'https://shop.example.com/products/42?page=2'],
    [
      'https://api.example.com/v1/reset?token=abc123&lang=en',
      'https://api.example.com/v1/reset?token=[REDACTED:url_secret]&lang=en',
    ],
    [
      'https://api.example.com/oauth/cb?code=xyz&state=s1&access_token=t&API_KEY=k',
      'https://api.example.com/oauth/cb?code=[REDACTED:url_secret]&state=s1&access_token=[REDACTED:url_secret]&API_KEY=[REDACTED:url_secret]',
    ],
    [
      'https://bucket.s3.amazonaws.com/f?X-Amz-Credential=AKIA&X-Amz-Signature=ab12',
      'https://bucket.s3.amazonaws.com/f?X-Amz-Credential=[REDACTED:url_secret]&X-Amz-Signature=[REDACTED:url_secret]',
    ],
    ['/users/alice@example.com/orders', '/users/[REDACTED:email]/orders'],
    ['/users/alice%40example.com/orders', '/users/[REDACTED:email]/orders'],
    ['/search?q=alice%40example.com&n=10', '/search?q=[REDACTED:email]&n=10'],
    ['/search?q=mail%20alice%40example.com', '/search?q=mail%20[REDACTED:email]'],
    ['/pay/4111111111111111/confirm', '/pay/[REDACTED:card]/confirm'],
    // Form encoding: `+` is a space in a query value.
    ['/pay?card=4111+1111+1111+1111&n=2', '/pay?card=[REDACTED:card]&n=2'],
    ['/search?q=mail+alice%40example.com', '/search?q=mail%20[REDACTED:email]'],
    ['/search?q=c%2B%2B+templates', '/search?q=c%2B%2B+templates'],
    ['https://user:pa55@db.example.com:5432/app', 'https://REDACTED:REDACTED@db.example.com:5432/app'],
    [
      'https://cb.example.com/#access_token=abc&token_type=bearer',
      'https://cb.example.com/#access_token=[REDACTED:url_secret]&token_type=bearer',
    ],
    ['/login?user_password=x', '/login?user_password=[REDACTED:url_secret]'],
    ['/api?broken=%E0%A4%A', '/api?broken=%E0%A4%A'],
    ['http://203.0.113.9:8080/health', 'http://[REDACTED:ip]:8080/health'],
    ['http://127.0.0.1:4318/v1/traces', 'http://127.0.0.1:4318/v1/traces'],
    ['/users/42/orders/7', '/users/42/orders/7'],
    ['', ''],
  ])('%j', (input, expected) => {
    expect(r.redactUrl(input)).toBe(expected);
  });

  test('returns the same instance when nothing matched', () => {
    const u = `https://example.com/a/b?c=${'d'.repeat(5)}`;
    expect(r.redactUrl(u)).toBe(u);
  });

  test('url_secret off leaves query secrets', () => {
    const noSecrets = createRedactor({ detectors: ['email'] });
    expect(noSecrets.redactUrl('/x?token=abc&m=a@b.io')).toBe('/x?token=abc&m=[REDACTED:email]');
  });
});

describe('pseudonyms', () => {
  test('stable for one key, different across keys, of the documented length', () => {
    const a1 = createRedactor({ hmac_key: KEY_A });
    const a2 = createRedactor({ hmac_key: KEY_A });
    const b = createRedactor({ hmac_key: KEY_B });
    const p = a1.pseudonym('user-42');
    expect(p).toMatch(new RegExp(`^[0-9a-f]{${PSEUDONYM_LENGTH}}$`));
    expect(a1.pseudonym('user-42')).toBe(p);
    expect(a2.pseudonym('user-42')).toBe(p);
    expect(b.pseudonym('user-42')).not.toBe(p);
    expect(a1.pseudonym('user-43')).not.toBe(p);
  });

  test('it is HMAC-SHA256, hex, truncated', () => {
    const { createHmac } = require('node:crypto') as typeof import('node:crypto');
    const expected = createHmac('sha256', KEY_A).update('user-42').digest('hex').slice(0, PSEUDONYM_LENGTH);
    expect(createRedactor({ hmac_key: KEY_A }).pseudonym('user-42')).toBe(expected);
  });

  test('without a key, pseudonym() throws a helpful error', () => {
    expect(() => createRedactor().pseudonym('x')).toThrow('needs an hmac_key');
  });

  test('action pseudonymize replaces emails, cards and IPs by pseudonyms, and still masks secrets', () => {
    const r = createRedactor({ hmac_key: KEY_A, action: 'pseudonymize' });
    const out = r.redactString('alice@example.com 4111 1111 1111 1111 203.0.113.9 Bearer abcdefgh12345678');
    const pEmail = r.pseudonym('alice@example.com');
    const pCard = r.pseudonym('4111111111111111');
    const pIp = r.pseudonym('203.0.113.9');
    expect(out).toBe(`[email:${pEmail}] [card:${pCard}] [ip:${pIp}] Bearer [REDACTED:bearer]`);
  });

  test('pseudonymKey', () => {
    expect(pseudonymKey('enduser.id')).toBe('enduser.pseudo.id');
    expect(pseudonymKey('id')).toBe('pseudo.id');
    expect(pseudonymKey('user.email')).toBe('user.email.pseudo');
    expect(pseudonymKey('enduser.pseudo.id')).toBe('enduser.pseudo.id');
  });

  test('the key never shows in JSON.stringify, util.inspect or the keys of the redactor', () => {
    const secret = 'never-show-this-hmac-key-123456';
    const r = createRedactor({ hmac_key: secret, pseudonymize_keys: ['enduser.id'], action: 'pseudonymize' });
    r.redactAttributes({ 'enduser.id': 'u1', note: 'alice@example.com' });
    const views = [JSON.stringify(r), inspect(r, { showHidden: true, depth: 10 }), Object.keys(r).join(',')];
    for (const v of views) expect(v).not.toContain('never-show');
    expect(JSON.parse(JSON.stringify(r))).toEqual({ stats: r.stats });
  });
});

describe('clean-string memo', () => {
  test('remembers clean values only, short ones too: a value holding something is masked on every call', () => {
    const r = createRedactor();
    for (let i = 0; i < 3; i++) {
      expect(r.redactString('shop.example.com')).toBe('shop.example.com');
      expect(r.redactString('a@b.io')).toBe('[REDACTED:email]');
      expect(r.redactString('shop@example.com')).toBe('[REDACTED:email]');
      expect(r.redactString('10.1.2.3')).toBe('[REDACTED:ip]');
      expect(r.redactUrl('/u/a@b.io')).toBe('/u/[REDACTED:email]');
      expect(r.redactUrl('/healthz')).toBe('/healthz');
    }
    expect(r.stats.email).toBe(9);
    expect(r.stats.ip).toBe(3);
  });
  test('a query remembered clean in one URL is still checked in a URL whose path holds personal data', () => {
    const r = createRedactor();
    for (let i = 0; i < 3; i++) {
      expect(r.redactUrl(`https://shop.example.com/items/${i}?locale=en-GB`)).toBe(
        `https://shop.example.com/items/${i}?locale=en-GB`,
      );
      expect(r.redactUrl('https://shop.example.com/u/jane@example.com?locale=en-GB')).toBe(
        'https://shop.example.com/u/[REDACTED:email]?locale=en-GB',
      );
      expect(r.redactUrl(`https://shop.example.com/items/${i}?locale=en-GB&token=s3cr3t`)).toBe(
        `https://shop.example.com/items/${i}?locale=en-GB&token=[REDACTED:url_secret]`,
      );
      expect(r.redactUrl('https://shop.example.com/items/1?q=jane@example.com')).toBe(
        'https://shop.example.com/items/1?q=[REDACTED:email]',
      );
    }
  });
});

describe('redactAttributes', () => {
  test('returns the same object when nothing changes', () => {
    const r = createRedactor({ hmac_key: KEY_A, pseudonymize_keys: ['enduser.id'] });
    const attrs = {
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'url.full': 'https://example.com/a?b=c',
      flags: [true, false],
      ids: ['a', 'b'],
      big: 1763769600000,
    };
    const result = r.redactAttributes(attrs);
    expect(result.attributes).toBe(attrs);
    expect(result.redacted).toBe(0);
  });

  test('drops, pseudonymizes and masks, without touching the input', () => {
    const r = createRedactor({ hmac_key: KEY_A, pseudonymize_keys: ['enduser.id'] });
    const tags = ['ok', 'mail bob@example.org'];
    const attrs = {
      'http.request.method': 'POST',
      'enduser.id': 'user-42',
      'http.request.header.authorization': ['Bearer abc'],
      'url.full': 'https://shop.example.com/checkout?card=4111111111111111&session=s1',
      'payment.card': 4111111111111111,
      tags,
      'app.note': 'nothing here',
    };
    const before = JSON.stringify(attrs);
    const { attributes, redacted } = r.redactAttributes(attrs);
    expect(JSON.stringify(attrs)).toBe(before);
    expect(attributes).toEqual({
      'http.request.method': 'POST',
      'enduser.pseudo.id': r.pseudonym('user-42'),
      'url.full': 'https://shop.example.com/checkout?card=[REDACTED:card]&session=[REDACTED:url_secret]',
      'payment.card': '[REDACTED:card]',
      tags: ['ok', 'mail [REDACTED:email]'],
      'app.note': 'nothing here',
    });
    expect(redacted).toBe(5);
    expect(tags[1]).toBe('mail bob@example.org');
    expect(r.stats).toMatchObject({ key_dropped: 1, pseudonymized: 1, card: 2, url_secret: 1, email: 1 });
  });

  test('allow mode keeps only the allowed keys', () => {
    const r = createRedactor({ mode: 'allow', allow_keys: ['http.*'] });
    const { attributes, redacted } = r.redactAttributes({
      'http.route': '/users/:id',
      'user.name': 'Alice',
      'db.statement': 'select 1',
    });
    expect(attributes).toEqual({ 'http.route': '/users/:id' });
    expect(redacted).toBe(2);
  });

  test('numbers that are not card numbers stay numbers', () => {
    const r = createRedactor();
    const attrs = { n: 4111111111111112, ts: 1763769600000, f: 0.5, neg: -4111111111111111 };
    expect(r.redactAttributes(attrs).attributes).toBe(attrs);
  });
});

describe('redactValue (log bodies and other nested values)', () => {
  test('walks maps and arrays; nested keys follow the block list; copies only what changed', () => {
    const r = createRedactor({ hmac_key: KEY_A, pseudonymize_keys: ['enduser.id'] });
    const lines = ['sku-1', 'sku-2'];
    const body = {
      order: { id: 'o-1', total: 99.5, lines },
      customer: { email: 'alice@example.com', password: 'hunter2', 'enduser.id': 'u-1' },
      note: 'ship to 203.0.113.7',
      bytes: new Uint8Array([1, 2]),
    };
    const out = r.redactValue(body) as typeof body;
    expect(out).not.toBe(body);
    expect(out.order).toBe(body.order); // unchanged branch shared
    expect(out.customer).toEqual({ email: '[REDACTED:email]', 'enduser.pseudo.id': r.pseudonym('u-1') });
    expect(out.note).toBe('ship to [REDACTED:ip]');
    expect(out.bytes).toBe(body.bytes);
    expect(body.customer.password).toBe('hunter2'); // input untouched
  });

  test('allow mode does not empty nested maps, but still drops blocked nested keys', () => {
    const r = createRedactor({ mode: 'allow', allow_keys: ['http.*'] });
    expect(r.redactValue({ plan: 'pro', secret: 'x' })).toEqual({ plan: 'pro' });
  });

  test('the same value when nothing changed, and a bound on depth', () => {
    const r = createRedactor();
    const clean = { a: [1, 'b', { c: true }], d: null };
    expect(r.redactValue(clean)).toBe(clean);
    expect(r.redactValue('plain')).toBe('plain');
    let deep: unknown = 'alice@example.com';
    for (let i = 0; i < 40; i++) deep = { x: deep };
    expect(JSON.stringify(r.redactValue(deep))).not.toContain('alice');
  });
});

import { createRedactor } from '../src';
import { isIPv6, luhn, plausibleCard } from '../src/detectors';

// One redactor per detector, so each table tests that detector alone.
const only = (d: 'email' | 'card' | 'ip' | 'bearer' | 'url_secret') => createRedactor({ detectors: [d] });

describe('email detector', () => {
  const r = only('email');
  test.each([
    ['alice@example.com', '[REDACTED:email]'],
    ['contact: Alice.Smith+news@mail.example.co.uk, thanks', 'contact: [REDACTED:email], thanks'],
    ['<bob_o-neil@sub.domain.io>', '<[REDACTED:email]>'],
    ['two a@b.io and c.d@e.org.', 'two [REDACTED:email] and [REDACTED:email].'],
    ['user=jo%20e@x.example.com', 'user=[REDACTED:email]'],
  ])('finds %j', (input, expected) => {
    expect(r.redactString(input)).toBe(expected);
  });

  test.each([
    'pkg@1.2.3',
    '@sonde/redact@0.1.0',
    'npm install left-pad@latest',
    'twitter handle @alice',
    'a@b',
    'x@localhost',
    'user@10.0.0.1',
    'price @ 3.50',
    'no at sign here at all',
  ])('leaves %j alone', (input) => {
    expect(r.redactString(input)).toBe(input);
  });
});

describe('card detector', () => {
  const r = only('card');
  test.each([
    ['4111111111111111', '[REDACTED:card]'], // Visa test number
    ['card 4111 1111 1111 1111 exp 12/30', 'card [REDACTED:card] exp 12/30'],
    ['5555-5555-5555-4444', '[REDACTED:card]'], // Mastercard
    ['2223000048400011', '[REDACTED:card]'], // Mastercard 2-series
    ['amex 3782 822463 10005.', 'amex [REDACTED:card].'], // Amex 4-6-5
    ['6011111111111117', '[REDACTED:card]'], // Discover
    ['3530111333300000', '[REDACTED:card]'], // JCB
    ['30569309025904', '[REDACTED:card]'], // Diners 14
    ['4222222222222', '[REDACTED:card]'], // Visa 13
    ['pan=4111111111111111;', 'pan=[REDACTED:card];'],
    ['4111 1111 1111 1111 2030', '[REDACTED:card] 2030'], // followed by a year group
  ])('finds %j', (input, expected) => {
    expect(r.redactString(input)).toBe(expected);
  });

  test.each([
    ['4111111111111112', 'Luhn fails'],
    ['4111 1111 1111 1112', 'Luhn fails, grouped'],
    ['1700000000000', 'millisecond timestamp'],
    ['1763769600000', 'millisecond timestamp'],
    ['1763769600123456789', 'nanosecond timestamp'],
    ['2026-11-22T01:54:45.123456789Z', 'ISO timestamp'],
    ['4bf92f3577b34da6a3ce929d0e0e4736', 'trace id'],
    ['00f067aa0ba902b7', 'span id'],
    ['550e8400-e29b-41d4-a716-446655440000', 'UUID'],
    ['12345678-1234-1234-1234-123456789012', 'all-digit UUID'],
    ['+4915112345670', 'E.164 phone number'],
    ['+1 415 555 2671', 'phone number'],
    ['0049 151 1234 5678', 'phone number with 00'],
    ['0.4532015112830366', 'random fraction'],
    ['45320151128303661234', '20 digits'],
    ['order 4111111111111111x', 'glued to a letter'],
    ['id_4111111111111111', 'part of an identifier'],
    ['v4111111111111111', 'part of a word'],
    ['9999999999999995', 'Luhn passes but no card network'],
    ['1.2.3', 'version'],
  ])('leaves %j alone (%s)', (input) => {
    expect(r.redactString(input)).toBe(input);
  });

  test('Luhn and issuer checks', () => {
    expect(luhn('79927398713')).toBe(true);
    expect(luhn('79927398710')).toBe(false);
    expect(plausibleCard('4111111111111111')).toBe(true);
    expect(plausibleCard('411111111111111')).toBe(false); // Visa has no 15-digit cards
    expect(plausibleCard('378282246310005')).toBe(true);
    expect(plausibleCard('1234567812345670')).toBe(false);
  });
});

describe('ip detector', () => {
  const r = only('ip');
  test.each([
    ['client 203.0.113.7 connected', 'client [REDACTED:ip] connected'],
    ['10.1.2.3:8080', '[REDACTED:ip]:8080'],
    ['from 192.168.0.1.', 'from [REDACTED:ip].'],
    ['x-forwarded-for: 198.51.100.1, 10.0.0.2', 'x-forwarded-for: [REDACTED:ip], [REDACTED:ip]'],
    ['2001:db8:85a3:0:0:8a2e:370:7334', '[REDACTED:ip]'],
    ['[2001:db8::1]:443', '[[REDACTED:ip]]:443'],
    ['fe80::1ff:fe23:4567:890a', '[REDACTED:ip]'],
    ['::ffff:192.0.2.128', '[REDACTED:ip]'],
    ['GET /api/hosts/203.0.113.7/status', 'GET /api/hosts/[REDACTED:ip]/status'],
    ['proxy/10.0.0.1', 'proxy/[REDACTED:ip]'],
  ])('finds %j', (input, expected) => {
    expect(r.redactString(input)).toBe(expected);
  });

  test.each([
    ['127.0.0.1', 'loopback'],
    ['0.0.0.0:4318', 'unspecified'],
    ['::1', 'IPv6 loopback'],
    ['version 1.2.3', 'three-part version'],
    ['v1.2.3.4', 'version glued to v'],
    ['1.2.3.4.5', 'five parts'],
    ['256.1.1.1', 'octet over 255'],
    ['10.0.19041.1', 'Windows build'],
    [
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
      "Chrome's reduced user agent (MAJOR.0.0.0)",
    ],
    ['Edg/126.0.0.0 OPR/111.0.0.0', 'Edge and Opera versions'],
    ['10.0.0.0/8', 'a /8 network, nobody'],
    ['12:30:45', 'time'],
    ['2026-11-22T01:54:45Z', 'timestamp'],
    ['std::vector<int>', 'C++ name'],
    ['aa:bb:cc:dd:ee:ff', 'MAC address'],
    ['Foo::Bar::baz', 'Ruby constant'],
    ['550e8400-e29b-41d4-a716-446655440000', 'UUID'],
  ])('leaves %j alone (%s)', (input) => {
    expect(r.redactString(input)).toBe(input);
  });

  test('isIPv6', () => {
    expect(isIPv6('2001:db8::')).toBe(true);
    expect(isIPv6('1:2:3:4:5:6:7:8')).toBe(true);
    expect(isIPv6('1:2:3:4:5:6:7')).toBe(false);
    expect(isIPv6('1::2::3')).toBe(false);
    expect(isIPv6('12345::1')).toBe(false);
  });
});

describe('bearer detector', () => {
  const r = only('bearer');
  const jwt =
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
  test.each([
    ['Bearer abcdef1234567890xyz', 'Bearer [REDACTED:bearer]'],
    ['authorization: bearer 9f8e7d6c5b4a', 'authorization: bearer [REDACTED:bearer]'],
    ['Basic YWxhZGRpbjpvcGVuc2VzYW1l', 'Basic [REDACTED:bearer]'], // aladdin:opensesame
    [`token ${jwt} sent`, 'token [REDACTED:bearer] sent'],
    [`Bearer ${jwt}`, 'Bearer [REDACTED:bearer]'],
  ])('finds %j', (input, expected) => {
    expect(r.redactString(input)).toBe(expected);
  });

  test.each([
    'Invalid Bearer token',
    'Bearer authentication required',
    'Basic authentication failed',
    'eyJhbGciOiJIUzI1NiJ9 alone is not a JWT',
    'the bearer of bad news',
  ])('leaves %j alone', (input) => {
    expect(r.redactString(input)).toBe(input);
  });
});

describe('url_secret detector (free text)', () => {
  const r = only('url_secret');
  test.each([
    ['GET /cb?code=abc123&state=x', 'GET /cb?code=[REDACTED:url_secret]&state=x'],
    ['login failed password=hunter2 user=bob', 'login failed password=[REDACTED:url_secret] user=bob'],
    [
      'https://s3/x?X-Amz-Signature=deadbeef&X-Amz-Date=1',
      'https://s3/x?X-Amz-Signature=[REDACTED:url_secret]&X-Amz-Date=1',
    ],
    ['"api_key=sk_live_123"', '"api_key=[REDACTED:url_secret]"'],
    ['{"user":"bob","password":"hunter2","n":1}', '{"user":"bob","password":"[REDACTED:url_secret]","n":1}'],
    [
      'body {"Authorization" : "Basic x", "access_token":"a\\"b"}',
      'body {"Authorization" : "[REDACTED:url_secret]", "access_token":"[REDACTED:url_secret]"}',
    ],
  ])('finds %j', (input, expected) => {
    expect(r.redactString(input)).toBe(expected);
  });

  test.each([
    'status code=500',
    'cache key=users:42',
    'a=b&c=d',
    'tokens=42',
    'session started',
    '{"code":"E42","key":"users:42"}',
    '{"password_policy": 12}',
  ])('leaves %j alone', (input) => {
    expect(r.redactString(input)).toBe(input);
  });
});

describe('redactString', () => {
  const r = createRedactor();
  test('returns the same instance when nothing matched', () => {
    const s = `GET /api/users/42 took ${'1'.repeat(3)}ms`;
    expect(r.redactString(s)).toBe(s);
  });
  test('all detectors together', () => {
    expect(
      r.redactString('alice@example.com paid 4111111111111111 from 203.0.113.9 with Bearer abcdefgh12345678'),
    ).toBe('[REDACTED:email] paid [REDACTED:card] from [REDACTED:ip] with Bearer [REDACTED:bearer]');
  });
  test('a URL key goes through redactUrl', () => {
    expect(r.redactString('https://x.example/reset?token=abc', 'url.full')).toBe(
      'https://x.example/reset?token=[REDACTED:url_secret]',
    );
    expect(r.redactString('token=abc&page=2', 'url.query')).toBe('token=[REDACTED:url_secret]&page=2');
  });
  test('detectors can be turned off', () => {
    const none = createRedactor({ detectors: [] });
    const s = 'alice@example.com 4111111111111111 10.0.0.1';
    expect(none.redactString(s)).toBe(s);
  });
  test('no catastrophic backtracking on hostile input', () => {
    const hostile = [
      `${'a'.repeat(100_000)}@`,
      `${'a.'.repeat(50_000)}@x`,
      '1 '.repeat(50_000),
      '1-'.repeat(50_000),
      '1.'.repeat(50_000),
      ':'.repeat(100_000),
      'a:'.repeat(50_000),
      `Bearer ${'a'.repeat(100_000)}`,
      `eyJ${'a'.repeat(100_000)}`,
      'eyJa.'.repeat(20_000),
      '?token='.repeat(14_000),
      '"password":"'.repeat(8_000),
      `"password":"${'a'.repeat(100_000)}`,
      '@'.repeat(100_000),
    ];
    const start = process.hrtime.bigint();
    for (const s of hostile) r.redactString(s);
    // URLs: the parameters looked through for secret names in place.
    for (const query of ['a&'.repeat(50_000), '&'.repeat(100_000), `${'a'.repeat(100_000)}&`]) {
      r.redactUrl(`https://shop.example.com/p?${query}=b`);
      r.redactUrl(`https://shop.example.com/p#${query}=b`);
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    // Generous bound: quadratic behaviour on 50 kB would take many seconds, linear takes milliseconds.
    expect(ms).toBeLessThan(2000);
  });
});

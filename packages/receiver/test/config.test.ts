import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ENV_OVERRIDES, loadConfig } from '../src';
import { parseAddress, parseDuration, parseSize } from '../src/config/units';

function file(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sonde-config-')), 'sonde.yaml');
  writeFileSync(path, text);
  return path;
}

describe('configuration', () => {
  test('defaults are the documented ones', () => {
    const c = loadConfig({ env: {} });
    expect(c.otlp.http.address).toEqual({ host: '127.0.0.1', port: 4318 });
    expect(c.otlp.grpc.address).toEqual({ host: '127.0.0.1', port: 4317 });
    expect(c.admin.address).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(c.limits.max_request_body_size).toBe(64 * 1024 * 1024);
    expect(c.data_dir).toBe('./.sonde-data');
    expect(c.log.level).toBe('info');
  });

  test('the file sets values with units, and the environment overrides the file', () => {
    const path = file(
      'otlp:\n  http:\n    address: 127.0.0.1:0\nlimits:\n  max_request_body_size: 2MiB\noverload:\n  retry_after: 3s\nadmin:\n  address: ":9999"\n',
    );
    const c = loadConfig({ file: path, env: { SONDE_ADMIN_ADDR: '[::1]:0', SONDE_LOG_LEVEL: 'debug' } });
    expect(c.otlp.http.address).toEqual({ host: '127.0.0.1', port: 0 });
    expect(c.limits.max_request_body_size).toBe(2 * 1024 * 1024);
    expect(c.overload.retry_after).toBe(3000);
    expect(c.admin.address).toEqual({ host: '::1', port: 0 });
    expect(c.log.level).toBe('debug');
  });

  test.each([
    ['limits:\n  max_request_body_size: lots\n', /limits\.max_request_body_size: "lots" is not a size/],
    ['otlp:\n  htp:\n    address: x\n', /unknown key otlp\.htp/],
    ['limits:\n  max_attributes_per_item: -1\n', /limits\.max_attributes_per_item/],
    ['log:\n  level: loud\n', /log\.level/],
    ['otlp:\n  grpc:\n    address: localhost\n', /otlp\.grpc\.address: "localhost" is not an address/],
    ['- a\n- b\n', /YAML mapping/],
    ['a: [\n', /not valid YAML/],
  ])('%j is refused with an error naming the key', (text, message) => {
    expect(() => loadConfig({ file: file(text), env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file: file(text), env: {} })).toThrow(message);
  });

  test('an invalid environment override names the variable', () => {
    expect(() => loadConfig({ env: { SONDE_OTLP_HTTP_ADDR: 'nope' } })).toThrow(
      /otlp\.http\.address \(from SONDE_OTLP_HTTP_ADDR\)/,
    );
  });

  describe('tempo.headers that no request could carry are refused, naming the key (never the value)', () => {
    test.each([
      [
        'a name with a space',
        'tempo:\n  headers:\n    "x scope": tenant\n',
        /tempo\.headers: "x scope" is not a valid header name/,
      ],
      [
        'a value with CR LF',
        'tempo:\n  headers:\n    x-scope-orgid: "a\\r\\nInjected: secret-1"\n',
        /tempo\.headers: the value of "x-scope-orgid"/,
      ],
      [
        'a value with NUL',
        'tempo:\n  headers:\n    authorization: "Bearer \\0secret-1"\n',
        /the value of "authorization"/,
      ],
      ['a host override', 'tempo:\n  headers:\n    Host: tempo.internal\n', /"Host" header cannot be set/],
      [
        'a content-length override',
        'tempo:\n  headers:\n    content-length: "5"\n',
        /"content-length" header cannot be set/,
      ],
      [
        'transfer-encoding',
        'tempo:\n  headers:\n    transfer-encoding: chunked\n',
        /"transfer-encoding" header cannot be set/,
      ],
      ['connection', 'tempo:\n  headers:\n    connection: close\n', /"connection" header cannot be set/],
      ['the string form', 'tempo:\n  headers: "x-a=1,upgrade=h2c"\n', /"upgrade" header cannot be set/],
    ])('%s', (_what, text, message) => {
      expect(() => loadConfig({ file: file(text), env: {} })).toThrow(message);
      expect(() => loadConfig({ file: file(text), env: {} })).not.toThrow(/secret-1/);
    });

    test.each([
      ['x-a=%0D%0AInjected:%20secret-1', /tempo\.headers \(from SONDE_TEMPO_HEADERS\): the value of "x-a"/],
      ['bad%20name=1', /tempo\.headers \(from SONDE_TEMPO_HEADERS\): "bad name" is not a valid header name/],
      ['host=evil', /tempo\.headers \(from SONDE_TEMPO_HEADERS\): the "host" header cannot be set/],
      ['Content-Length=1', /the "content-length" header cannot be set/],
    ])('SONDE_TEMPO_HEADERS=%s', (value, message) => {
      expect(() => loadConfig({ env: { SONDE_TEMPO_HEADERS: value } })).toThrow(message);
      expect(() => loadConfig({ env: { SONDE_TEMPO_HEADERS: value } })).not.toThrow(/secret-1/);
    });

    test('valid headers pass', () => {
      const c = loadConfig({
        file: file('tempo:\n  headers:\n    X-Scope-OrgID: tenant-a\n    authorization: "Basic dXNlcjpwYXNz=="\n'),
        env: {},
      });
      expect(c.tempo.headers).toEqual({ 'X-Scope-OrgID': 'tenant-a', authorization: 'Basic dXNlcjpwYXNz==' });
      expect(loadConfig({ env: { SONDE_TEMPO_HEADERS: 'x-scope-orgid=a,x-b=%C3%A9t%C3%A9' } }).tempo.headers).toEqual({
        'x-scope-orgid': 'a',
        'x-b': 'été',
      });
    });
  });

  describe('loki: the same keys as tempo, its own endpoint path and variables', () => {
    test('SONDE_LOKI_ENDPOINT gets /otlp/v1/logs unless it has a path; SONDE_LOKI_HEADERS as the Tempo ones', () => {
      const c = loadConfig({
        env: { SONDE_LOKI_ENDPOINT: 'http://loki:3100', SONDE_LOKI_HEADERS: 'X-Scope-OrgID=team%20a' },
      });
      expect(c.loki.endpoint).toBe('http://loki:3100/otlp/v1/logs');
      expect(c.loki.headers).toEqual({ 'x-scope-orgid': 'team a' });
      expect(c.tempo.endpoint).toBe('');
      expect(loadConfig({ env: { SONDE_LOKI_ENDPOINT: 'https://gw.example/v1/logs' } }).loki.endpoint).toBe(
        'https://gw.example/v1/logs',
      );
    });

    test('every tempo key, with the same defaults', () => {
      const c = loadConfig({ env: {} });
      expect(c.loki).toEqual(c.tempo);
      const l = loadConfig({
        file: file(
          'loki:\n  endpoint: http://loki:3100\n  persistent_queue: true\n  queue_size: 1MiB\n  on_full: drop_oldest\n',
        ),
        env: {},
      }).loki;
      expect(l).toMatchObject({ persistent_queue: true, queue_size: 1024 * 1024, on_full: 'drop_oldest' });
    });

    test.each([
      ['ftp://loki', /loki\.endpoint \(from SONDE_LOKI_ENDPOINT\): the Loki endpoint must be an http\(s\) URL/],
    ])('SONDE_LOKI_ENDPOINT=%s', (value, message) => {
      expect(() => loadConfig({ env: { SONDE_LOKI_ENDPOINT: value } })).toThrow(message);
    });

    test.each([
      ['x-a=%0D%0AInjected:%20secret-1', /loki\.headers \(from SONDE_LOKI_HEADERS\): the value of "x-a"/],
      ['host=evil', /loki\.headers \(from SONDE_LOKI_HEADERS\): the "host" header cannot be set/],
      ['novalue', /SONDE_LOKI_HEADERS: entry 1 is not key=value/],
    ])('SONDE_LOKI_HEADERS=%s', (value, message) => {
      expect(() => loadConfig({ env: { SONDE_LOKI_HEADERS: value } })).toThrow(message);
      expect(() => loadConfig({ env: { SONDE_LOKI_HEADERS: value } })).not.toThrow(/secret-1/);
    });

    test('an unknown loki key is refused', () => {
      expect(() => loadConfig({ file: file('loki:\n  endpont: http://loki:3100\n'), env: {} })).toThrow(/endpont/);
    });
  });

  test('a missing file says so', () => {
    expect(() => loadConfig({ file: '/nonexistent/sonde.yaml', env: {} })).toThrow(/cannot read config file/);
  });
});

describe('units', () => {
  test.each([
    [512, 512],
    ['512', 512],
    ['64MiB', 64 * 1024 ** 2],
    ['1.5 GB', 1.5e9],
    ['10kib', 10240],
  ])('size %j → %d', (input, bytes) => expect(parseSize(input)).toBe(bytes));

  test.each([
    ['10s', 10_000],
    ['500ms', 500],
    ['5m', 300_000],
    [250, 250],
  ])('duration %j → %d ms', (input, ms) => expect(parseDuration(input)).toBe(ms));

  test.each([
    ['0.0.0.0:4318', { host: '0.0.0.0', port: 4318 }],
    [':4318', { host: '0.0.0.0', port: 4318 }],
    ['[::1]:0', { host: '::1', port: 0 }],
    ['off', 'off'],
  ])('address %j', (input, expected) => expect(parseAddress(input)).toEqual(expected));

  test.each(['4318', 'host:99999', 'a:b'])('bad address %j gives an error text', (input) => {
    expect(typeof parseAddress(input)).toBe('string');
  });
});

describe('the README configuration reference', () => {
  /** Dotted keys of the configuration, from the defaults (an address is a leaf). */
  function keysOf(value: unknown, prefix = ''): string[] {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || 'port' in value) return [prefix];
    return Object.entries(value).flatMap(([k, v]) => keysOf(v, prefix ? `${prefix}.${k}` : k));
  }

  test('lists every key and every environment override', () => {
    const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    const reference = readme.slice(readme.indexOf('## Configuration reference'));
    const keys = keysOf(loadConfig({ env: {} }));
    expect(keys.length).toBeGreaterThan(15);
    for (const key of keys) expect(reference).toContain(`| \`${key}\` |`);
    for (const variable of Object.keys(ENV_OVERRIDES)) expect(reference).toContain(`\`${variable}\``);
  });
});

describe('the HMAC key variable', () => {
  const KEY = 'config-test-hmac-key-0123456789';
  const OTHER = 'config-test-other-key-987654321';

  test('SONDE_HMAC_KEY, the name @sonde/node reads, sets redaction.hmac_key without a warning', () => {
    const warnings: string[] = [];
    const c = loadConfig({ env: { SONDE_HMAC_KEY: KEY }, onWarning: (m) => warnings.push(m) });
    expect(c.redaction.hmac_key).toBe(KEY);
    expect(warnings).toEqual([]);
  });

  test('the former SONDE_REDACTION_HMAC_KEY is still read, with one deprecation line naming the new one', () => {
    const warnings: string[] = [];
    const c = loadConfig({ env: { SONDE_REDACTION_HMAC_KEY: KEY }, onWarning: (m) => warnings.push(m) });
    expect(c.redaction.hmac_key).toBe(KEY);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/SONDE_REDACTION_HMAC_KEY is deprecated.*SONDE_HMAC_KEY/);
    expect(warnings[0]).not.toContain(KEY);
    expect(warnings[0]).not.toContain('\n');
  });

  test('with both set, SONDE_HMAC_KEY wins and the old one is still reported', () => {
    const warnings: string[] = [];
    const c = loadConfig({
      env: { SONDE_HMAC_KEY: KEY, SONDE_REDACTION_HMAC_KEY: OTHER },
      onWarning: (m) => warnings.push(m),
    });
    expect(c.redaction.hmac_key).toBe(KEY);
    expect(warnings).toHaveLength(1);
    expect(warnings.join()).not.toContain(OTHER);
  });

  test('an invalid key names the variable it came from', () => {
    const path = file('redaction:\n  enabled: true\n');
    expect(() => loadConfig({ file: path, env: { SONDE_REDACTION_HMAC_KEY: 'short' }, onWarning: () => {} })).toThrow(
      /redaction\.hmac_key \(from SONDE_REDACTION_HMAC_KEY\)/,
    );
    expect(() => loadConfig({ file: path, env: { SONDE_HMAC_KEY: 'short' } })).toThrow(
      /redaction\.hmac_key \(from SONDE_HMAC_KEY\)/,
    );
  });
});

/** The pure parts: consent lists and start-up consent, OTLP targets from the environment, SQL summaries. */
import { parseConsentList } from '../src/consent';
import { track } from '../src/events';
import { httpTarget, parseHeaderList } from '../src/otlp-http';
import { resolveConsent, start } from '../src/sdk';
import { sanitizeSql, summarizeSql } from '../src/sqlite';
import { serviceNameOf, startupChoices } from '../src/startup-consent';

test('SONDE_CONSENT lists', () => {
  expect(parseConsentList('diagnostics,performance').granted).toEqual({
    diagnostics: true,
    performance: true,
    product: false,
  });
  expect(parseConsentList('all').granted).toEqual({ diagnostics: true, performance: true, product: true });
  expect(parseConsentList('none').granted).toEqual({ diagnostics: false, performance: false, product: false });
  expect(parseConsentList('product=false').granted).toEqual({ diagnostics: true, performance: true, product: false });
  const bad = parseConsentList('diagnostics,analytics');
  expect(bad.granted.diagnostics).toBe(true);
  expect(bad.errors).toEqual([
    'unknown consent category "analytics" (use diagnostics, performance, product, all or none)',
  ]);
});

test('start-up consent: env, options, DO_NOT_TRACK and essential categories', () => {
  // Protective default: product analytics off until granted.
  expect(resolveConsent({}, undefined, undefined).granted).toEqual({
    diagnostics: true,
    performance: true,
    product: false,
  });
  expect(resolveConsent({ SONDE_CONSENT: 'product=true' }, undefined, undefined).granted).toEqual({
    diagnostics: true,
    performance: true,
    product: true,
  });
  expect(resolveConsent({ SONDE_CONSENT: 'performance=false' }, undefined, undefined).granted).toEqual({
    diagnostics: true,
    performance: false,
    product: false,
  });
  expect(resolveConsent({}, { product: true }, undefined).granted.product).toBe(true);
  expect(resolveConsent({ SONDE_CONSENT: 'diagnostics' }, { product: true }, undefined).granted).toEqual({
    diagnostics: true,
    performance: false,
    product: true,
  });
  const dnt = resolveConsent({ DO_NOT_TRACK: '1', SONDE_ESSENTIAL: 'diagnostics' }, undefined, undefined);
  expect(dnt).toEqual({
    granted: { diagnostics: true, performance: false, product: false },
    doNotTrack: true,
    essential: ['diagnostics'],
  });
  expect(resolveConsent({ DO_NOT_TRACK: '0' }, undefined, undefined).doNotTrack).toBe(false);
  expect(resolveConsent({ DO_NOT_TRACK: 'true' }, undefined, []).granted).toEqual({
    diagnostics: false,
    performance: false,
    product: false,
  });
});

test('OTLP/HTTP targets from the standard variables, defaulting to a local receiver', () => {
  expect(httpTarget('traces', {}, { protocol: 'http/protobuf' })).toEqual({
    url: 'http://localhost:4318/v1/traces',
    headers: {},
    json: false,
    gzip: false,
    timeoutMs: 10000,
  });
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.com:4318/',
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'https://logs.example.com/ingest',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=a%20b,authorization=Bearer%20t',
    OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-tenant=metrics',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
  };
  expect(httpTarget('traces', env, { protocol: 'http/json' }).url).toBe('https://otlp.example.com:4318/v1/traces');
  expect(httpTarget('traces', env, { protocol: 'http/json' }).json).toBe(true);
  expect(httpTarget('logs', env, { protocol: 'http/protobuf' }).url).toBe('https://logs.example.com/ingest');
  const metrics = httpTarget('metrics', env, { protocol: 'http/protobuf' });
  expect(metrics.headers).toEqual({ 'x-tenant': 'metrics', authorization: 'Bearer t' });
  expect(metrics.gzip).toBe(true);
  expect(metrics.timeoutMs).toBe(2500);
  expect(httpTarget('traces', env, { endpoint: 'http://127.0.0.1:9', protocol: 'http/protobuf' }).url).toBe(
    'http://127.0.0.1:9/v1/traces',
  );
  expect(parseHeaderList('bad,k=v=w')).toEqual({ k: 'v=w' });
});

test('SQL summaries and literal-free query text', () => {
  expect(summarizeSql('SELECT sku, qty FROM cart_items WHERE user_id = ?')).toEqual({
    operation: 'SELECT',
    collection: 'cart_items',
  });
  expect(summarizeSql('insert or replace into "orders" (a) values (1)')).toEqual({
    operation: 'INSERT',
    collection: 'orders',
  });
  expect(summarizeSql('UPDATE carts SET qty = 2')).toEqual({ operation: 'UPDATE', collection: 'carts' });
  expect(summarizeSql('CREATE TABLE IF NOT EXISTS t1 (x)')).toEqual({ operation: 'CREATE', collection: 't1' });
  expect(summarizeSql('PRAGMA journal_mode = WAL')).toEqual({ operation: 'PRAGMA' });
  expect(sanitizeSql("SELECT * FROM users WHERE email = 'jane@example.com' AND id = 42 AND blob = x'00ff'")).toBe(
    'SELECT * FROM users WHERE email = ? AND id = ? AND blob = ?',
  );
  expect(sanitizeSql("select 'it''s'")).toBe('select ?');
});

test('OTEL_SDK_DISABLED: nothing starts, track() is a no-op, the summary says so', () => {
  const writes: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    writes.push(String(chunk));
    return true;
  });
  try {
    const s = start({}, { OTEL_SDK_DISABLED: 'true' });
    expect(s).toMatchObject({ started: false, disabled: true });
    expect(track('feature.used')).toBe(false);
    expect(writes.join('')).toContain('sonde: off (OTEL_SDK_DISABLED=true)');
  } finally {
    spy.mockRestore();
  }
});

test('start-up opt-outs counted: DO_NOT_TRACK, SONDE_CONSENT and the option; defaults are not choices', () => {
  const choices = (env: NodeJS.ProcessEnv, option?: Parameters<typeof resolveConsent>[1], essential?: string[]) =>
    startupChoices(env, option, resolveConsent(env, option, essential as never)).map(
      (c) => `${c.category}:${c.source}`,
    );
  expect(choices({})).toEqual([]); // product off by default: not a choice
  expect(choices({ DO_NOT_TRACK: '1' })).toEqual([
    'diagnostics:do_not_track',
    'performance:do_not_track',
    'product:do_not_track',
  ]);
  expect(choices({ DO_NOT_TRACK: '1', SONDE_ESSENTIAL: 'diagnostics' })).toEqual([
    'performance:do_not_track',
    'product:do_not_track',
  ]);
  expect(choices({ SONDE_CONSENT: 'diagnostics' })).toEqual(['performance:startup']);
  expect(choices({ SONDE_CONSENT: 'diagnostics,product=false' })).toEqual(['product:startup']);
  expect(choices({ SONDE_CONSENT: 'none' })).toEqual(['diagnostics:startup', 'performance:startup', 'product:startup']);
  expect(choices({ SONDE_CONSENT: 'performance=false' })).toEqual(['performance:startup']);
  expect(choices({ SONDE_CONSENT: 'all' }, { product: false })).toEqual(['product:startup']);
  expect(choices({ SONDE_CONSENT: 'none' }, { diagnostics: true })).toEqual(['performance:startup', 'product:startup']);

  expect(serviceNameOf({ OTEL_SERVICE_NAME: 'env' }, 'option')).toBe('option');
  expect(serviceNameOf({ OTEL_SERVICE_NAME: 'env', OTEL_RESOURCE_ATTRIBUTES: 'service.name=attr' }, undefined)).toBe(
    'env',
  );
  expect(serviceNameOf({ OTEL_RESOURCE_ATTRIBUTES: 'a=b,service.name=my%20svc' }, undefined)).toBe('my svc');
  expect(serviceNameOf({}, undefined)).toBe('unknown_service:node');
});

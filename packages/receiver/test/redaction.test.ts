import { Registry } from 'prom-client';
import { ConfigError, validateConfig } from '../src/config/load';
import { toRedactionConfig } from '../src/config/schema';
import { emptyResource, emptyScope, type KeyValue, KeyValueList, type SignalData } from '../src/model';
import type { Batch } from '../src/pipeline/pipeline';
import { Redaction } from '../src/pipeline/redaction';

const KEY = 'unit-test-hmac-key-0123456789';

function logsBatch(body: KeyValueList | string, attributes: KeyValue[]): Batch<'logs'> {
  const data: SignalData['logs'] = [
    {
      resource: { ...emptyResource(), attributes: [{ key: 'service.name', value: 'svc' }] },
      schemaUrl: '',
      scopeLogs: [
        {
          scope: emptyScope(),
          schemaUrl: '',
          logRecords: [
            {
              timeUnixNano: 0n,
              observedTimeUnixNano: 0n,
              severityNumber: 9,
              severityText: '',
              body,
              attributes,
              droppedAttributesCount: 0,
              flags: 0,
              traceId: '',
              spanId: '',
              eventName: '',
            },
          ],
        },
      ],
    },
  ];
  return {
    signal: 'logs',
    data,
    itemCount: 1,
    warnings: [],
    decodeStats: undefined,
    context: { transport: 'http', encoding: 'protobuf', receivedAt: 0, raw: Buffer.alloc(1), modified: false },
  };
}

function redaction(section: Record<string, unknown>) {
  const config = validateConfig({ redaction: { enabled: true, ...section } });
  const registry = new Registry();
  return { r: new Redaction(toRedactionConfig(config.redaction), registry), registry };
}

describe('redaction processor', () => {
  test('an unchanged batch is left alone and not marked modified', () => {
    const { r } = redaction({});
    const batch = logsBatch('user signed in', [{ key: 'http.route', value: '/login' }]);
    const before = JSON.stringify(batch.data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    r.process(batch);
    expect(batch.context.modified).toBe(false);
    expect(JSON.stringify(batch.data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).toBe(before);
  });

  test('browser user agents are not IP addresses: their version N.0.0.0 passes and the batch is not modified', () => {
    // Chrome, Edge and Opera write a reduced version (126.0.0.0); masking it marked every batch of
    // browser spans modified, so exporters and stores re-encoded instead of forwarding the bytes.
    const { r } = redaction({});
    const ua =
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0';
    const batch = logsBatch('GET /api/cart 200', [
      { key: 'user_agent.original', value: ua },
      { key: 'network.peer.address', value: '10.0.0.0' },
    ]);
    r.process(batch);
    expect(batch.context.modified).toBe(false);
    expect(batch.data[0].scopeLogs[0].logRecords[0].attributes[0].value).toBe(ua);
    // A host address is still one.
    const other = logsBatch('from 10.0.0.7', [{ key: 'user_agent.original', value: `${ua} via 203.0.113.9` }]);
    r.process(other);
    expect(other.context.modified).toBe(true);
    expect(other.data[0].scopeLogs[0].logRecords[0].attributes[0].value).toBe(`${ua} via [REDACTED:ip]`);
    expect(other.data[0].scopeLogs[0].logRecords[0].body).toBe('from [REDACTED:ip]');
  });

  test('keys, values, nested maps, int card numbers and bodies; the batch is marked modified and counted', async () => {
    const { r, registry } = redaction({ hmac_key: KEY, pseudonymize_keys: ['enduser.id'] });
    const body = new KeyValueList([
      { key: 'password', value: 'hunter2' },
      { key: 'user', value: new KeyValueList([{ key: 'email', value: 'dave@example.com' }]) },
      { key: 'ids', value: ['ok', 'from 203.0.113.7'] },
    ]);
    const batch = logsBatch(body, [
      { key: 'enduser.id', value: 42n },
      { key: 'card', value: 4111111111111111n },
      { key: 'count', value: 1763769600000n },
      { key: 'Authorization', value: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' },
      { key: 'http.target', value: '/reset?token=abc' },
    ]);
    r.process(batch);
    const lr = batch.data[0].scopeLogs[0].logRecords[0];
    expect(batch.context.modified).toBe(true);
    expect(lr.attributes).toEqual([
      { key: 'enduser.pseudo.id', value: r.redactor.pseudonym('42') },
      { key: 'card', value: '[REDACTED:card]' },
      { key: 'count', value: 1763769600000n },
      { key: 'http.target', value: '/reset?token=[REDACTED:url_secret]' },
    ]);
    expect(lr.body).toEqual(
      new KeyValueList([
        { key: 'user', value: new KeyValueList([{ key: 'email', value: '[REDACTED:email]' }]) },
        { key: 'ids', value: ['ok', 'from [REDACTED:ip]'] },
      ]),
    );
    const text = await registry.metrics();
    expect(text).toContain('sonde_receiver_redactions_total{signal="logs",reason="key_dropped"} 2');
    expect(text).toContain('sonde_receiver_redactions_total{signal="logs",reason="pseudonymized"} 1');
    expect(text).toContain('sonde_receiver_redactions_total{signal="logs",reason="card"} 1');
    expect(text).toContain('sonde_receiver_redactions_total{signal="logs",reason="email"} 1');
  });

  test('allow mode picks top-level keys only; nested maps follow the block list', () => {
    const { r } = redaction({ mode: 'allow', allow_keys: ['service.name', 'app.*'] });
    const batch = logsBatch(
      new KeyValueList([
        { key: 'plan', value: 'pro' },
        { key: 'secret', value: 'x' },
      ]),
      [
        { key: 'app.step', value: 'checkout' },
        { key: 'user.name', value: 'Alice' },
      ],
    );
    r.process(batch);
    const rl = batch.data[0];
    expect(rl.resource.attributes).toEqual([{ key: 'service.name', value: 'svc' }]);
    expect(rl.scopeLogs[0].logRecords[0].attributes).toEqual([{ key: 'app.step', value: 'checkout' }]);
    expect(rl.scopeLogs[0].logRecords[0].body).toEqual(new KeyValueList([{ key: 'plan', value: 'pro' }]));
  });
});

describe('redaction: resource and scope attributes, end-user ids', () => {
  const endUser = (): KeyValue[] => [
    { key: 'enduser.id', value: 'u-42' },
    { key: 'user.id', value: 'u-42' },
  ];

  test('resource and scope attributes go through the key rules and the detectors', () => {
    const { r } = redaction({});
    const batch = logsBatch('ok', [{ key: 'http.route', value: '/a' }]);
    const rl = batch.data[0];
    rl.resource.attributes.push(
      { key: 'process.command_line', value: 'node app.js --db-password=hunter2 --admin alice@example.com' },
      { key: 'db.password', value: 'hunter2' },
    );
    rl.scopeLogs[0].scope.attributes.push({ key: 'owner', value: 'bob@example.org' }, { key: 'api_key', value: 'x' });
    r.process(batch);
    expect(batch.context.modified).toBe(true);
    expect(rl.resource.attributes).toEqual([
      { key: 'service.name', value: 'svc' },
      { key: 'process.command_line', value: 'node app.js --db-password=hunter2 --admin [REDACTED:email]' },
    ]);
    expect(rl.scopeLogs[0].scope.attributes).toEqual([{ key: 'owner', value: '[REDACTED:email]' }]);
  });

  test('without an HMAC key, enduser.id and user.id are dropped, on resources too', () => {
    const { r } = redaction({});
    const batch = logsBatch('ok', endUser());
    batch.data[0].resource.attributes.push(...endUser());
    r.process(batch);
    expect(batch.data[0].scopeLogs[0].logRecords[0].attributes).toEqual([]);
    expect(batch.data[0].resource.attributes).toEqual([{ key: 'service.name', value: 'svc' }]);
  });

  test('with an HMAC key, they become keyed pseudonyms', () => {
    const { r } = redaction({ hmac_key: KEY });
    const batch = logsBatch('ok', endUser());
    r.process(batch);
    expect(batch.data[0].scopeLogs[0].logRecords[0].attributes).toEqual([
      { key: 'enduser.pseudo.id', value: r.redactor.pseudonym('u-42') },
      { key: 'user.pseudo.id', value: r.redactor.pseudonym('u-42') },
    ]);
  });

  test('an end-user key listed by name in allow_keys passes', () => {
    const { r } = redaction({ allow_keys: ['enduser.id'] });
    const batch = logsBatch('ok', endUser());
    r.process(batch);
    expect(batch.data[0].scopeLogs[0].logRecords[0].attributes).toEqual([{ key: 'enduser.id', value: 'u-42' }]);
  });
});

describe('redaction configuration', () => {
  test('defaults: on, block mode, every detector, mask', () => {
    expect(validateConfig({}).redaction).toEqual({
      enabled: true,
      mode: 'block',
      allow_keys: [],
      block_keys: [],
      detectors: ['email', 'card', 'ip', 'bearer', 'url_secret'],
      action: 'mask',
      hmac_key: '',
      pseudonymize_keys: [],
    });
  });

  test.each([
    [{ mode: 'deny' }, 'redaction.mode'],
    [{ detectors: ['ssn'] }, 'redaction.detectors.0'],
    [{ action: 'pseudonymize' }, 'redaction.hmac_key: required'],
    [{ hmac_key: 'short-key' }, 'redaction.hmac_key: too short'],
    [{ enabled: true, colour: 'red' }, 'unknown key redaction.colour'],
  ])('%j is refused, naming the key', (section, message) => {
    expect(() => validateConfig({ redaction: { enabled: true, ...section } } as never)).toThrow(ConfigError);
    expect(() => validateConfig({ redaction: { enabled: true, ...section } } as never)).toThrow(message);
  });

  test('the HMAC key is never in an error', () => {
    try {
      validateConfig({ redaction: { enabled: true, hmac_key: 'tooshort', mode: 'x' } } as never);
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).not.toContain('tooshort');
    }
  });

  test('the key may come from SONDE_REDACTION_HMAC_KEY', () => {
    const { loadConfig } = require('../src/config/load') as typeof import('../src/config/load');
    const config = loadConfig({ env: { SONDE_REDACTION_HMAC_KEY: KEY } });
    expect(config.redaction.hmac_key).toBe(KEY);
  });
});

/**
 * Redaction in the browser, before export, with @sonde/redact: by default secrets in URL queries and
 * emails (in URLs, attributes and log bodies) are masked in what reaches the receiver; with
 * `action: 'pseudonymize'` and `pseudonymize_keys`, values become the same keyed HMAC-SHA256
 * pseudonyms as in Node (computed here with WebCrypto).
 */
import { createHmac } from 'node:crypto';
import {
  launch,
  logsOf,
  type PageServer,
  spansOf,
  startPageServer,
  startTestReceiver,
  type TestBrowser,
  type TestReceiver,
  testPage,
  until,
} from './harness';

let receiver: TestReceiver;
let server: PageServer;
let tb: TestBrowser;
const HMAC_KEY = 'redaction-test-key-0123456789abcdef';

beforeAll(async () => {
  server = await startPageServer();
  receiver = await startTestReceiver([server.origin]);
  server.pages.set('/ping', '<!doctype html><p>ping</p>');
  tb = await launch();
}, 60_000);

afterAll(async () => {
  await tb?.close();
  await server?.close();
  await receiver?.close();
});

declare const sonde: {
  track(name: string, attributes?: Record<string, unknown>): boolean;
  captureError(e: unknown): boolean;
  flush(): Promise<void>;
};

const base = (service: string, extra = '') =>
  `{ endpoint: ${JSON.stringify(receiver.endpoint)}, serviceName: '${service}', defer: 'never', batchDelayMs: 100,
     webVitals: false, consent: { product: true }, instrumentations: { documentLoad: false, userInteraction: false }${extra} }`;

test('by default: URL query secrets and emails masked in spans, event attributes and error bodies', async () => {
  server.pages.set('/', testPage(base('redact-web')));
  await tb.page.goto(`${server.origin}/`, { waitUntil: 'load' });
  await tb.page.evaluate(async () => {
    await fetch('/ping?access_token=tok3nS3cr3tValue42&contact=jane.doe@example.com&page=2');
    sonde.track('signup.completed', { 'signup.note': 'write to jane.doe@example.com', 'signup.plan': 'pro' });
    sonde.captureError(new Error('could not reach jane.doe@example.com'));
  });
  await until(async () => {
    await tb.page.evaluate(() => sonde.flush());
    return (
      spansOf(receiver).some((s) => String(s.attributes['url.full']).includes('/ping')) &&
      logsOf(receiver).some((l) => l.eventName === 'signup.completed') &&
      logsOf(receiver).some((l) => l.attributes['exception.type'] === 'Error')
    );
  }, 'the span, the event and the error');
  const everything = JSON.stringify({ spans: spansOf(receiver), logs: logsOf(receiver) }, (_k, v) =>
    typeof v === 'bigint' ? String(v) : v,
  );
  expect(everything).not.toContain('tok3nS3cr3tValue42');
  expect(everything).not.toContain('jane.doe@example.com');
  const url = String(
    spansOf(receiver).find((s) => String(s.attributes['url.full']).includes('/ping'))?.attributes['url.full'],
  );
  expect(url).toContain('page=2');
  expect(url).toContain('REDACTED');
  const event = logsOf(receiver).find((l) => l.eventName === 'signup.completed');
  expect(event?.attributes).toMatchObject({ 'signup.note': 'write to [REDACTED:email]', 'signup.plan': 'pro' });
  const error = logsOf(receiver).find((l) => l.attributes['exception.type'] === 'Error');
  expect(error?.body).toBe('could not reach [REDACTED:email]');
});

test('pseudonyms: the same keyed HMAC-SHA256 as in Node, computed with WebCrypto before the export', async () => {
  server.pages.set(
    '/pseudo',
    testPage(
      base(
        'pseudo-web',
        `, redaction: { action: 'pseudonymize', hmac_key: ${JSON.stringify(HMAC_KEY)}, pseudonymize_keys: ['enduser.id'] }`,
      ),
    ),
  );
  await tb.page.goto(`${server.origin}/pseudo`, { waitUntil: 'load' });
  await tb.page.evaluate(() => {
    sonde.track('cart.viewed', { 'enduser.id': 'customer-42', 'cart.note': 'for jane.doe@example.com' });
  });
  const viewed = () => logsOf(receiver).find((l) => l.eventName === 'cart.viewed');
  await until(async () => {
    await tb.page.evaluate(() => sonde.flush());
    return viewed() !== undefined;
  }, 'the event');
  const pseudo = (v: string) => createHmac('sha256', HMAC_KEY).update(v).digest('hex').slice(0, 16);
  expect(viewed()?.attributes['enduser.id']).toBeUndefined();
  expect(viewed()?.attributes['enduser.pseudo.id']).toBe(pseudo('customer-42'));
  expect(viewed()?.attributes['cart.note']).toBe(`for [email:${pseudo('jane.doe@example.com')}]`);
});

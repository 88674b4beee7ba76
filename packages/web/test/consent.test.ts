/**
 * Consent in the browser, against a real receiver: `product` is off until granted; consent.record()
 * sends consent choice records (the shared wire format, subject as HMAC-SHA256 hex); track() events
 * reach the receiver's event metrics; a withdrawn category sends nothing of that category, not even
 * what was recorded before the withdrawal and still waits in a batch; Global Privacy Control
 * withdraws every category and is itself recorded once, anonymously, with a bare resource.
 */

import { createRedactor } from '@sonde/redact';
import {
  type LogOut,
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

const HMAC_KEY = 'a-test-hmac-key-of-at-least-32-characters';

let receiver: TestReceiver;
let server: PageServer;
let tb: TestBrowser;

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

type Sonde = {
  track(name: string, attributes?: Record<string, unknown>, options?: { category?: string }): boolean;
  captureError(e: unknown): boolean;
  flush(): Promise<void>;
  consent: {
    set(c: string, g: boolean): void;
    snapshot(): Record<string, boolean>;
    record(c: Record<string, unknown>, o?: { subject?: string }): Promise<void>;
  };
};
declare const sonde: Sonde;

const events = (name: string) => logsOf(receiver).filter((l) => l.eventName === name);
const choices = () =>
  logsOf(receiver)
    .filter((l) => l.eventName === 'sonde.consent.choice')
    .map((l) => l.attributes);

test('product is off until granted; a withdrawn category sends nothing, not even what was batched before', async () => {
  server.pages.set(
    '/',
    testPage(
      `{ endpoint: ${JSON.stringify(receiver.endpoint)}, serviceName: 'consent-web', defer: 'never',
         batchDelayMs: 600000, hmacKey: ${JSON.stringify(HMAC_KEY)}, webVitals: false,
         instrumentations: { documentLoad: false, userInteraction: false } }`,
    ),
  );
  await tb.page.goto(`${server.origin}/`, { waitUntil: 'load' });
  const before = await tb.page.evaluate(() => ({
    consent: sonde.consent.snapshot(),
    tracked: sonde.track('too.early', { step: 1 }),
  }));
  expect(before).toEqual({ consent: { diagnostics: true, performance: true, product: false }, tracked: false });

  const granted = await tb.page.evaluate(async () => {
    await sonde.consent.record({ product: true, performance: 'default' }, { subject: 'customer-42' });
    const a = sonde.track('product.viewed', { 'product.sku': 'tea-green' });
    const b = sonde.track('diag.event', { x: 1 }, { category: 'diagnostics' });
    await fetch('/ping?before-withdrawal');
    await sonde.flush();
    return [a, b];
  });
  expect(granted).toEqual([true, true]);
  await until(() => events('product.viewed').length === 1 && choices().length === 2, 'the event and the choices');
  // The session began before product was granted: its start is sent once it is.
  await until(() => events('session.start').length === 1, 'the session start, once product is granted');
  // The same pseudonym as @sonde/node's consent.record (and enduser.pseudo.id) for the same key and id,
  // so one person choosing in the page and in a service is one person to the receiver.
  const subject = createRedactor({ hmac_key: HMAC_KEY }).pseudonym('customer-42');
  expect(choices()).toEqual([
    {
      'event.name': 'sonde.consent.choice',
      'sonde.consent.category': 'product',
      'sonde.consent.choice': 'granted',
      'sonde.consent.source': 'user',
      'sonde.consent.subject': subject,
    },
    {
      'event.name': 'sonde.consent.choice',
      'sonde.consent.category': 'performance',
      'sonde.consent.choice': 'default',
      'sonde.consent.source': 'user',
      'sonde.consent.subject': subject,
    },
  ]);
  const choiceResource = logsOf(receiver).find((l) => l.eventName === 'sonde.consent.choice')?.resource;
  expect(choiceResource).toEqual({ 'service.name': 'consent-web' });
  const viewed = events('product.viewed')[0] as LogOut;
  expect(viewed.attributes).toMatchObject({ 'product.sku': 'tea-green', 'sonde.consent.category': 'product' });
  expect(viewed.resource).toMatchObject({ 'service.name': 'consent-web', 'browser.name': expect.any(String) });
  expect(events('diag.event')).toHaveLength(1);
  // The fetch span ends once the response's timing is known, a little after the fetch resolves.
  await until(async () => {
    await tb.page.evaluate(() => sonde.flush());
    return spansOf(receiver).some((s) => String(s.attributes['url.full']).includes('before-withdrawal'));
  }, 'the fetch span sent while diagnostics was granted');

  // The receiver's event metrics count the browser's events like the Node SDK's.
  const metricsText = await (await fetch(`${receiver.admin}/metrics`)).text();
  expect(metricsText).toMatch(/sonde_events_total\{[^}]*event_name="product.viewed"[^}]*\} 1/);

  // Batched while granted, then withdrawn before the export: none of it is sent.
  const after = await tb.page.evaluate(async () => {
    const r = [sonde.track('batched.then.withdrawn', { n: 1 })];
    r.push(sonde.track('diag.batched.then.withdrawn', { n: 1 }, { category: 'diagnostics' }));
    await fetch('/ping?batched-then-withdrawn');
    await sonde.consent.record({ product: false });
    sonde.consent.set('diagnostics', false);
    r.push(sonde.track('after.withdrawal'));
    r.push(sonde.track('diag.after.withdrawal', {}, { category: 'diagnostics' }));
    r.push(sonde.captureError(new Error('after withdrawal')));
    await fetch('/ping?after-withdrawal');
    await sonde.flush();
    return r;
  });
  expect(after).toEqual([true, true, false, false, false]);
  await until(() => choices().length === 3, 'the withdrawal record');
  expect(choices()[2]).toMatchObject({ 'sonde.consent.category': 'product', 'sonde.consent.choice': 'denied' });
  expect(choices()[2]['sonde.consent.subject']).toBeUndefined();
  // Flush rounds later (fetch spans end a little after the fetch), nothing of the withdrawn categories arrived.
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 400));
    await tb.page.evaluate(() => sonde.flush());
  }
  const names = logsOf(receiver).map((l) => l.eventName ?? String(l.body));
  expect(names).not.toContain('batched.then.withdrawn');
  expect(names).not.toContain('diag.batched.then.withdrawn');
  expect(names).not.toContain('after.withdrawal');
  expect(names).not.toContain('after withdrawal');
  const urls = spansOf(receiver).map((s) => String(s.attributes['url.full']));
  expect(urls.filter((u) => u.includes('withdrawn') || u.includes('after-withdrawal'))).toEqual([]);
});

test('Global Privacy Control: every category withdrawn, recorded once per tab session, anonymously', async () => {
  const page = await tb.browser.newPage();
  await page.evaluateOnNewDocument(() => {
    Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true });
  });
  server.pages.set(
    '/gpc',
    testPage(
      `{ endpoint: ${JSON.stringify(receiver.endpoint)}, serviceName: 'gpc-web', defer: 'never', batchDelayMs: 100 }`,
    ),
  );
  await page.goto(`${server.origin}/gpc`, { waitUntil: 'load' });
  const state = await page.evaluate(async () => {
    const tracked = [sonde.track('x'), sonde.track('y', {}, { category: 'diagnostics' })];
    await fetch('/ping?gpc');
    await sonde.flush();
    return { consent: sonde.consent.snapshot(), tracked };
  });
  expect(state).toEqual({
    consent: { diagnostics: false, performance: false, product: false },
    tracked: [false, false],
  });
  // Reloaded in the same tab: not recorded again.
  await page.reload({ waitUntil: 'load' });
  await page.evaluate(() => sonde.flush());
  const gpc = () => logsOf(receiver).filter((l) => l.resource['service.name'] === 'gpc-web');
  await until(() => gpc().length >= 3, 'the GPC records');
  await new Promise((r) => setTimeout(r, 300));
  expect(gpc().map((l) => [l.attributes['sonde.consent.category'], l.attributes['sonde.consent.choice']])).toEqual([
    ['diagnostics', 'denied'],
    ['performance', 'denied'],
    ['product', 'denied'],
  ]);
  for (const l of gpc()) {
    expect(l.attributes['sonde.consent.source']).toBe('global_privacy_control');
    expect(l.attributes['sonde.consent.subject']).toBeUndefined();
    expect(l.resource).toEqual({ 'service.name': 'gpc-web' });
  }
  expect(spansOf(receiver).filter((s) => s.service === 'gpc-web')).toEqual([]);
  await page.close();
});

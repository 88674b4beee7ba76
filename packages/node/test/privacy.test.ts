/**
 * Consent and redaction, asserted at a real receiver: per-request scopes, process-wide categories
 * and DO_NOT_TRACK send nothing of what is off; an email in a URL, a card number in an attribute and
 * a bearer token in a header or log line never arrive in clear; end-user ids arrive as keyed HMAC
 * pseudonyms, stable for one key and different across keys; node:sqlite calls are client spans.
 */
import { createRedactor } from '@sonde/redact';
import { setupRedaction } from '../src/redaction';
import { attr, ESM, startApp, startTestReceiver, type TestReceiver } from './harness';

const HMAC_KEY = 'test-hmac-key-0123456789';
const EMAIL = 'jane.doe@example.com';
const CARD = '4111111111111111';
const TOKEN = 'sk_live_9f8e7d6c5b4a3f2e1d0c';

let rx: TestReceiver;
beforeAll(async () => {
  rx = await startTestReceiver();
});
afterAll(() => rx.close());

function checkout(url: string, ref: string, headers: Record<string, string> = {}) {
  const q = new URLSearchParams({ ref, email: EMAIL });
  const card = `${CARD.slice(0, 4)} ${CARD.slice(4, 8)} ${CARD.slice(8, 12)} ${CARD.slice(12)}`;
  return fetch(`${url}/checkout?${q}`, {
    headers: { authorization: `Bearer ${TOKEN}`, 'x-user': 'u-123', 'x-card': card, ...headers },
  });
}

const eventOf = (service: string, ref: string) =>
  rx
    .logs()
    .find(
      (l) =>
        l.service === service &&
        l.record.eventName === 'checkout.completed' &&
        attr(l.record.attributes, 'order.ref') === ref,
    );
const serverSpanOf = (service: string, ref: string) =>
  rx
    .spans()
    .find(
      (s) =>
        s.service === service &&
        s.span.kind === 2 &&
        String(attr(s.span.attributes, 'url.query') ?? '').includes(`ref=${ref}`),
    );
const logOf = (service: string, ref: string) =>
  rx.logs().find((l) => l.service === service && !l.record.eventName && attr(l.record.attributes, 'ref') === ref);

test('per-request consent, events, redaction and pseudonyms at the receiver', async () => {
  const service = 'privacy-scoped';
  const app = await startApp('privacy-app.mjs', ESM, {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
    OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS: 'authorization,x-consent',
    SONDE_HMAC_KEY: HMAC_KEY,
    SONDE_CONSENT: 'all', // product analytics are off until granted
  });
  try {
    expect((await checkout(app.url, 'A')).status).toBe(200);
    expect((await checkout(app.url, 'B', { 'x-consent': 'product=0' })).status).toBe(200);
    expect((await checkout(app.url, 'C', { 'x-consent': 'diagnostics=0' })).status).toBe(200);
    await app.stop('SIGTERM'); // flushes everything

    // A: everything granted. The event is a log record with eventName, the category, and the trace.
    const event = eventOf(service, 'A');
    expect(event).toBeDefined();
    expect(event!.scope).toBe('@sonde/node/events');
    expect(attr(event!.record.attributes, 'sonde.consent.category')).toBe('product');
    const spanA = serverSpanOf(service, 'A')!;
    expect(spanA).toBeDefined();
    expect(event!.record.traceId).toBe(spanA.span.traceId);
    expect(logOf(service, 'A')).toBeDefined();

    // B: product withdrawn for this request: its spans and logs arrive, its event does not.
    expect(serverSpanOf(service, 'B')).toBeDefined();
    expect(logOf(service, 'B')).toBeDefined();
    expect(eventOf(service, 'B')).toBeUndefined();

    // C: diagnostics withdrawn: no span (not even the server span started before the middleware ran),
    // no application log; the product event still arrives, without a trace to point to.
    expect(serverSpanOf(service, 'C')).toBeUndefined();
    expect(
      rx
        .spans()
        .some(
          (s) =>
            s.service === service &&
            attr(s.span.attributes, 'db.query.text') &&
            s.span.traceId === eventOf(service, 'C')?.record.traceId,
        ),
    ).toBe(false);
    expect(logOf(service, 'C')).toBeUndefined();
    expect(eventOf(service, 'C')).toBeDefined();

    // Redaction: nothing of the secrets arrived in any request body the receiver got...
    const all = Buffer.concat(rx.raw);
    expect(all.includes('checkout.completed')).toBe(true); // (the bodies are there to search)
    for (const secret of [EMAIL, CARD, `${CARD.slice(0, 4)} ${CARD.slice(4, 8)}`, TOKEN, 'u-123']) {
      expect(all.includes(secret)).toBe(false);
    }
    // ... and what arrived instead: masks, the header dropped, the pseudonym.
    expect(String(attr(spanA.span.attributes, 'url.query'))).not.toContain('@');
    expect(attr(spanA.span.attributes, 'http.request.header.authorization')).toBeUndefined();
    // (headers are captured: the one that is not a secret arrived)
    expect(attr(serverSpanOf(service, 'B')!.span.attributes, 'http.request.header.x-consent')).toEqual(['product=0']);
    const handler = rx
      .spans()
      .find(
        (s) =>
          s.service === service &&
          s.span.traceId === spanA.span.traceId &&
          attr(s.span.attributes, 'payment.card') !== undefined,
      )!;
    expect(String(attr(handler.span.attributes, 'payment.card'))).not.toMatch(/\d{4} \d{4}/);
    expect(attr(handler.span.attributes, 'enduser.id')).toBeUndefined();
    expect(attr(handler.span.attributes, 'enduser.pseudo.id')).toBe(
      createRedactor({ hmac_key: HMAC_KEY }).pseudonym('u-123'),
    );
    expect(String(logOf(service, 'A')!.record.body)).not.toContain(TOKEN);

    // node:sqlite: a database client span in the request's trace, literals never recorded.
    const db = rx
      .spans()
      .find(
        (s) =>
          s.service === service &&
          s.span.traceId === spanA.span.traceId &&
          attr(s.span.attributes, 'db.system.name') === 'sqlite',
      )!;
    expect(db.span.name).toBe('INSERT orders');
    expect(db.span.kind).toBe(3);
    expect(attr(db.span.attributes, 'db.namespace')).toBe('memory');
    expect(attr(db.span.attributes, 'db.query.text')).toBe('INSERT INTO orders (ref, email, total) VALUES (?, ?, ?)');

    // A request is not a person: per-request scopes are not counted (people are: consent-record.test.ts).
    expect(rx.metrics().filter((m) => m.service === service && m.metric.name.startsWith('sonde.consent'))).toEqual([]);
  } finally {
    await app.stop('SIGKILL');
  }
});

test('process-wide consent and DO_NOT_TRACK: what is off sends nothing', async () => {
  const partial = 'privacy-no-product-no-performance';
  const dnt = 'privacy-do-not-track';
  const [a, b] = await Promise.all([
    startApp('privacy-app.mjs', ESM, {
      OTEL_SERVICE_NAME: partial,
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
      SONDE_CONSENT: 'diagnostics',
    }),
    startApp('privacy-app.mjs', ESM, {
      OTEL_SERVICE_NAME: dnt,
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
      DO_NOT_TRACK: '1',
    }),
  ]);
  try {
    for (const app of [a, b]) for (const ref of ['P1', 'P2']) expect((await checkout(app.url, ref)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1200)); // a few metric intervals
    await Promise.all([a.stop('SIGTERM'), b.stop('SIGTERM')]);
    expect(a.stderr.join('')).toContain('"consent":{"diagnostics":true,"performance":false,"product":false}');
    expect(b.stderr.join('')).toContain('"doNotTrack":true');

    // diagnostics only: spans and logs, no event but the anonymous start-up opt-out records, and no
    // metric but Sonde's own anonymous ones.
    expect(serverSpanOf(partial, 'P1')).toBeDefined();
    expect(logOf(partial, 'P1')).toBeDefined();
    const partialEvents = rx.logs().filter((l) => l.service === partial && l.record.eventName);
    // (SONDE_CONSENT=diagnostics withdraws performance, on by default; product is off by default
    // and left out of the list, which is no choice about it)
    expect(partialEvents.map((l) => [l.record.eventName, attr(l.record.attributes, 'sonde.consent.category')])).toEqual(
      [['sonde.consent.choice', 'performance']],
    );
    const partialScopes = new Set(
      rx
        .metrics()
        .filter((m) => m.service === partial)
        .map((m) => m.scope),
    );
    expect([...partialScopes]).toEqual(['@sonde/node']);

    // DO_NOT_TRACK: nothing at all but one anonymous opt-out record per category (silence.test.ts
    // checks every byte).
    expect(rx.spans().some((s) => s.service === dnt)).toBe(false);
    expect(rx.metrics().some((m) => m.service === dnt)).toBe(false);
    expect(
      rx
        .logs()
        .filter((l) => l.service === dnt)
        .map((l) => [l.record.eventName, attr(l.record.attributes, 'sonde.consent.source')]),
    ).toEqual([
      ['sonde.consent.choice', 'do_not_track'],
      ['sonde.consent.choice', 'do_not_track'],
      ['sonde.consent.choice', 'do_not_track'],
    ]);
  } finally {
    await Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]);
  }
});

test('HMAC pseudonyms: stable for one key, different across keys; the key is never shown', () => {
  const one = setupRedaction({}, 'key-one-0123456789abcdef');
  const again = setupRedaction({}, 'key-one-0123456789abcdef');
  const two = setupRedaction({ hmac_key: 'key-two-0123456789abcdef' }, undefined);
  const p1 = one.redactor.redactAttributes({ 'enduser.id': 'alice' }).attributes;
  const p1again = again.redactor.redactAttributes({ 'enduser.id': 'alice' }).attributes;
  const p2 = two.redactor.redactAttributes({ 'enduser.id': 'alice' }).attributes;
  expect(p1['enduser.id']).toBeUndefined();
  expect(p1['enduser.pseudo.id']).toMatch(/^[0-9a-f]{16}$/);
  expect(p1again['enduser.pseudo.id']).toBe(p1['enduser.pseudo.id']);
  expect(p2['enduser.pseudo.id']).not.toBe(p1['enduser.pseudo.id']);
  expect(one.redactor.redactAttributes({ 'enduser.id': 'bob' }).attributes['enduser.pseudo.id']).not.toBe(
    p1['enduser.pseudo.id'],
  );
  for (const s of [one, two]) {
    expect(s.describe).not.toContain('key-');
    expect(JSON.stringify(s.redactor)).not.toContain('key-');
  }
  // Without a key, end-user ids are dropped rather than sent in clear.
  const none = setupRedaction({}, undefined);
  expect(none.redactor.redactAttributes({ 'enduser.id': 'alice' }).attributes).toEqual({});
});

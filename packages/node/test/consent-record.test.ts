/**
 * consent.record(): a person's choice is sent once, as one consent choice record per category
 * (CONSENT-WIRE), with the subject as a keyed HMAC pseudonym that never leaves the process in clear,
 * whatever the consent; requests under a scope are not counted; the old per-request counter is gone.
 */
import { createRedactor } from '@sonde/redact';
import { attr, ESM, startApp, startTestReceiver, type TestReceiver, waitFor } from './harness';

const HMAC_KEY = 'test-hmac-key-consent-0123456789';
const ALICE = 'subject-alice-7f3a9c';
const BOB = 'subject-bob-2d81e0';

let rx: TestReceiver;
beforeAll(async () => {
  rx = await startTestReceiver();
});
afterAll(() => rx.close());

const choose = (url: string, body: { user?: string; product: string }) =>
  fetch(`${url}/choice`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const choicesOf = (service: string) =>
  rx.logs().filter((l) => l.service === service && l.record.eventName === 'sonde.consent.choice');

test('one record per choice, pseudonymised subject, requests not counted, sent with product withdrawn', async () => {
  const service = 'consent-record';
  const app = await startApp('consent-app.mjs', ESM, {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
    SONDE_HMAC_KEY: HMAC_KEY,
    // Product analytics off for the whole process: the choice records are sent all the same.
    SONDE_CONSENT: 'diagnostics,performance',
  });
  try {
    expect((await choose(app.url, { user: ALICE, product: '0' })).status).toBe(200);
    expect((await choose(app.url, { user: BOB, product: 'default' })).status).toBe(200);
    expect((await choose(app.url, { product: '1' })).status).toBe(200);
    for (let i = 0; i < 20; i++)
      expect((await fetch(`${app.url}/use`, { headers: { 'x-consent': 'product=0' } })).status).toBe(200);
    await waitFor('three consent choice records', () => choicesOf(service).length >= 3 || undefined);
    await new Promise((r) => setTimeout(r, 1200)); // metric intervals and any late record
    await app.stop('SIGTERM');

    const redactor = createRedactor({ hmac_key: HMAC_KEY });
    const pseudonym = (id: string) => redactor.pseudonym(id);
    const records = choicesOf(service).map(({ record, scope }) => ({
      scope,
      traceId: record.traceId,
      severity: record.severityNumber,
      attributes: Object.fromEntries(record.attributes.map((a) => [a.key, a.value])),
    }));
    expect(records).toEqual([
      {
        scope: '@sonde/node/consent',
        traceId: '',
        severity: 9,
        attributes: {
          'event.name': 'sonde.consent.choice',
          'sonde.consent.category': 'product',
          'sonde.consent.choice': 'denied',
          'sonde.consent.source': 'user',
          'sonde.consent.subject': pseudonym(ALICE),
        },
      },
      {
        scope: '@sonde/node/consent',
        traceId: '',
        severity: 9,
        attributes: {
          'event.name': 'sonde.consent.choice',
          'sonde.consent.category': 'product',
          'sonde.consent.choice': 'default',
          'sonde.consent.source': 'user',
          'sonde.consent.subject': pseudonym(BOB),
        },
      },
      {
        scope: '@sonde/node/consent',
        traceId: '',
        severity: 9,
        attributes: {
          'event.name': 'sonde.consent.choice',
          'sonde.consent.category': 'product',
          'sonde.consent.choice': 'granted',
          'sonde.consent.source': 'user',
        },
      },
    ]);
    expect(pseudonym(ALICE)).toMatch(/^[0-9a-f]{16}$/);
    // The ids never left the process in clear; no business event (product is off); no per-request counter.
    for (const body of rx.raw) {
      expect(body.includes(ALICE)).toBe(false);
      expect(body.includes(BOB)).toBe(false);
    }
    expect(rx.logs().filter((l) => l.service === service && l.record.eventName === 'feature.used')).toEqual([]);
    expect(rx.metrics().filter((m) => m.service === service && m.metric.name.startsWith('sonde.consent'))).toEqual([]);
  } finally {
    await app.stop('SIGKILL');
  }
});

test('without an HMAC key the subject is left out (one warning); bad choices are refused', async () => {
  const service = 'consent-record-no-key';
  const app = await startApp('consent-app.mjs', ESM, {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
  });
  try {
    for (const user of [ALICE, BOB]) expect((await choose(app.url, { user, product: '0' })).status).toBe(200);
    const bad = async (choices: string, subject = false) => {
      const res = await fetch(`${app.url}/bad?choices=${encodeURIComponent(choices)}${subject ? '&subject=1' : ''}`, {
        method: 'POST',
      });
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: string }).error;
    };
    expect(await bad('{"marketing":true}')).toMatch(/unknown consent category marketing/);
    expect(await bad('{"product":"maybe"}')).toMatch(/must be true, false, 'granted', 'denied' or 'default'/);
    expect(await bad('{"product":true}', true)).toMatch(/subject must be a non-empty string/);
    await waitFor('two consent choice records', () => choicesOf(service).length >= 2 || undefined);
    await app.stop('SIGTERM');
    const records = choicesOf(service);
    expect(records).toHaveLength(2);
    for (const { record } of records) {
      expect(attr(record.attributes, 'sonde.consent.subject')).toBeUndefined();
      expect(attr(record.attributes, 'sonde.consent.choice')).toBe('denied');
    }
    for (const body of rx.raw) expect(body.includes(ALICE)).toBe(false);
    const warnings = app.stderr.join('').match(/no HMAC key is set/g) ?? [];
    expect(warnings).toHaveLength(1);
  } finally {
    await app.stop('SIGKILL');
  }
});

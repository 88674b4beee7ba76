/**
 * CORS preflights (OPTIONS with Origin and Access-Control-Request-Method) are not export requests: a
 * refused one is not counted in sonde_receiver_refused_requests_total / requests_total, but in
 * sonde_receiver_cors_preflights_total{signal,outcome} — allowed, origin_not_allowed, or cors_disabled
 * when otlp.http.cors_allowed_origins is empty. Another method, or an OPTIONS that is no preflight,
 * is still a refused export request (method_not_allowed).
 */
import { startTestReceiver, type TestReceiver } from './helpers';

async function metricsText(t: TestReceiver): Promise<string> {
  return (await fetch(`${t.admin}/metrics`)).text();
}

function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const preflight = (url: string, origin: string) =>
  fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });

describe.each([
  ['CORS on', ['https://*.example.com']],
  ['CORS off', []],
])('preflights with %s', (_name, origins) => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ otlp: { http: { cors_allowed_origins: origins } } });
  });
  afterAll(() => t.close());

  test('are counted apart from export requests, by signal and outcome', async () => {
    const allowed = await preflight(`${t.http}/v1/traces`, 'https://app.example.com');
    const other = await preflight(`${t.http}/v1/logs`, 'https://evil.test');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    if (origins.length > 0) {
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    } else {
      expect(allowed.headers.get('access-control-allow-origin')).toBeNull();
    }
    const text = await metricsText(t);
    const refusedOutcome = origins.length > 0 ? 'origin_not_allowed' : 'cors_disabled';
    expect(sample(text, 'sonde_receiver_cors_preflights_total', `signal="logs",outcome="${refusedOutcome}"`)).toBe(1);
    expect(
      sample(
        text,
        'sonde_receiver_cors_preflights_total',
        `signal="traces",outcome="${origins.length > 0 ? 'allowed' : 'cors_disabled'}"`,
      ),
    ).toBe(1);
    expect(text).not.toContain('reason="method_not_allowed"');
    expect(text).not.toMatch(/sonde_receiver_requests_total\{[^}]*outcome="refused"/);
  });

  test('another method, or an OPTIONS that is no preflight, is still a refused export request', async () => {
    expect((await fetch(`${t.http}/v1/metrics`, { method: 'GET' })).status).toBe(405);
    // Without Origin and Access-Control-Request-Method it is no preflight, CORS on or off: no CORS
    // answer (the CORS layer answers browsers only), and counted as the wrong method it is.
    expect((await fetch(`${t.http}/v1/metrics`, { method: 'OPTIONS' })).status).toBe(405);
    const text = await metricsText(t);
    expect(
      sample(
        text,
        'sonde_receiver_refused_requests_total',
        'signal="metrics",transport="http",reason="method_not_allowed"',
      ),
    ).toBe(2);
    expect(text).not.toMatch(/sonde_receiver_cors_preflights_total\{signal="metrics"/);
  });
});

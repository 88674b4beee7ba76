/**
 * The storefront's browser page, visited by runBrowserLoad in headless Chromium (Debian's `chromium`):
 * @sonde/web in the page sends sessions, consent choices and the funnel events to a real receiver
 * (CORS allowing the storefront's origin), and its fetches carry trace context, so the storefront's
 * server spans are children of the browser's fetch spans.
 */
import { type Batch, startReceiver, validateConfig } from '@sonde/receiver';
import { chromiumPath, runBrowserLoad, startShop } from '../src';

type KV = { key: string; value: unknown };
const attr = (attrs: KV[], key: string) => attrs.find((a) => a.key === key)?.value;

test('browser visits: sessions, consent choices, funnel events, and browser → storefront traces', async () => {
  expect(chromiumPath()).toBeDefined(); // test/setup/debian-packages.sh installs chromium
  const receiver = await startReceiver(
    validateConfig({
      otlp: {
        http: { address: '127.0.0.1:0', cors_allowed_origins: ['http://127.0.0.1:*'] },
        grpc: { address: 'off' },
      },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
    }),
    { defaultMetrics: false },
  );
  const traces: Batch<'traces'>[] = [];
  const logs: Batch<'logs'>[] = [];
  receiver.pipeline.traces.addConsumer({ name: 'capture', consume: (b) => void traces.push(b) });
  receiver.pipeline.logs.addConsumer({ name: 'capture', consume: (b) => void logs.push(b) });
  try {
    await visitAndCheck(receiver, traces, logs);
  } finally {
    // Closed whatever happened, so that a failed expectation does not leave the test run waiting on it.
    await receiver.close();
  }
});

async function visitAndCheck(
  receiver: Awaited<ReturnType<typeof startReceiver>>,
  traces: Batch<'traces'>[],
  logs: Batch<'logs'>[],
): Promise<void> {
  const endpoint = `http://${receiver.addresses.otlpHttp}`;
  const shop = await startShop({
    otlpEndpoint: endpoint,
    env: { OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_BLRP_SCHEDULE_DELAY: '100', DEMO_WEB_OTLP_ENDPOINT: endpoint },
  });
  try {
    // Five visits however long a busy machine makes them take (one started each second, two at once).
    const stats = await runBrowserLoad({
      url: shop.storefrontUrl,
      visitsPerMinute: 60,
      durationMs: Number.POSITIVE_INFINITY,
      visits: 5,
    });
    expect(stats.visits).toBe(5);
    expect(stats.completed).toBe(stats.visits);
  } finally {
    await shop.stop();
  }
  const records = logs.flatMap((b) =>
    b.data.flatMap((rl) =>
      rl.scopeLogs.flatMap((sl) =>
        sl.logRecords.map((l) => ({
          service: attr(rl.resource.attributes as KV[], 'service.name'),
          device: attr(rl.resource.attributes as KV[], 'device.type'),
          event: l.eventName,
          attributes: l.attributes as KV[],
        })),
      ),
    ),
  );
  const web = records.filter((r) => r.service === 'storefront-web');
  const count = (event: string) => web.filter((r) => r.event === event).length;
  expect(count('session.start')).toBeGreaterThanOrEqual(4); // the opted-out visitor has no product events
  expect(count('shop.product_opened')).toBeGreaterThanOrEqual(4);
  const choices = web.filter((r) => r.event === 'sonde.consent.choice');
  expect(choices.map((c) => attr(c.attributes, 'sonde.consent.choice')).sort()).toEqual(
    expect.arrayContaining(['denied', 'granted']),
  );
  expect(web.find((r) => r.event === 'session.start')?.device).toBe('desktop');

  const spans = traces.flatMap((b) =>
    b.data.flatMap((rs) =>
      rs.scopeSpans.flatMap((ss) =>
        ss.spans.map((s) => ({ ...s, service: attr(rs.resource.attributes as KV[], 'service.name') })),
      ),
    ),
  );
  const browserFetches = new Set(
    spans.filter((s) => s.service === 'storefront-web' && s.name.startsWith('GET')).map((s) => s.spanId),
  );
  const linked = spans.filter((s) => s.service === 'storefront' && browserFetches.has(s.parentSpanId));
  expect(linked.length).toBeGreaterThan(0);
}

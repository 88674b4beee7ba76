/**
 * W3C trace context from the browser to the backend: a click in a page running the script-tag build
 * fetches a product from the demo storefront (started with @sonde/node, as the demo runs it), which
 * calls the cart service. The receiver's trace store, read through its Tempo API, must hold one
 * trace with the browser's click and fetch spans, the storefront's server span as the fetch span's
 * child, and the cart's span: browser → storefront → cart by trace id.
 */
import { type Shop, startShop } from '@sonde/demo';
import {
  launch,
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
let shop: Shop;
let server: PageServer;
let tb: TestBrowser;

beforeAll(async () => {
  server = await startPageServer();
  receiver = await startTestReceiver([server.origin], true);
  shop = await startShop({
    otlpEndpoint: receiver.endpoint,
    env: { OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_BLRP_SCHEDULE_DELAY: '100', DEMO_NO_FAULTS: '1' },
  });
  server.shopUrl = shop.storefrontUrl;
  tb = await launch();
}, 120_000);

afterAll(async () => {
  await tb?.close();
  await server?.close();
  await shop?.stop();
  await receiver?.close();
});

interface TempoTrace {
  trace: {
    resourceSpans: {
      resource: { attributes: { key: string; value: { stringValue?: string } }[] };
      scopeSpans: {
        spans: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: unknown }[];
      }[];
    }[];
  };
}

test('a click that fetches from the storefront: browser, storefront and cart spans share one trace', async () => {
  server.pages.set(
    '/',
    testPage(
      `{ endpoint: ${JSON.stringify(receiver.endpoint)}, serviceName: 'shop-web', defer: 'never', batchDelayMs: 100 }`,
      `document.getElementById('buy').addEventListener('click', () => {
         fetch('/shop/products/tea-green', { headers: { 'x-user': 'u-1' } })
           .then((r) => r.json()).then((p) => { window.done = p; });
       });`,
    ),
  );
  await tb.page.goto(`${server.origin}/`, { waitUntil: 'load' });
  await tb.page.click('#buy');
  await tb.page.waitForFunction('window.done && window.done.sku === "tea-green"', { timeout: 10_000 });

  // The fetch carried a traceparent header.
  const shopRequest = tb.requests.find((r) => r.url.endsWith('/shop/products/tea-green'));
  expect(shopRequest?.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const [, traceId, fetchSpanId] = shopRequest?.headers.traceparent.split('-') ?? [];

  await until(
    () => spansOf(receiver).some((s) => s.service === 'shop-web' && s.spanId === fetchSpanId),
    'the browser fetch span at the receiver',
  ).catch((e) => {
    throw new Error(`${e}; page: ${JSON.stringify({ console: tb.console, requests: tb.requests })}`);
  });
  const browserSpans = spansOf(receiver).filter((s) => s.service === 'shop-web' && s.traceId === traceId);
  const click = browserSpans.find((s) => s.name === 'click');
  const fetchSpan = browserSpans.find((s) => s.spanId === fetchSpanId);
  expect(click).toBeDefined();
  expect(fetchSpan?.parentSpanId).toBe(click?.spanId);
  expect(fetchSpan?.attributes['session.id']).toMatch(/^[0-9a-f]{32}$/);

  // The whole trace from the trace store's Tempo API.
  let services = new Set<string>();
  let found: TempoTrace | undefined;
  await until(async () => {
    await receiver.receiver.traceStore?.flush();
    const res = await fetch(`${receiver.admin}/api/v2/traces/${traceId}`, { headers: { accept: 'application/json' } });
    if (res.status !== 200) return false;
    found = (await res.json()) as TempoTrace;
    services = new Set(
      found.trace.resourceSpans.map(
        (rs) => rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '',
      ),
    );
    return services.has('shop-web') && services.has('storefront') && services.has('cart');
  }, 'browser, storefront and cart spans in one trace in the trace store');
  expect([...services].sort()).toEqual(['cart', 'shop-web', 'storefront']);
  const spans = found?.trace.resourceSpans.flatMap((rs) => {
    const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
    return rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, service })));
  });
  // Tempo's JSON has ids in hex or base64.
  const hex = (id: string | undefined) =>
    !id ? undefined : /^[0-9a-f]{16}$/.test(id) ? id : Buffer.from(id, 'base64').toString('hex');
  const storefrontRoot = spans?.find((s) => s.service === 'storefront' && hex(s.parentSpanId) === fetchSpanId);
  expect(storefrontRoot).toBeDefined();
});

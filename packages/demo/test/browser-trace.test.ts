/**
 * W3C trace context from the browser to the backend, through the receiver's trace store: in headless
 * Chromium (Debian's `chromium`), a click on the storefront's browser page (@sonde/web's script-tag
 * build) fetches a product; the storefront calls the cart. The trace store's Tempo API must hold one
 * trace with the page's click and fetch spans, the storefront's server span as the fetch span's child,
 * and the cart's spans: browser → storefront → cart by trace id.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startReceiver, validateConfig } from '@sonde/receiver';
import puppeteer from 'puppeteer-core';
import { chromiumPath, startShop } from '../src';

interface TempoTrace {
  trace: {
    resourceSpans: {
      resource: { attributes: { key: string; value: { stringValue?: string } }[] };
      scopeSpans: { spans: { traceId: string; spanId: string; parentSpanId?: string; name: string }[] }[];
    }[];
  };
}

// Tempo's JSON has ids in hex or base64.
const hex = (id: string | undefined) =>
  !id ? undefined : /^[0-9a-f]{16}$/.test(id) ? id : Buffer.from(id, 'base64').toString('hex');

test('a click that fetches a product: browser, storefront and cart spans share one trace in the trace store', async () => {
  const executablePath = chromiumPath();
  expect(executablePath).toBeDefined(); // test/setup/debian-packages.sh installs chromium
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-demo-trace-'));
  const receiver = await startReceiver(
    validateConfig({
      otlp: {
        http: { address: '127.0.0.1:0', cors_allowed_origins: ['http://127.0.0.1:*'] },
        grpc: { address: 'off' },
      },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      data_dir: dataDir,
      trace_store: { enabled: true, batch_timeout: '10ms' },
    }),
    { defaultMetrics: false },
  );
  const endpoint = `http://${receiver.addresses.otlpHttp}`;
  const shop = await startShop({
    otlpEndpoint: endpoint,
    env: { OTEL_BSP_SCHEDULE_DELAY: '100', DEMO_NO_FAULTS: '1', DEMO_WEB_OTLP_ENDPOINT: endpoint },
  });
  const browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox'], timeout: 30_000 });
  try {
    const page = await browser.newPage();
    const traceparents: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/products/')) traceparents.push(r.headers().traceparent ?? '');
    });
    await page.goto(`${shop.storefrontUrl}/`, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="1"] button.product');
    await page.click('button.product');
    await page.waitForFunction('document.getElementById("detail")?.dataset.sku');
    expect(traceparents).toHaveLength(1);
    expect(traceparents[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const [, traceId, fetchSpanId] = traceparents[0].split('-');
    // The fetch span ends once the response's timing is known, a little after the fetch resolves.
    await page.evaluate('new Promise((r) => setTimeout(r, 500)).then(() => sonde.flush())');
    await page.close();

    let found: TempoTrace | undefined;
    let services = new Set<string>();
    const deadline = Date.now() + 20_000;
    for (;;) {
      await receiver.traceStore?.flush();
      const res = await fetch(`http://${receiver.addresses.admin}/api/v2/traces/${traceId}`, {
        headers: { accept: 'application/json' },
      });
      if (res.status === 200) {
        found = (await res.json()) as TempoTrace;
        services = new Set(
          found.trace.resourceSpans.map(
            (rs) => rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '',
          ),
        );
        if (services.has('storefront-web') && services.has('storefront') && services.has('cart')) break;
      }
      if (Date.now() > deadline) throw new Error(`the trace has only ${[...services].join(', ') || 'nothing'}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const spans = (found?.trace.resourceSpans ?? []).flatMap((rs) => {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
      return rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, service })));
    });
    const click = spans.find((s) => s.service === 'storefront-web' && s.name === 'click');
    const fetchSpan = spans.find((s) => s.service === 'storefront-web' && hex(s.spanId) === fetchSpanId);
    expect(click).toBeDefined();
    expect(hex(fetchSpan?.parentSpanId)).toBe(hex(click?.spanId));
    expect(spans.some((s) => s.service === 'storefront' && hex(s.parentSpanId) === fetchSpanId)).toBe(true);
  } finally {
    const child = browser.process();
    await browser.close().catch(() => child?.kill('SIGKILL'));
    await shop.stop();
    await receiver.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

/**
 * Web vitals on the receiver's /metrics from many page views at once, in headless Chromium against a
 * real receiver: pages of one site are short-lived sources that share a series (same job, no
 * service.instance.id), exporting delta histograms whose intervals overlap and interleave. Each
 * vital's _count on /metrics, summed over its ratings, must be the number of page views that reported
 * it (every page reports TTFB, LCP, CLS, and INP after a click, once), and equal the counts the pages
 * sent. Before the receiver added every delta whatever its start time, a delta that did not continue
 * its series reset it, and /metrics held a fraction of the page views.
 */
import type { Page } from 'puppeteer-core';
import {
  histogramsOf,
  launch,
  type PageServer,
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

beforeAll(async () => {
  server = await startPageServer();
  receiver = await startTestReceiver([server.origin]);
  server.pages.set('/elsewhere', '<!doctype html><p>another page</p>');
  tb = await launch();
}, 60_000);

afterAll(async () => {
  await tb?.close();
  await server?.close();
  await receiver?.close();
});

const VITALS = ['web_vitals.ttfb', 'web_vitals.lcp', 'web_vitals.inp', 'web_vitals.cls'];
const PAGES = 6;

/** `<family>_count` values on /metrics for the route, summed over every other label (ratings), by family. */
async function countsOnMetrics(route: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${receiver.admin}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(web_vitals_[a-z]+)_\w*count\{([^}]*)\} (\S+)$/.exec(line);
    if (!m?.[2].includes(`page_route="${route}"`)) continue;
    out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[3]));
  }
  return out;
}

test('each vital _count on /metrics is the number of page views that reported it, from pages open at once', async () => {
  server.pages.set(
    '/product/:id',
    testPage(
      // Each page exports every 150 ms, so the pages' delta intervals overlap and interleave.
      `{ endpoint: ${JSON.stringify(receiver.endpoint)}, serviceName: 'shop-web', defer: 'never', batchDelayMs: 50,
         metricIntervalMs: 150 }`,
      `const h = document.createElement('h1'); h.textContent = 'A large heading for the LCP'; document.body.append(h);`,
    ),
  );
  // The page server serves one body for every /product/<id> (route /product/:id).
  for (let i = 1; i <= PAGES; i++) server.pages.set(`/product/${1000 + i}`, server.pages.get('/product/:id') as string);
  // One browser context per page view, as separate browsers: each page is visible (a background tab
  // of one window is hidden, and web-vitals reports no LCP for a page hidden at load).
  const pages: Page[] = [];
  for (let i = 0; i < PAGES; i++) pages.push(await (await tb.browser.createBrowserContext()).newPage());
  await Promise.all(pages.map((p, i) => p.goto(`${server.origin}/product/${1001 + i}`, { waitUntil: 'load' })));
  await Promise.all(pages.map((p) => p.click('h1'))); // an interaction: INP, and it settles LCP
  await new Promise((r) => setTimeout(r, 400)); // a few periodic exports from every page
  // Leaving each page: hidden, then pagehide; what is left goes out with keepalive.
  await Promise.all(pages.map((p) => p.goto(`${server.origin}/elsewhere`, { waitUntil: 'load' })));

  const sent = () => {
    const out = new Map<string, number>();
    for (const p of histogramsOf(receiver)) {
      if (!VITALS.includes(p.metric) || p.attributes['page.route'] !== '/product/:id') continue;
      out.set(p.metric, (out.get(p.metric) ?? 0) + p.count);
    }
    return out;
  };
  await until(
    () => VITALS.every((v) => (sent().get(v) ?? 0) >= PAGES),
    `${PAGES} page views of each vital`,
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; received: ${JSON.stringify(Object.fromEntries(sent()))}`);
  });
  // Every page view reported each vital once.
  expect(Object.fromEntries(sent())).toEqual(Object.fromEntries(VITALS.map((v) => [v, PAGES])));
  // More than one export per page: the points' intervals overlap across pages.
  const points = histogramsOf(receiver).filter((p) => p.attributes['page.route'] === '/product/:id');
  expect(points.length).toBeGreaterThan(VITALS.length);

  const onMetrics = await countsOnMetrics('/product/:id');
  expect(Object.fromEntries(onMetrics)).toEqual({
    web_vitals_ttfb: PAGES,
    web_vitals_lcp: PAGES,
    web_vitals_inp: PAGES,
    web_vitals_cls: PAGES,
  });
  const own = await (await fetch(`${receiver.admin}/metrics`)).text();
  expect(own).toMatch(/^sonde_prometheus_series_resets_total 0$/m);
  expect(own).not.toMatch(/^sonde_prometheus_dropped_points_total/m);
});

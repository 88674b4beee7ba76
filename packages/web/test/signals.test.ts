/**
 * What a page sends by itself, in headless Chromium against a real receiver: uncaught errors and
 * unhandled rejections as log records with `exception.*`; Core Web Vitals as histograms by page
 * route, sent when the page is left; anonymous sessions (start, end after inactivity with the
 * duration, a new id at the next activity); and the coarse browser segments on the resource.
 */
import {
  histogramsOf,
  launch,
  logsOf,
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

declare const sonde: { flush(): Promise<void>; sessionId(): string };

const options = (extra = '') =>
  `{ endpoint: ${JSON.stringify(receiver.endpoint)}, serviceName: 'signals-web', defer: 'never', batchDelayMs: 100,
     consent: { product: true }${extra} }`;

test('an uncaught error and an unhandled rejection become log records with exception.*', async () => {
  server.pages.set(
    '/errors',
    testPage(
      options(),
      `setTimeout(() => { null.boom(); }, 10);
       setTimeout(() => { Promise.reject(new RangeError('out of range')); }, 20);`,
    ),
  );
  await tb.page.goto(`${server.origin}/errors`, { waitUntil: 'load' });
  const errors = () => logsOf(receiver).filter((l) => l.attributes['exception.type'] !== undefined);
  await until(async () => {
    await tb.page.evaluate(() => sonde.flush());
    return errors().length >= 2;
  }, 'two error records');
  const byType = Object.fromEntries(errors().map((l) => [l.attributes['exception.type'], l]));
  expect(byType.TypeError.attributes).toMatchObject({
    'exception.message': expect.stringContaining('boom'),
    'exception.stacktrace': expect.stringContaining('TypeError'),
    'exception.mechanism': 'error',
    'sonde.consent.category': 'diagnostics',
    'page.route': '/errors',
  });
  expect(byType.TypeError.severityNumber).toBe(17);
  expect(byType.RangeError.attributes).toMatchObject({
    'exception.message': 'out of range',
    'exception.mechanism': 'unhandledrejection',
  });
});

test('web vitals: TTFB, LCP, INP and CLS as histograms by page route, sent when the page is left', async () => {
  server.pages.set(
    '/vitals/12345',
    testPage(
      options(', metricIntervalMs: 600000'),
      `const h = document.createElement('h1'); h.textContent = 'A large heading for the LCP'; document.body.append(h);`,
    ),
  );
  await tb.page.goto(`${server.origin}/vitals/12345`, { waitUntil: 'load' });
  // The browser reports the paint (LCP) and the click (event timing) to observers only after the
  // frame is presented; a page left before that has no LCP or INP to send (on a busy machine too).
  // LCP is the largest paint before the first input: the browser stops reporting paints at the first
  // click and web-vitals finalizes LCP there, so a click before the first frame is presented leaves
  // no LCP at all (CI flaked so once on a busy machine, every other vital present).
  // So the paint is waited for before the click, and the click before leaving. (At most 10 s each:
  // if they never come, the wait below says which vitals arrived.)
  const reported = (type: string) =>
    tb.page.evaluate(
      (entryType) =>
        Promise.race([
          new Promise<void>((resolve) =>
            new PerformanceObserver(() => resolve()).observe({ type: entryType, buffered: true }),
          ),
          new Promise((resolve) => setTimeout(resolve, 10_000)),
        ]),
      type,
    );
  await reported('largest-contentful-paint');
  await tb.page.click('h1'); // an interaction settles LCP
  await reported('first-input');
  await new Promise((r) => setTimeout(r, 200));
  // Leaving the page: hidden, then pagehide; the histograms go out with keepalive.
  await tb.page.goto(`${server.origin}/elsewhere`, { waitUntil: 'load' });
  // This page's route (the page of the test before sent its own when it was left).
  const vitals = () =>
    histogramsOf(receiver).filter(
      (p) => p.metric.startsWith('web_vitals.') && p.attributes['page.route'] === '/vitals/:id',
    );
  await until(
    () => new Set(vitals().map((p) => p.metric)).size >= 4,
    () => `TTFB, LCP, INP (the click) and CLS; got ${[...new Set(vitals().map((p) => p.metric))].join(', ') || 'none'}`,
  );
  const names = new Set(vitals().map((p) => p.metric));
  expect(names).toEqual(new Set(['web_vitals.ttfb', 'web_vitals.lcp', 'web_vitals.inp', 'web_vitals.cls']));
  for (const p of vitals()) {
    expect(['good', 'needs-improvement', 'poor']).toContain(p.attributes['web_vitals.rating']);
    expect(p.count).toBe(1);
  }
  expect(vitals().find((p) => p.metric === 'web_vitals.lcp')?.unit).toBe('ms');
});

test('sessions: start, end after inactivity with its duration, a new id at the next activity; coarse segments', async () => {
  server.pages.set('/session', testPage(options(', sessionInactivityMs: 1000')));
  const page = await tb.browser.newPage();
  await page.goto(`${server.origin}/session`, { waitUntil: 'load' });
  const first = await page.evaluate(() => sonde.sessionId());
  expect(await page.evaluate(() => JSON.parse(sessionStorage.getItem('sonde.session') ?? '{}').id)).toBe(first);
  // Inactive for longer than 1 s: the timer ends the session.
  await new Promise((r) => setTimeout(r, 2500));
  await page.click('#buy');
  const second = await page.evaluate(() => sonde.sessionId());
  expect(second).not.toBe(first);
  // (Only this page's sessions: the other tests' pages have sessions of their own.)
  const sessionEvents = () =>
    logsOf(receiver).filter(
      (l) =>
        (l.eventName === 'session.start' || l.eventName === 'session.end') &&
        [first, second].includes(l.attributes['session.id'] as string),
    );
  await until(async () => {
    await page.evaluate(() => sonde.flush());
    return sessionEvents().length >= 3;
  }, 'session start, end, start');
  expect(sessionEvents().map((l) => [l.eventName, l.attributes['session.id']])).toEqual([
    ['session.start', first],
    ['session.end', first],
    ['session.start', second],
  ]);
  const end = sessionEvents()[1];
  expect(end.attributes['session.duration_ms']).toBeGreaterThanOrEqual(0);
  expect(end.attributes['session.duration_ms']).toBeLessThan(2000);
  expect(end.attributes['sonde.consent.category']).toBe('product');
  expect(end.resource).toMatchObject({
    'browser.name': expect.stringMatching(/^(Chrome|Chromium|Chrome Headless)$/),
    'browser.version': expect.stringMatching(/^\d+$/),
    'device.type': 'desktop',
    'os.name': 'Linux',
  });
  await page.close();
});

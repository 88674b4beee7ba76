/**
 * Metered and offline deferral, in headless Chromium against a real receiver. Offline is the DevTools
 * protocol's network emulation (navigator.onLine false, requests fail); `saveData` and a cellular
 * connection are a `navigator.connection` the page sees from its first script (set before any of it
 * runs). While any holds, exports wait in IndexedDB (the test reads the database itself) and nothing
 * reaches the receiver; once lifted, every event arrives (none lost), gzip-compressed and merged into
 * fewer requests. The queue is bounded (the oldest dropped, counted), and the last event of a page is
 * delivered when the page is left.
 */
import {
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

interface Stats {
  sent: number;
  queued: number;
  dropped: number;
  deferredBy: string;
}
declare const sonde: {
  track(name: string, attributes?: Record<string, unknown>): boolean;
  flush(): Promise<void>;
  stats(): Stats;
};
declare const fakeConnection: EventTarget & { saveData: boolean; type: string };

const options = (db: string, extra = '') =>
  `{ endpoint: ${JSON.stringify(receiver.endpoint)}, serviceName: 'defer-web', batchDelayMs: 100, webVitals: false,
     consent: { product: true }, dbName: ${JSON.stringify(db)},
     instrumentations: { documentLoad: false, fetch: false, xhr: false, userInteraction: false }${extra} }`;

const eventsNamed = (prefix: string) =>
  logsOf(receiver)
    .map((l) => l.eventName ?? '')
    .filter((n) => n.startsWith(prefix));

/** Exports now in the page's IndexedDB queue, read from the database directly (0 when there is none). */
function queuedInDb(page: TestBrowser['page'], db: string): Promise<number> {
  return page.evaluate(
    (name) =>
      new Promise<number>((resolve) => {
        const open = indexedDB.open(name);
        open.onerror = () => resolve(0);
        open.onsuccess = () => {
          try {
            const count = open.result.transaction('exports', 'readonly').objectStore('exports').count();
            count.onsuccess = () => {
              resolve(count.result);
              open.result.close();
            };
            count.onerror = () => resolve(0);
          } catch {
            open.result.close();
            resolve(0);
          }
        };
      }),
    db,
  );
}

/** Emits `n` events named `${prefix}.${i}`, each flushed into an export of its own. */
async function emit(page: TestBrowser['page'], prefix: string, n: number): Promise<void> {
  await page.evaluate(
    async (p, count) => {
      for (let i = 0; i < count; i++) {
        sonde.track(`${p}.${i}`, { i });
        await sonde.flush();
      }
    },
    prefix,
    n,
  );
}

test('offline: exports wait in IndexedDB and all arrive, compressed and merged, once back online', async () => {
  server.pages.set('/offline', testPage(options('q-offline')));
  const page = tb.page;
  await page.goto(`${server.origin}/offline`, { waitUntil: 'load' });
  await tb.cdp.send('Network.emulateNetworkConditions', {
    offline: true,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: -1,
  });
  await until(() => page.evaluate(() => !navigator.onLine), 'navigator.onLine false');
  await emit(page, 'offline', 5);
  await until(async () => (await queuedInDb(page, 'q-offline')) >= 5, 'the exports in IndexedDB');
  expect(await page.evaluate(() => sonde.stats())).toMatchObject({ deferredBy: 'offline', dropped: 0 });
  await new Promise((r) => setTimeout(r, 300));
  expect(eventsNamed('offline.')).toEqual([]);

  const mark = tb.requests.length;
  await tb.cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: -1,
  });
  await until(() => eventsNamed('offline.').length >= 5, 'the events once online');
  await until(async () => (await queuedInDb(page, 'q-offline')) === 0, 'an empty queue');
  // None lost, none twice.
  expect(eventsNamed('offline.').sort()).toEqual(['offline.0', 'offline.1', 'offline.2', 'offline.3', 'offline.4']);
  const drained = tb.requests.slice(mark).filter((r) => r.method === 'POST' && r.url.endsWith('/v1/logs'));
  // Merged: fewer requests than exports (sessions' own start event may ride along), and gzip-compressed.
  expect(drained.length).toBeGreaterThan(0);
  expect(drained.length).toBeLessThan(5);
  for (const r of drained) expect(r.headers['content-encoding']).toBe('gzip');
});

test('saveData, then cellular: exports wait; sent when the connection allows; none lost', async () => {
  const page = await tb.browser.newPage();
  await page.evaluateOnNewDocument(() => {
    const c = Object.assign(new EventTarget(), { saveData: true, type: 'wifi', effectiveType: '4g' });
    (globalThis as unknown as { fakeConnection: typeof c }).fakeConnection = c;
    Object.defineProperty(Navigator.prototype, 'connection', { get: () => c });
  });
  server.pages.set('/metered', testPage(options('q-metered')));
  await page.goto(`${server.origin}/metered`, { waitUntil: 'load' });
  await emit(page, 'savedata', 3);
  await until(async () => (await queuedInDb(page, 'q-metered')) >= 3, 'the exports in IndexedDB (saveData)');
  expect((await page.evaluate(() => sonde.stats())).deferredBy).toBe('save_data');

  // saveData off, but on a cellular connection now: still waiting.
  await page.evaluate(() => {
    fakeConnection.saveData = false;
    fakeConnection.type = 'cellular';
    fakeConnection.dispatchEvent(new Event('change'));
  });
  await emit(page, 'cellular', 2);
  await until(async () => (await queuedInDb(page, 'q-metered')) >= 5, 'the exports in IndexedDB (cellular)');
  expect((await page.evaluate(() => sonde.stats())).deferredBy).toBe('cellular');
  await new Promise((r) => setTimeout(r, 300));
  expect([...eventsNamed('savedata.'), ...eventsNamed('cellular.')]).toEqual([]);

  await page.evaluate(() => {
    fakeConnection.type = 'wifi';
    fakeConnection.dispatchEvent(new Event('change'));
  });
  await until(() => eventsNamed('savedata.').length + eventsNamed('cellular.').length >= 5, 'the events on wifi');
  expect([...eventsNamed('savedata.'), ...eventsNamed('cellular.')].sort()).toEqual([
    'cellular.0',
    'cellular.1',
    'savedata.0',
    'savedata.1',
    'savedata.2',
  ]);
  await until(async () => (await queuedInDb(page, 'q-metered')) === 0, 'an empty queue');
  await page.close();
});

test("defer: 'never' sends on a metered connection; the queue is bounded, the oldest dropped and counted", async () => {
  const page = await tb.browser.newPage();
  await page.evaluateOnNewDocument(() => {
    const c = Object.assign(new EventTarget(), { saveData: true, type: 'cellular' });
    Object.defineProperty(Navigator.prototype, 'connection', { get: () => c });
  });
  server.pages.set('/never', testPage(options('q-never', ", defer: 'never'")));
  await page.goto(`${server.origin}/never`, { waitUntil: 'load' });
  await emit(page, 'never', 2);
  await until(() => eventsNamed('never.').length === 2, 'the events sent at once');

  server.pages.set('/bounded', testPage(options('q-bounded', ', queue: { maxItems: 3 }')));
  await page.goto(`${server.origin}/bounded`, { waitUntil: 'load' });
  await emit(page, 'bounded', 6);
  await until(async () => (await page.evaluate(() => sonde.stats())).dropped >= 3, 'drops');
  expect(await queuedInDb(page, 'q-bounded')).toBe(3);
  expect(await page.evaluate(() => sonde.stats())).toMatchObject({ queued: 3, deferredBy: 'save_data' });
  await page.close();
});

test('the last event of a page is delivered when the page is left (keepalive on pagehide)', async () => {
  server.pages.set('/last', testPage(options('q-last', ', batchDelayMs: 600000')));
  const page = await tb.browser.newPage();
  await page.goto(`${server.origin}/last`, { waitUntil: 'load' });
  await page.evaluate(() => sonde.track('last.event', { step: 'leaving' }));
  await new Promise((r) => setTimeout(r, 200));
  expect(eventsNamed('last.')).toEqual([]); // batched for ten minutes
  await page.goto(`${server.origin}/elsewhere`, { waitUntil: 'load' });
  await until(() => eventsNamed('last.').length === 1, 'the last event after navigating away');
  await page.close();
});

test('a tab closed on a metered connection: its last export is kept and sent by the next page of the origin', async () => {
  server.pages.set('/persist', testPage(options('q-persist', ', batchDelayMs: 600000')));
  server.pages.set('/blank', '<!doctype html><p>no sonde here</p>');
  const page = await tb.browser.newPage();
  await page.evaluateOnNewDocument(() => {
    const c = Object.assign(new EventTarget(), { saveData: true, type: 'wifi' });
    Object.defineProperty(Navigator.prototype, 'connection', { get: () => c });
  });
  await page.goto(`${server.origin}/persist`, { waitUntil: 'load' });
  await page.evaluate(() => sonde.track('left.behind', { n: 1 }));
  // The tab is closed: pagehide exports the batch, which must wait; the page is gone before an
  // IndexedDB transaction could commit, so it is kept synchronously (localStorage), moved to the queue later.
  await page.close({ runBeforeUnload: true });
  await new Promise((r) => setTimeout(r, 300));
  expect(eventsNamed('left.')).toEqual([]);

  // The next page of the origin, on wifi without saveData.
  const next = await tb.browser.newPage();
  await next.goto(`${server.origin}/persist`, { waitUntil: 'load' });
  await until(() => eventsNamed('left.').length === 1, 'the event sent by the next page');
  await until(async () => (await queuedInDb(next, 'q-persist')) === 0, 'an empty queue');
  expect(await next.evaluate(() => localStorage.getItem('q-persist:stash'))).toBeNull();
  await next.close();
});

test('bad options are refused with an error that names them', async () => {
  server.pages.set('/bad', '<!doctype html><script src="/sonde-web.min.js"></script>');
  const page = await tb.browser.newPage();
  await page.goto(`${server.origin}/bad`, { waitUntil: 'load' });
  const errors = await page.evaluate(() => {
    const s = (globalThis as unknown as { sonde: { start(o: unknown): boolean } }).sonde;
    const attempt = (o: unknown) => {
      try {
        s.start(o);
        return 'started';
      } catch (e) {
        return (e as Error).message;
      }
    };
    return [
      attempt({ serviceName: 'x' }),
      attempt({ endpoint: 'otlp.example.com', serviceName: 'x' }),
      attempt({ endpoint: 'http://127.0.0.1:1' }),
      attempt({ endpoint: 'http://127.0.0.1:1', serviceName: 'x', defer: 'sometimes' }),
      attempt({ endpoint: 'http://127.0.0.1:1', serviceName: 'x', hmacKey: 'short' }),
      attempt({ endpoint: 'http://127.0.0.1:1', serviceName: 'x', essential: ['marketing'] }),
    ];
  });
  expect(errors).toEqual([
    expect.stringContaining('endpoint must be an http(s) URL'),
    expect.stringContaining('endpoint must be an http(s) URL'),
    expect.stringContaining('serviceName is required'),
    expect.stringContaining("defer must be 'metered', 'offline' or 'never'"),
    expect.stringContaining('hmacKey must have at least 16 characters'),
    expect.stringContaining('unknown essential category marketing'),
  ]);
  await page.close();
});

/**
 * Browser exporters against the receiver, in headless Chromium (Debian's `chromium`, installed by
 * test/setup/debian-packages.sh; driven by puppeteer-core). A page served from one loopback origin
 * loads the real OpenTelemetry web SDK, bundled by esbuild at test time, and exports a span to
 * receivers on other loopback origins:
 * - sdk-trace-web 2.2 / exporter 0.208 (packages/test-clients/otel-web-2.2) with its browser default,
 *   navigator.sendBeacon, which always sends with credentials;
 * - the same with `headers: {}`, which makes it send with fetch (CORS mode, no credentials);
 * - sdk-trace 3 / exporter 0.301 (the release line of test/package.json), which sends with fetch.
 * Each against a receiver whose otlp.http.cors_allowed_origins lists the page's origin, one with `*`,
 * one listing another origin, and one with CORS off (the default). The spans must arrive exactly when
 * the origin is allowed, and nothing otherwise; the browser's own verdict on every request (CORS error
 * or not) is read from the DevTools protocol's Network domain. Nothing leaves 127.0.0.1: host names
 * do not resolve in this browser.
 *
 * Before the receiver's CORS answers allowed credentials, every sendBeacon export was blocked
 * (`PreflightInvalidAllowCredentials`) while the SDK reported success: the sendBeacon cases here failed.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Batch, type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import * as esbuild from 'esbuild';
import puppeteer, { type Browser, type CDPSession, type Page } from 'puppeteer-core';

const CHROMIUM = '/usr/bin/chromium';
const REPO = path.resolve(__dirname, '../..');

/** The page's SDKs: global name in the page → entry file bundled into it. */
const BUNDLES = {
  otelWeb22: path.join(REPO, 'packages/test-clients/otel-web-2.2/page.js'),
  otelLatest: path.join(__dirname, 'page-latest.js'),
} as const;
type Sdk = keyof typeof BUNDLES;

interface Client {
  sdk: Sdk;
  label: string;
  headers?: Record<string, string>;
  /** The CDP resource type of its export request: 'Ping' for sendBeacon, 'Fetch' for fetch. */
  requestType: 'Ping' | 'Fetch';
}

const CLIENTS: Client[] = [
  { sdk: 'otelWeb22', label: 'sdk-trace-web 2.2 / exporter 0.208, sendBeacon (its default)', requestType: 'Ping' },
  {
    sdk: 'otelWeb22',
    label: 'sdk-trace-web 2.2 / exporter 0.208, fetch (headers set)',
    headers: {},
    requestType: 'Fetch',
  },
  { sdk: 'otelLatest', label: 'sdk-trace 3.1 / exporter 0.301, fetch', requestType: 'Fetch' },
];

type Cors = 'page origin' | '*' | 'another origin' | 'off';
const CORS: Cors[] = ['page origin', '*', 'another origin', 'off'];
const ALLOWED: Record<Cors, boolean> = { 'page origin': true, '*': true, 'another origin': false, off: false };

interface TestReceiver {
  receiver: Receiver;
  tracesUrl: string;
  traces: Batch<'traces'>[];
}

/** What the browser did with one request, from the DevTools protocol. */
interface NetRequest {
  url: string;
  method: string;
  type?: string;
  status?: number;
  /** Set once the request is over: 'finished' or 'failed'. */
  outcome?: 'finished' | 'failed';
  corsError?: string;
  errorText?: string;
}

let pageServer: http.Server;
let pageOrigin: string;
let browser: Browser | undefined;
let page: Page;
let cdp: CDPSession;
const receivers = new Map<Cors | 'auth', TestReceiver>();
let tmpDir: string | undefined;
const TOKEN = 'browser-test-token-6f1c2a9e4b7d3f08a5c1e2d4';
const requests = new Map<string, NetRequest>();

async function startTestReceiver(allowedOrigins: string[], bearerTokensFile?: string): Promise<TestReceiver> {
  const config = validateConfig({
    otlp: {
      http: { address: '127.0.0.1:0', cors_allowed_origins: allowedOrigins },
      grpc: { address: 'off' },
      auth: { bearer_tokens_file: bearerTokensFile },
    },
    admin: { address: '127.0.0.1:0' },
    log: { level: 'silent', summary_interval: 0 },
    trace_store: { enabled: false },
  });
  const receiver = await startReceiver(config, { defaultMetrics: false });
  const traces: Batch<'traces'>[] = [];
  receiver.pipeline.traces.addConsumer({ name: 'capture', consume: (b) => void traces.push(b) });
  return { receiver, tracesUrl: `http://${receiver.addresses.otlpHttp}/v1/traces`, traces };
}

async function bundle(entry: string): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

interface PageExport {
  /** What the exporter reported to the SDK ({ code: 0 } is success). */
  results: unknown;
  /** The export requests (POST) the browser made, each over. */
  posts: NetRequest[];
}

/** Exports one span named `name` from the page with `client`'s SDK, and waits until its requests are over. */
async function exportFromPage(
  client: Client,
  url: string,
  name: string,
  headers = client.headers,
): Promise<PageExport> {
  requests.clear();
  const results = await page.evaluate(
    (sdk, options) =>
      (globalThis as unknown as Record<string, { exportSpan(o: unknown): Promise<unknown> }>)[sdk].exportSpan(options),
    client.sdk,
    { url, headers, name },
  );
  // sendBeacon's outcome is known only here.
  const posts = () => [...requests.values()].filter((r) => r.method === 'POST' && r.url === url);
  await until(() => posts().length > 0 && posts().every((r) => r.outcome), `the export requests of ${name}`);
  for (const r of posts()) expect(r.type).toBe(client.requestType);
  return { results, posts: posts() };
}

function spanNames(target: TestReceiver): string[] {
  return target.traces.flatMap((b) =>
    b.data.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.name))),
  );
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (test/setup/debian-packages.sh does, as root)`);
  }
  const scripts = new Map<string, string>();
  for (const [sdk, entry] of Object.entries(BUNDLES)) scripts.set(`/${sdk}.js`, await bundle(entry));
  const html = `<!doctype html><meta charset="utf-8"><title>sonde browser test</title>${[...scripts.keys()]
    .map((src) => `<script src="${src}"></script>`)
    .join('')}`;
  pageServer = http.createServer((req, res) => {
    const script = scripts.get(req.url ?? '');
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (script) res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;

  receivers.set('page origin', await startTestReceiver([pageOrigin]));
  receivers.set('*', await startTestReceiver(['*']));
  receivers.set('another origin', await startTestReceiver(['https://app.example.com']));
  receivers.set('off', await startTestReceiver([]));
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-browser-'));
  const tokens = path.join(tmpDir, 'tokens');
  fs.writeFileSync(tokens, `${TOKEN}\n`);
  receivers.set('auth', await startTestReceiver([pageOrigin], tokens));

  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true, // --headless=new
    // No host name resolves: the page and the receivers are on 127.0.0.1, nothing else is reached.
    args: ['--no-sandbox', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
    timeout: 30_000,
  });
  page = await browser.newPage();
  cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.requestWillBeSent', (e) => {
    requests.set(e.requestId, { url: e.request.url, method: e.request.method, type: e.type });
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = requests.get(e.requestId);
    if (r) r.status = e.response.status;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = requests.get(e.requestId);
    if (r) r.outcome = 'finished';
  });
  cdp.on('Network.loadingFailed', (e) => {
    const r = requests.get(e.requestId);
    if (!r) return;
    r.outcome = 'failed';
    r.errorText = e.errorText;
    r.corsError = e.corsErrorStatus?.corsError;
  });
  await page.goto(`${pageOrigin}/`, { waitUntil: 'load' });
}, 60_000);

afterAll(async () => {
  const process = browser?.process();
  await browser?.close().catch(() => process?.kill('SIGKILL'));
  await Promise.all([...receivers.values()].map((r) => r.receiver.close()));
  await new Promise((resolve) => pageServer?.close(resolve));
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

describe.each(CLIENTS)('$label', (client) => {
  test.each(CORS)('cors_allowed_origins: %s', async (cors) => {
    const target = receivers.get(cors) as TestReceiver;
    const name = `${client.sdk} ${client.requestType} ${cors}`;
    const { results, posts } = await exportFromPage(client, target.tracesUrl, name);
    if (ALLOWED[cors]) {
      expect(posts).toEqual([expect.objectContaining({ outcome: 'finished', status: 200 })]);
      expect(results).toEqual([{ code: 0 }]);
      await until(() => target.traces.length > 0, `the span at the receiver (${name})`, 5_000);
      expect(spanNames(target)).toEqual([name]);
      expect(target.traces[0].data[0].resource.attributes).toContainEqual({
        key: 'service.name',
        value: 'browser-test',
      });
    } else {
      // Blocked by the browser at the preflight: the POST never reaches the receiver.
      for (const r of posts) {
        expect(r.outcome).toBe('failed');
        expect(r.corsError).toBeTruthy();
      }
      expect(target.traces).toEqual([]);
      if (client.requestType === 'Ping') {
        // sendBeacon only says that the beacon was queued: the SDK reports success, the page cannot tell.
        expect(results).toEqual([{ code: 0 }]);
      } else {
        expect(results).toEqual([{ code: 1, error: expect.any(String) }]);
      }
    }
    target.traces.length = 0;
  });
});

describe('otlp.auth (bearer tokens) with CORS allowed for the page', () => {
  const [beacon, fetch208, fetchLatest] = CLIENTS;
  let target: TestReceiver;
  beforeAll(() => {
    target = receivers.get('auth') as TestReceiver;
  });
  afterEach(() => {
    target.traces.length = 0;
  });

  test('fetch with the token (exporter 0.208): the preflight allows Authorization, the span arrives', async () => {
    const name = 'with a token';
    const { results, posts } = await exportFromPage(fetch208, target.tracesUrl, name, {
      Authorization: `Bearer ${TOKEN}`,
    });
    expect(posts).toEqual([expect.objectContaining({ outcome: 'finished', status: 200 })]);
    expect(results).toEqual([{ code: 0 }]);
    await until(() => target.traces.length > 0, 'the span at the receiver', 5_000);
    expect(spanNames(target)).toEqual([name]);
  });

  test('fetch without a token (exporter 0.301): the page reads the 401 (it carries the CORS headers)', async () => {
    const { results, posts } = await exportFromPage(fetchLatest, target.tracesUrl, 'without a token');
    expect(posts).toEqual([expect.objectContaining({ outcome: 'finished', status: 401 })]);
    expect(results).toEqual([{ code: 1, error: expect.stringContaining('401') }]);
    expect(target.traces).toEqual([]);
  });

  test('sendBeacon (which cannot send a token): the preflight passes, the POST is refused with a readable 401', async () => {
    const { results, posts } = await exportFromPage(beacon, target.tracesUrl, 'beacon without a token');
    expect(posts).toEqual([expect.objectContaining({ outcome: 'finished', status: 401 })]);
    expect(results).toEqual([{ code: 0 }]);
    expect(target.traces).toEqual([]);
  });
});

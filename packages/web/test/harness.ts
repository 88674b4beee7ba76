/**
 * For the browser tests: a real receiver (CORS allowing the page's origin, the trace store on), a
 * page server on another loopback origin serving the built script-tag bundle (dist/sonde-web.min.js)
 * and test pages, optionally proxying /shop/* to the demo storefront (same origin for the page, so
 * fetch sends traceparent), and headless Chromium (Debian's `chromium`) driven by puppeteer-core,
 * with the DevTools protocol's Network domain recording every request the page makes.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Batch, type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import puppeteer, { type Browser, type CDPSession, type Page } from 'puppeteer-core';

export const CHROMIUM = '/usr/bin/chromium';
export const BUNDLE = path.join(__dirname, '../dist/sonde-web.min.js');

export interface TestReceiver {
  receiver: Receiver;
  /** Base OTLP/HTTP URL. */
  endpoint: string;
  admin: string;
  traces: Batch<'traces'>[];
  logs: Batch<'logs'>[];
  metrics: Batch<'metrics'>[];
  dataDir: string;
  close(): Promise<void>;
}

export async function startTestReceiver(allowedOrigins: string[], traceStore = false): Promise<TestReceiver> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-web-'));
  const receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0', cors_allowed_origins: allowedOrigins }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      data_dir: dataDir,
      trace_store: traceStore ? { enabled: true, batch_timeout: '10ms' } : { enabled: false },
    }),
    { defaultMetrics: false },
  );
  const r: TestReceiver = {
    receiver,
    endpoint: `http://${receiver.addresses.otlpHttp}`,
    admin: `http://${receiver.addresses.admin}`,
    traces: [],
    logs: [],
    metrics: [],
    dataDir,
    async close() {
      await receiver.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  receiver.pipeline.traces.addConsumer({ name: 'capture', consume: (b) => void r.traces.push(b) });
  receiver.pipeline.logs.addConsumer({ name: 'capture', consume: (b) => void r.logs.push(b) });
  receiver.pipeline.metrics.addConsumer({ name: 'capture', consume: (b) => void r.metrics.push(b) });
  return r;
}

export interface SpanOut {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  service: string;
  attributes: Record<string, unknown>;
}

function attrMap(list: { key: string; value: unknown }[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, a.value]));
}

export function spansOf(r: TestReceiver): SpanOut[] {
  return r.traces.flatMap((b) =>
    b.data.flatMap((rs) =>
      rs.scopeSpans.flatMap((ss) =>
        ss.spans.map((s) => ({
          name: s.name,
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId || undefined,
          service: String(attrMap(rs.resource.attributes as never)['service.name']),
          attributes: attrMap(s.attributes as never),
        })),
      ),
    ),
  );
}

export interface LogOut {
  eventName?: string;
  body: unknown;
  severityNumber?: number;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
}

export function logsOf(r: TestReceiver): LogOut[] {
  return r.logs.flatMap((b) =>
    b.data.flatMap((rl) =>
      rl.scopeLogs.flatMap((sl) =>
        sl.logRecords.map((l) => ({
          eventName: (l as { eventName?: string }).eventName || undefined,
          body: l.body,
          severityNumber: l.severityNumber,
          attributes: attrMap(l.attributes as never),
          resource: attrMap(rl.resource.attributes as never),
        })),
      ),
    ),
  );
}

export interface NetRequest {
  url: string;
  method: string;
  type?: string;
  status?: number;
  headers: Record<string, string>;
  outcome?: 'finished' | 'failed';
  errorText?: string;
}

export interface PageServer {
  origin: string;
  /** Where /shop/* goes (the demo storefront). */
  shopUrl?: string;
  /** Test pages by path: HTML bodies. */
  pages: Map<string, string>;
  close(): Promise<void>;
}

/** Serves /sonde-web.min.js, the pages, and /shop/* proxied to `shopUrl` (headers passed through). */
export async function startPageServer(): Promise<PageServer> {
  const pages = new Map<string, string>();
  const self: Partial<PageServer> = {};
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/sonde-web.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(fs.readFileSync(BUNDLE));
    } else if (self.shopUrl && url.startsWith('/shop/')) {
      const target = new URL(url.slice('/shop'.length), self.shopUrl);
      const headers = { ...req.headers, host: target.host };
      const out = http.request(target, { method: req.method, headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      out.on('error', () => res.writeHead(502).end());
      req.pipe(out);
    } else if (pages.has(url.split('?')[0])) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(pages.get(url.split('?')[0]));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(self, {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pages,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** A page that loads the script-tag build and starts Sonde with `options` (a JS object literal), then runs `body`. */
export function testPage(options: string, body = ''): string {
  return `<!doctype html><meta charset="utf-8"><title>sonde web test</title>
<script src="/sonde-web.min.js"></script>
<script>sonde.start(${options});</script>
<button id="buy">buy</button>
<script>${body}</script>`;
}

export interface TestBrowser {
  browser: Browser;
  page: Page;
  cdp: CDPSession;
  requests: NetRequest[];
  /** The page's console messages and uncaught errors. */
  console: string[];
  close(): Promise<void>;
}

export async function launch(): Promise<TestBrowser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (test/setup/debian-packages.sh does, as root)`);
  }
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} not found: run npm run build in packages/web`);
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Nothing leaves 127.0.0.1: no host name resolves.
    args: ['--no-sandbox', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
    timeout: 30_000,
  });
  const page = await browser.newPage();
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  const requests: NetRequest[] = [];
  const consoleLines: string[] = [];
  page.on('console', (m) => void consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => void consoleLines.push(`pageerror: ${String(e)}`));
  const byId = new Map<string, NetRequest>();
  cdp.on('Network.requestWillBeSent', (e) => {
    const r: NetRequest = { url: e.request.url, method: e.request.method, type: e.type, headers: e.request.headers };
    byId.set(e.requestId, r);
    requests.push(r);
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = byId.get(e.requestId);
    if (r) r.status = e.response.status;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = byId.get(e.requestId);
    if (r) r.outcome = 'finished';
  });
  cdp.on('Network.loadingFailed', (e) => {
    const r = byId.get(e.requestId);
    if (!r) return;
    r.outcome = 'failed';
    r.errorText = e.errorText;
  });
  return {
    browser,
    page,
    cdp,
    requests,
    console: consoleLines,
    async close() {
      const child = browser.process();
      await browser.close().catch(() => child?.kill('SIGKILL'));
    },
  };
}

export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 15_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface PointOut {
  metric: string;
  unit: string;
  attributes: Record<string, unknown>;
  count: number;
  sum?: number;
  resource: Record<string, unknown>;
}

/** Histogram points at the receiver. */
export function histogramsOf(r: TestReceiver): PointOut[] {
  return r.metrics.flatMap((b) =>
    b.data.flatMap((rm) =>
      rm.scopeMetrics.flatMap((sm) =>
        sm.metrics.flatMap((m) =>
          m.data.type === 'histogram'
            ? m.data.dataPoints.map((p) => ({
                metric: m.name,
                unit: m.unit,
                attributes: attrMap(p.attributes as never),
                count: p.count,
                sum: p.sum,
                resource: attrMap(rm.resource.attributes as never),
              }))
            : [],
        ),
      ),
    ),
  );
}

/**
 * The telemetry that feeds the dashboard test: a small shop of three instrumented Node services
 * (test/feed/shop-service.cjs, each a child process running the real OpenTelemetry Node SDK) and a
 * load loop in this process that calls the storefront.
 *
 *   storefront ──http──▶ cart ──sqlite (db client spans)
 *              └─http──▶ payments (1 in 4 charges fail: error spans, payment.failed events)
 *
 * Resources: service.namespace `sonde-demo`, service.name `storefront|cart|payments`,
 * deployment.environment.name `e2e`, one service.instance.id each. Telemetry goes over OTLP/HTTP
 * protobuf to `otlpEndpoint`, traces and logs batched every 200 ms, metrics every second.
 *
 * This is a stand-in for `@sonde/demo`'s `startShop` + `runLoad` (same names, routes and events);
 * test/feed/index.ts is the one place that picks the feed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

export interface Feed {
  /** What produced the telemetry, for failure messages. */
  description: string;
  /** Stops the load, flushes the services' telemetry and stops them. */
  stop(): Promise<void>;
}

export interface ShopFeedOptions {
  /** OTLP/HTTP base URL of the receiver, e.g. http://127.0.0.1:4318 */
  otlpEndpoint: string;
  /** Storefront requests per second (default 40). */
  rps?: number;
}

const SERVICE_SCRIPT = path.join(__dirname, 'shop-service.cjs');

interface Service {
  child: ChildProcess;
  url: string;
  log: () => string;
}

async function startService(role: string, otlpEndpoint: string, env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, ['--no-warnings', SERVICE_SCRIPT], {
    cwd: __dirname,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...env,
      SHOP_ROLE: role,
      PORT: '0',
      OTEL_SERVICE_NAME: role,
      OTEL_RESOURCE_ATTRIBUTES: `service.namespace=sonde-demo,deployment.environment.name=e2e,service.version=1.0.0,service.instance.id=${role}-1`,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_LOGS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BLRP_SCHEDULE_DELAY: '200',
      OTEL_NODE_RESOURCE_DETECTORS: 'env,host,os,process',
      OTEL_LOG_LEVEL: 'error',
    },
  });
  let log = '';
  child.stderr?.on('data', (c: Buffer) => {
    log = (log + c.toString('utf8')).slice(-16_384);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`shop service ${role} did not start within 20 s:\n${log}`)),
      20_000,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`shop service ${role} exited (${code}) before listening:\n${log}`));
    });
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { listening?: number };
        if (msg.listening) {
          clearTimeout(timer);
          resolve(msg.listening);
        }
      } catch {
        // not ours
      }
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, log: () => log };
}

async function stopService(s: Service): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => s.child.once('exit', () => resolve()));
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts the three services and a load loop against the storefront. */
export async function startShopFeed(options: ShopFeedOptions): Promise<Feed> {
  const services: Service[] = [];
  try {
    const [cart, payments] = await Promise.all([
      startService('cart', options.otlpEndpoint, {}),
      startService('payments', options.otlpEndpoint, {}),
    ]);
    services.push(cart, payments);
    services.push(
      await startService('storefront', options.otlpEndpoint, { CART_URL: cart.url, PAYMENTS_URL: payments.url }),
    );
  } catch (err) {
    await Promise.all(services.map(stopService));
    throw err;
  }
  const storefront = services[2].url;
  const load = runLoad({ url: storefront, rps: options.rps ?? 40 });
  return {
    description: `simulated shop (test/feed/shop-service.cjs) at ${storefront}`,
    async stop() {
      await load.stop();
      await Promise.all(services.map(stopService));
    },
  };
}

/** The storefront routes in a shop-like mix: views, then adds, then checkouts. */
const ROUTES: { method: string; path: (i: number) => string }[] = [
  { method: 'GET', path: (i) => `/products/${i % 7}` },
  { method: 'GET', path: (i) => `/products/${i % 11}` },
  { method: 'POST', path: () => '/cart' },
  { method: 'GET', path: (i) => `/products/${i % 5}` },
  { method: 'POST', path: () => '/checkout' },
  { method: 'GET', path: () => '/nope' },
];

function runLoad({ url, rps }: { url: string; rps: number }): { stop(): Promise<void> } {
  let i = 0;
  let stopped = false;
  const inFlight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    if (stopped) return;
    const route = ROUTES[i % ROUTES.length];
    const p = fetch(`${url}${route.path(i)}`, { method: route.method, signal: AbortSignal.timeout(5000) })
      .then((res) => res.arrayBuffer())
      .then(
        () => undefined,
        () => undefined,
      );
    i++;
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }, 1000 / rps);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all(inFlight);
    },
  };
}

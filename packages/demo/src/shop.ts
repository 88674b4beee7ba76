/**
 * startShop(): the three services as child processes, each started with
 * `node --import @sonde/node/register dist/services/<name>.js` (or without it, for the benchmark's
 * baseline), cart and payments first, then the storefront pointed at them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

export const SERVICES = ['cart', 'payments', 'storefront'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ShopOptions {
  /** Base URL of the OTLP/HTTP receiver, e.g. http://localhost:4318. */
  otlpEndpoint: string;
  /** Ports basePort (storefront), +1 (cart), +2 (payments); default: any free ports. */
  basePort?: number;
  /** Start the services with `--import @sonde/node/register` (default true). */
  instrument?: boolean;
  /** Node arguments used instead of `--import @sonde/node/register` when instrumenting (e.g. another distribution's). */
  nodeArgs?: string[];
  /** Extra environment for every service (OTEL_*, SONDE_*, DEMO_NO_FAULTS=1, ...). */
  env?: Record<string, string>;
  /** Forward the services' own log lines (pino JSON) to this process's stdout. Default false. */
  forwardLogs?: boolean;
  /**
   * Start the services in their own process group, so that a Ctrl-C in the terminal reaches only this
   * process, which then stops them in order (storefront first, while the receiver still runs). Default false.
   */
  detached?: boolean;
  /** service.version of every service (default: this package's version). */
  version?: string;
  /**
   * The storefront replicas, each with its own process (and so its own service.instance.id) and
   * optionally its own service.version, e.g. the previous release during a rollout. Default: one.
   */
  storefronts?: { version?: string }[];
}

export interface Shop {
  /** The first storefront replica. */
  storefrontUrl: string;
  /** Every storefront replica, in the order of `storefronts`. */
  storefrontUrls: string[];
  urls: Record<ServiceName, string>;
  pids: Record<ServiceName, number>;
  stop(): Promise<void>;
}

/** The package directory (from dist/ or, under jest, src/): the services always run from dist/. */
const PACKAGE_DIR = path.join(__dirname, '..');
const PACKAGE_VERSION = (
  JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string }
).version;

function startService(
  name: ServiceName,
  port: number,
  env: Record<string, string>,
  instrument: boolean,
  forwardLogs: boolean,
  nodeArgs: string[] | undefined,
  detached: boolean,
): Promise<{ child: ChildProcess; port: number }> {
  const args = [
    ...(instrument ? (nodeArgs ?? ['--import', '@sonde/node/register']) : []),
    path.join(PACKAGE_DIR, 'dist', 'services', `${name}.js`),
  ];
  const child = spawn(process.execPath, args, {
    cwd: PACKAGE_DIR,
    env: { ...process.env, ...env, OTEL_SERVICE_NAME: name, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 200) stderr.push(c.toString());
    if (forwardLogs) process.stderr.write(c);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within 40 s: ${stderr.join('')}`));
    }, 40000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening: ${stderr.join('')}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (forwardLogs) process.stdout.write(`${line}\n`);
      if (!line.includes('"listening"')) return;
      try {
        const msg = JSON.parse(line) as { listening?: number };
        if (msg.listening) {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          resolve({ child, port: msg.listening });
        }
      } catch {
        // an application log line
      }
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startShop(options: ShopOptions): Promise<Shop> {
  const instrument = options.instrument ?? true;
  const version = options.version ?? PACKAGE_VERSION;
  const resourceAttributes = (v: string) =>
    `service.namespace=sonde-demo,deployment.environment.name=demo,service.version=${v}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-demo-'));
  const env: Record<string, string> = {
    OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint,
    OTEL_RESOURCE_ATTRIBUTES: resourceAttributes(version),
    OTEL_METRIC_EXPORT_INTERVAL: '10000',
    // Product analytics are off by default in @sonde/node: the shop grants them process-wide, and each
    // shopper's `x-consent` header narrows that per request (consentMiddleware in the storefront).
    SONDE_CONSENT: process.env.SONDE_CONSENT ?? 'all',
    // One key for the whole shop, so that a user's pseudonym is the same in every service.
    SONDE_HMAC_KEY: randomBytes(24).toString('hex'),
    CART_DB: path.join(dataDir, 'cart-store.db'),
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  const port = (offset: number) => (options.basePort ? options.basePort + offset : 0);
  const forward = options.forwardLogs ?? false;
  const detached = options.detached ?? false;
  const started: ChildProcess[] = [];
  try {
    const track = <T extends { child: ChildProcess }>(p: Promise<T>) =>
      p.then((s) => {
        started.push(s.child);
        return s;
      });
    const [cart, payments] = await Promise.all([
      track(startService('cart', port(1), env, instrument, forward, options.nodeArgs, detached)),
      track(startService('payments', port(2), env, instrument, forward, options.nodeArgs, detached)),
    ]);
    const urls = {
      cart: `http://127.0.0.1:${cart.port}`,
      payments: `http://127.0.0.1:${payments.port}`,
    };
    const replicas = options.storefronts ?? [{}];
    const storefronts = await Promise.all(
      replicas.map((replica, i) => {
        const replicaEnv: Record<string, string> = { ...env, CART_URL: urls.cart, PAYMENTS_URL: urls.payments };
        // A replica's own version, unless the caller set the resource attributes themselves.
        if (replica.version && !options.env?.OTEL_RESOURCE_ATTRIBUTES)
          replicaEnv.OTEL_RESOURCE_ATTRIBUTES = resourceAttributes(replica.version);
        // Only the first replica takes the configured port; the others any free one.
        return track(
          startService(
            'storefront',
            i === 0 ? port(0) : 0,
            replicaEnv,
            instrument,
            forward,
            options.nodeArgs,
            detached,
          ),
        );
      }),
    );
    const storefront = storefronts[0];
    const storefrontUrls = storefronts.map((s) => `http://127.0.0.1:${s.port}`);
    const storefrontUrl = storefrontUrls[0];
    return {
      storefrontUrl,
      storefrontUrls,
      urls: { ...urls, storefront: storefrontUrl },
      pids: { cart: cart.child.pid!, payments: payments.child.pid!, storefront: storefront.child.pid! },
      async stop() {
        // The storefronts first (they call the others), then the rest.
        await Promise.all(storefronts.map((s) => stopChild(s.child)));
        await Promise.all([stopChild(cart.child), stopChild(payments.child)]);
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(started.map(stopChild));
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

#!/usr/bin/env node
/**
 * `npm run demo` (repository root): a Sonde receiver, the three shop services instrumented by
 * @sonde/node, and shoppers, together, until Ctrl-C.
 *
 * Environment: DEMO_RPS (default 10), DEMO_BASE_PORT (default 3000: storefront 3000, cart 3001,
 * payments 3002), DEMO_OTLP_ENDPOINT (use a receiver that is already running instead of starting one),
 * DEMO_BROWSER_VISITS_PER_MIN (default 6; 0 turns them off): visitors in headless Chromium on the
 * storefront's browser page (@sonde/web), when a Chromium is installed (DEMO_CHROMIUM, else
 * /usr/bin/chromium). The receiver started here allows the storefront's origin (CORS).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromiumPath, runBrowserLoad } from './browser-load';
import { runLoad } from './load';
import { startShop } from './shop';

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), name: 'sonde-demo', msg, ...fields })}\n`);
}

async function waitForReceiver(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`the receiver did not become ready at ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  const rps = Number(process.env.DEMO_RPS ?? 10);
  const basePort = Number(process.env.DEMO_BASE_PORT ?? 3000);
  const browserVisits = Number(process.env.DEMO_BROWSER_VISITS_PER_MIN ?? 6);
  const chromium = browserVisits > 0 ? chromiumPath() : undefined;
  let receiver: ChildProcess | undefined;
  let endpoint = process.env.DEMO_OTLP_ENDPOINT;
  const admin = 'http://localhost:9464';
  if (!endpoint) {
    const bin = path.join(path.dirname(require.resolve('@sonde/receiver/package.json')), 'bin', 'sonde-receiver.js');
    // The storefront's browser page sends from the storefront's origin.
    const configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-demo-receiver-'));
    const config = path.join(configDir, 'receiver.yaml');
    const origins = [`http://127.0.0.1:${basePort}`, `http://localhost:${basePort}`];
    fs.writeFileSync(config, `otlp:\n  http:\n    cors_allowed_origins: ${JSON.stringify(origins)}\n`);
    // Its own process group: Ctrl-C reaches only this process, which stops the services first and the
    // receiver last, so that the services' final flush still has somewhere to go.
    receiver = spawn(process.execPath, [bin, '--config', config], {
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    const r = receiver;
    process.once('exit', () => {
      if (r.exitCode === null) r.kill('SIGKILL');
      fs.rmSync(configDir, { recursive: true, force: true });
    });
    endpoint = 'http://localhost:4318';
    await waitForReceiver(`${admin}/readyz`, 20000);
  }
  const shop = await startShop({
    otlpEndpoint: endpoint,
    basePort,
    env: { OTEL_METRIC_EXPORT_INTERVAL: '5000', DEMO_WEB_OTLP_ENDPOINT: endpoint },
    forwardLogs: true,
    detached: true,
  });
  process.once('exit', () => {
    for (const pid of Object.values(shop.pids)) {
      try {
        process.kill(pid, 'SIGKILL'); // only reached if the orderly stop below did not run
      } catch {
        // already gone
      }
    }
  });
  log('demo shop running', {
    storefront: shop.storefrontUrl,
    cart: shop.urls.cart,
    payments: shop.urls.payments,
    otlp: endpoint,
    rps,
    browserVisitsPerMinute: chromium ? browserVisits : 0,
    page: `${shop.storefrontUrl}/`,
    look: receiver
      ? [
          `${admin}/debug/recent?signal=traces&limit=20`,
          `${admin}/debug/recent?signal=logs&limit=20`,
          `${admin}/metrics (sonde_events_total, traces_spanmetrics_calls_total, traces_service_graph_request_total, nodejs_eventloop_delay_p99_seconds)`,
        ]
      : undefined,
  });

  const abort = new AbortController();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    log('stopping: load, services (each flushes its telemetry), receiver');
    abort.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const browsers = chromium
    ? runBrowserLoad({
        url: shop.storefrontUrl,
        visitsPerMinute: browserVisits,
        durationMs: Number(process.env.DEMO_DURATION_MS ?? Number.POSITIVE_INFINITY),
        executablePath: chromium,
        signal: abort.signal,
      }).catch((err: Error) => {
        log('browser visitors stopped', { error: err.message });
        return undefined;
      })
    : undefined;
  const stats = await runLoad({
    url: shop.storefrontUrl,
    rps,
    durationMs: Number(process.env.DEMO_DURATION_MS ?? Number.POSITIVE_INFINITY),
    signal: abort.signal,
    onProgress: (s) => log('load', { requests: s.requests, errors: s.errors, byStatus: s.byStatus }),
  });
  const browserStats = await browsers;
  log('load finished', {
    requests: stats.requests,
    errors: stats.errors,
    byStatus: stats.byStatus,
    ...(browserStats ? { browserVisits: browserStats.visits, browserErrors: browserStats.errors } : {}),
  });
  await shop.stop();
  if (receiver) {
    await new Promise<void>((resolve) => {
      receiver!.once('exit', () => resolve());
      receiver!.kill('SIGTERM');
    });
  }
}

main().catch((err) => {
  process.stderr.write(`sonde-demo: ${(err as Error).message}\n`);
  process.exit(1);
});

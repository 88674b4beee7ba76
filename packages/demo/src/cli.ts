#!/usr/bin/env node
/**
 * `npm run demo` (repository root): a Sonde receiver, the three shop services instrumented by
 * @sonde/node, and shoppers, together, until Ctrl-C.
 *
 * Environment: DEMO_RPS (default 10), DEMO_BASE_PORT (default 3000: storefront 3000, cart 3001,
 * payments 3002), DEMO_OTLP_ENDPOINT (use a receiver that is already running instead of starting one).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
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
  let receiver: ChildProcess | undefined;
  let endpoint = process.env.DEMO_OTLP_ENDPOINT;
  const admin = 'http://localhost:9464';
  if (!endpoint) {
    const bin = path.join(path.dirname(require.resolve('@sonde/receiver/package.json')), 'bin', 'sonde-receiver.js');
    // Its own process group: Ctrl-C reaches only this process, which stops the services first and the
    // receiver last, so that the services' final flush still has somewhere to go.
    receiver = spawn(process.execPath, [bin], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    const r = receiver;
    process.once('exit', () => {
      if (r.exitCode === null) r.kill('SIGKILL');
    });
    endpoint = 'http://localhost:4318';
    await waitForReceiver(`${admin}/readyz`, 20000);
  }
  const shop = await startShop({
    otlpEndpoint: endpoint,
    basePort,
    env: { OTEL_METRIC_EXPORT_INTERVAL: '5000' },
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
  const stats = await runLoad({
    url: shop.storefrontUrl,
    rps,
    durationMs: Number(process.env.DEMO_DURATION_MS ?? Number.POSITIVE_INFINITY),
    signal: abort.signal,
    onProgress: (s) => log('load', { requests: s.requests, errors: s.errors, byStatus: s.byStatus }),
  });
  log('load finished', { requests: stats.requests, errors: stats.errors, byStatus: stats.byStatus });
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

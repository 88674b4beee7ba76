/**
 * The one place that decides what feeds the dashboard and alert test: the demo shop (`@sonde/demo`:
 * storefront, cart with SQLite, payments, each instrumented by `@sonde/node` only, in child processes)
 * under a steady load from its own `runLoad`, and its browser page (@sonde/web) visited in headless
 * Chromium by `runBrowserLoad` (the receiver must allow the storefront's origin: CORS). Telemetry is
 * flushed faster than the defaults (spans and logs every 200 ms, metrics every second) so that the
 * test has data within seconds.
 */
import { runBrowserLoad, runLoad, startShop } from '@sonde/demo';

export interface Feed {
  /** What produced the telemetry, for failure messages. */
  description: string;
  /** Stops the load, then the services (which flush their telemetry). */
  stop(): Promise<void>;
}

export async function startFeed(otlpEndpoint: string): Promise<Feed> {
  const shop = await startShop({
    otlpEndpoint,
    env: {
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BLRP_SCHEDULE_DELAY: '200',
      DEMO_WEB_OTLP_ENDPOINT: otlpEndpoint,
    },
  });
  const abort = new AbortController();
  const load = runLoad({
    url: shop.storefrontUrl,
    rps: 40,
    durationMs: Number.POSITIVE_INFINITY,
    signal: abort.signal,
  });
  const browsers = runBrowserLoad({
    url: shop.storefrontUrl,
    visitsPerMinute: 30,
    durationMs: Number.POSITIVE_INFINITY,
    signal: abort.signal,
  });
  return {
    description: `the demo shop (@sonde/demo) at ${shop.storefrontUrl}, with browser visits to its page`,
    async stop() {
      abort.abort();
      await load.catch(() => undefined);
      await browsers.catch(() => undefined);
      await shop.stop();
    },
  };
}

/**
 * The one place that decides what feeds the dashboard and alert test: the demo shop (`@sonde/demo`:
 * storefront, cart with SQLite, payments, each instrumented by `@sonde/node` only, in child processes)
 * under a steady load from its own `runLoad`, and its browser page (@sonde/web) visited in headless
 * Chromium by `runBrowserLoad` (the receiver must allow the storefront's origin: CORS). Telemetry is flushed faster than the defaults (spans and
 * logs every 200 ms, metrics every second) so that the test has data within seconds.
 *
 * A rollout is in progress: the shop runs release `CURRENT_VERSION`, and the storefront has a second
 * replica still on `PREVIOUS_VERSION`, each with half the load, so that the release comparison and the
 * deployment annotations have two versions to show, and the dashboards sum over replicas.
 */
import { runBrowserLoad, runLoad, startShop } from '@sonde/demo';

export interface Feed {
  /** What produced the telemetry, for failure messages. */
  description: string;
  /** Stops the load, then the services (which flush their telemetry). */
  stop(): Promise<void>;
}

export const CURRENT_VERSION = '1.1.0';
export const PREVIOUS_VERSION = '1.0.0';

export async function startFeed(otlpEndpoint: string): Promise<Feed> {
  const shop = await startShop({
    otlpEndpoint,
    version: CURRENT_VERSION,
    storefronts: [{}, { version: PREVIOUS_VERSION }],
    env: {
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BLRP_SCHEDULE_DELAY: '200',
      DEMO_WEB_OTLP_ENDPOINT: otlpEndpoint,
    },
  });
  const abort = new AbortController();
  const load = Promise.all(
    shop.storefrontUrls.map((url) =>
      runLoad({
        url,
        rps: 40 / shop.storefrontUrls.length,
        durationMs: Number.POSITIVE_INFINITY,
        signal: abort.signal,
      }),
    ),
  );
  const browsers = runBrowserLoad({
    url: shop.storefrontUrl,
    visitsPerMinute: 30,
    durationMs: Number.POSITIVE_INFINITY,
    signal: abort.signal,
  });
  return {
    description: `the demo shop (@sonde/demo) at ${shop.storefrontUrls.join(' and ')}, with browser visits to its page`,
    async stop() {
      abort.abort();
      await load.catch(() => undefined);
      await browsers.catch(() => undefined);
      await shop.stop();
    },
  };
}

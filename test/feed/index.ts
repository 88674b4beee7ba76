/**
 * The one place that decides what feeds the dashboard and alert test. Today: the simulated shop in
 * this folder (real OpenTelemetry Node SDK in three child processes). When `@sonde/demo` lands, this
 * becomes `startShop({ otlpEndpoint })` + `runLoad(...)` from it, with nothing else to change.
 */
import { type Feed, startShopFeed } from './shop';

export type { Feed };

export function startFeed(otlpEndpoint: string): Promise<Feed> {
  return startShopFeed({ otlpEndpoint, rps: 40 });
}

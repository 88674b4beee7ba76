/** @sonde/demo: the demo shop (startShop) and its load generator (runLoad), for the demo, tests and the benchmark. */

export { type BrowserLoadOptions, type BrowserLoadStats, chromiumPath, runBrowserLoad } from './browser-load';
export { CATALOG, parseConsentHeader } from './catalog';
export { type LoadOptions, type LoadStats, runLoad } from './load';
export { SERVICES, type ServiceName, type Shop, type ShopOptions, startShop } from './shop';

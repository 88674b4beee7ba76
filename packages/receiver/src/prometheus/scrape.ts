/**
 * GET /metrics on the admin port: the receiver's own metrics (prom-client) followed by the series
 * translated from OTLP, in the text format or in OpenMetrics (with exemplars) when the scraper's
 * Accept header asks for it, as Prometheus does by default.
 */
import type { Request, Response } from 'express';
import { Histogram, Registry, type RegistryContentType } from 'prom-client';
import { FORMAT_CONTENT_TYPE, type Format, negotiateFormat, writeFamilies } from './exposition';
import type { MetricStore } from './store';

export function createScrapeHandler(registry: Registry, stores: MetricStore[]) {
  const duration = new Histogram({
    name: 'sonde_prometheus_scrape_duration_seconds',
    help: 'Time to write /metrics, by format',
    labelNames: ['format'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const size = new Histogram({
    name: 'sonde_prometheus_scrape_size_bytes',
    help: 'Size of /metrics responses, by format',
    labelNames: ['format'] as const,
    buckets: [1e4, 1e5, 1e6, 1e7, 1e8],
    registers: [registry],
  });
  // prom-client's registry has one content type at a time; scrapes take turns.
  let previous: Promise<void> = Promise.resolve();
  return (req: Request, res: Response): void => {
    const format = negotiateFormat(req.headers.accept);
    const run = () => scrape(format, res, registry, stores, duration, size);
    previous = previous.then(run, run);
  };
}

async function scrape(
  format: Format,
  res: Response,
  registry: Registry,
  stores: MetricStore[],
  duration: Histogram<'format'>,
  size: Histogram<'format'>,
): Promise<void> {
  const started = performance.now();
  try {
    let own: string;
    if (format === 'openmetrics') {
      // prom-client's OpenMetrics render renames counters in place (drops `_total` from metric.name):
      // keep the names and put them back, or later text scrapes would lose their `_total`.
      const names = registry.getMetricsAsArray().map((m) => [m, m.name] as const);
      (registry as unknown as Registry<RegistryContentType>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      try {
        own = (await registry.metrics()).replace(/# EOF\n?$/, '');
      } finally {
        (registry as unknown as Registry<RegistryContentType>).setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
        for (const [metric, name] of names) (metric as { name: string }).name = name;
      }
    } else {
      own = await registry.metrics();
    }
    res.writeHead(200, { 'content-type': FORMAT_CONTENT_TYPE[format] });
    res.write(own);
    let bytes = Buffer.byteLength(own);
    bytes += await writeFamilies(stores, format, res);
    if (format === 'openmetrics') {
      res.write('# EOF\n');
      bytes += 6;
    }
    res.end();
    size.observe({ format }, bytes);
  } catch (err) {
    if (!res.headersSent)
      res
        .status(500)
        .type('text/plain')
        .send(`scrape failed: ${(err as Error).message}\n`);
    else res.destroy(err as Error);
  } finally {
    duration.observe({ format }, (performance.now() - started) / 1000);
  }
}

/**
 * GET /metrics on the admin port: the receiver's own metrics (prom-client) followed by the series
 * translated from OTLP, in the text format or in OpenMetrics (with exemplars) when the scraper's
 * Accept header asks for it, as Prometheus does by default.
 *
 * The response is streamed: the families are written chunk by chunk, waiting for the socket to drain,
 * so a scraper that does not read holds only its socket's buffer, and only the receiver's own metrics
 * (rendered by prom-client, one scrape at a time) wait for other scrapes.
 */
import type { Request, Response } from 'express';
import { type Counter, type Histogram, Registry, type RegistryContentType } from 'prom-client';
import type { Logger } from '../logger';
import { registerMetrics } from '../metrics/define';
import { FORMAT_CONTENT_TYPE, type Format, negotiateFormat, type Sink, writeFamilies } from './exposition';
import { SCRAPE_METRICS } from './metrics';
import type { MetricStore } from './store';

/** `logger` gets a failed scrape's error (its details are never answered). */
export function createScrapeHandler(registry: Registry, stores: MetricStore[], logger?: Logger) {
  const { duration, size, skipped } = registerMetrics(registry, SCRAPE_METRICS);
  // prom-client's registry has one content type at a time: scrapes take turns for the receiver's own
  // metrics, and stream the rest without waiting for one another.
  let previous: Promise<unknown> = Promise.resolve();
  return (req: Request, res: Response): void => {
    const format = negotiateFormat(req.headers.accept);
    const own = () => ownMetrics(format, registry);
    const turn = previous.then(own, own);
    previous = turn.catch(() => {});
    void scrape(format, turn, res, stores, duration, size, skipped, logger);
  };
}

/** The receiver's own metrics (prom-client), without OpenMetrics' `# EOF`. */
async function ownMetrics(format: Format, registry: Registry): Promise<string> {
  if (format !== 'openmetrics') return registry.metrics();
  // prom-client's OpenMetrics render renames counters in place (drops `_total` from metric.name):
  // keep the names and put them back, or later text scrapes would lose their `_total`.
  const names = registry.getMetricsAsArray().map((m) => [m, m.name] as const);
  (registry as unknown as Registry<RegistryContentType>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  try {
    return (await registry.metrics()).replace(/# EOF\n?$/, '');
  } finally {
    (registry as unknown as Registry<RegistryContentType>).setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
    for (const [metric, name] of names) (metric as { name: string }).name = name;
  }
}

/** The response as a sink that applies back-pressure and knows when the scraper went away. */
function responseSink(res: Response): Sink {
  return {
    write: (chunk) => res.write(chunk),
    drained: () =>
      new Promise<void>((resolve) => {
        if (res.destroyed || !res.writableNeedDrain) return resolve();
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      }),
    get closed() {
      return res.destroyed;
    },
    cork: () => res.cork(),
    uncork: () => res.uncork(),
  };
}

async function scrape(
  format: Format,
  ownText: Promise<string>,
  res: Response,
  stores: MetricStore[],
  duration: Histogram<'format'>,
  size: Histogram<'format'>,
  skipped: Counter,
  logger: Logger | undefined,
): Promise<void> {
  const started = performance.now();
  try {
    const own = await ownText;
    res.writeHead(200, { 'content-type': FORMAT_CONTENT_TYPE[format] });
    res.write(own);
    let bytes = Buffer.byteLength(own);
    const sink = responseSink(res);
    bytes += await writeFamilies(stores, format, sink, () => skipped.inc());
    if (sink.closed) return;
    if (format === 'openmetrics') {
      res.write('# EOF\n');
      bytes += 6;
    }
    res.end();
    size.observe({ format }, bytes);
  } catch (err) {
    logger?.error({ err }, 'a /metrics scrape failed');
    if (!res.headersSent)
      res.status(500).type('text/plain').send('scrape failed: internal error (logged by the receiver)\n');
    else res.destroy();
  } finally {
    duration.observe({ format }, (performance.now() - started) / 1000);
  }
}

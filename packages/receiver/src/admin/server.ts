/**
 * The admin port: Prometheus scrape of the receiver's own metrics and of the OTLP metrics (/metrics), liveness (/healthz),
 * readiness (/readyz: 503 until the intake listens and again once draining), and /debug/recent,
 * the most recent telemetry of a signal as OTLP JSON, for newcomers and debugging.
 */
import express from 'express';
import { errorHandler } from '../http-errors';
import type { Logger } from '../logger';
import { SIGNALS, type Signal } from '../model';
import { encodeJsonRequest } from '../otlp/json/encode';
import type { RecentTelemetry } from '../pipeline/recent';
import { createScrapeHandler } from '../prometheus/scrape';
import type { MetricStore } from '../prometheus/store';
import type { SelfMetrics } from '../self-metrics';

export interface AdminState {
  ready(): boolean;
}

export function createAdminApp(
  metrics: SelfMetrics,
  recent: { [S in Signal]: RecentTelemetry<S> },
  state: AdminState,
  stores: MetricStore[],
  /** More routes on the admin port (the trace store's Tempo API). */
  routers: express.Router[] = [],
  /** Where unexpected errors are logged (their details are never answered). */
  logger?: Logger,
): express.Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/metrics', createScrapeHandler(metrics.registry, stores));
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const ready = state.ready();
    res
      .status(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'ready\n' : 'not ready\n');
  });
  app.get('/debug/recent', (req, res) => {
    const signal = String(req.query.signal ?? 'traces') as Signal;
    if (!SIGNALS.includes(signal)) {
      res.status(400).json({ error: `signal must be one of ${SIGNALS.join(', ')}` });
      return;
    }
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
      res.status(400).json({ error: 'limit must be a positive integer (items)' });
      return;
    }
    const buffer = recent[signal] as RecentTelemetry<Signal>;
    const entries = buffer.recent(limit).map((e) => ({
      receivedAt: new Date(e.receivedAt).toISOString(),
      transport: e.transport,
      items: e.itemCount,
      request: encodeJsonRequest(signal, e.data),
    }));
    res.json({ signal, retainedItems: buffer.itemCount, maxItems: buffer.maxItems, entries });
  });
  for (const router of routers) app.use(router);
  app.use((req, res) => {
    res
      .status(404)
      .json({ error: `no such endpoint: ${req.path}; try /metrics, /healthz, /readyz or /debug/recent?signal=traces` });
  });
  app.use(errorHandler(logger, (res, status, message) => res.status(status).json({ error: message })));
  return app;
}

/** What the three demo services share: a pino logger, a listen helper, and small random helpers. */
import type { Server } from 'node:http';
import type { Express } from 'express';
import pino from 'pino';

export function logger(name: string): pino.Logger {
  return pino({ name, level: process.env.LOG_LEVEL ?? 'info' });
}

/** Listens on PORT (0: any free port) and prints `{"listening": port}`, which startShop waits for. */
export function listen(app: Express, name: string): Server {
  const server = app.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ listening: port, service: name })}\n`);
  });
  // The app's own SIGTERM handling: stop accepting, finish in-flight requests, exit 0. @sonde/node
  // flushes alongside (and again at beforeExit), without changing this behaviour.
  process.once('SIGTERM', () => {
    server.close(() => {
      process.exitCode = 0;
    });
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2000).unref();
  });
  return server;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A latency drawn between min and max ms, skewed towards min (a long tail). */
export function latency(minMs: number, maxMs: number): number {
  const r = Math.random();
  return minMs + (maxMs - minMs) * r * r * r;
}

/** Random failures can be turned off (the benchmark measures the happy path). */
export function chance(p: number): boolean {
  return process.env.DEMO_NO_FAULTS !== '1' && Math.random() < p;
}

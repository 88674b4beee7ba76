/**
 * The admin port: Prometheus scrape of the receiver's own metrics and of the OTLP metrics (/metrics), liveness (/healthz),
 * readiness (/readyz: 503 until the intake listens and again once draining), and /debug/recent,
 * the most recent telemetry of a signal as OTLP JSON, for newcomers and debugging.
 *
 * A client that does not read its responses gets no more than its socket takes: a pipelined request
 * is handled only once the responses before it are handed to the socket and the socket takes more,
 * /debug/recent is rendered in pieces written as the socket drains (never as one string), at most
 * `debug.max_concurrent_renders` at once, and cut off when its client takes nothing for
 * `debug.write_timeout`.
 */
import type { Socket } from 'node:net';
import express from 'express';
import { errorHandler } from '../http-errors';
import type { Logger } from '../logger';
import { SIGNALS, type Signal, type SignalData } from '../model';
import { encodeJsonResource, JSON_RESOURCES_FIELD } from '../otlp/json/encode';
import type { RecentEntry, RecentTelemetry } from '../pipeline/recent';
import { authFailureMessage, type BearerTokens, wwwAuthenticate } from '../security/tokens';
import type { SelfMetrics } from '../self-metrics';
import { createScrapeHandler } from '../series/scrape';
import type { MetricStore } from '../series/store';

export interface AdminState {
  ready(): boolean;
}

export interface AdminOptions {
  /** admin.auth: who may read the admin port's data (bearer tokens); unset, everyone may. */
  tokens?: BearerTokens;
  /** /metrics needs a token too (admin.auth.protect_metrics). */
  protectMetrics?: boolean;
  /** Where unexpected errors are logged (their details are never answered). */
  logger?: Logger;
  /** Requests a connection may pipeline ahead of its responses; past it the connection is closed (admin.max_pipelined_requests). */
  maxPipelinedRequests?: number;
  /** /debug/recent responses rendering at once; more are answered 503 + Retry-After (debug.max_concurrent_renders). */
  maxConcurrentRenders?: number;
  /** A /debug/recent response whose client takes nothing for this long is cut off, in ms (debug.write_timeout). */
  writeTimeoutMs?: number;
}

/** What createAdminApp takes when an option is left out (and what the admin and debug keys default to). */
export const ADMIN_DEFAULTS = {
  maxPipelinedRequests: 64,
  maxConcurrentRenders: 4,
  writeTimeoutMs: 30_000,
};

/** Bytes of a render written at once. */
const PIECE = 64 * 1024;

/** Paths that answer without a token: health and readiness (Tempo's /ready too), and /metrics unless protected. */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/ready']);

export function createAdminApp(
  metrics: SelfMetrics,
  recent: { [S in Signal]: RecentTelemetry<S> },
  state: AdminState,
  stores: MetricStore[],
  /** More routes on the admin port (the trace store's Tempo API). */
  routers: express.Router[] = [],
  options: AdminOptions = {},
): express.Express {
  const {
    logger,
    maxPipelinedRequests = ADMIN_DEFAULTS.maxPipelinedRequests,
    maxConcurrentRenders = ADMIN_DEFAULTS.maxConcurrentRenders,
    writeTimeoutMs = ADMIN_DEFAULTS.writeTimeoutMs,
  } = options;
  const app = express();
  app.disable('x-powered-by');
  app.use(inTurn(maxPipelinedRequests, () => metrics.limitHits.inc({ signal: '', limit: 'max_pipelined_requests' })));
  if (options.tokens) app.use(requireAdminToken(options.tokens, options.protectMetrics ?? false, metrics));
  let rendering = 0;

  app.get('/metrics', createScrapeHandler(metrics.registry, stores, logger));
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
    if (rendering >= maxConcurrentRenders) {
      metrics.limitHits.inc({ signal, limit: 'max_concurrent_renders' });
      res
        .status(503)
        .set('Retry-After', '1')
        .json({ error: `${rendering} /debug/recent responses are being sent (debug.max_concurrent_renders); retry` });
      return;
    }
    rendering++;
    const buffer = recent[signal] as RecentTelemetry<Signal>;
    const pieces = recentJson(signal, buffer, buffer.recent(limit));
    res.status(200).type('application/json');
    writePieces(res, pieces, writeTimeoutMs)
      .catch((err: unknown) => {
        logger?.error({ err }, 'cannot render /debug/recent');
        res.destroy();
      })
      .finally(() => rendering--);
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

/**
 * Everything but the open paths needs a known bearer token: /debug/* (raw recent payloads), Tempo's
 * /api/* (stored traces; Grafana's datasource sends the token, /api/echo included, so "Save & test"
 * checks it), unknown paths, and /metrics when protected.
 */
function requireAdminToken(
  tokens: BearerTokens,
  protectMetrics: boolean,
  metrics: SelfMetrics,
): express.RequestHandler {
  return (req, res, next) => {
    if (OPEN_PATHS.has(req.path) || (req.path === '/metrics' && !protectMetrics)) {
      next();
      return;
    }
    const verdict = tokens.authenticate(req.headers.authorization);
    if (typeof verdict === 'object') {
      next();
      return;
    }
    metrics.adminRefusedRequests.inc({ reason: 'unauthenticated' });
    res
      .status(401)
      .set('www-authenticate', wwwAuthenticate(verdict, 'sonde-admin'))
      .json({ error: authFailureMessage(verdict) });
  };
}

/**
 * Holds a request until its response is the connection's current one (the responses to the requests
 * pipelined before it are handed to the socket) and the socket takes more: a client that pipelines
 * requests and reads nothing gets nothing more rendered for it (node then stops reading its socket).
 * A connection with more than `maxWaiting` requests waiting so is closed (node has parsed them, and
 * holds each: a client must not pile them up).
 */
function inTurn(maxWaiting: number, onLimit: () => void): express.RequestHandler {
  const waiting = new WeakMap<object, number>();
  return (req, res, next) => {
    if (res.socket) {
      whenWritable(res.socket as Socket, next);
      return;
    }
    const socket = req.socket;
    if (socket.destroyed) return;
    const n = (waiting.get(socket) ?? 0) + 1;
    if (n > maxWaiting) {
      onLimit();
      socket.destroy();
      return;
    }
    waiting.set(socket, n);
    res.once('socket', (s: Socket) => {
      waiting.set(socket, (waiting.get(socket) ?? 1) - 1);
      whenWritable(s, next);
    });
  };
}

/** Calls `next` once the socket takes more (never, when it closes first). */
function whenWritable(socket: Socket, next: () => void): void {
  if (!socket.writableNeedDrain) {
    next();
    return;
  }
  const done = (drained: boolean) => {
    socket.off('drain', onDrain);
    socket.off('close', onClose);
    if (drained) next();
  };
  const onDrain = () => done(true);
  const onClose = () => done(false);
  socket.on('drain', onDrain);
  socket.on('close', onClose);
}

/** The response of /debug/recent as pieces of JSON: one resource (or less) at a time. */
function* recentJson(
  signal: Signal,
  buffer: RecentTelemetry<Signal>,
  entries: RecentEntry<Signal>[],
): Generator<string> {
  yield `{"signal":${JSON.stringify(signal)},"retainedItems":${buffer.itemCount},"maxItems":${buffer.maxItems},"entries":[`;
  let first = true;
  for (const e of entries) {
    const head = {
      receivedAt: new Date(e.receivedAt).toISOString(),
      transport: e.transport,
      items: e.itemCount,
    };
    yield `${first ? '' : ','}${JSON.stringify(head).slice(0, -1)},"request":{"${JSON_RESOURCES_FIELD[signal]}":[`;
    first = false;
    const resources = e.data as readonly SignalData[Signal][number][];
    for (let i = 0; i < resources.length; i++) {
      if (i > 0) yield ',';
      // resource → scopes → scope → items: each item (span, metric, log record) is one piece.
      yield* jsonPieces(encodeJsonResource(signal, resources[i]), 4);
    }
    yield ']}}';
  }
  yield ']}';
}

/** JSON.stringify's text of `value`, in pieces: objects and arrays down to `depth` are opened up. */
function* jsonPieces(value: unknown, depth: number): Generator<string> {
  if (depth === 0 || value === null || typeof value !== 'object') {
    yield JSON.stringify(value) ?? 'null';
    return;
  }
  if (Array.isArray(value)) {
    yield '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield ',';
      yield* jsonPieces(value[i], depth - 1);
    }
    yield ']';
    return;
  }
  let sep = '{';
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined || typeof v === 'function') continue;
    yield `${sep}${JSON.stringify(key)}:`;
    sep = ',';
    yield* jsonPieces(v, depth - 1);
  }
  yield sep === '{' ? '{}' : '}';
}

/**
 * Writes the pieces, about PIECE bytes at a time, each once the socket took the one before; ends the
 * response. Resolves false when the client left, or took nothing for `stallMs` (then cut off).
 */
async function writePieces(res: express.Response, pieces: Iterable<string>, stallMs: number): Promise<boolean> {
  let pending = '';
  for (const piece of pieces) {
    pending += piece;
    if (pending.length < PIECE) continue;
    if (!(await write(res, pending, stallMs))) return false;
    pending = '';
  }
  if (res.destroyed) return false;
  res.end(pending);
  return true;
}

function write(res: express.Response, chunk: string, stallMs: number): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => {
      res.destroy();
      done(false);
    }, stallMs);
    timer.unref();
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

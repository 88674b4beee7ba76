/**
 * OTLP/HTTP intake (express 5): `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with protobuf or JSON
 * bodies, optionally compressed. Follows the OTLP specification's HTTP section: the response uses the
 * request's encoding; errors carry a google.rpc.Status; 405 for another method, 415 for another
 * media type or content encoding, 413 over the body limit (on the wire or decompressed), 400 for
 * malformed payloads, 429/503 with Retry-After when overloaded.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import cors from 'cors';
import express, { type NextFunction, type Request, type Response } from 'express';
import { errorHandler } from '../http-errors';
import type { Logger } from '../logger';
import { SIGNALS, type Signal } from '../model';
import { GrpcCode, MalformedPayloadError, OtlpError, PayloadTooLargeError, UnauthenticatedError } from '../otlp/errors';
import { CONTENT_TYPE, type Encoding, encodeExportResponse, encodeStatus } from '../otlp/responses';
import { type AuthFailure, authFailureMessage, type BearerTokens, wwwAuthenticate } from '../security/tokens';
import type { SelfMetrics } from '../self-metrics';
import type { ExportHandler } from './export-handler';

export interface HttpIntakeOptions {
  maxRequestBodySize: number;
  corsAllowedOrigins: string[];
  /** otlp.auth: senders must present one of these bearer tokens. */
  tokens?: BearerTokens;
  /** Where unexpected errors are logged (their details are never answered). */
  logger?: Logger;
  /** Where CORS preflights are counted (sonde_receiver_cors_preflights_total). */
  metrics?: Pick<SelfMetrics, 'corsPreflights'>;
}

/** The media types OTLP/HTTP accepts, and the encoding each selects (parameters such as charset are ignored). */
const MEDIA_TYPES: Record<string, Encoding> = {
  'application/x-protobuf': 'protobuf',
  'application/protobuf': 'protobuf',
  'application/json': 'json',
};

/**
 * The OTLP/HTTP request listener. An export request exactly as exporters send it (POST to
 * `/v1/traces`, `/v1/metrics` or `/v1/logs`, no query string) with CORS off goes straight to its
 * route, without express's routing and request/response decoration (a tenth of the CPU of a
 * 100-span request at a steady 100 requests a second); one whose bearer token fails, and every other
 * request (other methods and paths, preflights, CORS on), goes through the express app, which
 * answers exactly as before.
 */
export function createHttpIntake(handler: ExportHandler, options: HttpIntakeOptions): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // CORS preflights are no export requests: counted apart, whoever answers them (the cors middleware
  // when the origin is allowed, else the 405 below), and never as refused export requests.
  const preflights = options.metrics?.corsPreflights;
  if (preflights) {
    app.use((req, res, next) => {
      const signal = isPreflight(req) ? SIGNALS.find((s) => req.path === `/v1/${s}`) : undefined;
      if (signal) {
        res.once('finish', () => {
          const outcome = res.getHeader('access-control-allow-origin')
            ? 'allowed'
            : options.corsAllowedOrigins.length > 0
              ? 'origin_not_allowed'
              : 'cors_disabled';
          preflights.inc({ signal, outcome });
        });
      }
      next();
    });
  }
  if (options.corsAllowedOrigins.length > 0) {
    // As the Collector's confighttp: credentials allowed (navigator.sendBeacon always sends with
    // credentials, and Chromium then blocks the POST unless the preflight answer allows them), so the
    // allowed origin is echoed, never `*`, with Vary: Origin. Nothing here authenticates by cookie
    // (otlp.auth takes an Authorization header, which a browser never adds by itself), so allowing
    // credentials lends a page no ambient authority. Retry-After is exposed for exporters' back-off.
    app.use(
      cors({
        origin: corsOrigin(options.corsAllowedOrigins),
        methods: ['POST'],
        credentials: true,
        exposedHeaders: ['Retry-After'],
        maxAge: 7200,
      }),
    );
  }
  // After CORS (preflights are answered without a token, and a 401 carries the CORS headers a browser
  // needs to read it), before any body is read.
  if (options.tokens) app.use(requireToken(handler, options.tokens));
  // Decompression (gzip, deflate, br, zstd) and the body limit, before and after decompression.
  const readBody = express.raw({ type: () => true, limit: options.maxRequestBodySize, inflate: true });

  /** Handles a request to `/v1/<signal>` from the tenant of its bearer token (undefined without otlp.auth). */
  const route = (signal: Signal) => (req: IncomingMessage, res: ServerResponse, tenant: string | undefined) => {
    const startedAt = performance.now();
    const refuse = (err: unknown, encoding: Encoding = 'json') =>
      sendError(res, handler.refused({ signal, transport: 'http', startedAt }, err), encoding);
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      const error = new OtlpError(
        `${req.method} is not allowed on /v1/${signal}: OTLP/HTTP takes POST`,
        405,
        GrpcCode.UNIMPLEMENTED,
        'method_not_allowed',
      );
      // A preflight not answered by CORS (origin not allowed, or CORS off) is counted as a preflight.
      if (isPreflight(req)) sendError(res, error, 'json');
      else refuse(error);
      return;
    }
    const encoding = encodingOf(req.headers['content-type']);
    if (!encoding) {
      refuse(
        new OtlpError(
          `unsupported Content-Type ${JSON.stringify(req.headers['content-type'] ?? '')}: send application/x-protobuf or application/json`,
          415,
          GrpcCode.INVALID_ARGUMENT,
          'unsupported_media_type',
        ),
      );
      return;
    }
    // The body counts as in flight from the headers on (as declared, or as it arrives), so that
    // slow or stalled uploads fill overload.max_in_flight_bytes like requests being processed do.
    // A request refused before its body is read gets Connection: close, so Node does not read the
    // body off the connection for nothing.
    const refuseUnread = (err: unknown) => {
      res.setHeader('connection', 'close');
      refuse(err, encoding);
    };
    // Node's parser has checked that a Content-Length is a number.
    const length = req.headers['content-length'];
    const declared = length === undefined ? undefined : Number(length);
    if (declared !== undefined && declared > options.maxRequestBodySize) {
      refuseUnread(tooLarge(options.maxRequestBodySize, signal));
      return;
    }
    const reservation = new Reservation(handler, signal);
    try {
      reservation.reserve(declared ?? 0);
    } catch (err) {
      refuseUnread(err);
      return;
    }
    // Released once: after the request is handled, or when it fails, or when its connection closes
    // first (an abort or a timeout; the decompressor may then never report the end of the body).
    let handling = false;
    res.once('close', () => {
      if (!handling) reservation.release();
    });
    if (declared === undefined) {
      req.on('data', (chunk: Buffer) => {
        if (reservation.released) return;
        try {
          reservation.reserveMore(chunk.length);
        } catch (err) {
          reservation.release();
          refuseUnread(err);
          res.once('finish', () => req.socket.destroy());
        }
      });
    }
    const onBody = (bodyError: unknown, read: unknown) => {
      if (reservation.released) return;
      if (bodyError) {
        reservation.release();
        if (!isClientGone(bodyError)) refuse(bodyReadError(bodyError, options.maxRequestBodySize, signal), encoding);
        return;
      }
      const body = Buffer.isBuffer(read) ? read : Buffer.alloc(0);
      handling = true;
      handler
        .handle({
          signal,
          transport: 'http',
          encoding,
          body,
          startedAt,
          reservedBytes: reservation.bytes,
          tenant,
        })
        .then((partial) => sendBody(res, 200, encoding, encodeExportResponse(signal, encoding, partial)))
        .catch((err: unknown) =>
          sendError(
            res,
            err instanceof OtlpError
              ? err
              : new OtlpError(
                  'internal error in the receiver; the request was not processed',
                  500,
                  GrpcCode.INTERNAL,
                  'internal',
                ),
            encoding,
          ),
        )
        .finally(() => reservation.release());
    };
    // An uncompressed body of declared length (what exporters send) is read straight into one
    // buffer of that length; the rest (compressed, chunked) through body-parser.
    const contentEncoding = req.headers['content-encoding'];
    if (declared !== undefined && (contentEncoding === undefined || contentEncoding.toLowerCase() === 'identity'))
      readDeclaredBody(req, declared, onBody);
    else readBody(req as Request, res as Response, (bodyError?: unknown) => onBody(bodyError, (req as Request).body));
  };
  const routes = new Map<string, ReturnType<typeof route>>();
  for (const signal of SIGNALS) {
    const handle = route(signal);
    routes.set(`/v1/${signal}`, handle);
    app.all(`/v1/${signal}`, (req, res) =>
      handle(req, res, typeof res.locals.tenant === 'string' ? res.locals.tenant : undefined),
    );
  }

  app.use((req, res) => {
    sendError(
      res,
      new OtlpError(
        `no such endpoint: ${req.method} ${req.path}; OTLP/HTTP paths are /v1/traces, /v1/metrics and /v1/logs`,
        404,
        GrpcCode.UNIMPLEMENTED,
        'malformed',
      ),
      'json',
    );
  });
  // Errors thrown outside the handlers above (e.g. by CORS) still get a Status body, without their
  // details (logged instead).
  const unexpected = errorHandler(options.logger, (res, status, message) =>
    sendError(
      res,
      new OtlpError(message, status, status < 500 ? GrpcCode.INVALID_ARGUMENT : GrpcCode.INTERNAL, 'internal'),
      'json',
    ),
  );
  const failed = (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (err instanceof OtlpError) sendError(res, err, 'json');
    else unexpected(err, req, res, next);
  };
  app.use(failed);

  // With CORS on, every answer carries the cors middleware's headers (Vary: Origin at least).
  const fastPath = options.corsAllowedOrigins.length === 0;
  const tokens = options.tokens;
  return (req, res) => {
    const handle = fastPath && req.method === 'POST' ? routes.get(req.url ?? '') : undefined;
    if (handle === undefined) {
      app(req, res);
      return;
    }
    let tenant: string | undefined;
    if (tokens) {
      const verdict = tokens.authenticate(req.headers.authorization);
      // Refused by requireToken, as any other request.
      if (typeof verdict !== 'object') {
        app(req, res);
        return;
      }
      tenant = verdict.tenant;
    }
    try {
      handle(req, res, tenant);
    } catch (err) {
      // What express does with an error thrown by a route (the path as express would log it).
      const logged = Object.assign(req, { path: req.url }) as unknown as Request;
      failed(err, logged, res as Response, () => {});
    }
  };
}

/**
 * Refuses a request without a known bearer token: 401, `WWW-Authenticate: Bearer`, a google.rpc.Status
 * in the request's encoding, and `Connection: close` so that Node does not go on reading (and
 * discarding) the body of an unauthenticated upload to keep the connection alive.
 */
function requireToken(handler: ExportHandler, tokens: BearerTokens): express.RequestHandler {
  return (req, res, next) => {
    if (req.method === 'OPTIONS') {
      next();
      return;
    }
    const verdict = tokens.authenticate(req.headers.authorization);
    if (typeof verdict === 'object') {
      // The tenant after the token: the exporters send this request's data as that tenant.
      res.locals.tenant = verdict.tenant;
      next();
      return;
    }
    const failure: AuthFailure = verdict;
    const signal = SIGNALS.find((s) => req.path === `/v1/${s}`);
    const error = new UnauthenticatedError(authFailureMessage(failure));
    if (signal) handler.refused({ signal, transport: 'http', startedAt: performance.now() }, error);
    res.setHeader('www-authenticate', wwwAuthenticate(failure, 'OTLP'));
    res.setHeader('connection', 'close');
    sendError(res, error, encodingOf(req.headers['content-type']) ?? 'json');
  };
}

/**
 * Reads a body of `length` bytes (its Content-Length, already checked against the limit and counted in
 * flight) into one buffer allocated up front. Errors have body-parser's shape, so that they map to
 * the same answers: a body of another length is `request.size.invalid`, a connection closed first is
 * `request.aborted`.
 */
function readDeclaredBody(req: IncomingMessage, length: number, done: (err: unknown, body?: Buffer) => void): void {
  const body = Buffer.allocUnsafe(length);
  let received = 0;
  let finished = false;
  const finish = (err: unknown) => {
    if (finished) return;
    finished = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
    if (err) {
      // As body-parser: what is left of the body is read and dropped.
      req.resume();
      done(err);
    } else done(undefined, body);
  };
  const invalid = () => ({
    type: 'request.size.invalid',
    message: `request size did not match content length (expected ${length} bytes, received ${received})`,
  });
  const onData = (chunk: Buffer) => {
    if (received + chunk.length > length) {
      received += chunk.length;
      finish(invalid());
      return;
    }
    chunk.copy(body, received);
    received += chunk.length;
  };
  const onEnd = () => finish(received === length ? undefined : invalid());
  const onError = (err: unknown) => finish(err);
  const onClose = () => {
    if (!req.complete) finish({ type: 'request.aborted', code: 'ECONNRESET', message: 'request aborted' });
  };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
  req.on('close', onClose);
}

/** The bytes of one request's body counted in flight while it is read and handled; released once. */
class Reservation {
  bytes = 0;
  released = false;

  constructor(
    private readonly handler: ExportHandler,
    private readonly signal: Signal,
  ) {}

  /** At the headers: the declared length (0 when not declared); throws when the request is to be refused. */
  reserve(bytes: number): void {
    this.handler.reserve(this.signal, bytes);
    this.bytes = bytes;
  }

  /** A chunk of a body of undeclared length arrived; throws when it takes the receiver over its limit. */
  reserveMore(bytes: number): void {
    this.handler.reserveMore(this.signal, bytes, this.bytes);
    this.bytes += bytes;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.handler.release(this.bytes);
  }
}

function encodingOf(contentType: string | undefined): Encoding | undefined {
  if (!contentType) return undefined;
  const semicolon = contentType.indexOf(';');
  const mediaType = (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return MEDIA_TYPES[mediaType];
}

/**
 * Writes a response with node's own ServerResponse methods: express's `res.send` (content negotiation,
 * ETag and freshness checks) costs more than decoding a small request, and OTLP needs none of it.
 */
function sendBody(res: ServerResponse, status: number, encoding: Encoding, body: Buffer, retryAfter?: number): void {
  if (res.headersSent) return;
  const headers: Record<string, string | number> = {
    'content-type': CONTENT_TYPE[encoding],
    'content-length': body.length,
  };
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  res.writeHead(status, headers);
  if (body.length > 0) res.end(body);
  else res.end();
}

function sendError(res: ServerResponse, error: OtlpError, encoding: Encoding): void {
  sendBody(res, error.httpStatus, encoding, encodeStatus(error, encoding), error.retryAfterSeconds);
}

interface BodyParserError {
  status?: number;
  type?: string;
  message?: string;
  code?: string;
}

/** Maps body-parser's errors (reading, decompressing, limiting) to OTLP errors. */
function bodyReadError(err: unknown, limit: number, signal: Signal): OtlpError {
  const e = (err ?? {}) as BodyParserError;
  if (e.type === 'entity.too.large' || e.status === 413) return tooLarge(limit, signal);
  if (e.type === 'encoding.unsupported') {
    return new OtlpError(
      `${e.message}: use gzip, deflate, br, zstd or none`,
      415,
      GrpcCode.INVALID_ARGUMENT,
      'unsupported_encoding',
    );
  }
  if (e.type === 'request.size.invalid') {
    return new MalformedPayloadError('request body is shorter or longer than its Content-Length');
  }
  return new MalformedPayloadError(
    `cannot read the request body: ${e.message ?? String(err)} (is Content-Encoding right?)`,
  );
}

function tooLarge(limit: number, signal: Signal): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `request body for /v1/${signal} is over limits.max_request_body_size (${limit} bytes, on the wire or decompressed); send smaller batches`,
  );
}

/** A CORS preflight: OPTIONS with an Origin and the method the browser asks for (Fetch standard). */
function isPreflight(req: IncomingMessage): boolean {
  return (
    req.method === 'OPTIONS' &&
    req.headers.origin !== undefined &&
    req.headers['access-control-request-method'] !== undefined
  );
}

function isClientGone(err: unknown): boolean {
  const e = err as BodyParserError;
  return e.type === 'request.aborted' || e.code === 'ECONNRESET';
}

/**
 * CORS origins: exact strings, or patterns with `*` (e.g. `https://*.example.com`; `*` alone allows
 * every origin, which is then echoed). A request without Origin (not from a browser) and one from
 * another origin get no CORS headers.
 */
function corsOrigin(
  allowed: string[],
): (origin: string | undefined, cb: (err: Error | null, allow?: boolean) => void) => void {
  const patterns = allowed.map((a) => new RegExp(`^${a.split('*').map(escapeRegExp).join('.*')}$`));
  return (origin, cb) => cb(null, origin !== undefined && patterns.some((p) => p.test(origin)));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Timeouts and a connection cap for a Node HTTP(S) server, so that slow or idle clients cannot hold
 * sockets, file descriptors or memory for long (the Collector's confighttp `read_header_timeout`,
 * `read_timeout`, `write_timeout`, `idle_timeout`, plus `max_connections`). Node's defaults are a
 * 60 s header timeout, a 300 s request timeout checked only every 30 s, and no connection cap.
 *
 * - read_header_timeout → `headersTimeout`: a request whose headers are not in gets 408 and the socket
 *   is closed (a connection that sends nothing is closed as well).
 * - read_timeout → `requestTimeout`: the whole request, headers and body; past it, 408 and closed.
 * - idle_timeout → `keepAliveTimeout`: a keep-alive connection with no request in progress is closed.
 * - write_timeout: a response still not taken by the client this long after the receiver began
 *   sending it has its socket destroyed (Node has no such setting), so that a client that does not
 *   read holds nothing for longer.
 * - max_connections → `maxConnections`: sockets over it are closed as they arrive (Node's 'drop').
 *
 * Node checks the header and request timeouts every `connectionsCheckingInterval`: it is set to a
 * quarter of the shortest timeout, at most 1 s, so each is enforced within a second of its value.
 * 0 turns a timeout off (and max_connections 0 means no cap).
 */
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { Counter } from 'prom-client';

export interface ServerLimits {
  /** The `listener` label of the metrics: otlp_http or admin. */
  listener: string;
  readHeaderTimeoutMs: number;
  readTimeoutMs: number;
  idleTimeoutMs: number;
  writeTimeoutMs: number;
  /** 0: no cap. */
  maxConnections: number;
}

export interface ServerLimitMetrics {
  /** sonde_receiver_connections_refused_total{listener} */
  connectionsRefused: Counter<'listener'>;
  /** sonde_receiver_request_timeouts_total{listener,kind} */
  requestTimeouts: Counter<'listener' | 'kind'>;
}

/** The timeout kinds counted in sonde_receiver_request_timeouts_total{kind}. */
export type TimeoutKind = 'read_header' | 'read' | 'write' | 'idle';

/**
 * How long a client has for its request headers (Node's headersTimeout, and a TLS listener's
 * handshakeTimeout, as the handshake comes before the headers): read_header_timeout, or
 * read_timeout when that is off; 0 when both are.
 */
export function headersTimeoutOf(limits: Pick<ServerLimits, 'readHeaderTimeoutMs' | 'readTimeoutMs'>): number {
  return limits.readHeaderTimeoutMs > 0 ? limits.readHeaderTimeoutMs : limits.readTimeoutMs;
}

/** The longest time between two checks of the header, request and write timeouts. */
const MAX_CHECK_INTERVAL_MS = 1000;

/** Applies `limits` to `server` (before it listens) and counts what they cut. */
export function applyServerLimits(
  server: HttpServer | HttpsServer,
  limits: ServerLimits,
  metrics: ServerLimitMetrics,
): void {
  const { listener, readHeaderTimeoutMs, readTimeoutMs, idleTimeoutMs, writeTimeoutMs, maxConnections } = limits;
  // Node's headersTimeout has no "off" of its own: it is capped by requestTimeout, and 0 in both is none.
  server.headersTimeout = headersTimeoutOf(limits);
  server.requestTimeout = readTimeoutMs;
  server.keepAliveTimeout = idleTimeoutMs;
  const timeouts = [readHeaderTimeoutMs, readTimeoutMs, writeTimeoutMs].filter((t) => t > 0);
  const checkMs = Math.max(10, Math.min(MAX_CHECK_INTERVAL_MS, ...timeouts.map((t) => Math.floor(t / 4))));
  // Read by Node when the server starts listening (a documented createServer option, missing from @types/node's Server).
  (server as HttpServer & { connectionsCheckingInterval: number }).connectionsCheckingInterval = checkMs;
  if (maxConnections > 0) server.maxConnections = maxConnections;

  const count = (kind: TimeoutKind) => metrics.requestTimeouts.inc({ listener, kind });
  server.on('drop', () => metrics.connectionsRefused.inc({ listener }));

  // Sockets with a request whose response is not done: a timeout on one of them is a read (body)
  // timeout, on any other a header timeout.
  const inRequest = new WeakSet<Socket>();
  /** Responses not yet done, with when the receiver was first seen sending them. */
  const responses = new Map<ServerResponse, number>();
  // Before the application's own listener, so that a response it ends at once is still seen closing.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    inRequest.add(socket);
    if (writeTimeoutMs > 0) responses.set(res, 0);
    res.once('close', () => {
      inRequest.delete(socket);
      responses.delete(res);
    });
  });
  // Over TLS, the socket HTTP runs on (and Node destroys) is the TLS one.
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket) => {
    // Node destroys the socket with this error when headersTimeout or requestTimeout passes (after
    // answering 408 when it still can).
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') count(inRequest.has(socket) ? 'read' : 'read_header');
    });
  });
  // Over TLS, a handshake not done within the TLS server's handshakeTimeout (headersTimeoutOf, given
  // to its constructor): the headers never came either.
  if (server instanceof TlsServer) {
    server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') count('read_header');
    });
  }
  // A keep-alive connection idle for keepAliveTimeout: without a listener, Node destroys the socket;
  // with one, that is left to the listener.
  server.on('timeout', (socket: Socket) => {
    count('idle');
    socket.destroy();
  });

  if (writeTimeoutMs > 0) {
    const timer = setInterval(() => {
      const now = performance.now();
      for (const [res, since] of responses) {
        if (!res.headersSent) continue;
        if (since === 0) responses.set(res, now);
        else if (now - since >= writeTimeoutMs) {
          responses.delete(res);
          count('write');
          res.socket?.destroy();
        }
      }
    }, checkMs).unref();
    server.once('close', () => clearInterval(timer));
  }
}

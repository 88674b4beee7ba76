/**
 * Starting and stopping the listeners: an HTTP(S) server for an express app with its limits
 * (`listen`, `closeHttp`), and the OTLP/HTTP and OTLP/gRPC intakes from the `otlp:` and `limits:`
 * sections (`startOtlpListeners`).
 */
import { createServer as createHttpServer, type Server as HttpServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatAddress, type ListenAddress } from '../config/units';
import type { Logger } from '../logger';
import type { ListenerSecurity } from '../security/config';
import type { ServerTls } from '../security/tls';
import type { SelfMetrics } from '../self-metrics';
import { type LimitsConfig, type OtlpConfig, toGrpcIntakeOptions, toServerLimits } from './config';
import type { ExportHandler } from './export-handler';
import { bindGrpc, createGrpcIntake } from './grpc';
import { createHttpIntake } from './http';
import { applyServerLimits, headersTimeoutOf, type ServerLimits } from './server-limits';

/** An HTTP(S) server for `app` (an express app or a request listener), listening on `address`; `what` names the listener in errors. */
export function listen(
  app: RequestListener,
  address: ListenAddress,
  what: string,
  tls: ServerTls | undefined,
  limits: ServerLimits,
  metrics: SelfMetrics,
): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    const server = tls ? tls.createHttpsServer(app, headersTimeoutOf(limits)) : createHttpServer(app);
    applyServerLimits(server, limits, metrics);
    server.listen(address.port, address.host);
    const onError = (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'EADDRINUSE' ? ' (another process holds the port; set another address or port 0)' : '';
      const where = formatAddress(address.host, address.port);
      reject(new Error(`cannot listen for ${what} on ${where}: ${err.code ?? err.message}${hint}`));
    };
    server.once('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/** "host:port" a server is bound to. */
export function boundAddress(server: HttpServer): string {
  const a = server.address() as AddressInfo;
  return formatAddress(a.address, a.port);
}

/** Stops accepting connections, lets in-flight requests finish, then cuts what is left after `timeoutMs`. */
export function closeHttp(server: HttpServer, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    // Keep-alive connections that were busy become idle once their response is out: close them then,
    // rather than waiting for the timeout.
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearTimeout(timer);
      clearInterval(idle);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** A started listener: its bound address and how to close it (draining for at most the timeout). */
export interface StartedListener {
  address: string;
  close(timeoutMs: number): Promise<void>;
}

/**
 * Starts the OTLP/HTTP and OTLP/gRPC listeners that are not "off". Each one started is pushed to
 * `started` as soon as it listens, so that the caller can close it when a later one fails.
 */
export async function startOtlpListeners(
  otlp: OtlpConfig,
  limits: LimitsConfig,
  handler: ExportHandler,
  security: Pick<ListenerSecurity, 'otlpTls' | 'otlpTokens'>,
  metrics: SelfMetrics,
  logger: Logger,
  started: { http?: StartedListener; grpc?: StartedListener },
): Promise<void> {
  if (otlp.http.address !== 'off') {
    const app = createHttpIntake(handler, {
      maxRequestBodySize: limits.max_request_body_size,
      corsAllowedOrigins: otlp.http.cors_allowed_origins,
      tokens: security.otlpTokens,
      logger,
      metrics,
    });
    const serverLimits = toServerLimits(otlp.http, 'otlp_http');
    const server = await listen(app, otlp.http.address, 'OTLP/HTTP', security.otlpTls, serverLimits, metrics);
    started.http = { address: boundAddress(server), close: (timeoutMs) => closeHttp(server, timeoutMs) };
  }
  const g = otlp.grpc;
  if (g.address !== 'off') {
    const server = createGrpcIntake(handler, {
      ...toGrpcIntakeOptions(g, limits),
      onReadTimeout: () => metrics.requestTimeouts.inc({ listener: 'otlp_grpc', kind: 'read' }),
      tokens: security.otlpTokens,
    });
    const listener = await bindGrpc(
      server,
      g.address.host,
      g.address.port,
      {
        tls: security.otlpTls,
        tokens: security.otlpTokens,
        onUnauthenticated: (signal, error) => {
          if (signal) handler.refused({ signal, transport: 'grpc', startedAt: performance.now() }, error);
        },
      },
      {
        maxConnections: g.max_connections,
        onConnectionRefused: () => metrics.connectionsRefused.inc({ listener: 'otlp_grpc' }),
        prefaceTimeoutMs: g.read_header_timeout,
        onPrefaceTimeout: () => metrics.requestTimeouts.inc({ listener: 'otlp_grpc', kind: 'read_header' }),
      },
    );
    started.grpc = {
      address: formatAddress(g.address.host, listener.port),
      close: (timeoutMs) => listener.close(timeoutMs),
    };
  }
}

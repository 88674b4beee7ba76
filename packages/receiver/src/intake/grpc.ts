/**
 * OTLP/gRPC intake (@grpc/grpc-js): the three collector export services. Messages arrive as raw
 * bytes (identity deserializers) and go through the same ExportHandler as OTLP/HTTP protobuf.
 * grpc-js decompresses gzip/deflate messages itself and enforces the message size limit
 * (RESOURCE_EXHAUSTED over it). Errors carry a google.rpc.Status in `grpc-status-details-bin`,
 * with a RetryInfo when the client should wait.
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import type * as Reflection from '@grpc/reflection';
import type { Signal } from '../model';
import { type OtlpError, UnauthenticatedError } from '../otlp/errors';
import { encodeExportResponse } from '../otlp/responses';
import type { ServerTls } from '../security/tls';
import { type BearerTokens, grpcAuthInterceptor } from '../security/tokens';
import type { ExportHandler } from './export-handler';
import { intakeInterceptor } from './grpc-interceptor';
import { type GrpcListener, type GrpcListenOptions, listenGrpc } from './grpc-listener';
import type { GrpcIntakeOptions } from './grpc-options';
import { SERVICE_PATH, serviceDefinition, toServiceError } from './grpc-service';

export type { GrpcIntakeOptions } from './grpc-options';
export { serviceDefinition, toServiceError } from './grpc-service';

/** A duration option for grpc-js: whole milliseconds, or left out (grpc-js's "unlimited") for 0. */
const ms = (value: number): number | undefined => (value > 0 ? Math.max(1, Math.round(value)) : undefined);

/** The tenant after the call's bearer token, if it names one. */
function tenantOf(tokens: BearerTokens, metadata: grpc.Metadata): string | undefined {
  const values = metadata.get('authorization');
  const verdict = tokens.authenticate(values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined);
  return typeof verdict === 'object' ? verdict.tenant : undefined;
}

export function createGrpcIntake(handler: ExportHandler, options: GrpcIntakeOptions): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxRequestBodySize,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // grpc-js leaves these unlimited: a connection could hold any number of calls, forever.
    'grpc.max_concurrent_streams': options.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': ms(options.maxConnectionIdleMs),
    'grpc.max_connection_age_ms': ms(options.maxConnectionAgeMs),
    'grpc.max_connection_age_grace_ms': ms(options.maxConnectionAgeGraceMs),
    // In (decimal) megabytes, as Node's http2 maxSessionMemory; grpc-js's default disables the check.
    'grpc-node.max_session_memory': Math.max(1, Math.ceil(options.maxSessionMemory / 1e6)),
    // Admission and a read timeout from a call's headers on, and the refusals grpc-js makes itself (a
    // message flagged compressed that is not) answered and counted as ours. It reaches under any other interceptor.
    interceptors: [
      intakeInterceptor(handler, { readTimeoutMs: options.readTimeoutMs, onReadTimeout: options.onReadTimeout }),
    ],
  });
  for (const signal of ['traces', 'metrics', 'logs'] as const) {
    const exportCall: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
      const startedAt = performance.now();
      handler
        .handle({
          signal,
          transport: 'grpc',
          encoding: 'protobuf',
          body: call.request,
          startedAt,
          tenant: options.tokens ? tenantOf(options.tokens, call.metadata) : undefined,
        })
        .then((partial) => callback(null, encodeExportResponse(signal, 'protobuf', partial)))
        .catch((err: OtlpError) => callback(toServiceError(err)));
    };
    server.addService(serviceDefinition(signal), { Export: exportCall });
  }
  if (options.reflection) {
    // Loaded only when on: the two modules and the protos cost some 180 ms at start and 6 MB of heap.
    const { ReflectionService } = require('@grpc/reflection') as typeof Reflection;
    new ReflectionService(otlpPackageDefinition()).addToServer(server);
  }
  return server;
}

/**
 * The OTLP collector services and their messages, from the .proto files of opentelemetry-proto
 * (v1.11.0, shipped in proto/): what reflection describes. Loaded only when reflection is on.
 */
function otlpPackageDefinition(): ProtoLoader.PackageDefinition {
  const protoLoader = require('@grpc/proto-loader') as typeof ProtoLoader;
  // From src/intake or dist/intake alike.
  const includeDir = path.join(__dirname, '..', '..', 'proto');
  return protoLoader.loadSync(
    ['trace', 'metrics', 'logs'].map((s) => `opentelemetry/proto/collector/${s}/v1/${s}_service.proto`),
    { includeDirs: [includeDir] },
  );
}

export interface GrpcSecurity {
  /** otlp.tls: the listener's certificate (reloaded), and client certificates when mutual. */
  tls?: ServerTls;
  /** otlp.auth: calls without a known bearer token are refused (UNAUTHENTICATED) on their metadata. */
  tokens?: BearerTokens;
  /** Counts a call refused for its token (`signal` undefined when the method is not an OTLP export). */
  onUnauthenticated?(signal: Signal | undefined, error: OtlpError): void;
}

/** How the listener takes connections (see grpc-listener.ts). */
export type GrpcConnectionLimits = Pick<
  GrpcListenOptions,
  'maxConnections' | 'onConnectionRefused' | 'prefaceTimeoutMs' | 'onPrefaceTimeout'
>;

/**
 * Listens for the server (with TLS and token checks when configured) on a socket the receiver owns,
 * which caps connections and closes those that do not send their HTTP/2 preface in time.
 */
export function bindGrpc(
  server: grpc.Server,
  host: string,
  port: number,
  security: GrpcSecurity,
  limits: GrpcConnectionLimits,
): Promise<GrpcListener> {
  // TLS is done by the listener, before grpc-js gets the connection.
  let credentials = grpc.ServerCredentials.createInsecure();
  if (security.tokens) {
    // Per-port interceptors (grpc-js runs them before the server's own), so the check comes first.
    const auth = grpcAuthInterceptor(security.tokens, (path, status) => {
      const signal = (Object.keys(SERVICE_PATH) as Signal[]).find((s) => SERVICE_PATH[s] === path);
      security.onUnauthenticated?.(signal, new UnauthenticatedError(status.details));
    });
    credentials = grpc.experimental.createServerCredentialsWithInterceptors(credentials, [auth]);
  }
  return listenGrpc(server, { host, port, credentials, tls: security.tls, ...limits });
}

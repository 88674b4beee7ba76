/**
 * The options of the OTLP/gRPC intake (createGrpcIntake in grpc.ts), apart from it so that the
 * configuration (config.ts, toGrpcIntakeOptions) can name them without importing the gRPC server.
 */
import type { BearerTokens } from '../security/tokens';

export interface GrpcIntakeOptions {
  maxRequestBodySize: number;
  maxConcurrentStreams: number;
  /** 0: no limit (as the durations below). */
  maxConnectionIdleMs: number;
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
  maxSessionMemory: number;
  /** A call's message must be in this long after its headers (0: no limit); `onReadTimeout` counts the calls cut. */
  readTimeoutMs?: number;
  onReadTimeout?: () => void;
  /** Offer gRPC server reflection of the three Export services (otlp.grpc.reflection). */
  reflection?: boolean;
  /**
   * otlp.auth's tokens, for the tenant after a call's token (the auth interceptor of bindGrpc has
   * let the call in; the handler looks its token up again to learn the tenant).
   */
  tokens?: BearerTokens;
}

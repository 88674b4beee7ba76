/**
 * The intake's config sections: `otlp` (the OTLP/HTTP and OTLP/gRPC listeners, their TLS and tokens),
 * `limits` (what one request may hold) and `overload` (admission), with their conversion to the
 * intake's options. `serverLimitsFields` are an HTTP listener's timeouts and connection cap, which the
 * admin listener has too (the Collector's confighttp server settings).
 */
import { z } from 'zod';
import { address, duration, positiveInt, size } from '../config/fields';
import { DEFAULT_DECODE_LIMITS } from '../otlp/limits';
import { bearerTokensFields, serverTlsSection } from '../security/config';
import type { AdmissionOptions } from './admission';
import type { GrpcIntakeOptions } from './grpc-options';
import type { HandlerOptions } from './prepare';
import type { ServerLimits } from './server-limits';

/**
 * Timeouts and the connection cap of an HTTP listener (src/intake/server-limits.ts); 0 turns one off.
 * As the Collector's confighttp, with bounds where it has none (a stalled upload must not hold memory for long).
 */
export const serverLimitsFields = (maxConnections: number) => ({
  /** Longest time for a request's headers to arrive (408 and closed past it). */
  read_header_timeout: duration.default(10_000),
  /** Longest time for a whole request, headers and body (408 and closed past it). */
  read_timeout: duration.default(60_000),
  /** A keep-alive connection with no request for this long is closed. */
  idle_timeout: duration.default(60_000),
  /** A response the client has not taken this long after it began is cut (socket closed). */
  write_timeout: duration.default(30_000),
  /** Open connections at most; further ones are closed on arrival (counted). 0: no cap. */
  max_connections: z.number().int().nonnegative().default(maxConnections),
});

export const otlpSection = z
  .strictObject({
    http: z
      .strictObject({
        /** OTLP/HTTP listen address (POST /v1/traces, /v1/metrics, /v1/logs). */
        address: address.default({ host: '127.0.0.1', port: 4318 }),
        /** Origins allowed to send OTLP/HTTP from a browser (CORS); empty means CORS is off. */
        cors_allowed_origins: z.array(z.string()).default([]),
        ...serverLimitsFields(4096),
      })
      .prefault({}),
    grpc: z
      .strictObject({
        /** OTLP/gRPC listen address, or "off". */
        address: address.default({ host: '127.0.0.1', port: 4317 }),
        /** Concurrent calls on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
        max_concurrent_streams: positiveInt.default(100),
        /** A connection with no call for this long is closed (GOAWAY). */
        max_connection_idle: duration.default(60_000),
        /** A connection is closed (GOAWAY) after this long (±10%), and cut max_connection_age_grace later. */
        max_connection_age: duration.default(10 * 60_000),
        max_connection_age_grace: duration.default(30_000),
        /** Memory one connection's HTTP/2 session may hold (headers, queued responses); new calls are refused over it. */
        max_session_memory: size.default(64 * 1024 * 1024),
        /** A call's request message must arrive in full this long after its headers (DEADLINE_EXCEEDED and counted past it); 0 turns it off. */
        read_timeout: duration.default(60_000),
        /** gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl / buf curl need no proto files. */
        reflection: z.boolean().default(false),
        /** A connection must have sent its HTTP/2 preface (after the TLS handshake, if any) this long after it opened; closed and counted past it. 0 turns it off. */
        read_header_timeout: duration.default(10_000),
        /** Open connections at most; further ones are closed on arrival (counted). 0: no cap. */
        max_connections: z.number().int().nonnegative().default(4096),
      })
      .prefault({}),
    /** TLS of both OTLP listeners (HTTP and gRPC). */
    tls: serverTlsSection,
    auth: z
      .strictObject({
        /** Senders must present one of these tokens (Authorization: Bearer); empty: anyone may send. */
        ...bearerTokensFields,
      })
      .prefault({}),
  })
  .prefault({});

export const limitsSection = z
  .strictObject({
    /** Largest request body, on the wire and after decompression (413 over it). */
    max_request_body_size: size.default(64 * 1024 * 1024),
    /** Most spans, data points or log records in one request; the excess is rejected (partial success). */
    max_items_per_request: positiveInt.default(100_000),
    /** Most attributes on one span, event, link, data point, log record, resource or scope; extra ones are dropped and counted in dropped_attributes_count. */
    max_attributes_per_item: positiveInt.default(128),
    /** Longest string attribute value (in UTF-16 code units); longer values are truncated. 0 means no limit. */
    max_attribute_value_length: z.number().int().nonnegative().default(8192),
    /** Deepest nesting of AnyValue arrays and maps (400 over it). */
    max_any_value_depth: positiveInt.default(DEFAULT_DECODE_LIMITS.maxAnyValueDepth),
    /** Most structures one request may decode into (resources, scopes, items, events, links, exemplars, attributes, array and map values, and their lists; in JSON also what JSON.parse would build); 400 over it, refused before it is built. */
    max_decoded_structures: positiveInt.default(DEFAULT_DECODE_LIMITS.maxDecodedStructures as number),
  })
  .prefault({});

export const overloadSection = z
  .strictObject({
    /** Request bytes (decompressed) and the estimated size of what they decoded into, being processed at once; over it, 429 with Retry-After. */
    max_in_flight_bytes: size.default(256 * 1024 * 1024),
    /** Resident memory above which requests are refused with 503 and Retry-After; 0 turns the check off. */
    memory_limit: size.default(0),
    /** How often memory is checked. */
    memory_check_interval: duration.default(1000),
    /** Requests one intake worker (`workers`) holds at once; when every worker holds this many, 503 with Retry-After. */
    max_requests_per_worker: positiveInt.default(64),
    /**
     * The longest an intake worker may take over one request; past it the worker is stopped (its
     * requests get 503 with Retry-After) and replaced. 0 turns the check off.
     */
    worker_request_timeout: duration.default(30_000),
    /** The Retry-After given to clients that are refused for overload. */
    retry_after: duration.default(5000),
  })
  .prefault({});

export type OtlpConfig = z.output<typeof otlpSection>;
export type LimitsConfig = z.output<typeof limitsSection>;
export type OverloadConfig = z.output<typeof overloadSection>;
type ServerLimitsConfig = z.output<z.ZodObject<ReturnType<typeof serverLimitsFields>>>;

export function toAdmissionOptions(c: OverloadConfig): AdmissionOptions {
  return {
    maxInFlightBytes: c.max_in_flight_bytes,
    memoryLimit: c.memory_limit,
    memoryCheckInterval: c.memory_check_interval,
    retryAfterMs: c.retry_after,
  };
}

/** The export handler's options from `limits` (and `debug.full_decode`, when given). */
export function toHandlerOptions({
  limits: c,
  debug,
}: {
  limits: LimitsConfig;
  debug?: { full_decode: boolean };
}): HandlerOptions {
  return {
    decodeLimits: { maxAnyValueDepth: c.max_any_value_depth, maxDecodedStructures: c.max_decoded_structures },
    maxItemsPerRequest: c.max_items_per_request,
    fullDecode: debug?.full_decode ?? false,
  };
}

/** The gRPC server's options from otlp.grpc and limits (tokens and the read-timeout counter are the caller's). */
export function toGrpcIntakeOptions(
  g: OtlpConfig['grpc'],
  limits: LimitsConfig,
): Omit<GrpcIntakeOptions, 'tokens' | 'onReadTimeout'> {
  return {
    maxRequestBodySize: limits.max_request_body_size,
    maxConcurrentStreams: g.max_concurrent_streams,
    maxConnectionIdleMs: g.max_connection_idle,
    maxConnectionAgeMs: g.max_connection_age,
    maxConnectionAgeGraceMs: g.max_connection_age_grace,
    maxSessionMemory: g.max_session_memory,
    readTimeoutMs: g.read_timeout,
    reflection: g.reflection,
  };
}

/** A listener's timeouts and connection cap, from its config section (otlp.http or admin). */
export function toServerLimits(c: ServerLimitsConfig, listener: string): ServerLimits {
  return {
    listener,
    readHeaderTimeoutMs: c.read_header_timeout,
    readTimeoutMs: c.read_timeout,
    idleTimeoutMs: c.idle_timeout,
    writeTimeoutMs: c.write_timeout,
    maxConnections: c.max_connections,
  };
}

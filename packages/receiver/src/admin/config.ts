/**
 * The admin server's config sections: `admin` (listener, TLS, tokens, pipelining and the HTTP
 * listener limits) and `debug` (/debug/recent), their defaults and their conversion to AdminOptions.
 */
import { z } from 'zod';
import { address, duration, positiveInt } from '../config/fields';
import { serverLimitsFields } from '../intake/config';
import { bearerTokensFields, serverTlsSection } from '../security/config';
import { ADMIN_DEFAULTS } from './server';

export const adminSection = z
  .strictObject({
    /** Admin listen address: /metrics, /healthz, /readyz, /debug/recent. */
    address: address.default({ host: '127.0.0.1', port: 9464 }),
    tls: serverTlsSection,
    auth: z
      .strictObject({
        /** Tokens for /debug/* and the query APIs (everything but /metrics, /healthz, /readyz, /ready); empty: open. */
        ...bearerTokensFields,
        /** Require a token for /metrics too (Prometheus then sends it: authorization.credentials_file). */
        protect_metrics: z.boolean().default(false),
      })
      .prefault({}),
    /** Requests a connection may pipeline ahead of its responses; past it the connection is closed. */
    max_pipelined_requests: positiveInt.default(ADMIN_DEFAULTS.maxPipelinedRequests),
    ...serverLimitsFields(256),
  })
  .prefault({});

export const debugSection = z
  .strictObject({
    /** How many recent items of each signal are kept in memory for GET /debug/recent (0 turns it off). */
    recent_items: z.number().int().nonnegative().default(1000),
    /** /debug/recent responses being rendered and sent at once; more are answered 503 + Retry-After. */
    max_concurrent_renders: positiveInt.default(ADMIN_DEFAULTS.maxConcurrentRenders),
    /** A /debug/recent response whose client takes nothing for this long is cut off (its connection closed). */
    write_timeout: duration.default(ADMIN_DEFAULTS.writeTimeoutMs).refine((ms) => ms > 0, 'must be more than 0'),
    /**
     * Decode traces in full at intake even when no processor reads every attribute (the receiver then
     * decodes them lean: otlp/protobuf/lean.ts): the same results, more CPU; for comparing the two.
     */
    full_decode: z.boolean().default(false),
  })
  .prefault({});

export type AdminConfig = z.output<typeof adminSection>;
export type DebugConfig = z.output<typeof debugSection>;

/** createAdminApp's options from admin and debug (tokens and logger are the caller's). */
export function toAdminOptions(admin: AdminConfig, debug: DebugConfig) {
  return {
    maxPipelinedRequests: admin.max_pipelined_requests,
    maxConcurrentRenders: debug.max_concurrent_renders,
    writeTimeoutMs: debug.write_timeout,
    protectMetrics: admin.auth.protect_metrics,
  };
}

/**
 * Errors that the intake turns into OTLP responses. Each carries the HTTP status and the gRPC code
 * that the OTLP specification prescribes, and a `reason` used as the label of the refusal counters.
 */
import type { Logger } from 'pino';

/** gRPC status codes used by the receiver (google.rpc.Code). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export type RefusalReason =
  | 'malformed'
  | 'too_large'
  | 'too_deep'
  | 'too_many_structures'
  | 'unsupported_media_type'
  | 'unsupported_encoding'
  | 'method_not_allowed'
  | 'overloaded'
  | 'unauthenticated'
  | 'storage_error'
  | 'internal';

export class OtlpError extends Error {
  constructor(
    message: string,
    readonly httpStatus: number,
    readonly grpcCode: number,
    readonly reason: RefusalReason,
    /** Seconds the client should wait before retrying (429/503 only). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'OtlpError';
  }
}

/**
 * The payload cannot be decoded. `path` names the field, as in
 * `resourceSpans[0].scopeSpans[1].spans[3].traceId`; decoders prefix it as the error unwinds.
 */
export class MalformedPayloadError extends OtlpError {
  path: string;

  constructor(
    readonly detail: string,
    path = '',
    reason: RefusalReason = 'malformed',
  ) {
    super(path ? `${path}: ${detail}` : detail, 400, GrpcCode.INVALID_ARGUMENT, reason);
    this.name = 'MalformedPayloadError';
    this.path = path;
  }

  /** Puts `segment` in front of the path (`spans[3]` + `traceId` → `spans[3].traceId`). */
  prefixPath(segment: string): this {
    this.path = this.path ? `${segment}.${this.path}` : segment;
    this.message = `${this.path}: ${this.detail}`;
    return this;
  }
}

/** An AnyValue nested deeper than the configured limit. */
export class TooDeepError extends MalformedPayloadError {
  constructor(limit: number, path = '') {
    super(`AnyValue nested deeper than ${limit} levels (limits.max_any_value_depth)`, path, 'too_deep');
    this.name = 'TooDeepError';
  }
}

/** A request that decodes into more structures than the configured limit (limits.max_decoded_structures). */
export class TooManyStructuresError extends MalformedPayloadError {
  constructor(limit: number) {
    super(
      `request decodes into more than ${limit} structures (limits.max_decoded_structures: resources, scopes, items, attributes, values and their lists); send smaller batches`,
      '',
      'too_many_structures',
    );
    this.name = 'TooManyStructuresError';
  }
}

export class PayloadTooLargeError extends OtlpError {
  constructor(message: string) {
    super(message, 413, GrpcCode.RESOURCE_EXHAUSTED, 'too_large');
    this.name = 'PayloadTooLargeError';
  }
}

/** No known bearer token (otlp.auth): 401 / UNAUTHENTICATED, which clients must not retry. */
export class UnauthenticatedError extends OtlpError {
  constructor(message: string) {
    super(message, 401, GrpcCode.UNAUTHENTICATED, 'unauthenticated');
    this.name = 'UnauthenticatedError';
  }
}

/** The receiver cannot take more now; the client should retry after `retryAfterSeconds`. */
export class OverloadedError extends OtlpError {
  constructor(message: string, retryAfterSeconds: number) {
    super(message, 503, GrpcCode.UNAVAILABLE, 'overloaded', retryAfterSeconds);
    this.name = 'OverloadedError';
  }
}

/** Any failure as an OtlpError: unknown errors become 500 (and are logged, being bugs). */
export function asOtlpError(err: unknown, logger: Logger): OtlpError {
  if (err instanceof OtlpError) return err;
  logger.error({ err }, 'internal error while handling an export request');
  return new OtlpError(
    'internal error in the receiver; the request was not processed',
    500,
    GrpcCode.INTERNAL,
    'internal',
  );
}

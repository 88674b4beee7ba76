/**
 * OTLP response bodies in both encodings: `Export{Trace,Metrics,Logs}ServiceResponse` (with
 * `partial_success`) on success, and `google.rpc.Status` (with a `RetryInfo` detail when the client
 * should wait) on failure. Field numbers from opentelemetry-proto collector/*.proto and googleapis
 * google/rpc/status.proto, error_details.proto.
 */
import type { Signal } from '../model';
import type { OtlpError } from './errors';
import { ProtoWriter } from './protobuf/writer';

export type Encoding = 'protobuf' | 'json';

export const CONTENT_TYPE: Record<Encoding, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

/** The JSON name of the rejected-items counter in each signal's PartialSuccess message. */
const REJECTED_FIELD: Record<Signal, string> = {
  traces: 'rejectedSpans',
  metrics: 'rejectedDataPoints',
  logs: 'rejectedLogRecords',
};

export interface PartialSuccess {
  rejected: number;
  errorMessage: string;
}

/** Full success: an empty message (`{}` in JSON), the same bytes every time. */
const FULL_SUCCESS: Record<Encoding, Buffer> = { protobuf: Buffer.alloc(0), json: Buffer.from('{}') };

/** The success response; `partial` is left out when everything was accepted without a warning. */
export function encodeExportResponse(signal: Signal, encoding: Encoding, partial?: PartialSuccess): Buffer {
  if (partial === undefined || (partial.rejected === 0 && partial.errorMessage === '')) return FULL_SUCCESS[encoding];
  if (encoding === 'json') {
    const body: Record<string, string> = {};
    if (partial.rejected > 0) body[REJECTED_FIELD[signal]] = String(partial.rejected);
    if (partial.errorMessage) body.errorMessage = partial.errorMessage;
    return Buffer.from(JSON.stringify({ partialSuccess: body }));
  }
  return new ProtoWriter(64)
    .message(1, (p) => p.varintField(1, partial.rejected).stringField(2, partial.errorMessage))
    .finish();
}

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

/** The `google.rpc.Status` body of an error response. */
export function encodeStatus(error: OtlpError, encoding: Encoding): Buffer {
  const retry = error.retryAfterSeconds;
  if (encoding === 'json') {
    const body: Record<string, unknown> = { code: error.grpcCode, message: error.message };
    if (retry !== undefined) body.details = [{ '@type': RETRY_INFO_TYPE, retryDelay: `${retry}s` }];
    return Buffer.from(JSON.stringify(body));
  }
  return encodeStatusProto(error.grpcCode, error.message, retry);
}

/** `google.rpc.Status` as protobuf; also the payload of gRPC's `grpc-status-details-bin` trailer. */
export function encodeStatusProto(code: number, message: string, retryAfterSeconds?: number): Buffer {
  const w = new ProtoWriter(64 + message.length);
  w.varintField(1, code).stringField(2, message);
  if (retryAfterSeconds !== undefined) {
    w.message(3, (any) =>
      any
        .stringField(1, RETRY_INFO_TYPE)
        .message(2, (info) => info.message(1, (d) => d.varintField(1, retryAfterSeconds))),
    );
  }
  return w.finish();
}

/**
 * The OTLP/gRPC intake's interceptor, for what grpc-js does before our handler sees a call.
 *
 * - Admission from the start of a call: grpc-js reads a whole message before it calls the handler,
 *   and the handler is synchronous when no consumer waits (no trace store): in-flight bytes counted
 *   from there never added up, so a burst of calls was never refused and its last calls waited
 *   until their clients gave up. Each Export call therefore counts in overload.max_in_flight_bytes
 *   from its headers on, with the recent average message size until its message is in (then the
 *   handler counts its real size); a call that would take the receiver over the limit is answered
 *   RESOURCE_EXHAUSTED with RetryInfo at once, before its message is read.
 * - Refusals grpc-js makes itself: a message flagged compressed that does not decompress, one over
 *   the size limit (on the wire or decompressed), one in an encoding it does not know. grpc-js
 *   answers those from its base call, which no interceptor's responder sees: the first one as
 *   INTERNAL, a server fault, when the client sent garbage. The interceptor puts itself in front of
 *   the base call's `sendStatus` and, for those statuses only, answers as our handler would
 *   (INVALID_ARGUMENT for a malformed message, with a google.rpc.Status in grpc-status-details-bin)
 *   and counts the refusal (sonde_receiver_refused_requests_total).
 * - A read timeout (otlp.grpc.read_timeout): a call whose message is not in that long after its
 *   headers is answered DEADLINE_EXCEEDED (grpc-js has no such bound: a stalled call held its
 *   in-flight estimate and its stream until the connection's max age).
 */
import * as grpc from '@grpc/grpc-js';
import { SIGNALS, type Signal } from '../model';
import { GrpcCode, MalformedPayloadError, OtlpError, PayloadTooLargeError } from '../otlp/errors';
import type { ExportHandler } from './export-handler';
import { serviceDefinition, toServiceError } from './grpc-service';

/** The statuses grpc-js's base call sends on its own (server-interceptors.ts), as our errors. */
function asOtlpError(status: { code: number; details?: string }): OtlpError | undefined {
  const details = status.details ?? '';
  if (status.code === grpc.status.INTERNAL && details.startsWith('Failed to decompress message')) {
    return new MalformedPayloadError(
      'the message is flagged compressed but does not decompress with its grpc-encoding (gzip or deflate)',
    );
  }
  if (status.code === grpc.status.INTERNAL && details.startsWith('Error deserializing request')) {
    return new MalformedPayloadError('the message cannot be read');
  }
  if (status.code === grpc.status.RESOURCE_EXHAUSTED && details.startsWith('Received message')) {
    return new PayloadTooLargeError(`${details} (limits.max_request_body_size); send smaller batches`);
  }
  if (status.code === grpc.status.UNIMPLEMENTED && details.startsWith('Received message compressed with')) {
    return new OtlpError(`${details}: use gzip, deflate or none`, 415, GrpcCode.UNIMPLEMENTED, 'unsupported_encoding');
  }
  return undefined;
}

/**
 * The innermost call of an interceptor chain: grpc-js's base call, which sends those statuses. Each
 * ServerInterceptingCall keeps the call it wraps in `nextCall` (a private field of grpc-js 1.10 to
 * 1.14, which the tests would catch changing), so this works wherever the interceptor sits in the list.
 */
function baseCall(call: grpc.ServerInterceptingCallInterface): grpc.ServerInterceptingCallInterface {
  let c = call as grpc.ServerInterceptingCallInterface & { nextCall?: grpc.ServerInterceptingCallInterface };
  while (c.nextCall) c = c.nextCall;
  return c;
}

/** Until messages have been seen: what a call is counted for before its message is in. */
const FIRST_ESTIMATE = 64 * 1024;

export interface IntakeInterceptorOptions {
  /** A call's message must be in (half-closed) this long after its headers; 0 or unset: no limit. */
  readTimeoutMs?: number;
  /** Called for each call cut by `readTimeoutMs`. */
  onReadTimeout?: () => void;
}

/** The interceptor (for `new grpc.Server({ interceptors })`), counting through the handler. */
export function intakeInterceptor(
  handler: ExportHandler,
  options: IntakeInterceptorOptions = {},
): grpc.ServerInterceptor {
  const { readTimeoutMs = 0, onReadTimeout } = options;
  const signalOfPath = new Map<string, Signal>(SIGNALS.map((s) => [serviceDefinition(s).Export.path, s] as const));
  /** Moving average of the message sizes seen (decompressed). */
  let averageSize = FIRST_ESTIMATE;
  return (method, call) => {
    const signal = signalOfPath.get(method.path);
    if (!signal) return new grpc.ServerInterceptingCall(call);
    const startedAt = performance.now();
    const statusOf = (error: OtlpError): grpc.StatusObject => {
      const refusal = handler.refused({ signal, transport: 'grpc', startedAt }, error);
      const { code, details, metadata } = toServiceError(refusal);
      return {
        code: code ?? grpc.status.INTERNAL,
        details: details ?? refusal.message,
        metadata: metadata ?? new grpc.Metadata(),
      };
    };

    // Counted in flight from its headers (once an authentication interceptor, which sees them
    // first, let them through) until its message is handed to the handler, or the call ends.
    let held = 0;
    const release = () => {
      if (held === 0) return;
      handler.release(held);
      held = 0;
    };

    // A call whose message is not in within readTimeoutMs (a client that stalls, with no deadline of
    // its own) is answered DEADLINE_EXCEEDED, which ends it and releases what it holds.
    const timer =
      readTimeoutMs > 0
        ? setTimeout(() => {
            onReadTimeout?.();
            call.sendStatus({
              code: grpc.status.DEADLINE_EXCEEDED,
              details: `the request message did not arrive within otlp.grpc.read_timeout (${readTimeoutMs} ms)`,
              metadata: new grpc.Metadata(),
            });
          }, readTimeoutMs).unref()
        : undefined;
    const done = () => {
      clearTimeout(timer);
      release();
    };

    const base = baseCall(call);
    const sendStatus = base.sendStatus.bind(base);
    base.sendStatus = (status) => {
      done();
      const error = asOtlpError(status);
      sendStatus(error ? statusOf(error) : status);
    };

    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const estimate = Math.round(averageSize);
        try {
          handler.reserve(signal, estimate);
          held = estimate;
        } catch (err) {
          if (!(err instanceof OtlpError)) throw err;
          // Refused on its headers: the handler never sees the call, and its message is not read.
          call.sendStatus(statusOf(err));
          return;
        }
        next(metadata);
      })
      .withOnReceiveMessage((message: Buffer, next) => {
        averageSize += (message.length - averageSize) / 8;
        next(message);
      })
      .withOnReceiveHalfClose((next) => {
        // The handler runs next, and counts the message itself (ExportHandler.handle).
        done();
        next();
      })
      .withOnCancel(done)
      .build();
    return new grpc.ServerInterceptingCall(call, { start: (next) => next(listener) });
  };
}

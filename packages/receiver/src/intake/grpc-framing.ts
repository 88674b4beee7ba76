/**
 * gRPC messages that grpc-js refuses itself, before our handler sees them: a message flagged
 * compressed that does not decompress, one over the size limit (on the wire or decompressed), one
 * in an encoding it does not know. grpc-js answers those from its base call, which no interceptor's
 * responder sees: the first one as INTERNAL, a server fault, when the client sent garbage. This
 * interceptor puts itself in front of the base call's `sendStatus` and, for those statuses only,
 * answers as our handler would (INVALID_ARGUMENT for a malformed message, with a google.rpc.Status
 * in grpc-status-details-bin) and counts the refusal (sonde_receiver_refused_requests_total).
 */
import * as grpc from '@grpc/grpc-js';
import { SIGNALS, type Signal } from '../model';
import { GrpcCode, MalformedPayloadError, OtlpError, PayloadTooLargeError } from '../otlp/errors';
import type { ExportHandler } from './export-handler';
import { serviceDefinition, toServiceError } from './grpc';

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

/** The innermost call of an interceptor chain: grpc-js's base call, which sends those statuses. */
function baseCall(call: grpc.ServerInterceptingCallInterface): grpc.ServerInterceptingCallInterface {
  let c = call as grpc.ServerInterceptingCallInterface & { nextCall?: grpc.ServerInterceptingCallInterface };
  while (c.nextCall) c = c.nextCall;
  return c;
}

/** The interceptor (for `new grpc.Server({ interceptors })`), counting through `handler.refused`. */
export function framingInterceptor(handler: ExportHandler): grpc.ServerInterceptor {
  const signalOfPath = new Map<string, Signal>(SIGNALS.map((s) => [serviceDefinition(s).Export.path, s] as const));
  return (method, call) => {
    const signal = signalOfPath.get(method.path);
    if (signal) {
      const startedAt = performance.now();
      const base = baseCall(call);
      const sendStatus = base.sendStatus.bind(base);
      base.sendStatus = (status) => {
        const error = asOtlpError(status);
        if (!error) {
          sendStatus(status);
          return;
        }
        const refusal = handler.refused({ signal, transport: 'grpc', startedAt }, error);
        const { code, details, metadata } = toServiceError(refusal);
        sendStatus({ code: code ?? grpc.status.INTERNAL, details: details ?? refusal.message, metadata });
      };
    }
    return new grpc.ServerInterceptingCall(call);
  };
}

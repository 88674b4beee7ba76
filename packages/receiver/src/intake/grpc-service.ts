/**
 * The collector's OTLP/gRPC `Export` services as grpc-js service definitions (bytes in and out), and
 * an OtlpError as a gRPC status with its google.rpc.Status details: what the intake (grpc.ts) and its
 * interceptor (grpc-interceptor.ts) both need.
 */
import * as grpc from '@grpc/grpc-js';
import type { Signal } from '../model';
import type { OtlpError } from '../otlp/errors';
import { encodeStatusProto } from '../otlp/responses';

/** The gRPC method path of each signal's Export. */
export const SERVICE_PATH: Record<Signal, string> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

const identity = (b: Buffer): Buffer => b;

/** The collector's `Export` service of a signal, with bytes in and out (also usable to make a client). */
export function serviceDefinition(signal: Signal): grpc.ServiceDefinition {
  return {
    Export: {
      path: SERVICE_PATH[signal],
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
}

export function toServiceError(error: OtlpError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', encodeStatusProto(error.grpcCode, error.message, error.retryAfterSeconds));
  return { code: error.grpcCode, details: error.message, metadata };
}

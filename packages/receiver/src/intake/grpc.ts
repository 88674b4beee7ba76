/**
 * OTLP/gRPC intake (@grpc/grpc-js): the three collector export services. Messages arrive as raw
 * bytes (identity deserializers) and go through the same ExportHandler as OTLP/HTTP protobuf.
 * grpc-js decompresses gzip/deflate messages itself and enforces the message size limit
 * (RESOURCE_EXHAUSTED over it). Errors carry a google.rpc.Status in `grpc-status-details-bin`,
 * with a RetryInfo when the client should wait.
 */
import * as grpc from '@grpc/grpc-js';
import type { Signal } from '../model';
import type { OtlpError } from '../otlp/errors';
import { encodeExportResponse, encodeStatusProto } from '../otlp/responses';
import type { ExportHandler } from './export-handler';
import { intakeInterceptor } from './grpc-interceptor';

const SERVICE_PATH: Record<Signal, string> = {
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

export interface GrpcIntakeOptions {
  maxRequestBodySize: number;
}

export function createGrpcIntake(handler: ExportHandler, options: GrpcIntakeOptions): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxRequestBodySize,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // Admission from a call's headers on, and the refusals grpc-js makes itself (a message flagged
    // compressed that is not) answered and counted as ours. It reaches under any other interceptor.
    interceptors: [intakeInterceptor(handler)],
  });
  for (const signal of ['traces', 'metrics', 'logs'] as const) {
    const exportCall: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
      const startedAt = performance.now();
      handler
        .handle({ signal, transport: 'grpc', encoding: 'protobuf', body: call.request, startedAt })
        .then((partial) => callback(null, encodeExportResponse(signal, 'protobuf', partial)))
        .catch((err: OtlpError) => callback(toServiceError(err)));
    };
    server.addService(serviceDefinition(signal), { Export: exportCall });
  }
  return server;
}

export function toServiceError(error: OtlpError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', encodeStatusProto(error.grpcCode, error.message, error.retryAfterSeconds));
  return { code: error.grpcCode, details: error.message, metadata };
}

/** Binds the server; resolves with the bound port. */
export function bindGrpc(server: grpc.Server, host: string, port: number): Promise<number> {
  const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, boundPort) => {
      if (err) reject(new Error(`cannot listen for OTLP/gRPC on ${target}: ${err.message}`));
      else resolve(boundPort);
    });
  });
}

/**
 * gRPC server reflection (otlp.grpc.reflection): a real reflection client (grpc.reflection.v1, the
 * protocol grpcurl and buf curl speak) lists the three OTLP Export services and gets the file
 * descriptors that describe their messages, so no proto files are needed on the client side. Off by
 * default: then the reflection service is not there (UNIMPLEMENTED).
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startTestReceiver, type TestReceiver } from './helpers';

const REFLECTION_PROTO = path.join(
  path.dirname(require.resolve('@grpc/reflection/package.json')),
  'build/proto/grpc/reflection/v1/reflection.proto',
);

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** One request on a ServerReflectionInfo stream, as grpcurl sends them. */
function ask(address: string, request: object): Promise<ReflectionResponse> {
  const definition = protoLoader.loadSync(REFLECTION_PROTO, { keepCase: false, longs: String, defaults: true });
  const proto = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new proto.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = (
      client as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> }
    ).serverReflectionInfo();
    call.on('data', (response: ReflectionResponse) => {
      resolve(response);
      call.end();
    });
    call.on('error', (err) => reject(err));
    call.on('end', () => client.close());
    call.write(request);
  });
}

describe('otlp.grpc.reflection: true', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ otlp: { grpc: { address: '127.0.0.1:0', reflection: true } } });
  });
  afterAll(() => t.close());

  test('lists the three OTLP Export services', async () => {
    const response = await ask(t.grpc, { listServices: '' });
    expect(response.listServicesResponse?.service.map((s) => s.name).sort()).toEqual(
      expect.arrayContaining([
        'opentelemetry.proto.collector.logs.v1.LogsService',
        'opentelemetry.proto.collector.metrics.v1.MetricsService',
        'opentelemetry.proto.collector.trace.v1.TraceService',
      ]),
    );
  });

  test('describes a service with its messages (file descriptors), so a client can encode requests', async () => {
    const response = await ask(t.grpc, { fileContainingSymbol: 'opentelemetry.proto.collector.trace.v1.TraceService' });
    const files = response.fileDescriptorResponse?.fileDescriptorProto ?? [];
    expect(files.length).toBeGreaterThan(0);
    const text = files.map((f) => Buffer.from(f).toString('latin1')).join('\n');
    // The service's file, and those it depends on (the messages down to Span and AnyValue).
    expect(text).toContain('ExportTraceServiceRequest');
    expect(text).toContain('opentelemetry.proto.trace.v1');
    expect(text).toContain('opentelemetry.proto.common.v1');
    expect(text).toContain('AnyValue');
  });
});

describe('otlp.grpc.reflection: false (the default)', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ otlp: { grpc: { address: '127.0.0.1:0' } } });
  });
  afterAll(() => t.close());

  test('no reflection service', async () => {
    await expect(ask(t.grpc, { listServices: '' })).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
  });
});

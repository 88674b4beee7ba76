/**
 * Issue 11, finding 7: gRPC messages that grpc-js refuses before our handler sees them are answered
 * as the client's fault and counted. A frame flagged compressed that is not (`01 00000005 68656c6c6f`
 * with `grpc-encoding: gzip`) used to be INTERNAL, and uncounted. Sent here over a raw HTTP/2 stream.
 */
import * as http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { span, startTestReceiver, type TestReceiver, traceRequest } from './helpers';

interface GrpcAnswer {
  grpcStatus: string;
  grpcMessage: string;
  details: boolean;
}

/** One unary call to the trace service: `frame` as the request body, with `headers` added. */
function rawCall(address: string, frame: Buffer, headers: Record<string, string>): Promise<GrpcAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let received: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => {
      received = { ...received, ...h };
    });
    stream.on('trailers', (t) => {
      received = { ...received, ...t };
    });
    stream.on('data', () => {});
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      resolve({
        grpcStatus: String(received['grpc-status']),
        grpcMessage: decodeURIComponent(String(received['grpc-message'] ?? '')),
        details: received['grpc-status-details-bin'] !== undefined,
      });
    });
    stream.end(frame);
  });
}

function frame(compressed: boolean, message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

let t: TestReceiver;
beforeAll(async () => {
  t = await startTestReceiver({ limits: { max_request_body_size: '64KiB' } });
});
afterAll(() => t.close());

const metricsText = async () => (await fetch(`${t.admin}/metrics`)).text();

test('a frame flagged compressed that is not → INVALID_ARGUMENT, counted as malformed', async () => {
  const bad = Buffer.from('010000000568656c6c6f', 'hex'); // 'hello', flagged compressed;
  for (const encoding of ['gzip', 'deflate']) {
    const answer = await rawCall(t.grpc, bad, { 'grpc-encoding': encoding });
    expect(answer.grpcStatus).toBe('3');
    expect(answer.grpcMessage).toMatch(/flagged compressed but does not decompress/);
    expect(answer.details).toBe(true);
  }
  expect(await metricsText()).toContain(
    'sonde_receiver_refused_requests_total{signal="traces",transport="grpc",reason="malformed"} 2',
  );
  // The receiver still takes good gzip-compressed messages.
  const good = await rawCall(t.grpc, frame(true, gzipSync(traceRequest([span()]))), { 'grpc-encoding': 'gzip' });
  expect(good.grpcStatus).toBe('0');
  expect(t.batches.traces).toHaveLength(1);
});

test('a message that decompresses over the body limit → RESOURCE_EXHAUSTED, counted as too large', async () => {
  const bomb = frame(true, gzipSync(Buffer.alloc(1024 * 1024)));
  const answer = await rawCall(t.grpc, bomb, { 'grpc-encoding': 'gzip' });
  expect(answer.grpcStatus).toBe('8');
  expect(answer.grpcMessage).toMatch(/limits\.max_request_body_size/);
  expect(await metricsText()).toContain(
    'sonde_receiver_refused_requests_total{signal="traces",transport="grpc",reason="too_large"} 1',
  );
});

/**
 * Issue 11, finding 7: gRPC messages that grpc-js refuses before our handler sees them are answered
 * as the client's fault and counted. A frame flagged compressed that is not (`01 00000005 68656c6c6f`
 * with `grpc-encoding: gzip`) used to be INTERNAL, and uncounted. Sent here over a raw HTTP/2 stream.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { createLogger, Pipeline, SelfMetrics } from '../src';
import { Admission } from '../src/intake/admission';
import { ExportHandler } from '../src/intake/export-handler';
import { serviceDefinition } from '../src/intake/grpc';
import { intakeInterceptor } from '../src/intake/grpc-interceptor';
import { DEFAULT_DECODE_LIMITS } from '../src/otlp/limits';
import { span, startTestReceiver, type TestReceiver, traceRequest } from './helpers';

interface GrpcAnswer {
  grpcStatus: string;
  grpcMessage: string;
  details: boolean;
  retryInfo: boolean;
}

/** Every client session opened, closed at the end of each test (a call left open would hold the receiver's shutdown). */
const sessions: http2.ClientHttp2Session[] = [];
afterEach(() => {
  for (const session of sessions.splice(0)) session.destroy();
});

/** One unary call to the trace service: `frame` as the request body, with `headers` added. */
function rawCall(address: string, frame: Buffer, headers: Record<string, string>): Promise<GrpcAnswer> {
  const call = openCall(address, headers);
  call.stream.end(frame);
  return call.answer;
}

/** A call whose headers are sent, and whose body is sent by the caller (`stream.end(frame)`), or never. */
function openCall(
  address: string,
  headers: Record<string, string> = {},
): { stream: http2.ClientHttp2Stream; answer: Promise<GrpcAnswer> } {
  const session = http2.connect(`http://${address}`);
  sessions.push(session);
  let stream: http2.ClientHttp2Stream | undefined;
  const answer = new Promise<GrpcAnswer>((resolve, reject) => {
    session.on('error', reject);
    stream = session.request({
      ':method': 'POST',
      ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let received: http2.IncomingHttpHeaders = {};
    const s = stream as http2.ClientHttp2Stream;
    s.on('response', (h) => {
      received = { ...received, ...h };
    });
    s.on('trailers', (t) => {
      received = { ...received, ...t };
    });
    s.on('data', () => {});
    s.on('error', reject);
    s.on('close', () => {
      session.close();
      resolve({
        grpcStatus: String(received['grpc-status']),
        grpcMessage: decodeURIComponent(String(received['grpc-message'] ?? '')),
        details: received['grpc-status-details-bin'] !== undefined,
        retryInfo: Buffer.from(String(received['grpc-status-details-bin'] ?? ''), 'base64')
          .toString()
          .includes('google.rpc.RetryInfo'),
      });
    });
  });
  return { stream: stream as http2.ClientHttp2Stream, answer };
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

describe('admission from the headers of a call', () => {
  test('calls count in flight from their headers: with one pending, the next is refused before its message is read', async () => {
    // No trace store: the handler is synchronous, so only the headers-on count can fill the limit.
    const r = await startTestReceiver({ overload: { max_in_flight_bytes: '100KiB', retry_after: '4s' } });
    try {
      const pending = openCall(r.grpc);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Its headers only: the call counts the first estimate (64 KiB), and the next would pass 100 KiB.
      const refused = openCall(r.grpc);
      refused.stream.end(frame(false, traceRequest([span()])));
      const answer = await refused.answer;
      expect(r.batches.traces).toHaveLength(0);
      expect(answer.grpcStatus).toBe('8');
      expect(answer.grpcMessage).toMatch(/overload\.max_in_flight_bytes/);
      expect(answer.retryInfo).toBe(true);
      const metrics = await (await fetch(`${r.admin}/metrics`)).text();
      expect(metrics).toContain(
        'sonde_receiver_refused_requests_total{signal="traces",transport="grpc",reason="overloaded"} 1',
      );
      // The pending call completes normally, and then its share is released.
      pending.stream.end(frame(false, traceRequest([span()])));
      expect((await pending.answer).grpcStatus).toBe('0');
      expect(r.batches.traces).toHaveLength(1);
      const after = await (await fetch(`${r.admin}/metrics`)).text();
      expect(after).toMatch(/^sonde_receiver_in_flight_bytes 0$/m);
      // A call that is cancelled before its message releases its share too.
      const cancelled = openCall(r.grpc);
      await new Promise((resolve) => setTimeout(resolve, 100));
      cancelled.stream.close(http2.constants.NGHTTP2_CANCEL);
      await cancelled.answer.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await (await fetch(`${r.admin}/metrics`)).text()).toMatch(/^sonde_receiver_in_flight_bytes 0$/m);
      expect((await rawCall(r.grpc, frame(false, traceRequest([span()])), {})).grpcStatus).toBe('0');
    } finally {
      for (const session of sessions.splice(0)) session.destroy();
      await r.close();
    }
  });
});

test('a call whose message does not arrive within otlp.grpc.read_timeout → DEADLINE_EXCEEDED, released, counted', async () => {
  const r = await startTestReceiver({ otlp: { grpc: { read_timeout: '300ms' } } });
  try {
    // Headers, and half a message, then nothing (no grpc-timeout: the client sets no deadline of its own).
    // The status comes as a trailers-only response (the client's side of the stream stays open, as
    // with grpc-js's own deadlines).
    const stalled = openCall(r.grpc);
    stalled.answer.catch(() => undefined);
    stalled.stream.write(frame(false, traceRequest([span()])).subarray(0, 10));
    const headers = await Promise.race([
      new Promise<http2.IncomingHttpHeaders>((resolve) => stalled.stream.once('response', resolve)),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000).unref()),
    ]);
    expect(headers?.['grpc-status']).toBe('4');
    expect(decodeURIComponent(String(headers?.['grpc-message']))).toMatch(/otlp\.grpc\.read_timeout/);
    const metrics = await (await fetch(`${r.admin}/metrics`)).text();
    expect(metrics).toMatch(/^sonde_receiver_in_flight_bytes 0$/m);
    expect(metrics).toContain('sonde_receiver_request_timeouts_total{listener="otlp_grpc",kind="read"} 1');
    // A call that sends its message in time is not cut.
    expect((await rawCall(r.grpc, frame(false, traceRequest([span()])), {})).grpcStatus).toBe('0');
    expect(r.batches.traces).toHaveLength(1);
  } finally {
    for (const session of sessions.splice(0)) session.destroy();
    await r.close();
  }
});

test('an unauthenticated call takes no in-flight bytes and counts no overload: it is refused for its token alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sonde-grpc-auth-'));
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, 'good-token\n');
  const r = await startTestReceiver({
    otlp: { auth: { bearer_tokens_file: tokens } },
    overload: { max_in_flight_bytes: '100KiB' },
  });
  try {
    // An authenticated call holds the first estimate (64 KiB); another estimate would pass 100 KiB.
    const pending = openCall(r.grpc, { authorization: 'Bearer good-token' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const answer = await rawCall(r.grpc, frame(false, traceRequest([span()])), { authorization: 'Bearer wrong' });
    expect(answer.grpcStatus).toBe('16');
    const metrics = await (await fetch(`${r.admin}/metrics`)).text();
    expect(metrics).not.toContain('limit="max_in_flight_bytes"');
    expect(metrics).not.toContain('reason="overloaded"');
    pending.stream.end(frame(false, traceRequest([span()])));
    expect((await pending.answer).grpcStatus).toBe('0');
    expect(await (await fetch(`${r.admin}/metrics`)).text()).toMatch(/^sonde_receiver_in_flight_bytes 0$/m);
  } finally {
    for (const session of sessions.splice(0)) session.destroy();
    await r.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the interceptor reaches under another one listed before it (e.g. an authentication interceptor)', async () => {
  const metrics = new SelfMetrics({ defaultMetrics: false });
  const admission = new Admission(
    { maxInFlightBytes: 1024 * 1024, memoryLimit: 0, memoryCheckInterval: 1000, retryAfterMs: 1000 },
    metrics,
  );
  const handler = new ExportHandler(
    { decodeLimits: DEFAULT_DECODE_LIMITS, maxItemsPerRequest: 1000 },
    new Pipeline(),
    admission,
    metrics,
    createLogger('silent'),
  );
  const outer: grpc.ServerInterceptor = (_method, call) => new grpc.ServerInterceptingCall(call);
  const server = new grpc.Server({ interceptors: [outer, intakeInterceptor(handler)] });
  server.addService(serviceDefinition('traces'), {
    Export: (_call: unknown, callback: (err: null, res: Buffer) => void) => callback(null, Buffer.alloc(0)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  try {
    const bad = Buffer.from('010000000568656c6c6f', 'hex');
    const answer = await rawCall(`127.0.0.1:${port}`, bad, { 'grpc-encoding': 'gzip' });
    expect(answer.grpcStatus).toBe('3');
    expect(await metrics.registry.metrics()).toContain(
      'sonde_receiver_refused_requests_total{signal="traces",transport="grpc",reason="malformed"} 1',
    );
  } finally {
    server.forceShutdown();
    admission.close();
  }
});

/**
 * Limits, overload and isolation: what happens when clients send too much, too fast or garbage —
 * over HTTP and gRPC — and that good clients and accepted data are not disturbed.
 */

import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../src/intake/grpc';
import { ProtoReader } from '../src/otlp/protobuf/reader';
import {
  type Field,
  JSON_TYPE,
  kv,
  PROTOBUF,
  post,
  SPAN_ID,
  span,
  startTestReceiver,
  type TestReceiver,
  TRACE_ID,
  traceRequest,
  withoutOffsets,
} from './helpers';

const TraceClient = grpc.makeGenericClientConstructor(serviceDefinition('traces'), 'TraceService');

type ExportFn = (req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;

function grpcExport(address: string, body: Buffer): Promise<{ err: grpc.ServiceError | null; res?: Buffer }> {
  const client = new TraceClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Export: ExportFn;
  };
  return new Promise((resolve) => {
    client.Export(body, (err, res) => {
      client.close();
      resolve({ err, res });
    });
  });
}

/** The RetryInfo delay (seconds) inside a grpc-status-details-bin google.rpc.Status. */
function retryDelayOf(details: Buffer): number | undefined {
  const r = new ProtoReader(details);
  while (r.pos < details.length) {
    const tag = r.uint32();
    if (tag !== 26) {
      r.skip(tag & 7);
      continue;
    }
    const any = new ProtoReader(Buffer.from(r.bytes()));
    any.uint32();
    any.string();
    any.uint32();
    const info = new ProtoReader(Buffer.from(any.bytes()));
    info.uint32();
    const duration = new ProtoReader(Buffer.from(info.bytes()));
    duration.uint32();
    return duration.uint32();
  }
  return undefined;
}

const spansOf = (t: TestReceiver) =>
  t.batches.traces.flatMap((b) => b.data.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));

describe('gRPC intake', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ limits: { max_request_body_size: '64KiB' } });
  });
  afterAll(() => t.close());

  test('a valid request succeeds with an empty ExportTraceServiceResponse', async () => {
    const { err, res } = await grpcExport(t.grpc, traceRequest([span()]));
    expect(err).toBeNull();
    expect(res?.length).toBe(0);
    expect(spansOf(t).map((s) => s.spanId)).toContain(SPAN_ID);
  });

  test('malformed protobuf → INVALID_ARGUMENT naming the problem', async () => {
    const good = traceRequest([span()]);
    const { err } = await grpcExport(t.grpc, good.subarray(0, good.length - 2));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/resourceSpans\[0\].*truncated|past the end/);
  });

  test('a message over the size limit → RESOURCE_EXHAUSTED', async () => {
    const { err } = await grpcExport(t.grpc, Buffer.alloc(65 * 1024));
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  test('partial success is returned in the response message', async () => {
    const { err, res } = await grpcExport(t.grpc, traceRequest([span([], '0'.repeat(32)), span()]));
    expect(err).toBeNull();
    const r = new ProtoReader(res as Buffer);
    expect(r.uint32()).toBe(10);
    r.delimitedEnd();
    expect(r.uint32()).toBe(8);
    expect(r.uint64Number()).toBe(1);
  });
});

describe('attribute and item limits', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({
      limits: { max_attributes_per_item: 3, max_attribute_value_length: 5, max_items_per_request: 2 },
    });
  });
  afterAll(() => t.close());

  test('extra attributes are dropped and counted, long values truncated, and the client is told', async () => {
    const attrs: Field[] = ['a', 'b', 'c', 'd', 'e'].map(
      (k) => [9, 'message', kv(k, [[1, 'bytes', 'x'.repeat(8)]])] as Field,
    );
    const res = await post(`${t.http}/v1/traces`, traceRequest([span([...attrs, [10, 'varint', 1]])]), PROTOBUF);
    expect(res.status).toBe(200);
    const s = spansOf(t)[0];
    expect(withoutOffsets(s.attributes)).toEqual(['a', 'b', 'c'].map((key) => ({ key, value: 'xxxxx' })));
    expect(s.droppedAttributesCount).toBe(1 + 2);
    expect(t.batches.traces[0].context.modified).toBe(true);
    expect(res.body.toString()).toContain(
      '2 attributes dropped over the limit of 3 per item; 3 attribute values truncated to 5 characters',
    );
    const metrics = await (await fetch(`${t.admin}/metrics`)).text();
    expect(metrics).toContain('sonde_receiver_limit_hits_total{signal="traces",limit="max_attributes_per_item"} 2');
    expect(metrics).toContain('sonde_receiver_limit_hits_total{signal="traces",limit="max_attribute_value_length"} 3');
  });

  test('a protobuf request within every limit is passed on untouched (the processor trusts the decoder)', async () => {
    const attrs: Field[] = ['a', 'b', 'c'].map((k) => [9, 'message', kv(k, [[1, 'bytes', 'short']])] as Field);
    const res = await post(`${t.http}/v1/traces`, traceRequest([span(attrs)]), PROTOBUF);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    const batch = t.batches.traces.at(-1);
    expect(batch?.context.modified).toBe(false);
    // Structures: the resource (4: itself, its list, resource, attributes), the scope (4), the span (5), 3 attributes.
    expect(batch?.decodeStats).toEqual({ longestString: 5, mostAttributes: 3, structures: 16 });
  });

  test('a JSON request over the limits is cut too (no decoder statistics there)', async () => {
    const attributes = ['a', 'b', 'c', 'd'].map((key) => ({ key, value: { stringValue: 'long value' } }));
    const body = { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE_ID, spanId: SPAN_ID, attributes }] }] }] };
    const res = await post(`${t.http}/v1/traces`, JSON.stringify(body), JSON_TYPE);
    expect(res.status).toBe(200);
    const s = spansOf(t).at(-1);
    expect(s?.attributes).toEqual(['a', 'b', 'c'].map((key) => ({ key, value: 'long ' })));
    expect(s?.droppedAttributesCount).toBe(1);
  });

  test('items over max_items_per_request are rejected as partial success; the first ones are kept', async () => {
    const spans = [1, 2, 3, 4].map((i) => span([], TRACE_ID, `${i}`.repeat(16)));
    const res = await post(
      `${t.http}/v1/traces`,
      JSON.stringify({
        resourceSpans: [
          { scopeSpans: [{ spans: spans.map((_, i) => ({ traceId: TRACE_ID, spanId: `${i + 1}`.repeat(16) })) }] },
        ],
      }),
      JSON_TYPE,
    );
    expect(res.status).toBe(200);
    const partial = JSON.parse(res.body.toString()).partialSuccess;
    expect(partial.rejectedSpans).toBe('2');
    expect(partial.errorMessage).toContain('max_items_per_request');
    expect(t.batches.traces.at(-1)?.data[0].scopeSpans[0].spans.map((s) => s.spanId)).toEqual([
      '1'.repeat(16),
      '2'.repeat(16),
    ]);
    const metrics = await (await fetch(`${t.admin}/metrics`)).text();
    expect(metrics).toContain('sonde_receiver_refused_spans_total{transport="http",reason="too_many_items"} 2');
  });
});

describe('overload', () => {
  test('over max_in_flight_bytes → 429 with Retry-After (HTTP) and RESOURCE_EXHAUSTED with RetryInfo (gRPC)', async () => {
    const t = await startTestReceiver({ overload: { max_in_flight_bytes: 10, retry_after: '7s' } });
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const inConsumer = new Promise<void>((resolve) => {
      entered = resolve;
    });
    // A slow consumer holds the first request in flight.
    t.receiver.pipeline.traces.addConsumer({
      name: 'slow',
      consume: () => {
        entered();
        return blocked;
      },
    });
    try {
      const first = post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF);
      await inConsumer;
      const second = await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF);
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toBe('7');
      const { err } = await grpcExport(t.grpc, traceRequest([span()]));
      expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(retryDelayOf(err?.metadata.get('grpc-status-details-bin')[0] as Buffer)).toBe(7);
      release();
      expect((await first).status).toBe(200);
      // Capacity is back once the first request is done.
      expect((await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF)).status).toBe(200);
    } finally {
      release();
      await t.close();
    }
  });

  test('over memory_limit → 503 with Retry-After (HTTP) and UNAVAILABLE (gRPC)', async () => {
    const t = await startTestReceiver({
      overload: { memory_limit: 1, memory_check_interval: '10ms', retry_after: '2s' },
    });
    try {
      await new Promise((r) => setTimeout(r, 50));
      const res = await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      const { err } = await grpcExport(t.grpc, traceRequest([span()]));
      expect(err?.code).toBe(grpc.status.UNAVAILABLE);
      expect(t.batches.traces).toHaveLength(0);
    } finally {
      await t.close();
    }
  });
});

test('an overloaded receiver refuses on the headers: it answers before the body is sent', async () => {
  const t = await startTestReceiver({
    overload: { memory_limit: 1, memory_check_interval: '10ms', retry_after: '2s' },
  });
  try {
    await new Promise((r) => setTimeout(r, 50));
    const body = traceRequest([span()]);
    const url = new URL(`${t.http}/v1/traces`);
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: { ...PROTOBUF, 'content-length': body.length },
    });
    // Headers only: the body is held back until the answer comes (which it would not, were the body awaited).
    const answer = new Promise<{ status?: number; retryAfter?: string | string[] }>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] });
      });
      req.on('error', reject);
      setTimeout(() => reject(new Error('no answer before the body was sent')), 5000).unref();
    });
    req.flushHeaders();
    expect(await answer).toStrictEqual({ status: 503, retryAfter: '2' });
    req.end(body);
    expect(t.batches.traces).toHaveLength(0);
  } finally {
    await t.close();
  }
});

describe('isolation', () => {
  test('a flood of bad requests leaves a good client unaffected, and nothing accepted is lost', async () => {
    const t = await startTestReceiver({ limits: { max_request_body_size: '256KiB' } });
    try {
      const good = (i: number) =>
        traceRequest([span([[5, 'bytes', `good-${i}`]], TRACE_ID, i.toString(16).padStart(16, '1'))]);
      // Accepted before the flood.
      expect((await post(`${t.http}/v1/traces`, good(0), PROTOBUF)).status).toBe(200);
      const valid = traceRequest([span()]);
      const bad: [Uint8Array | string, Record<string, string>][] = [
        [valid.subarray(0, valid.length - 4), PROTOBUF],
        ['{"resourceSpans": [', JSON_TYPE],
        [Buffer.alloc(300 * 1024), PROTOBUF],
        [gzipSync(Buffer.alloc(4 * 1024 * 1024)), { ...PROTOBUF, 'content-encoding': 'gzip' }],
        [gzipSync(valid).subarray(0, 20), { ...PROTOBUF, 'content-encoding': 'gzip' }],
        ['x', { 'content-type': 'text/plain' }],
      ];
      const flood = Array.from({ length: 300 }, (_, i) =>
        post(`${t.http}/v1/traces`, ...bad[i % bad.length]).then((r) => r.status),
      );
      const goodResults = Array.from({ length: 50 }, (_, i) =>
        post(`${t.http}/v1/traces`, good(i + 1), PROTOBUF).then((r) => r.status),
      );
      const [floodStatuses, goodStatuses] = await Promise.all([Promise.all(flood), Promise.all(goodResults)]);
      expect(new Set(floodStatuses)).toEqual(new Set([400, 413, 415]));
      expect(goodStatuses.every((s) => s === 200)).toBe(true);
      const names = spansOf(t).map((s) => s.name);
      expect(names.sort()).toEqual(Array.from({ length: 51 }, (_, i) => `good-${i}`).sort());
      expect(t.receiver.recent.traces.itemCount).toBe(51);
      const metrics = await (await fetch(`${t.admin}/metrics`)).text();
      expect(metrics).toContain('sonde_receiver_accepted_spans_total{transport="http"} 51');
      expect(metrics).toMatch(
        /sonde_receiver_refused_requests_total\{signal="traces",transport="http",reason="malformed"\} 150/,
      );
    } finally {
      await t.close();
    }
  });
});

describe('shutdown', () => {
  test('a keep-alive client with a request in flight does not hold the drain to shutdown_timeout', async () => {
    const t = await startTestReceiver({ shutdown_timeout: '5s' });
    t.receiver.pipeline.traces.addConsumer({ name: 'slow', consume: () => new Promise((r) => setTimeout(r, 300)) });
    const { Agent, request } = await import('node:http');
    const agent = new Agent({ keepAlive: true });
    const body = traceRequest([span()]);
    const url = new URL(`${t.http}/v1/traces`);
    const response = new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          agent,
          headers: { ...PROTOBUF, 'content-length': body.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    await t.close();
    const elapsed = performance.now() - started;
    expect(await response).toBe(200);
    expect(elapsed).toBeLessThan(2000);
    agent.destroy();
  });
});

/**
 * OTLP/HTTP conformance: edge cases of the specification's HTTP and JSON sections, sent over real
 * HTTP to a running receiver, asserting status codes, response bodies (in the request's encoding)
 * and exactly what reached the pipeline.
 */
import { connect } from 'node:net';
import { deflateSync, gzipSync } from 'node:zlib';
import { KeyValueList } from '../src';
import { ProtoReader } from '../src/otlp/protobuf/reader';
import {
  type Field,
  hex,
  JSON_TYPE,
  kv,
  PARENT_ID,
  PROTOBUF,
  pb,
  post,
  SPAN_ID,
  span,
  startTestReceiver,
  type TestReceiver,
  TRACE_ID,
  traceRequest,
  withoutOffsets,
} from './helpers';

/** Decodes a google.rpc.Status (code, message, RetryInfo seconds) from protobuf. */
function decodeStatus(body: Buffer): { code: number; message: string; retrySeconds?: number } {
  const r = new ProtoReader(body);
  const out: { code: number; message: string; retrySeconds?: number } = { code: 0, message: '' };
  while (r.pos < body.length) {
    const tag = r.uint32();
    if (tag === 8) out.code = r.uint32();
    else if (tag === 18) out.message = r.string();
    else if (tag === 26) {
      const end = r.delimitedEnd();
      while (r.pos < end) {
        const t = r.uint32();
        if (t === 10) expect(r.string()).toBe('type.googleapis.com/google.rpc.RetryInfo');
        else if (t === 18) {
          const info = new ProtoReader(Buffer.from(r.bytes()));
          info.uint32();
          const d = new ProtoReader(Buffer.from(info.bytes()));
          d.uint32();
          out.retrySeconds = d.uint32();
        } else r.skip(t & 7);
      }
    } else r.skip(tag & 7);
  }
  return out;
}

/** Decodes an Export*ServiceResponse's partial_success (rejected, error_message) from protobuf. */
function decodePartial(body: Buffer): { rejected: number; message: string } | undefined {
  if (body.length === 0) return undefined;
  const r = new ProtoReader(body);
  expect(r.uint32()).toBe(10);
  const end = r.delimitedEnd();
  const out = { rejected: 0, message: '' };
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 8) out.rejected = r.uint64Number();
    else if (tag === 18) out.message = r.string();
  }
  return out;
}

describe('OTLP/HTTP conformance', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ limits: { max_request_body_size: '1MiB', max_any_value_depth: 4 } });
  });
  afterAll(() => t.close());
  beforeEach(() => {
    t.batches.traces.length = 0;
    t.batches.logs.length = 0;
    t.batches.metrics.length = 0;
  });
  const traces = () => `${t.http}/v1/traces`;
  const firstSpan = () => t.batches.traces[0].data[0].scopeSpans[0].spans[0];

  describe('empty requests succeed and reach no consumer', () => {
    test.each([
      ['protobuf, no body', PROTOBUF, '', ''],
      ['json, no body', JSON_TYPE, '', '{}'],
      ['json, {}', JSON_TYPE, '{}', '{}'],
      ['json, empty list', JSON_TYPE, '{"resourceSpans":[]}', '{}'],
    ])('%s', async (_name, headers, body, expected) => {
      const res = await post(traces(), body, headers);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain(headers['content-type']);
      expect(res.body.toString()).toBe(expected);
      expect(t.batches.traces).toHaveLength(0);
    });
  });

  describe('a body of declared length (read straight into one buffer)', () => {
    /** Sends `head` then `body` in pieces of `piece` bytes over a raw socket; resolves with what came back when it closed. */
    function rawPost(body: Buffer, declared: number, piece: number, end: boolean): Promise<string> {
      const url = new URL(traces());
      return new Promise((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname);
        let answer = '';
        socket.on('data', (d: Buffer) => {
          answer += d.toString('latin1');
        });
        socket.on('error', reject);
        socket.on('close', () => resolve(answer));
        socket.on('connect', async () => {
          socket.write(
            `POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${declared}\r\nConnection: close\r\n\r\n`,
          );
          for (let i = 0; i < body.length; i += piece) {
            socket.write(body.subarray(i, i + piece));
            await new Promise((r) => setTimeout(r, 1));
          }
          if (end) socket.end();
          else setTimeout(() => socket.destroy(), 200);
        });
      });
    }
    const request = () =>
      traceRequest([span([[5, 'bytes', 'trickled']]), span([[5, 'bytes', 'second']], TRACE_ID, PARENT_ID)]);

    test('arriving in many small pieces, it is decoded whole', async () => {
      const body = request();
      const answer = await rawPost(body, body.length, 7, true);
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(t.batches.traces).toHaveLength(1);
      expect(t.batches.traces[0].data[0].scopeSpans[0].spans.map((s) => s.name)).toStrictEqual(['trickled', 'second']);
      expect(t.batches.traces[0].context.raw).toStrictEqual(body);
    });

    test('cut short by the client, it reaches no consumer and its bytes are no longer held in flight', async () => {
      const body = request();
      const answer = await rawPost(body.subarray(0, body.length - 10), body.length, 16, false);
      expect(answer).toBe('');
      expect(t.batches.traces).toHaveLength(0);
      const admin = await fetch(`${t.admin}/metrics`);
      expect(await admin.text()).toMatch(/^sonde_receiver_in_flight_bytes 0$/m);
    });
  });

  // POST /v1/<signal> exactly goes straight to its route; other spellings of the path go through express.
  test('an export to the exact path and one express routes (query, trailing slash, case) get the same answer', async () => {
    const body = traceRequest([span([[5, 'bytes', 'same']])]);
    const answers = [];
    for (const path of ['/v1/traces', '/v1/traces?x=1', '/v1/traces/', '/V1/Traces']) {
      const res = await post(`${t.http}${path}`, body, PROTOBUF);
      const headers = [...res.headers].filter(([k]) => k !== 'date' && k !== 'keep-alive' && k !== 'connection');
      answers.push({ path, status: res.status, headers, body: res.body.toString('hex') });
    }
    expect(answers.map((a) => a.status)).toStrictEqual([200, 200, 200, 200]);
    for (const a of answers.slice(1)) expect({ ...a, path: '' }).toStrictEqual({ ...answers[0], path: '' });
    expect(t.batches.traces.map((b) => b.data[0].scopeSpans[0].spans[0].name)).toStrictEqual([
      'same',
      'same',
      'same',
      'same',
    ]);
    // Another method on the exact path is express's too: 405 with Allow.
    const put = await post(traces(), body, PROTOBUF, 'PUT');
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('POST');
  });

  test('unknown protobuf fields of every wire type are skipped at every level', async () => {
    const unknown: Field[] = [
      [90, 'varint', 7],
      [91, 'fixed64', 1n],
      [92, 'bytes', 'x'],
      [93, 'fixed32', 5],
      [94, 'message', [[1, 'varint', 1]]],
    ];
    const body = pb([
      ...unknown,
      [
        1,
        'message',
        [
          ...unknown,
          [1, 'message', [...unknown, [1, 'message', kv('service.name', [[1, 'bytes', 'svc']])]]],
          [2, 'message', [...unknown, [2, 'message', span([...unknown, [5, 'bytes', 'named']])]]],
        ],
      ],
    ]);
    const res = await post(traces(), body, PROTOBUF);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(firstSpan()).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID, name: 'named' });
    expect(withoutOffsets(t.batches.traces[0].data[0].resource.attributes)).toEqual([
      { key: 'service.name', value: 'svc' },
    ]);
  });

  test('unknown JSON fields are ignored at every level', async () => {
    const body = {
      extra: 1,
      resourceSpans: [
        {
          extra: { a: [1] },
          resource: { extra: true, attributes: [{ key: 'k', value: { stringValue: 'v', extra: 1 }, extra: 2 }] },
          scopeSpans: [{ extra: null, spans: [{ traceId: TRACE_ID, spanId: SPAN_ID, name: 'n', futureField: 'x' }] }],
        },
      ],
    };
    const res = await post(traces(), JSON.stringify(body), JSON_TYPE);
    expect(res.status).toBe(200);
    expect(firstSpan().name).toBe('n');
    expect(t.batches.traces[0].data[0].resource.attributes).toEqual([{ key: 'k', value: 'v' }]);
  });

  test('int64 fields accept decimal strings and numbers, exactly, beyond 2^53', async () => {
    const text = `{"resourceSpans":[{"scopeSpans":[{"spans":[
      {"traceId":"${TRACE_ID}","spanId":"${SPAN_ID}","startTimeUnixNano":"1700000000123456789","endTimeUnixNano":1700000000987654321,
       "attributes":[{"key":"big","value":{"intValue":"-9223372036854775808"}},{"key":"num","value":{"intValue":9007199254740993}},{"key":"small","value":{"intValue":42}}]}]}]}]}`;
    const res = await post(traces(), text, JSON_TYPE);
    expect(res.status).toBe(200);
    const s = firstSpan();
    expect(s.startTimeUnixNano).toBe(1700000000123456789n);
    expect(s.endTimeUnixNano).toBe(1700000000987654321n);
    expect(s.attributes).toEqual([
      { key: 'big', value: -9223372036854775808n },
      { key: 'num', value: 9007199254740993n },
      { key: 'small', value: 42n },
    ]);
  });

  test('every AnyValue kind, including nested arrays and kvlists, decodes the same from protobuf and JSON', async () => {
    const expected = [
      { key: 's', value: 'text' },
      { key: 'b', value: true },
      { key: 'i', value: -5n },
      { key: 'd', value: 2.5 },
      { key: 'bytes', value: new Uint8Array([1, 2, 255]) },
      { key: 'arr', value: ['a', 1n, ['nested', false]] },
      { key: 'map', value: new KeyValueList([{ key: 'inner', value: new KeyValueList([{ key: 'x', value: 1.5 }]) }]) },
      { key: 'empty', value: undefined },
    ];
    const any = (f: Field[]): Field[] => f;
    const proto = traceRequest([
      span([
        [9, 'message', kv('s', any([[1, 'bytes', 'text']]))],
        [9, 'message', kv('b', any([[2, 'varint', 1]]))],
        [9, 'message', kv('i', any([[3, 'varint', -5n]]))],
        [9, 'message', kv('d', any([[4, 'double', 2.5]]))],
        [9, 'message', kv('bytes', any([[7, 'bytes', new Uint8Array([1, 2, 255])]]))],
        [
          9,
          'message',
          kv('arr', [
            [
              5,
              'message',
              [
                [1, 'message', [[1, 'bytes', 'a']]],
                [1, 'message', [[3, 'varint', 1]]],
                [
                  1,
                  'message',
                  [
                    [
                      5,
                      'message',
                      [
                        [1, 'message', [[1, 'bytes', 'nested']]],
                        [1, 'message', [[2, 'varint', 0]]],
                      ],
                    ],
                  ],
                ],
              ],
            ],
          ]),
        ],
        [
          9,
          'message',
          kv('map', [
            [
              6,
              'message',
              [[1, 'message', kv('inner', [[6, 'message', [[1, 'message', kv('x', [[4, 'double', 1.5]])]]]])]],
            ],
          ]),
        ],
        [9, 'message', kv('empty', [])],
      ]),
    ]);
    const json = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: TRACE_ID,
                  spanId: SPAN_ID,
                  attributes: [
                    { key: 's', value: { stringValue: 'text' } },
                    { key: 'b', value: { boolValue: true } },
                    { key: 'i', value: { intValue: '-5' } },
                    { key: 'd', value: { doubleValue: 2.5 } },
                    { key: 'bytes', value: { bytesValue: Buffer.from([1, 2, 255]).toString('base64') } },
                    {
                      key: 'arr',
                      value: {
                        arrayValue: {
                          values: [
                            { stringValue: 'a' },
                            { intValue: 1 },
                            { arrayValue: { values: [{ stringValue: 'nested' }, { boolValue: false }] } },
                          ],
                        },
                      },
                    },
                    {
                      key: 'map',
                      value: {
                        kvlistValue: {
                          values: [
                            {
                              key: 'inner',
                              value: { kvlistValue: { values: [{ key: 'x', value: { doubleValue: 1.5 } }] } },
                            },
                          ],
                        },
                      },
                    },
                    { key: 'empty', value: {} },
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    expect((await post(traces(), proto, PROTOBUF)).status).toBe(200);
    expect((await post(traces(), JSON.stringify(json), JSON_TYPE)).status).toBe(200);
    expect(t.batches.traces).toHaveLength(2);
    for (const batch of t.batches.traces) {
      expect(withoutOffsets(batch.data[0].scopeSpans[0].spans[0].attributes)).toEqual(expected);
    }
  });

  describe('ids', () => {
    test.each([
      [
        'JSON trace id of 30 hex chars',
        JSON_TYPE,
        JSON.stringify({
          resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE_ID.slice(2), spanId: SPAN_ID }] }] }],
        }),
        'resourceSpans[0].scopeSpans[0].spans[0].traceId',
      ],
      [
        'JSON span id that is not hex',
        JSON_TYPE,
        JSON.stringify({
          resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE_ID, spanId: 'zzzzzzzzzzzzzzzz' }] }] }],
        }),
        'resourceSpans[0].scopeSpans[0].spans[0].spanId',
      ],
      [
        'protobuf trace id of 5 bytes',
        PROTOBUF,
        traceRequest([span([], 'aabbccddee')]),
        'resourceSpans[0].scopeSpans[0].spans[0]',
      ],
      [
        'protobuf parent span id of 9 bytes',
        PROTOBUF,
        traceRequest([span([[4, 'bytes', hex(`${PARENT_ID}ff`)]])]),
        'resourceSpans[0].scopeSpans[0].spans[0]',
      ],
    ])('%s → 400 naming the field', async (_name, headers, body, path) => {
      const res = await post(traces(), body, headers);
      expect(res.status).toBe(400);
      const message = headers === JSON_TYPE ? JSON.parse(res.body.toString()).message : decodeStatus(res.body).message;
      expect(message).toContain(path);
      expect(message).toMatch(/[Ii]d/);
      expect(t.batches.traces).toHaveLength(0);
    });

    test('all-zero and missing ids reject only those spans, reported as partial success in protobuf', async () => {
      const body = traceRequest([
        span([], '0'.repeat(32)),
        span(),
        span([], TRACE_ID, '0'.repeat(16)),
        [[5, 'bytes', 'no ids']],
      ]);
      const res = await post(traces(), body, PROTOBUF);
      expect(res.status).toBe(200);
      const partial = decodePartial(res.body);
      expect(partial?.rejected).toBe(3);
      expect(partial?.message).toContain('trace_id is missing or all zeros');
      expect(partial?.message).toContain('span_id is missing or all zeros');
      expect(t.batches.traces[0].data[0].scopeSpans[0].spans.map((s) => s.spanId)).toEqual([SPAN_ID]);
    });

    test('partial success in JSON uses lowerCamelCase and an int64 string', async () => {
      const body = {
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  { traceId: '0'.repeat(32), spanId: SPAN_ID },
                  { traceId: TRACE_ID, spanId: SPAN_ID },
                ],
              },
            ],
          },
        ],
      };
      const res = await post(traces(), JSON.stringify(body), JSON_TYPE);
      expect(res.status).toBe(200);
      const parsed = JSON.parse(res.body.toString());
      expect(parsed.partialSuccess.rejectedSpans).toBe('1');
      expect(parsed.partialSuccess.errorMessage).toContain('trace_id');
    });
  });

  describe('malformed payloads → 400 with a google.rpc.Status in the request encoding', () => {
    const good = traceRequest([span()]);
    test.each([
      ['truncated protobuf', PROTOBUF, good.subarray(0, good.length - 3), /truncated|past the end/],
      ['a length prefix past the end', PROTOBUF, Buffer.from([0x0a, 0x7f, 0x01]), /past the end/],
      ['a group wire type', PROTOBUF, Buffer.from([0x0b]), /wire type/],
      ['invalid JSON', JSON_TYPE, '{"resourceSpans": [', /invalid JSON/],
      ['a JSON list where an object belongs', JSON_TYPE, '{"resourceSpans": {"a": 1}}', /resourceSpans/],
      [
        'a JSON number where a string belongs',
        JSON_TYPE,
        `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"${TRACE_ID}","spanId":"${SPAN_ID}","name":5}]}]}]}`,
        /spans\[0\]\.name/,
      ],
    ])('%s', async (_name, headers, body, message) => {
      const res = await post(traces(), body, headers);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain(headers['content-type']);
      const status = headers === JSON_TYPE ? JSON.parse(res.body.toString()) : decodeStatus(res.body);
      expect(status.code).toBe(3);
      expect(status.message).toMatch(message);
    });
  });

  test('AnyValue nesting over limits.max_any_value_depth → 400 naming the attribute', async () => {
    let value: object = { stringValue: 'leaf' };
    for (let i = 0; i < 4; i++) value = { arrayValue: { values: [value] } };
    const body = {
      resourceSpans: [
        { scopeSpans: [{ spans: [{ traceId: TRACE_ID, spanId: SPAN_ID, attributes: [{ key: 'deep', value }] }] }] },
      ],
    };
    const res = await post(traces(), JSON.stringify(body), JSON_TYPE);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString()).message).toMatch(/attributes\[0\].*nested deeper than 4/);
    // The same depth in protobuf.
    let field: Field[] = [[1, 'bytes', 'leaf']];
    for (let i = 0; i < 4; i++) field = [[5, 'message', [[1, 'message', field]]]];
    const res2 = await post(traces(), traceRequest([span([[9, 'message', kv('deep', field)]])]), PROTOBUF);
    expect(res2.status).toBe(400);
    expect(decodeStatus(res2.body).message).toMatch(/spans\[0\]\.attributes\[0\].*nested deeper than 4/);
  });

  describe('compression', () => {
    const body = traceRequest([span()]);
    test.each([
      ['gzip', gzipSync(body)],
      ['deflate', deflateSync(body)],
      ['GZIP', gzipSync(body)],
    ])('%s', async (encoding, compressed) => {
      const res = await post(traces(), compressed, { ...PROTOBUF, 'content-encoding': encoding });
      expect(res.status).toBe(200);
      expect(firstSpan().spanId).toBe(SPAN_ID);
    });

    test('truncated gzip → 400', async () => {
      const gz = gzipSync(body);
      const res = await post(traces(), gz.subarray(0, gz.length - 8), { ...PROTOBUF, 'content-encoding': 'gzip' });
      expect(res.status).toBe(400);
      expect(decodeStatus(res.body).message).toMatch(/request body/);
    });

    test('unsupported content encoding → 415', async () => {
      const res = await post(traces(), body, { ...PROTOBUF, 'content-encoding': 'snappy' });
      expect(res.status).toBe(415);
      expect(decodeStatus(res.body).message).toContain('snappy');
    });
  });

  describe('size limits → 413', () => {
    test('a zip bomb (20 MiB of zeros in 20 KiB of gzip) is cut at the decompressed limit', async () => {
      const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024));
      expect(bomb.length).toBeLessThan(1024 * 1024);
      const res = await post(traces(), bomb, { ...PROTOBUF, 'content-encoding': 'gzip' });
      expect(res.status).toBe(413);
      expect(decodeStatus(res.body).message).toContain('max_request_body_size');
    });

    test('a body over the limit on the wire', async () => {
      const res = await post(traces(), Buffer.alloc(1024 * 1024 + 1), PROTOBUF);
      expect(res.status).toBe(413);
    });
  });

  describe('transport errors', () => {
    test.each([['text/plain'], ['application/xml'], ['']])('Content-Type %j → 415', async (type) => {
      const res = await post(traces(), '{}', type ? { 'content-type': type } : {});
      expect(res.status).toBe(415);
      expect(JSON.parse(res.body.toString()).message).toContain('application/x-protobuf or application/json');
    });

    test('media type parameters are ignored', async () => {
      const res = await post(traces(), '{}', { 'content-type': 'application/json; charset=utf-8' });
      expect(res.status).toBe(200);
    });

    test.each(['GET', 'PUT', 'DELETE'])('%s → 405 with Allow: POST', async (method) => {
      const res = await post(traces(), '{}', JSON_TYPE, method);
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
    });

    test('unknown path → 404', async () => {
      const res = await post(`${t.http}/v1/profiles`, '{}', JSON_TYPE);
      expect(res.status).toBe(404);
    });
  });

  test('metrics and logs endpoints decode their own signal', async () => {
    const metrics = {
      resourceMetrics: [
        {
          scopeMetrics: [
            {
              metrics: [
                { name: 'm', sum: { isMonotonic: true, aggregationTemporality: 2, dataPoints: [{ asInt: '3' }] } },
              ],
            },
          ],
        },
      ],
    };
    const logs = {
      resourceLogs: [
        {
          scopeLogs: [{ logRecords: [{ body: { stringValue: 'hello' }, severityNumber: 9, eventName: 'user.login' }] }],
        },
      ],
    };
    expect((await post(`${t.http}/v1/metrics`, JSON.stringify(metrics), JSON_TYPE)).status).toBe(200);
    expect((await post(`${t.http}/v1/logs`, JSON.stringify(logs), JSON_TYPE)).status).toBe(200);
    expect(t.batches.metrics[0].data[0].scopeMetrics[0].metrics[0].data).toMatchObject({
      type: 'sum',
      isMonotonic: true,
      dataPoints: [{ value: 3, isInt: true }],
    });
    expect(t.batches.logs[0].data[0].scopeLogs[0].logRecords[0]).toMatchObject({
      body: 'hello',
      severityNumber: 9,
      eventName: 'user.login',
    });
  });
});

describe('CORS (otlp.http.cors_allowed_origins)', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ otlp: { http: { cors_allowed_origins: ['https://*.example.com'] } } });
  });
  afterAll(() => t.close());

  test('a preflight from an allowed origin is answered, and the POST carries the CORS header', async () => {
    const preflight = await fetch(`${t.http}/v1/traces`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const res = await post(`${t.http}/v1/traces`, '{}', { ...JSON_TYPE, origin: 'https://app.example.com' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
  });

  test('another origin gets no CORS header', async () => {
    const res = await post(`${t.http}/v1/traces`, '{}', { ...JSON_TYPE, origin: 'https://evil.test' });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  // navigator.sendBeacon (the default of OpenTelemetry's browser exporters up to 0.2xx) sends with
  // credentials: Chromium then wants Access-Control-Allow-Credentials: true on the preflight and the
  // origin itself (never `*`) in Access-Control-Allow-Origin, as the Collector answers.
  test('credentialed requests (sendBeacon) are allowed: the origin is echoed with Allow-Credentials and Vary', async () => {
    const preflight = await fetch(`${t.http}/v1/traces`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');
    expect(preflight.headers.get('vary')).toMatch(/\bOrigin\b/);
    const res = await post(`${t.http}/v1/traces`, '{}', { ...JSON_TYPE, origin: 'https://app.example.com' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('vary')).toMatch(/\bOrigin\b/);
  });

  test('the browser may read Retry-After (exporters back off by it on 429 and 503)', async () => {
    const res = await post(`${t.http}/v1/traces`, '{}', { ...JSON_TYPE, origin: 'https://app.example.com' });
    expect(res.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('retry-after');
  });

  test('a request without Origin (not from a browser) gets no CORS headers', async () => {
    const res = await post(`${t.http}/v1/traces`, '{}', JSON_TYPE);
    expect(res.status).toBe(200);
    expect([...res.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
  });
});

describe('CORS with `*` among the allowed origins', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ otlp: { http: { cors_allowed_origins: ['*'] } } });
  });
  afterAll(() => t.close());

  test('the request origin is echoed, never `*` (which browsers refuse for credentialed requests)', async () => {
    for (const origin of ['http://127.0.0.1:8080', 'https://shop.example.org']) {
      const preflight = await fetch(`${t.http}/v1/logs`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
      expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');
      expect(preflight.headers.get('vary')).toMatch(/\bOrigin\b/);
      const res = await post(`${t.http}/v1/logs`, '{}', { ...JSON_TYPE, origin });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
    }
  });
});

/**
 * The recent buffer keeps protobuf traces and logs as their payload (the body, or the body as the
 * redaction's patch made it) and decodes them when read: what it gives back is what the pipeline's
 * consumers got, processors' changes included, whatever the request's encoding.
 */
import { LeanSpan } from '../src/otlp/protobuf/lean';
import {
  type Field,
  kv,
  PROTOBUF,
  pb,
  post,
  span,
  startTestReceiver,
  type TestReceiver,
  traceRequest,
  withoutOffsets,
} from './helpers';

/** A string attribute of a span (field 9) or, with `field` 6, of a log record. */
const attr = (key: string, value: string, field = 9): Field => [field, 'message', kv(key, [[1, 'bytes', value]])];

describe('recent buffer (debug.recent_items)', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({ limits: { max_attribute_value_length: 20 } });
  });
  afterAll(() => t.close());
  beforeEach(() => {
    t.batches.traces.length = 0;
    t.batches.logs.length = 0;
  });
  const recentTraces = () => t.receiver.recent.traces.recent().map((e) => withoutOffsets(e.data));
  const consumed = () => t.batches.traces.map((b) => withoutOffsets(b.data)).reverse();

  test('unchanged, redacted, truncated and JSON requests read back as the consumers got them', async () => {
    const plain = traceRequest([span([attr('http.route', '/a')])]);
    const redacted = traceRequest([span([attr('user.email', 'dave@example.com'), attr('note', 'ok')])]);
    const truncated = traceRequest([span([attr('long', 'a value longer than twenty characters')])]);
    for (const body of [plain, redacted, truncated])
      expect((await post(`${t.http}/v1/traces`, body, PROTOBUF)).status).toBe(200);
    const json = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'json' }],
            },
          ],
        },
      ],
    };
    const res = await post(`${t.http}/v1/traces`, JSON.stringify(json), { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(t.batches.traces).toHaveLength(4);
    // The redaction changed the second request (kept as the patched payload), the limits the third.
    const attrs = t.batches.traces[1].data[0].scopeSpans[0].spans[0].attributes;
    expect(attrs.find((a) => a.key === 'user.email')?.value).not.toBe('dave@example.com');
    expect(t.batches.traces[2].data[0].scopeSpans[0].spans[0].attributes[0].value).toBe('a value longer than ');
    expect(recentTraces()).toStrictEqual(consumed());
    // Read twice, the same.
    expect(recentTraces()).toStrictEqual(consumed());
  });

  test('a lean request changed without a patch (a span rejected) is kept encoded anew, not with its whole body', async () => {
    // Redaction off: the intake decodes lean, and lean spans reference the body they came in.
    const lean = await startTestReceiver({ redaction: { enabled: false } });
    try {
      const big = 'x'.repeat(200_000);
      const body = traceRequest([span([attr('http.route', '/kept')]), span([attr('payload', big)], '0'.repeat(32))]);
      const res = await post(`${lean.http}/v1/traces`, body, PROTOBUF);
      expect(res.status).toBe(200);
      expect(lean.batches.traces[0].data[0].scopeSpans[0].spans[0]).toBeInstanceOf(LeanSpan);
      const [entry] = lean.receiver.recent.traces.recent();
      const payload = (entry as unknown as { payload: Buffer }).payload;
      expect(payload.length).toBeLessThan(1000);
      const spans = entry.data[0].scopeSpans[0].spans;
      expect(spans).toHaveLength(1);
      expect(spans[0].attributes).toStrictEqual([{ key: 'http.route', value: '/kept', at: expect.any(Number) }]);
      expect(spans[0]).not.toBeInstanceOf(LeanSpan);
    } finally {
      await lean.close();
    }
  });

  test('logs too', async () => {
    const record: Field[] = [[5, 'message', [[1, 'bytes', 'body']]], attr('user.email', 'e@example.com', 6)];
    const logs = pb([[1, 'message', [[2, 'message', [[2, 'message', record]]]]]]);
    expect((await post(`${t.http}/v1/logs`, logs, PROTOBUF)).status).toBe(200);
    expect(t.batches.logs).toHaveLength(1);
    expect(t.receiver.recent.logs.recent().map((e) => withoutOffsets(e.data))).toStrictEqual([
      withoutOffsets(t.batches.logs[0].data),
    ]);
  });
});

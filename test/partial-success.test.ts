/**
 * Partial success over plain OTLP/HTTP JSON (no SDK would produce an all-zero trace id): the receiver
 * answers 200 with `partialSuccess`, counts the rejected spans as an int64 (a decimal string in
 * JSON), says why, and passes the valid spans on.
 */
import { attrs, comparable, type Harness, received, startHarness } from './helpers';

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
});

afterAll(async () => {
  await harness?.close();
});

beforeEach(() => harness.reset());

const VALID_TRACE_ID = '5b8efff798038103d269b633813fc60c';

function span(traceId: string, spanId: string, name: string) {
  return {
    traceId,
    spanId,
    name,
    kind: 2,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000000001000',
    attributes: [{ key: 'int64.max', value: { intValue: '9223372036854775807' } }],
  };
}

function request(spans: ReturnType<typeof span>[]) {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'raw-json' } }] },
        scopeSpans: [{ scope: { name: 'raw' }, spans }],
      },
    ],
  };
}

async function postTraces(body: unknown): Promise<{ status: number; contentType: string | null; json: unknown }> {
  const res = await fetch(`${harness.httpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, contentType: res.headers.get('content-type'), json: await res.json() };
}

function receivedSpans() {
  return received(harness.batches.traces).flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
}

test('a span with an all-zero trace id is rejected, the other accepted: 200 with partialSuccess', async () => {
  const res = await postTraces(
    request([
      span('0'.repeat(32), 'aaaaaaaaaaaaaaaa', 'zero-trace-id'),
      span(VALID_TRACE_ID, 'bbbbbbbbbbbbbbbb', 'valid'),
    ]),
  );

  expect(res.status).toBe(200);
  expect(res.contentType).toMatch(/^application\/json/);
  expect(res.json).toStrictEqual({
    partialSuccess: { rejectedSpans: '1', errorMessage: expect.stringContaining('trace_id') },
  });

  const spans = receivedSpans();
  expect(spans.map((s) => [s.name, s.traceId, s.spanId])).toStrictEqual([
    ['valid', VALID_TRACE_ID, 'bbbbbbbbbbbbbbbb'],
  ]);
  expect(comparable(spans[0].attributes)).toStrictEqual(comparable(attrs({ 'int64.max': 9_223_372_036_854_775_807n })));
  expect(spans[0].startTimeUnixNano).toBe(1_700_000_000_000_000_000n);
  expect(spans[0].endTimeUnixNano).toBe(1_700_000_000_000_001_000n);
});

test('zero trace id and zero span id are both counted, each named in the message', async () => {
  const res = await postTraces(
    request([
      span('0'.repeat(32), 'aaaaaaaaaaaaaaaa', 'zero-trace-id'),
      span(VALID_TRACE_ID, '0'.repeat(16), 'zero-span-id'),
      span(VALID_TRACE_ID, 'cccccccccccccccc', 'valid'),
    ]),
  );

  expect(res.status).toBe(200);
  const { partialSuccess } = res.json as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
  expect(partialSuccess.rejectedSpans).toBe('2');
  expect(partialSuccess.errorMessage).toMatch(/trace_id/);
  expect(partialSuccess.errorMessage).toMatch(/span_id/);
  expect(receivedSpans().map((s) => s.name)).toStrictEqual(['valid']);
});

test('a request with only valid spans gets an empty response, without partialSuccess', async () => {
  const res = await postTraces(request([span(VALID_TRACE_ID, 'dddddddddddddddd', 'valid')]));
  expect(res.status).toBe(200);
  expect(res.json).toStrictEqual({});
  expect(receivedSpans().map((s) => s.name)).toStrictEqual(['valid']);
});

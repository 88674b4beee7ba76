/**
 * What an intake worker sends back (src/workers/protocol.ts): the main thread keeps the body it sent a
 * copy of, so a payload comes back only when the processors changed the request; then it is the
 * changed request.
 */
import { loadConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import type { ResourceSpans } from '../src/model';
import { DEFAULT_DECODE_LIMITS } from '../src/otlp/limits';
import { decodeTraceRequest } from '../src/otlp/protobuf/decode-traces';
import { encodeTraceRequest } from '../src/otlp/protobuf/encode-traces';
import { SelfMetrics } from '../src/self-metrics';
import { IntakeWorkers } from '../src/workers/pool';
import type { WorkerAnswer } from '../src/workers/protocol';
import { skeletonKeys } from '../src/workers/skeleton';
import { modelSpan, withoutOffsets } from './helpers';

let pool: IntakeWorkers | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function startPool(): Promise<IntakeWorkers> {
  const config = loadConfig({ env: {} });
  return IntakeWorkers.start(
    { count: 1, maxInFlightPerWorker: 4, retryAfterSeconds: 1, settings: { config, keys: skeletonKeys(config) } },
    new SelfMetrics({ defaultMetrics: false }),
    createLogger('silent'),
  );
}

function request(value: string): ResourceSpans[] {
  return [
    {
      resource: { attributes: [{ key: 'service.name', value: 'checkout' }], droppedAttributesCount: 0 },
      schemaUrl: '',
      scopeSpans: [
        {
          scope: { name: 'test', version: '1', attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          spans: [modelSpan({ attributes: [{ key: 'app.note', value }] })],
        },
      ],
    },
  ];
}

function payloadOf(answer: WorkerAnswer): Buffer | undefined {
  if (!answer.ok) throw new Error(answer.error.message);
  const p = answer.payload;
  return p && Buffer.from(p.buffer, p.offset, p.length);
}

test('a request the processors leave as it came gets no payload back, and the body stays whole', async () => {
  pool = await startPool();
  const body = encodeTraceRequest(request('nothing to hide'));
  const copy = Buffer.from(body);
  const answer = await pool.process('traces', 'protobuf', body);
  expect(answer.ok && answer.kept).toBe(1);
  expect(payloadOf(answer)).toBeUndefined();
  // Only a copy went to the worker: the caller's body still holds the request.
  expect(body.equals(copy)).toBe(true);
});

test('a request redaction changed comes back as the changed request', async () => {
  pool = await startPool();
  const body = encodeTraceRequest(request('write to jane.doe@example.com'));
  const answer = await pool.process('traces', 'protobuf', body);
  const payload = payloadOf(answer);
  expect(payload).toBeDefined();
  const expected = request('write to [REDACTED:email]');
  expect(withoutOffsets(decodeTraceRequest(payload as Buffer, DEFAULT_DECODE_LIMITS))).toEqual(expected);
  expect(withoutOffsets(decodeTraceRequest(body, DEFAULT_DECODE_LIMITS))).toEqual(
    request('write to jane.doe@example.com'),
  );
});

/**
 * The queue layer shared by the exporters (tempo, loki) and the embedded stores (trace_store,
 * log_store), src/queue/: the byte-bounded admission decision, the refusal (503 + Retry-After), the
 * drop of the oldest queued requests, the "raw bytes unless a processor modified the batch" payload,
 * and the one `on_full` vocabulary with its former spelling.
 */
import { OverloadedError } from '../src/otlp/errors';
import type { Batch } from '../src/pipeline/pipeline';
import { dropOldestUntilFits, QueueAdmission, requestPayload } from '../src/queue/admission';
import { normalizeOnFull, ON_FULL } from '../src/queue/on-full';

const queue = (onFull: 'refuse' | 'drop_newest' | 'drop_oldest', capacityBytes = 100) =>
  new QueueAdmission({ capacityBytes, onFull, queue: 'the Tempo export queue', sizeKey: 'tempo.queue_size' });

describe('QueueAdmission: what a request of `bytes` meets with `queued` bytes waiting', () => {
  test.each([
    ['refuse', 40, 60, 'accept'],
    ['refuse', 41, 60, 'refuse'],
    ['drop_newest', 41, 60, 'drop_newest'],
    ['drop_oldest', 41, 60, 'drop_oldest'],
    ['refuse', 101, 0, 'too_large'],
    ['drop_oldest', 101, 0, 'too_large'],
    ['drop_newest', 100, 0, 'accept'],
  ] as const)('on_full %s: %d bytes onto %d queued → %s', (onFull, bytes, queued, verdict) => {
    expect(queue(onFull).verdict(bytes, queued)).toBe(verdict);
  });

  test('admit (before decoding) refuses only with refuse, and only a request that could ever fit', () => {
    expect(() => queue('refuse').admit(41, 60)).toThrow(OverloadedError);
    expect(() => queue('refuse').admit(40, 60)).not.toThrow();
    // Larger than the whole queue: left to consume, which says "too large" rather than "retry".
    expect(() => queue('refuse').admit(101, 60)).not.toThrow();
    expect(() => queue('drop_newest').admit(41, 60)).not.toThrow();
    expect(() => queue('drop_oldest').admit(41, 60)).not.toThrow();
  });

  test('the refusal is a 503 with Retry-After (the hint given, else 1 s) that names the queue and its key', () => {
    let err: unknown;
    try {
      queue('refuse').admit(41, 60);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OverloadedError);
    expect((err as OverloadedError).httpStatus).toBe(503);
    expect((err as OverloadedError).retryAfterSeconds).toBe(1);
    expect((err as Error).message).toBe('the Tempo export queue is full (tempo.queue_size); retry after 1s');
    const hinted = new QueueAdmission({
      capacityBytes: 100,
      onFull: 'refuse',
      queue: 'the trace store write queue',
      sizeKey: 'trace_store.queue_size',
      retryAfterSeconds: () => 7,
    }).full();
    expect([hinted.retryAfterSeconds, hinted.message]).toEqual([
      7,
      'the trace store write queue is full (trace_store.queue_size); retry after 7s',
    ]);
  });
});

describe('dropOldestUntilFits', () => {
  /** A queue of waiting requests (bytes, items), oldest first. */
  function fifo(...entries: [number, number][]) {
    const waiting = [...entries];
    return {
      get waitingBytes() {
        return waiting.reduce((n, [b]) => n + b, 0);
      },
      dropOldest() {
        const e = waiting.shift();
        return e && { bytes: e[0], items: e[1] };
      },
      waiting,
    };
  }

  test('drops the oldest requests until the new one fits, and counts what it dropped', () => {
    const q = fifo([30, 3], [30, 5], [30, 7]);
    expect(dropOldestUntilFits(q, 50, 100)).toEqual({ items: 8, requests: 2 });
    expect(q.waiting).toEqual([[30, 7]]);
  });

  test('drops nothing when it fits, and stops when the queue is empty', () => {
    expect(dropOldestUntilFits(fifo([30, 3]), 70, 100)).toEqual({ items: 0, requests: 0 });
    expect(dropOldestUntilFits(fifo([30, 3]), 200, 100)).toEqual({ items: 3, requests: 1 });
  });
});

describe('requestPayload: the bytes as received unless a processor modified the batch', () => {
  const raw = Buffer.from('as received');
  const encode = () => Buffer.from('encoded again');
  const batch = (context: Partial<Batch<'traces'>['context']>) =>
    ({
      data: [],
      itemCount: 0,
      context: { transport: 'http', receivedAt: 0, ...context },
    }) as unknown as Batch<'traces'>;

  test.each([
    [{ raw, modified: false }, 'as received'],
    [{ raw, modified: true }, 'encoded again'],
    [{ raw: undefined, modified: false }, 'encoded again'],
  ])('%o → %s', (context, expected) => {
    expect(requestPayload(batch(context), encode).toString()).toBe(expected);
  });
  test('a modified batch taken by two consumers (a store and an exporter) is encoded once', () => {
    let encodings = 0;
    const counting = () => {
      encodings++;
      return Buffer.from('encoded again');
    };
    const b = batch({ raw, modified: true });
    const first = requestPayload(b, counting);
    expect(requestPayload(b, counting)).toBe(first);
    expect(encodings).toBe(1);
  });
});

describe('the on_full vocabulary', () => {
  test('refuse, drop_newest, drop_oldest; the former drop (the stores) is drop_newest', () => {
    expect(ON_FULL).toEqual(['refuse', 'drop_newest', 'drop_oldest']);
    for (const v of ON_FULL) expect(normalizeOnFull(v)).toBe(v);
    expect(normalizeOnFull('drop')).toBe('drop_newest');
  });
});

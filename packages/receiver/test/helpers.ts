/** Test helpers: a receiver on free loopback ports that records what reaches its pipeline. */
import {
  type Batch,
  type Receiver,
  type ReceiverConfigInput,
  type Signal,
  type Span,
  startReceiver,
  validateConfig,
} from '../src';
import { ProtoWriter } from '../src/otlp/protobuf/writer';

export { decodeBody } from './content-encoding';

export interface TestReceiver {
  receiver: Receiver;
  http: string;
  grpc: string;
  admin: string;
  batches: { [S in Signal]: Batch<S>[] };
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1 port 0 with logging off; `overrides` are merged into the config. */
export async function startTestReceiver(overrides: ReceiverConfigInput = {}): Promise<TestReceiver> {
  const config = validateConfig({
    ...overrides,
    otlp: {
      ...overrides.otlp,
      http: { address: '127.0.0.1:0', ...overrides.otlp?.http },
      grpc: { address: '127.0.0.1:0', ...overrides.otlp?.grpc },
    },
    admin: { address: '127.0.0.1:0', ...overrides.admin },
    log: { level: 'silent', summary_interval: 0, ...overrides.log },
    // No embedded trace store unless a test asks for one (it would write under ./.sonde-data).
    trace_store: { enabled: false, ...overrides.trace_store },
  });
  const receiver = await startReceiver(config, { defaultMetrics: false });
  const batches = { traces: [], metrics: [], logs: [] } as TestReceiver['batches'];
  receiver.pipeline.traces.addConsumer({ name: 'capture', consume: (b) => void batches.traces.push(b) });
  receiver.pipeline.metrics.addConsumer({ name: 'capture', consume: (b) => void batches.metrics.push(b) });
  receiver.pipeline.logs.addConsumer({ name: 'capture', consume: (b) => void batches.logs.push(b) });
  return {
    receiver,
    http: `http://${receiver.addresses.otlpHttp}`,
    grpc: receiver.addresses.otlpGrpc ?? '',
    admin: `http://${receiver.addresses.admin}`,
    batches,
    close: () => receiver.close(),
  };
}

export interface PostResult {
  status: number;
  headers: Headers;
  body: Buffer;
}

export async function post(
  url: string,
  body: Uint8Array | string,
  headers: Record<string, string>,
  method = 'POST',
): Promise<PostResult> {
  const res = await fetch(url, { method, body: method === 'GET' ? undefined : body, headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

export const PROTOBUF = { 'content-type': 'application/x-protobuf' };
export const JSON_TYPE = { 'content-type': 'application/json' };

/** Builds protobuf messages field by field, for payloads no SDK would produce. */
export type Field =
  | [number, 'varint', number | bigint]
  | [number, 'fixed64', bigint]
  | [number, 'fixed32', number]
  | [number, 'double', number]
  | [number, 'bytes', Uint8Array | string]
  | [number, 'message', Field[]];

export function pb(fields: Field[]): Buffer {
  const w = new ProtoWriter();
  for (const [field, kind, value] of fields) {
    switch (kind) {
      case 'varint':
        w.tag(field, 0).varint(value);
        break;
      case 'fixed64':
        w.fixed64Field(field, value);
        break;
      case 'double':
        w.doubleField(field, value);
        break;
      case 'fixed32':
        w.fixed32Field(field, value);
        break;
      case 'bytes':
        w.bytesField(field, typeof value === 'string' ? Buffer.from(value) : value);
        break;
      case 'message':
        w.bytesField(field, pb(value));
        break;
    }
  }
  return w.finish();
}

export const hex = (s: string) => Buffer.from(s, 'hex');
export const TRACE_ID = '5b8efff798038103d269b633813fc60c';
export const SPAN_ID = 'eee19b7ec3c1b174';
export const PARENT_ID = 'aaa19b7ec3c1b174';

/** A protobuf span with the given extra fields. */
export function span(extra: Field[] = [], traceId = TRACE_ID, spanId = SPAN_ID): Field[] {
  return [[1, 'bytes', hex(traceId)], [2, 'bytes', hex(spanId)], [5, 'bytes', 'op'], ...extra];
}

/** An ExportTraceServiceRequest holding one resource, one scope and these spans. */
export function traceRequest(spans: Field[][], resourceAttrs: Field[][] = []): Buffer {
  return pb([
    [
      1,
      'message',
      [
        [1, 'message', resourceAttrs.map((kv) => [1, 'message', kv] as Field)],
        [2, 'message', [[1, 'message', [[1, 'bytes', 'scope']]], ...spans.map((s) => [2, 'message', s] as Field)]],
      ],
    ],
  ]);
}

/** A KeyValue with a string value. */
export function kv(key: string, value: Field[]): Field[] {
  return [
    [1, 'bytes', key],
    [2, 'message', value],
  ];
}

/**
 * Decoded data without the protobuf decoder's field offsets (`at`, for patches): compared with a model
 * written by hand, or with data decoded from other bytes (where the offsets differ).
 */
export function withoutOffsets<T>(data: T): T {
  if (Array.isArray(data)) return data.map(withoutOffsets) as T;
  if (data === null || typeof data !== 'object' || data instanceof Uint8Array) return data;
  const out: Record<string, unknown> = Object.create(Object.getPrototypeOf(data));
  for (const [k, v] of Object.entries(data)) if (k !== 'at') out[k] = withoutOffsets(v);
  return out as T;
}

export { prng } from '../bench/prng';

/** A span of the model (a SERVER span `GET /` of 50 ms, nothing else set), with `fields` over it. */
export function modelSpan(fields: Partial<Span> = {}): Span {
  return {
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId: 'eee19b7ec3c1b174',
    traceState: '',
    parentSpanId: '',
    flags: 0,
    name: 'GET /',
    kind: 2,
    startTimeUnixNano: 1_700_000_000_000_000_000n,
    endTimeUnixNano: 1_700_000_000_050_000_000n,
    attributes: [],
    droppedAttributesCount: 0,
    events: [],
    droppedEventsCount: 0,
    links: [],
    droppedLinksCount: 0,
    status: { code: 0, message: '' },
    ...fields,
  };
}

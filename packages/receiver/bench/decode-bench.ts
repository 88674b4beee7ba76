/**
 * Decoder micro-benchmark, in process: the receiver's hand-written decoder (protobuf straight into
 * the internal model) against protobufjs, a generic decoder, followed by the mapping from its
 * generic message objects to the same model (ids to hex, Long to bigint, AnyValue to the model's
 * representation). Both outputs are checked deep-equal before anything is timed. For reference:
 * protobufjs's and pbf's generic trees alone (neither maps to the model; pbf makes less than protobufjs),
 * and a walk over every field that builds nothing (what a decoder leaving fields as bytes cannot beat).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PbfReader } from 'pbf';
import { compile } from 'pbf/compile';
import protobuf from 'protobufjs';
import parseProto from 'protocol-buffers-schema';
import type { Payload } from './payloads.ts';
import {
  type AnyValue,
  decodeTraceRequest,
  type InstrumentationScope,
  type KeyValue,
  KeyValueList,
  ProtoReader,
  type Resource,
  type ResourceSpans,
  type Span,
} from './receiver.ts';

const LIMITS = { maxAnyValueDepth: 32, maxDecodedStructures: 4_000_000 };

/**
 * A full GC between rounds, so that one decoder's garbage is not collected on another's time.
 * (`--expose-gc` set at run time; the function comes from a fresh context, where it is defined.)
 */
/** opentelemetry-proto's .proto files, shipped with the package for gRPC reflection. */
const PROTO_DIR = join(import.meta.dirname, '..', 'proto');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The OTLP ExportTraceServiceRequest type, from the opentelemetry-proto files the package ships (proto/). */
export function loadRequestType(): protobuf.Type {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(PROTO_DIR, target);
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: false });
  root.resolveAll();
  return root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
}

/**
 * pbf's reader for ExportTraceServiceRequest, compiled from the same .proto files: a second generic
 * decoder from the registry, which makes less than protobufjs (bytes as views of the body, 64-bit
 * integers as numbers, losing precision past 2^53) and is shown unmapped, as protobufjs alone is.
 */
interface PbfRequest {
  resource_spans: { scope_spans: { spans: unknown[] }[] }[];
}

export function loadPbfReader(): (body: Buffer) => PbfRequest {
  const schema = parseProto(
    readFileSync(join(PROTO_DIR, 'opentelemetry/proto/collector/trace/v1/trace_service.proto')),
  );
  // The imports' messages in one schema, as resolve-protobuf-schema does (their names are unique in OTLP).
  const pending = [...schema.imports];
  for (const seen = new Set<string>(); pending.length > 0; ) {
    const file = pending.shift() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const imported = parseProto(readFileSync(join(PROTO_DIR, file)));
    schema.messages.push(...imported.messages);
    schema.enums.push(...imported.enums);
    pending.push(...imported.imports);
  }
  const read = compile(schema).readExportTraceServiceRequest as (pbf: PbfReader) => PbfRequest;
  return (body) => read(new PbfReader(body));
}

// The shapes of protobufjs's decoded messages (camelCase fields; 64-bit integers as Long; bytes as Buffer).
interface PbLong {
  low: number;
  high: number;
}
interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: PbLong;
  doubleValue?: number;
  arrayValue?: { values: PbAnyValue[] } | null;
  kvlistValue?: { values: PbKeyValue[] } | null;
  bytesValue?: Uint8Array;
}
interface PbKeyValue {
  key: string;
  value: PbAnyValue | null;
}
interface PbResource {
  attributes: PbKeyValue[];
  droppedAttributesCount: number;
}
interface PbScope {
  name: string;
  version: string;
  attributes: PbKeyValue[];
  droppedAttributesCount: number;
}
interface PbEvent {
  timeUnixNano: PbLong;
  name: string;
  attributes: PbKeyValue[];
  droppedAttributesCount: number;
}
interface PbLink {
  traceId: Uint8Array;
  spanId: Uint8Array;
  traceState: string;
  attributes: PbKeyValue[];
  droppedAttributesCount: number;
  flags: number;
}
interface PbSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  traceState: string;
  parentSpanId: Uint8Array;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: PbLong;
  endTimeUnixNano: PbLong;
  attributes: PbKeyValue[];
  droppedAttributesCount: number;
  events: PbEvent[];
  droppedEventsCount: number;
  links: PbLink[];
  droppedLinksCount: number;
  status: { message: string; code: number } | null;
}
interface PbRequest {
  resourceSpans: {
    resource: PbResource | null;
    scopeSpans: { scope: PbScope | null; spans: PbSpan[]; schemaUrl: string }[];
    schemaUrl: string;
  }[];
}

const has = Object.prototype.hasOwnProperty;

function uint64(v: PbLong): bigint {
  return v.high === 0 ? BigInt(v.low >>> 0) : (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

function int64(v: PbLong): bigint {
  return v.high === 0 ? BigInt(v.low >>> 0) : (BigInt(v.high | 0) << 32n) + BigInt(v.low >>> 0);
}

function id(bytes: Uint8Array, size: number, what: string): string {
  // An absent bytes field is protobufjs's prototype default, an empty plain array.
  if (bytes.length === 0) return '';
  if (bytes.length !== size) throw new Error(`${what} must be ${size} bytes, got ${bytes.length}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function anyValue(v: PbAnyValue | null, depth: number): AnyValue {
  if (depth > LIMITS.maxAnyValueDepth) throw new Error('too deep');
  if (v === null || v === undefined) return undefined;
  // protobufjs leaves an unset oneof member on the prototype (with its default): only own properties are set.
  if (has.call(v, 'stringValue')) return v.stringValue;
  if (has.call(v, 'intValue')) return int64(v.intValue as PbLong);
  if (has.call(v, 'boolValue')) return v.boolValue;
  if (has.call(v, 'doubleValue')) return v.doubleValue;
  if (has.call(v, 'arrayValue') && v.arrayValue) return v.arrayValue.values.map((e) => anyValue(e, depth + 1));
  if (has.call(v, 'kvlistValue') && v.kvlistValue) return new KeyValueList(keyValues(v.kvlistValue.values, depth + 1));
  if (has.call(v, 'bytesValue')) return new Uint8Array(v.bytesValue as Uint8Array);
  return undefined;
}

function keyValues(list: PbKeyValue[], depth = 1): KeyValue[] {
  const out: KeyValue[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) out[i] = { key: list[i].key, value: anyValue(list[i].value, depth) };
  return out;
}

function resource(r: PbResource | null): Resource {
  if (!r) return { attributes: [], droppedAttributesCount: 0 };
  return { attributes: keyValues(r.attributes), droppedAttributesCount: r.droppedAttributesCount };
}

function scope(s: PbScope | null): InstrumentationScope {
  if (!s) return { name: '', version: '', attributes: [], droppedAttributesCount: 0 };
  return {
    name: s.name,
    version: s.version,
    attributes: keyValues(s.attributes),
    droppedAttributesCount: s.droppedAttributesCount,
  };
}

function span(s: PbSpan): Span {
  return {
    traceId: id(s.traceId, 16, 'traceId'),
    spanId: id(s.spanId, 8, 'spanId'),
    traceState: s.traceState,
    parentSpanId: id(s.parentSpanId, 8, 'parentSpanId'),
    flags: s.flags,
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: uint64(s.startTimeUnixNano),
    endTimeUnixNano: uint64(s.endTimeUnixNano),
    attributes: keyValues(s.attributes),
    droppedAttributesCount: s.droppedAttributesCount,
    events: s.events.map((e) => ({
      timeUnixNano: uint64(e.timeUnixNano),
      name: e.name,
      attributes: keyValues(e.attributes),
      droppedAttributesCount: e.droppedAttributesCount,
    })),
    droppedEventsCount: s.droppedEventsCount,
    links: s.links.map((l) => ({
      traceId: id(l.traceId, 16, 'traceId'),
      spanId: id(l.spanId, 8, 'spanId'),
      traceState: l.traceState,
      attributes: keyValues(l.attributes),
      droppedAttributesCount: l.droppedAttributesCount,
      flags: l.flags,
    })),
    droppedLinksCount: s.droppedLinksCount,
    status: s.status ? { message: s.status.message, code: s.status.code } : { message: '', code: 0 },
  };
}

/** protobufjs's generic message tree mapped to the receiver's model. */
export function mapToModel(msg: PbRequest): ResourceSpans[] {
  return msg.resourceSpans.map((rs) => ({
    resource: resource(rs.resource),
    scopeSpans: rs.scopeSpans.map((ss) => ({
      scope: scope(ss.scope),
      spans: ss.spans.map(span),
      schemaUrl: ss.schemaUrl,
    })),
    schemaUrl: rs.schemaUrl,
  }));
}

export interface DecoderResult {
  name: string;
  spansPerRequest: number;
  /** Median over the rounds, and the slowest and fastest round. */
  spansPerSec: number;
  min: number;
  max: number;
  iterations: number;
  /** A generic decoder's message tree alone, not mapped to the model (a reference, not a usable decoder). */
  treeOnly: boolean;
}

export interface DecodeBenchResult {
  rows: DecoderResult[];
}

/**
 * What a decoder that reads every field but builds nothing costs, as a reference for a one-pass
 * decoder that leaves fields as byte ranges: every field of the request is visited with the
 * receiver's own wire reader (tags, lengths, varints and fixed-size fields read; strings, bytes and
 * ids skipped over, not turned into values). Which length-delimited fields are messages to descend
 * into, per message (opentelemetry-proto v1):
 */
const SUB_MESSAGES: Record<string, Record<number, string>> = {
  request: { 1: 'resourceSpans' },
  resourceSpans: { 1: 'resource', 2: 'scopeSpans' },
  resource: { 1: 'keyValue' },
  scopeSpans: { 1: 'scope', 2: 'span' },
  scope: { 3: 'keyValue' },
  span: { 9: 'keyValue', 11: 'event', 13: 'link', 15: 'status' },
  event: { 3: 'keyValue' },
  link: { 4: 'keyValue' },
  status: {},
  keyValue: { 2: 'anyValue' },
  anyValue: { 5: 'arrayValue', 6: 'keyValueList' },
  arrayValue: { 1: 'anyValue' },
  keyValueList: { 1: 'keyValue' },
};

function walk(r: InstanceType<typeof ProtoReader>, end: number, message: string): number {
  const sub = SUB_MESSAGES[message];
  let spans = message === 'span' ? 1 : 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if ((tag & 7) !== 2) {
      r.skip(tag & 7);
      continue;
    }
    const fieldEnd = r.delimitedEnd();
    const inner = sub[tag >>> 3];
    if (inner === undefined) r.pos = fieldEnd;
    else spans += walk(r, fieldEnd, inner);
  }
  return spans;
}

/** The walk of one request: as many placeholders as it has spans (the timing loop counts them). */
function walkRequest(body: Buffer): { length: number } {
  const r = new ProtoReader(body);
  return { length: walk(r, body.length, 'request') };
}

function countSpans(data: ResourceSpans[]): number {
  let n = 0;
  for (const rs of data) for (const ss of rs.scopeSpans) n += ss.spans.length;
  return n;
}

/** Decodes the bodies round-robin for about `ms` (at most `maxIterations` times); returns spans per second. */
function timeIt(
  decode: (body: Buffer) => unknown,
  bodies: Buffer[],
  spansPerRequest: number,
  ms: number,
  maxIterations: number,
): { spansPerSec: number; iterations: number; sink: number } {
  let sink = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + ms;
  let now = start;
  while (i < maxIterations) {
    const out = decode(bodies[i % bodies.length]);
    sink += (out as unknown[]).length;
    i++;
    if ((i & 3) === 0) {
      now = performance.now();
      if (now >= deadline) break;
    }
  }
  now = performance.now();
  return { spansPerSec: (i * spansPerRequest * 1000) / (now - start), iterations: i, sink };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The decoded data without the field offsets the receiver's decoder records (`at`, for patches), which
 * a generic decoder has no way to give: the rest must be equal.
 */
function withoutOffsets<T>(data: T): T {
  if (Array.isArray(data)) return data.map(withoutOffsets) as T;
  if (data === null || typeof data !== 'object' || data instanceof Uint8Array) return data;
  const out: Record<string, unknown> = Object.create(Object.getPrototypeOf(data));
  for (const [k, v] of Object.entries(data)) if (k !== 'at') out[k] = withoutOffsets(v);
  return out as T;
}

/**
 * For each payload: verifies that both decoders give the same model, then times, in alternating
 * rounds, (1) decodeTraceRequest, (2) protobufjs decode + mapping, (3) protobufjs decode alone,
 * (4) pbf decode alone, (5) the walk that builds nothing.
 */
export function runDecodeBench(
  payloads: Payload[],
  options: { roundMs: number; rounds: number },
  log: (line: string) => void,
): DecodeBenchResult {
  const Request = loadRequestType();
  const receiver = (body: Buffer) => decodeTraceRequest(body, LIMITS);
  const generic = (body: Buffer) => mapToModel(Request.decode(body) as unknown as PbRequest);
  const genericTreeOnly = (body: Buffer) => (Request.decode(body) as unknown as PbRequest).resourceSpans;
  const readPbf = loadPbfReader();
  const pbfTreeOnly = (body: Buffer) => readPbf(body).resource_spans;

  const rows: DecoderResult[] = [];
  for (const payload of payloads) {
    for (const body of payload.bodies) {
      const a = receiver(body);
      const b = generic(body);
      if (!isDeepStrictEqual(withoutOffsets(a), b))
        throw new Error(
          `decoders disagree on a ${payload.spansPerRequest}-span payload: the comparison would be meaningless`,
        );
      if (countSpans(a) !== payload.spansPerRequest)
        throw new Error(`expected ${payload.spansPerRequest} spans, decoded ${countSpans(a)}`);
      const pbfSpans = pbfTreeOnly(body).reduce(
        (n, rs) => n + rs.scope_spans.reduce((m, ss) => m + ss.spans.length, 0),
        0,
      );
      if (pbfSpans !== payload.spansPerRequest)
        throw new Error(`expected ${payload.spansPerRequest} spans, pbf decoded ${pbfSpans}`);
    }
    log(
      `  ${payload.spansPerRequest} spans/request: both decoders give deep-equal models on all ${payload.bodies.length} payloads`,
    );
    const decoders = [
      { name: 'receiver decodeTraceRequest (straight to model)', fn: receiver },
      { name: 'protobufjs decode + map to model', fn: generic },
      { name: 'protobufjs decode only (generic tree, unmapped)', fn: genericTreeOnly, treeOnly: true },
      {
        name: 'pbf decode only (generic tree, unmapped; 64-bit integers as lossy numbers)',
        fn: pbfTreeOnly,
        treeOnly: true,
      },
      { name: 'every field visited with the same reader, nothing built', fn: walkRequest },
    ];
    const samples = decoders.map(() => [] as number[]);
    const iterations = decoders.map(() => 0);
    let keep = 0;
    // Warm-up: let every decoder be optimised before timing.
    for (const d of decoders)
      keep += timeIt(d.fn, payload.bodies, payload.spansPerRequest, options.roundMs / 2, 1_000_000).sink;
    for (let round = 0; round < options.rounds; round++) {
      decoders.forEach((d, k) => {
        gc();
        const r = timeIt(d.fn, payload.bodies, payload.spansPerRequest, options.roundMs, 1_000_000);
        samples[k].push(r.spansPerSec);
        iterations[k] += r.iterations;
        keep += r.sink;
      });
    }
    if (keep < 0) log('unreachable');
    decoders.forEach((d, k) => {
      const row = {
        name: d.name,
        spansPerRequest: payload.spansPerRequest,
        spansPerSec: median(samples[k]),
        min: Math.min(...samples[k]),
        max: Math.max(...samples[k]),
        iterations: iterations[k],
        treeOnly: d.treeOnly === true,
      };
      rows.push(row);
      log(
        `  ${payload.spansPerRequest} spans/request: ${d.name}: ${fmtInt(row.spansPerSec)} spans/s (rounds ${fmtInt(row.min)}–${fmtInt(row.max)}, ${row.iterations} decodes)`,
      );
    });
  }
  return { rows };
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

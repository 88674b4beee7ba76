/**
 * What an intake worker sends back to the main thread of a processed batch for the model consumers
 * that stay there, besides its payload and the recorded updates of span metrics and event counts
 * (recorded-store.ts): the batch reduced to what the service graph (whose halves must meet in one
 * place) and consent people (rare records) read, so that they run there unchanged, on one store
 * each, and give the same series as in single-thread mode.
 *
 * Every resource and scope is kept; of the items, only client, server, producer and consumer spans,
 * and consent choice records, with their ids, names, kinds, status codes, times and trace states;
 * attributes only for the keys those consumers look up (SkeletonKeys). A consumer that starts reading
 * another attribute must add its key here (test/workers.test.ts compares every derived series of
 * both modes).
 */
import type { ReceiverConfig } from '../config/schema';
import { CONSENT_CHOICE_EVENT, isConsentChoice } from '../consent/people';
import {
  type AnyValue,
  type KeyValue,
  KeyValueList,
  type LogRecord,
  type ResourceLogs,
  type ResourceSpans,
  type ScopeLogs,
  type ScopeSpans,
  type Signal,
  type SignalData,
  type Span,
  SpanKind,
} from '../model';
import { attributesInBytes, endLookups, firstValues, KeySet } from '../otlp/protobuf/lean';
import { DATABASE_NAME_ATTRIBUTES, DATABASE_SYSTEM_ATTRIBUTES, PEER_ATTRIBUTES } from '../traces/service-graph';

/** The attribute keys the main thread's model consumers look up, per kind of owner. */
export interface SkeletonKeys {
  /** Whether a consumer on the main thread reads the signal's skeleton at all (the service graph; consent people). */
  traces: boolean;
  logs: boolean;
  resource: string[];
  span: string[];
  log: string[];
}

/**
 * What the skeleton keeps: span metrics and event counts are derived on the workers (recorded-store.ts),
 * so the main thread reads the skeleton for the service graph (client, server, producer and consumer
 * spans) and consent people (consent choice records) only.
 */
export function skeletonKeys(config: ReceiverConfig): SkeletonKeys {
  const resource = new Set<string>(['service.name']);
  const span = new Set<string>();
  if (config.service_graph.enabled) {
    for (const key of [...DATABASE_SYSTEM_ATTRIBUTES, ...PEER_ATTRIBUTES, ...DATABASE_NAME_ATTRIBUTES]) span.add(key);
    addMultiplier(config.service_graph.span_multiplier_key, span, resource);
  }
  return {
    traces: config.service_graph.enabled,
    logs: config.consent_people.enabled,
    resource: [...resource],
    span: [...span],
    log: ['event.name', 'sonde.consent.category', CONSENT_CHOICE_EVENT, 'sonde.consent.subject'],
  };
}

function addMultiplier(key: string, span: Set<string>, resource: Set<string>): void {
  if (key === '') return;
  span.add(key);
  resource.add(key);
}

/**
 * A skeleton as the worker sends it: columns rather than objects, since the structured clone of a
 * request's span objects cost more than decoding the request (about 4 µs a span, serialized and
 * deserialized, against 1.6 µs to decode). Resources, scopes and items are read back in order:
 * `shape` holds the counts (resources; per resource its kept attributes and scopes; per scope its
 * items; per item its kept attributes), `strings` the ids, names and attribute keys, `numbers` and
 * `times` each item's numbers and timestamps, `values` the kept attribute values.
 */
export interface PackedSkeleton {
  shape: Uint32Array<ArrayBuffer>;
  strings: string[];
  numbers: Float64Array<ArrayBuffer>;
  times: BigUint64Array<ArrayBuffer>;
  values: AnyValue[];
}

/** The span keys' KeySet and firstValues' output, made once per key list (the worker's one). */
let lookup: { keys: string[]; set: KeySet; values: AnyValue[] } | undefined;

function lookupOf(keys: string[]): { set: KeySet; values: AnyValue[] } {
  if (lookup?.keys !== keys) lookup = { keys, set: new KeySet(keys), values: new Array<AnyValue>(keys.length) };
  return lookup;
}

class Packer {
  readonly shape: number[] = [];
  readonly strings: string[] = [];
  readonly numbers: number[] = [];
  readonly times: bigint[] = [];
  readonly values: AnyValue[] = [];

  attributes(attributes: KeyValue[], keys: string[]): void {
    const at = this.shape.length;
    this.shape.push(0);
    if (keys.length === 0) return;
    let n = 0;
    for (const kv of attributes) {
      if (!keys.includes(kv.key)) continue;
      this.strings.push(kv.key);
      this.values.push(kv.value);
      n++;
    }
    this.shape[at] = n;
  }

  /**
   * A span's attributes for `keys`: those of a lean span still in bytes found there (the first of
   * each key, which is all that attributeValue reads), without decoding the others.
   */
  spanAttributes(span: Span, keys: string[]): void {
    if (!attributesInBytes(span)) {
      this.attributes(span.attributes, keys);
      return;
    }
    const lookup = lookupOf(keys);
    firstValues(span, lookup.set, lookup.values);
    const at = this.shape.length;
    this.shape.push(0);
    let n = 0;
    lookup.values.forEach((value, i) => {
      if (value === undefined) return;
      this.strings.push(keys[i]);
      this.values.push(value);
      n++;
    });
    this.shape[at] = n;
  }

  done(): PackedSkeleton {
    return {
      shape: Uint32Array.from(this.shape),
      strings: this.strings,
      numbers: Float64Array.from(this.numbers),
      times: BigUint64Array.from(this.times),
      values: this.values,
    };
  }
}

class Unpacker {
  private shapeAt = 0;
  private stringAt = 0;
  private numberAt = 0;
  private timeAt = 0;
  private valueAt = 0;

  constructor(private readonly packed: PackedSkeleton) {}

  count(): number {
    return this.packed.shape[this.shapeAt++];
  }

  string(): string {
    return this.packed.strings[this.stringAt++];
  }

  number(): number {
    return this.packed.numbers[this.numberAt++];
  }

  time(): bigint {
    return this.packed.times[this.timeAt++];
  }

  attributes(): KeyValue[] {
    const n = this.count();
    const out: KeyValue[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = { key: this.string(), value: revive(this.packed.values[this.valueAt++]) };
    return out;
  }
}

/** `data` reduced to what the main thread's consumers read, packed (PackedSkeleton). */
export function packSkeleton<S extends Signal>(signal: S, data: SignalData[S], keys: SkeletonKeys): PackedSkeleton {
  const p = new Packer();
  if (signal === 'traces') {
    p.shape.push(data.length);
    for (const rs of data as ResourceSpans[]) {
      p.attributes(rs.resource.attributes, keys.resource);
      p.shape.push(rs.scopeSpans.length);
      for (const ss of rs.scopeSpans) {
        const at = p.shape.length;
        p.shape.push(0);
        if (!keys.traces) continue;
        for (const span of ss.spans) {
          // The service graph reads only these kinds.
          if (span.kind < SpanKind.SERVER || span.kind > SpanKind.CONSUMER) continue;
          p.shape[at]++;
          p.strings.push(span.traceId, span.spanId, span.traceState, span.parentSpanId, span.name);
          p.numbers.push(span.kind, span.status.code, span.flags);
          p.times.push(span.startTimeUnixNano, span.endTimeUnixNano);
          p.spanAttributes(span, keys.span);
        }
      }
    }
  } else if (signal === 'logs') {
    p.shape.push(data.length);
    for (const rl of data as ResourceLogs[]) {
      p.attributes(rl.resource.attributes, keys.resource);
      p.shape.push(rl.scopeLogs.length);
      for (const sl of rl.scopeLogs) {
        const at = p.shape.length;
        p.shape.push(0);
        if (!keys.logs) continue;
        for (const r of sl.logRecords) {
          if (!isConsentChoice(r.eventName, r.attributes)) continue;
          p.shape[at]++;
          p.strings.push(r.traceId, r.spanId, r.eventName);
          p.numbers.push(r.severityNumber, r.flags);
          p.times.push(r.timeUnixNano, r.observedTimeUnixNano);
          p.attributes(r.attributes, keys.log);
        }
      }
    }
  } else throw new Error(`no skeleton for ${signal}: metrics are processed on the main thread`);
  endLookups();
  return p.done();
}

const NO_SCOPE = { name: '', version: '', attributes: [], droppedAttributesCount: 0 };

/** The skeleton's model again, on the main thread. */
export function unpackSkeleton<S extends Signal>(signal: S, packed: PackedSkeleton): SignalData[S] {
  const u = new Unpacker(packed);
  const resources = u.count();
  if (signal === 'traces') {
    const data: ResourceSpans[] = new Array(resources);
    for (let r = 0; r < resources; r++) {
      const resource = { attributes: u.attributes(), droppedAttributesCount: 0 };
      const scopeSpans: ScopeSpans[] = new Array(u.count());
      for (let s = 0; s < scopeSpans.length; s++) {
        const spans: Span[] = new Array(u.count());
        for (let i = 0; i < spans.length; i++) spans[i] = unpackSpan(u);
        scopeSpans[s] = { scope: NO_SCOPE, schemaUrl: '', spans };
      }
      data[r] = { resource, scopeSpans, schemaUrl: '' };
    }
    return data as SignalData[S];
  }
  const data: ResourceLogs[] = new Array(resources);
  for (let r = 0; r < resources; r++) {
    const resource = { attributes: u.attributes(), droppedAttributesCount: 0 };
    const scopeLogs: ScopeLogs[] = new Array(u.count());
    for (let s = 0; s < scopeLogs.length; s++) {
      const logRecords: LogRecord[] = new Array(u.count());
      for (let i = 0; i < logRecords.length; i++) logRecords[i] = unpackRecord(u);
      scopeLogs[s] = { scope: NO_SCOPE, schemaUrl: '', logRecords };
    }
    data[r] = { resource, scopeLogs, schemaUrl: '' };
  }
  return data as SignalData[S];
}

function unpackSpan(u: Unpacker): Span {
  const traceId = u.string();
  const spanId = u.string();
  const traceState = u.string();
  const parentSpanId = u.string();
  const name = u.string();
  const kind = u.number();
  const code = u.number();
  const flags = u.number();
  const startTimeUnixNano = u.time();
  const endTimeUnixNano = u.time();
  return {
    traceId,
    spanId,
    traceState,
    parentSpanId,
    flags,
    name,
    kind,
    startTimeUnixNano,
    endTimeUnixNano,
    attributes: u.attributes(),
    droppedAttributesCount: 0,
    events: [],
    droppedEventsCount: 0,
    links: [],
    droppedLinksCount: 0,
    status: { code, message: '' },
  };
}

function unpackRecord(u: Unpacker): LogRecord {
  const traceId = u.string();
  const spanId = u.string();
  const eventName = u.string();
  const severityNumber = u.number();
  const flags = u.number();
  const timeUnixNano = u.time();
  const observedTimeUnixNano = u.time();
  return {
    timeUnixNano,
    observedTimeUnixNano,
    severityNumber,
    severityText: '',
    body: undefined,
    attributes: u.attributes(),
    droppedAttributesCount: 0,
    flags,
    traceId,
    spanId,
    eventName,
  };
}

/** Structured cloning keeps plain objects, arrays, bigints and byte arrays, but not the KeyValueList class (a map value). */
function revive(value: AnyValue): AnyValue {
  if (Array.isArray(value)) return value.map(revive);
  if (
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Uint8Array) &&
    !(value instanceof KeyValueList)
  ) {
    const values = (value as { values: KeyValue[] }).values;
    return new KeyValueList(values.map((kv) => ({ ...kv, value: revive(kv.value) })));
  }
  return value;
}

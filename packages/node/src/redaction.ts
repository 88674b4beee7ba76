/**
 * Redaction before export, with @sonde/redact (the same engine the receiver runs): span names,
 * span/event/link attributes, status messages, log bodies and log/event attributes, and the
 * resource and instrumentation scope attributes of spans, log records and metrics. URL attributes
 * (`url.full`, `url.query`, `http.target`, ...) go through the URL rules. `enduser.id` becomes
 * `enduser.pseudo.id` (a keyed HMAC) when a key is configured, and is dropped otherwise.
 *
 * Exported items are read-only: a redacted span is a new plain object with the ReadableSpan fields, a
 * redacted log record a view over the original (`Object.create`) whose changed fields shadow the
 * original ones, so nothing the application holds is modified.
 */
import type { AnyValue, Attributes } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import { createRedactor, DETECTORS, parseRedactionConfig, type RedactionConfig, type Redactor } from '@sonde/redact';

/** Attribute keys whose values are pseudonymized by default when an HMAC key is configured. */
export const DEFAULT_PSEUDONYMIZE_KEYS = ['enduser.id', 'user.id'];

export interface RedactionSetup {
  redactor: Redactor;
  /** What the summary line says (never the key). */
  describe: string;
}

/**
 * The effective configuration: the given one, the HMAC key from `SONDE_HMAC_KEY` when none is
 * given, and `enduser.id`/`user.id` pseudonymized (with a key) or dropped (without one).
 */
export function setupRedaction(input: RedactionConfig | undefined, hmacKeyFromEnv: string | undefined): RedactionSetup {
  const config: RedactionConfig = { ...parseRedactionConfig(input ?? {}) };
  if (config.hmac_key === undefined && hmacKeyFromEnv) config.hmac_key = hmacKeyFromEnv;
  if (config.hmac_key !== undefined) {
    config.pseudonymize_keys = [...new Set([...(config.pseudonymize_keys ?? []), ...DEFAULT_PSEUDONYMIZE_KEYS])];
  } else {
    if (config.action === 'pseudonymize') config.action = 'mask';
    config.pseudonymize_keys = undefined;
    config.block_keys = [...new Set([...(config.block_keys ?? []), ...DEFAULT_PSEUDONYMIZE_KEYS])];
  }
  const redactor = createRedactor(config);
  const detectors = (config.detectors ?? DETECTORS).join('+');
  const describe = `${config.mode ?? 'block'}(${detectors}; ${config.action ?? 'mask'}; pseudonyms ${config.hmac_key ? 'on' : 'off: enduser.id dropped'})`;
  return { redactor, describe };
}

/**
 * Most attribute values repeat (routes, methods, hosts, user agents, status codes): the outcome of
 * each (key, value) pair of a short string, number or boolean is remembered, so the detectors run
 * once per distinct pair. Keyed by attribute key, then value (no string built per lookup). Bounded:
 * MEMO_MAX pairs (and MEMO_MAX span/event names) in all; cleared when full.
 */
const MEMO_MAX = 4096;
const MEMO_MAX_VALUE = 256;
type Outcome = [string, unknown][];
interface Memo {
  attrs: Map<string, Map<unknown, Outcome>>;
  /** (key, value) pairs held in `attrs`. */
  pairs: number;
  strings: Map<string, string>;
}
const memos = new WeakMap<Redactor, Memo>();

function memoOf(redactor: Redactor): Memo {
  let memo = memos.get(redactor);
  if (!memo) {
    memo = { attrs: new Map(), pairs: 0, strings: new Map() };
    memos.set(redactor, memo);
  }
  return memo;
}

function outcomeOf(redactor: Redactor, memo: Memo, key: string, value: unknown): Outcome {
  const t = typeof value;
  const cacheable = (t === 'string' && (value as string).length <= MEMO_MAX_VALUE) || t === 'number' || t === 'boolean';
  if (!cacheable) return Object.entries(redactor.redactAttributes({ [key]: value }).attributes);
  let byValue = memo.attrs.get(key);
  let outcome = byValue?.get(value);
  if (outcome !== undefined) return outcome;
  outcome = Object.entries(redactor.redactAttributes({ [key]: value }).attributes);
  if (memo.pairs >= MEMO_MAX) {
    memo.attrs.clear();
    memo.pairs = 0;
    byValue = undefined;
  }
  if (byValue === undefined) {
    byValue = new Map();
    memo.attrs.set(key, byValue);
  }
  byValue.set(value, outcome);
  memo.pairs++;
  return outcome;
}

/** redactString, remembered for short strings (span names, event names repeat). */
function redactName(redactor: Redactor, memo: Memo, s: string): string {
  if (s.length > MEMO_MAX_VALUE) return redactor.redactString(s);
  let out = memo.strings.get(s);
  if (out === undefined) {
    out = redactor.redactString(s);
    if (memo.strings.size >= MEMO_MAX) memo.strings.clear();
    memo.strings.set(s, out);
  }
  return out;
}

function redactAttrs(redactor: Redactor, memo: Memo, attrs: Attributes | undefined): Attributes | undefined {
  if (!attrs) return attrs;
  let out: Record<string, unknown> | undefined;
  const keys = Object.keys(attrs);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = attrs[key];
    const outcome = outcomeOf(redactor, memo, key, value);
    const same = outcome.length === 1 && outcome[0][0] === key && outcome[0][1] === value;
    if (same && out === undefined) continue;
    if (out === undefined) {
      out = {};
      for (let k = 0; k < i; k++) out[keys[k]] = attrs[keys[k]];
    }
    for (const [k, v] of outcome) out[k] = v;
  }
  return out === undefined ? attrs : (out as Attributes);
}

/** Redacted resources and scopes, by the original (they are few and shared by every item). */
const resources = new WeakMap<Redactor, WeakMap<Resource, Resource>>();
const scopes = new WeakMap<Redactor, WeakMap<InstrumentationScope, InstrumentationScope>>();

/**
 * The resource with its attributes through the key rules and the detectors (the same object when
 * nothing changed). Read at export, when the detectors' asynchronous attributes have settled.
 */
export function redactResource(redactor: Redactor, resource: Resource): Resource {
  let byResource = resources.get(redactor);
  if (!byResource) {
    byResource = new WeakMap();
    resources.set(redactor, byResource);
  }
  const known = byResource.get(resource);
  if (known) return known;
  if (resource.asyncAttributesPending) return resource; // not settled yet: decided at a later export
  const attributes = redactAttrs(redactor, memoOf(redactor), resource.attributes) ?? resource.attributes;
  const out =
    attributes === resource.attributes
      ? resource
      : resourceFromAttributes(attributes, resource.schemaUrl ? { schemaUrl: resource.schemaUrl } : undefined);
  byResource.set(resource, out);
  return out;
}

/** The instrumentation scope with its attributes redacted (the same object when nothing changed). */
export function redactScope(redactor: Redactor, scope: InstrumentationScope): InstrumentationScope {
  const attrs = (scope as { attributes?: Attributes }).attributes;
  if (!attrs) return scope;
  let byScope = scopes.get(redactor);
  if (!byScope) {
    byScope = new WeakMap();
    scopes.set(redactor, byScope);
  }
  let out = byScope.get(scope);
  if (!out) {
    const attributes = redactAttrs(redactor, memoOf(redactor), attrs);
    out = attributes === attrs ? scope : ({ ...scope, attributes } as InstrumentationScope);
    byScope.set(scope, out);
  }
  return out;
}

/**
 * A redacted copy of a span: a plain object of the ReadableSpan fields (not an `Object.create` view:
 * descriptor-defined properties over a prototype make every exporter's field reads slow).
 */
export function redactSpan(redactor: Redactor, span: ReadableSpan): ReadableSpan {
  const memo = memoOf(redactor);
  let changed = false;
  const name = redactName(redactor, memo, span.name);
  if (name !== span.name) changed = true;
  const attributes = redactAttrs(redactor, memo, span.attributes) ?? span.attributes;
  if (attributes !== span.attributes) changed = true;
  let events = span.events;
  if (events.length > 0) {
    let eventsChanged = false;
    const mapped = events.map((e): TimedEvent => {
      const a = redactAttrs(redactor, memo, e.attributes);
      const n = redactName(redactor, memo, e.name);
      if (a === e.attributes && n === e.name) return e;
      eventsChanged = true;
      return { ...e, name: n, attributes: a };
    });
    if (eventsChanged) {
      events = mapped;
      changed = true;
    }
  }
  let links = span.links;
  if (links.length > 0) {
    let linksChanged = false;
    const mapped = links.map((l) => {
      const a = redactAttrs(redactor, memo, l.attributes);
      if (a === l.attributes) return l;
      linksChanged = true;
      return { ...l, attributes: a };
    });
    if (linksChanged) {
      links = mapped;
      changed = true;
    }
  }
  let status = span.status;
  if (status.message) {
    const message = redactor.redactString(status.message);
    if (message !== status.message) {
      status = { ...status, message };
      changed = true;
    }
  }
  const resource = redactResource(redactor, span.resource);
  const instrumentationScope = redactScope(redactor, span.instrumentationScope);
  if (resource !== span.resource || instrumentationScope !== span.instrumentationScope) changed = true;
  if (!changed) return span;
  const ctx = span.spanContext();
  return {
    name,
    kind: span.kind,
    spanContext: () => ctx,
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: span.endTime,
    status,
    attributes,
    links,
    events,
    duration: span.duration,
    ended: span.ended,
    resource,
    instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** A redacted view of a log record (application log or business event). */
export function redactLogRecord(redactor: Redactor, record: ReadableLogRecord): ReadableLogRecord {
  const attributes = redactAttrs(redactor, memoOf(redactor), record.attributes);
  const body = redactor.redactValue(record.body) as AnyValue | undefined;
  const resource = redactResource(redactor, record.resource);
  const scope = redactScope(redactor, record.instrumentationScope);
  if (
    attributes === record.attributes &&
    body === record.body &&
    resource === record.resource &&
    scope === record.instrumentationScope
  )
    return record;
  const props: PropertyDescriptorMap = {};
  if (resource !== record.resource) props.resource = { value: resource, enumerable: true };
  if (scope !== record.instrumentationScope) props.instrumentationScope = { value: scope, enumerable: true };
  if (attributes !== record.attributes) props.attributes = { value: attributes, enumerable: true };
  if (body !== record.body) props.body = { value: body, enumerable: true };
  return Object.create(record, props) as ReadableLogRecord;
}

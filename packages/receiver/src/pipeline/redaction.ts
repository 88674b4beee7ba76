/**
 * Processor that applies @sonde/redact's rules to telemetry from services that are not instrumented
 * with Sonde (configured by the `redaction:` section). On every attribute set (resource, scope,
 * span, span event and link, log record, metric data point and exemplar) keys are kept, dropped or
 * pseudonymized, and string values go through the detectors (URL attributes such as url.full,
 * http.url and http.target through the URL rules). Log bodies and span status messages are
 * redacted as text; span and event names are not (they are low-cardinality route and event names).
 *
 * Maps nested in a value (log bodies, kvlist attributes) follow the block list in both modes: allow
 * mode picks the top-level attribute keys only, so it does not empty structured log bodies.
 * A batch that changes is marked `modified`, and each change is recorded in the batch's patch as an
 * edit of the received bytes (an attribute removed or written anew, a log record or span written anew
 * when its body or status message changed), so that the stores and exporters get the redacted request
 * by copying the received bytes around the edits (otlp/protobuf/patch.ts) instead of encoding it all
 * again. Redactions are counted in sonde_receiver_redactions_total{signal,reason}.
 */
import { createRedactor, DETECTORS, pseudonymKey, type RedactionConfig, type Redactor } from '@sonde/redact';
import type { Counter, Registry } from 'prom-client';
import { registerMetrics } from '../metrics/define';
import { type AnyValue, type KeyValue, KeyValueList, type Signal, type SignalData } from '../model';
import { writeLogRecord } from '../otlp/protobuf/encode-logs';
import { writeKeyValue, writeSpan } from '../otlp/protobuf/encode-traces';
import type { RawPatch } from '../otlp/protobuf/patch';
import type { ProtoWriter } from '../otlp/protobuf/writer';
import { visit } from './attribute-limits';
import { REDACTION_METRICS } from './metrics';
import type { Batch, Processor } from './pipeline';

/** Reasons counted from the redactor's own stats: one per detector, @sonde/redact's list. */
const DETECTOR_REASONS = DETECTORS;

/** Integers from 10^12 up may be card numbers (up to 19 digits). */
const MIN_CARD_INT = 1_000_000_000_000n;
const MAX_CARD_INT = 10_000_000_000_000_000_000n;

interface Tally {
  key_dropped: number;
  pseudonymized: number;
  changed: boolean;
  /** The batch's patch, while every change so far is in it (undefined once one cannot be: an item without `at`). */
  patch: RawPatch | undefined;
}

/** An item's field offset for a patch edit (-1 when the decoder did not say: nested, or not from protobuf). */
const offsetOf = (item: { at?: number }): number => item.at ?? -1;

/** One redactor and counter shared by the three signals' processors. */
export class Redaction {
  readonly redactor: Redactor;
  /** Decides nested keys: the same rules in block mode. */
  private readonly nested: Redactor;
  private readonly counter: Counter<'signal' | 'reason'>;

  constructor(config: RedactionConfig, registry: Registry) {
    this.redactor = createRedactor(config);
    this.nested = config.mode === 'allow' ? createRedactor({ ...config, mode: 'block' }) : this.redactor;
    this.counter = registerMetrics(registry, REDACTION_METRICS).redactions;
  }

  processor<S extends Signal>(): Processor<S> {
    return {
      name: 'redaction',
      patchesRaw: true,
      readsEveryAttribute: true,
      process: (batch: Batch<S>) => this.process(batch),
    };
  }

  process<S extends Signal>(batch: Batch<S>): void {
    const stats = this.redactor.stats;
    const before = DETECTOR_REASONS.map((r) => stats[r] ?? 0);
    const tally: Tally = { key_dropped: 0, pseudonymized: 0, changed: false, patch: batch.context.patch };
    visit(batch.signal, batch.data, (attrs) => this.attributes(attrs, false, tally));
    if (batch.signal === 'logs') this.logBodies(batch.data as SignalData['logs'], tally);
    else if (batch.signal === 'traces') this.statusMessages(batch.data as SignalData['traces'], tally);
    if (!tally.changed) return;
    batch.context.modified = true;
    batch.context.patch = tally.patch;
    const signal = batch.signal;
    if (tally.key_dropped > 0) this.counter.inc({ signal, reason: 'key_dropped' }, tally.key_dropped);
    if (tally.pseudonymized > 0) this.counter.inc({ signal, reason: 'pseudonymized' }, tally.pseudonymized);
    DETECTOR_REASONS.forEach((reason, i) => {
      const n = (stats[reason] ?? 0) - before[i];
      if (n > 0) this.counter.inc({ signal, reason }, n);
    });
  }

  /**
   * Applies key rules and detectors to a KeyValue list in place; a change to a list's own attribute
   * (not one nested in a value) is recorded in the patch.
   */
  private attributes(attrs: KeyValue[], nested: boolean, tally: Tally): void {
    const rules = nested ? this.nested : this.redactor;
    let w = 0;
    for (let i = 0; i < attrs.length; i++) {
      const kv = attrs[i];
      const action = rules.keyAction(kv.key);
      if (action === 'drop') {
        tally.key_dropped++;
        tally.changed = true;
        if (!nested) this.edit(tally, kv, null);
        continue;
      }
      if (action === 'pseudonymize') {
        kv.key = pseudonymKey(kv.key);
        kv.value = this.pseudonymize(kv.value);
        tally.pseudonymized++;
        tally.changed = true;
        if (!nested) this.edit(tally, kv, writeKeyValue);
      } else {
        const value = kv.value;
        if (typeof value !== 'object' || value instanceof Uint8Array) {
          const v = this.value(value, kv.key, tally);
          if (v !== value) {
            kv.value = v;
            tally.changed = true;
            if (!nested) this.edit(tally, kv, writeKeyValue);
          }
        } else {
          // An array or a map changes in place: whether this attribute changed, apart from earlier ones.
          const before = tally.changed;
          tally.changed = false;
          this.value(value, kv.key, tally);
          if (tally.changed && !nested) this.edit(tally, kv, writeKeyValue);
          tally.changed ||= before;
        }
      }
      // Written back only behind a dropped key: a store into the array costs a write barrier per attribute.
      if (w !== i) attrs[w] = kv;
      w++;
    }
    if (w !== attrs.length) attrs.length = w;
  }

  /** Records an item's removal (`write` null) or its writing anew in the patch, or gives the patch up. */
  private edit<T extends { at?: number }>(
    tally: Tally,
    item: T,
    write: ((w: ProtoWriter, item: T) => void) | null,
  ): void {
    const patch = tally.patch;
    if (!patch) return;
    const at = offsetOf(item);
    if (at < 0) tally.patch = undefined;
    else if (write) patch.replace(at, (w) => write(w, item));
    else patch.remove(at);
  }

  /** A value through the detectors; the same value when nothing matched (arrays and maps change in place). */
  private value(v: AnyValue, key: string, tally: Tally): AnyValue {
    if (typeof v === 'string') return this.redactor.redactString(v, key);
    if (typeof v === 'bigint') {
      if (v < MIN_CARD_INT || v >= MAX_CARD_INT) return v;
      const s = v.toString();
      const r = this.redactor.redactString(s);
      return r === s ? v : r;
    }
    if (typeof v === 'number') {
      if (v < 1e12 || !Number.isSafeInteger(v)) return v;
      const s = String(v);
      const r = this.redactor.redactString(s);
      return r === s ? v : r;
    }
    if (typeof v !== 'object') return v; // a boolean, or no value
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const r = this.value(v[i], key, tally);
        if (r !== v[i]) {
          v[i] = r;
          tally.changed = true;
        }
      }
      return v;
    }
    if (v instanceof KeyValueList) this.attributes(v.values, true, tally);
    return v;
  }

  private pseudonymize(v: AnyValue): AnyValue {
    if (v === undefined) return v;
    if (Array.isArray(v)) return v.map((e) => this.pseudonymize(e));
    if (v instanceof KeyValueList) {
      for (const kv of v.values) kv.value = this.pseudonymize(kv.value);
      return v;
    }
    if (v instanceof Uint8Array) return this.redactor.pseudonym(Buffer.from(v).toString('hex'));
    return this.redactor.pseudonym(String(v));
  }

  private logBodies(data: SignalData['logs'], tally: Tally): void {
    for (const rl of data) {
      for (const sl of rl.scopeLogs) {
        for (const lr of sl.logRecords) {
          const body = lr.body;
          if (body === undefined || typeof body === 'boolean') continue;
          const before = tally.changed;
          tally.changed = false;
          const r = this.value(body, '', tally);
          if (r !== body) {
            lr.body = r;
            tally.changed = true;
          }
          if (tally.changed) this.edit(tally, lr, writeLogRecord);
          tally.changed ||= before;
        }
      }
    }
  }

  private statusMessages(data: SignalData['traces'], tally: Tally): void {
    for (const rs of data) {
      for (const ss of rs.scopeSpans) {
        for (const span of ss.spans) {
          const m = span.status.message;
          if (m === '') continue;
          const r = this.redactor.redactString(m);
          if (r !== m) {
            span.status.message = r;
            tally.changed = true;
            this.edit(tally, span, writeSpan);
          }
        }
      }
    }
  }
}

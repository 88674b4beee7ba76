/**
 * Processor that enforces the attribute limits of the OpenTelemetry specification ("Attribute
 * limits") on everything the receiver accepts: at most `max_attributes_per_item` attributes per
 * span, event, link, data point, log record, resource and scope (extra ones dropped and added to
 * dropped_attributes_count), and string values at most `max_attribute_value_length` long (also each
 * string in an array value).
 */
import type { KeyValue, Signal, SignalData } from '../model';
import type { SelfMetrics } from '../self-metrics';
import type { Batch, Processor } from './pipeline';

export interface AttributeLimits {
  maxAttributesPerItem: number;
  /** 0 means no limit. */
  maxAttributeValueLength: number;
}

interface Tally {
  dropped: number;
  truncated: number;
}

/** Something that counts the attributes it lost. */
interface CountsDropped {
  droppedAttributesCount: number;
}

export class AttributeLimitsProcessor<S extends Signal> implements Processor<S> {
  readonly name = 'attribute_limits';

  constructor(
    private readonly limits: AttributeLimits,
    private readonly metrics: SelfMetrics,
  ) {}

  process(batch: Batch<S>): void {
    const stats = batch.decodeStats;
    const { maxAttributesPerItem, maxAttributeValueLength } = this.limits;
    if (
      stats &&
      stats.mostAttributes <= maxAttributesPerItem &&
      (maxAttributeValueLength === 0 || stats.longestString <= maxAttributeValueLength)
    ) {
      return; // the decoder saw nothing over the limits
    }
    const tally: Tally = { dropped: 0, truncated: 0 };
    visit(batch.signal, batch.data, (attrs, owner) => this.apply(attrs, owner, tally));
    if (tally.dropped === 0 && tally.truncated === 0) return;
    batch.context.modified = true;
    const notes: string[] = [];
    if (tally.dropped > 0) {
      this.metrics.limitHits.inc({ signal: batch.signal, limit: 'max_attributes_per_item' }, tally.dropped);
      notes.push(`${tally.dropped} attributes dropped over the limit of ${this.limits.maxAttributesPerItem} per item`);
    }
    if (tally.truncated > 0) {
      this.metrics.limitHits.inc({ signal: batch.signal, limit: 'max_attribute_value_length' }, tally.truncated);
      notes.push(`${tally.truncated} attribute values truncated to ${this.limits.maxAttributeValueLength} characters`);
    }
    batch.warnings.push(notes.join('; '));
  }

  private apply(attrs: KeyValue[], owner: CountsDropped | undefined, tally: Tally): void {
    const max = this.limits.maxAttributesPerItem;
    if (attrs.length > max) {
      const excess = attrs.length - max;
      attrs.length = max;
      if (owner) owner.droppedAttributesCount += excess;
      tally.dropped += excess;
    }
    const maxLength = this.limits.maxAttributeValueLength;
    if (maxLength === 0) return;
    for (const kv of attrs) {
      const v = kv.value;
      if (typeof v === 'string') {
        if (v.length > maxLength) {
          kv.value = v.slice(0, maxLength);
          tally.truncated++;
        }
      } else if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const e = v[i];
          if (typeof e === 'string' && e.length > maxLength) {
            v[i] = e.slice(0, maxLength);
            tally.truncated++;
          }
        }
      }
    }
  }
}

type AttributeVisitor = (attributes: KeyValue[], owner: CountsDropped | undefined) => void;

/**
 * Calls `fn` on every attribute set of a batch: resources, scopes, items, span events and links,
 * metric data points and exemplars. `owner` is what counts dropped attributes (OTLP data points and
 * exemplars have no such count, so it is undefined for them).
 */
export function visit<S extends Signal>(signal: S, data: SignalData[S], fn: AttributeVisitor): void {
  const holder = (h: { attributes: KeyValue[] } & CountsDropped) => fn(h.attributes, h);
  if (signal === 'traces') {
    for (const rs of data as SignalData['traces']) {
      holder(rs.resource);
      for (const ss of rs.scopeSpans) {
        holder(ss.scope);
        for (const span of ss.spans) {
          holder(span);
          for (const e of span.events) holder(e);
          for (const l of span.links) holder(l);
        }
      }
    }
  } else if (signal === 'logs') {
    for (const rl of data as SignalData['logs']) {
      holder(rl.resource);
      for (const sl of rl.scopeLogs) {
        holder(sl.scope);
        for (const lr of sl.logRecords) holder(lr);
      }
    }
  } else {
    for (const rm of data as SignalData['metrics']) {
      holder(rm.resource);
      for (const sm of rm.scopeMetrics) {
        holder(sm.scope);
        for (const m of sm.metrics) {
          for (const p of m.data.dataPoints) {
            fn(p.attributes, undefined);
            if ('exemplars' in p) for (const x of p.exemplars) fn(x.filteredAttributes, undefined);
          }
        }
      }
    }
  }
}

/**
 * Consent in front of every signal, in the SDK's own extension points:
 * - traces are `diagnostics`: the sampler does not even record a span where it is withdrawn, and the
 *   span processor drops the spans of a trace whose scope withdrew it after they started (the server
 *   span of an opted-out request);
 * - application logs are `diagnostics`, events carry their own category, consent choice records are
 *   sent whatever the consent (they are the consent record itself);
 * - metrics are `performance`, filtered at export (a per-request withdrawal is handled before
 *   aggregation, by metrics-consent.ts).
 */
import { type Attributes, type Context, context, type Link, type SpanKind } from '@opentelemetry/api';
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import {
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import {
  type Category,
  CONSENT_CATEGORY_ATTRIBUTE,
  CONSENT_CHOICE_EVENT,
  consentState,
  isCategory,
  isTraceWithdrawn,
} from './consent';
import { SELF_SCOPE } from './self';

/** Spans are `diagnostics`: where it is withdrawn, spans are not even recorded. */
export class ConsentSampler implements Sampler {
  constructor(private readonly inner: Sampler) {}
  shouldSample(
    ctx: Context,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    if (!consentState.isGranted('diagnostics', ctx)) return { decision: SamplingDecision.NOT_RECORD };
    return this.inner.shouldSample(ctx, traceId, name, kind, attributes, links);
  }
  toString(): string {
    return `SondeConsent{${this.inner.toString()}}`;
  }
}

/** Drops spans whose scope withdrew diagnostics after they started (the server span of an opted-out request). */
export class ConsentSpanProcessor implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor) {}
  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }
  onEnd(span: ReadableSpan): void {
    if (!consentState.get('diagnostics') || isTraceWithdrawn(span.spanContext().traceId)) return;
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

function categoryOfLog(eventName: string | undefined, attributes: Attributes | undefined): Category {
  if (!eventName) return 'diagnostics';
  const c = attributes?.[CONSENT_CATEGORY_ATTRIBUTE];
  return isCategory(c) ? c : 'product';
}

/** Application logs are `diagnostics`; events carry their own category. */
export class ConsentLogProcessor implements LogRecordProcessor {
  constructor(private readonly inner: LogRecordProcessor) {}
  onEmit(record: ReadWriteLogRecord, ctx?: Context): void {
    // Consent choice records are the consent record itself (no personal data): sent whatever the consent.
    if (
      record.eventName !== CONSENT_CHOICE_EVENT &&
      !consentState.isGranted(categoryOfLog(record.eventName, record.attributes), ctx ?? context.active())
    )
      return;
    this.inner.onEmit(record, ctx);
  }
  enabled(options: { context: Context; eventName?: string }): boolean {
    if (!options.eventName) return consentState.isGranted('diagnostics', options.context);
    return true; // the category of an event is in its attributes: decided in onEmit (track() checks first)
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/**
 * Metrics are `performance`; Sonde's own anonymous metrics (drops, buffer) are sent while any category
 * is granted. With none granted (DO_NOT_TRACK, `consent: none`) nothing is sent, not even target_info.
 */
export function filterMetrics(rm: ResourceMetrics): ResourceMetrics {
  if (consentState.get('performance')) return rm;
  const silent = !consentState.get('diagnostics') && !consentState.get('product');
  return { ...rm, scopeMetrics: silent ? [] : rm.scopeMetrics.filter((sm) => sm.scope.name === SELF_SCOPE) };
}

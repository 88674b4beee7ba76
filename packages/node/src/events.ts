/**
 * Business events: `track(name, attributes, { category })` emits one OpenTelemetry log record whose
 * `eventName` is the name (OTLP `LogRecord.event_name`), in the active context (so it carries the
 * trace and span ids of the request it happened in), with the attribute `sonde.consent.category`.
 * The receiver counts records that have an event name into `sonde_events_total{service, event_name,
 * category}`; no separate counter is emitted here. When the category is not granted in the current
 * context, nothing is built or emitted.
 */
import { type Attributes, context, type Logger, logs, SeverityNumber } from '@opentelemetry/api';
import { type Category, CONSENT_CATEGORY_ATTRIBUTE, consentState, isCategory } from './consent';

export { CONSENT_CATEGORY_ATTRIBUTE };
export const EVENTS_SCOPE = '@sonde/node/events';

export interface TrackOptions {
  /** Consent category of the event; default `product`. */
  category?: Category;
}

let logger: Logger | undefined;
let active = false;

/** Called by start()/shutdown(): events go to the global logger provider once the SDK runs. */
export function setEventsActive(on: boolean, version?: string): void {
  active = on;
  logger = on ? logs.getLogger(EVENTS_SCOPE, version) : undefined;
}

/** Emits one business event. Returns whether it was emitted (false when consent or the SDK is off). */
export function track(name: string, attributes?: Attributes, options?: TrackOptions): boolean {
  if (!active || !logger) return false;
  if (typeof name !== 'string' || name === '') throw new TypeError('track(name): name must be a non-empty string');
  const category = options?.category ?? 'product';
  if (!isCategory(category)) throw new TypeError(`track(): unknown consent category ${String(category)}`);
  const ctx = context.active();
  if (!consentState.isGranted(category, ctx)) return false;
  logger.emit({
    eventName: name,
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    attributes: { ...attributes, [CONSENT_CATEGORY_ATTRIBUTE]: category },
    context: ctx,
  });
  return true;
}

/**
 * Start-up consent choices, counted anonymously (CONSENT-WIRE: `sonde.consent.choice` log records).
 * When DO_NOT_TRACK or the start-up configuration (SONDE_CONSENT, the `consent` option) withdraws a
 * category, the process sends one record per withdrawn category at start, and nothing else about
 * itself: no subject (the record counts as one person of its own), `sonde.consent.source`
 * `do_not_track` or `startup`, and a resource of `service.name` only (no host, process, instance
 * attribute). The receiver counts people who opted out from them; without these records, start-up
 * opt-outs would be invisible in the people-based shares. `countOptOut: false` or
 * SONDE_COUNT_OPT_OUT=false sends none (then a DO_NOT_TRACK process sends nothing at all).
 *
 * The records go through their own LoggerProvider, around every consent gate (they are the consent
 * record itself and hold no personal data), to the same shipper as the rest (transmission gate,
 * buffer, retries). Not through the SDK's logger, as consent.record() is: the SDK's provider carries
 * the detected resource (process, OS, runtime, SDK), which a process that asked for silence must not
 * send; these records carry a resource of service.name only (test/silence.test.ts checks every byte).
 */
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordExporter, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import {
  CATEGORIES,
  type Category,
  CONSENT_CATEGORY_ATTRIBUTE,
  CONSENT_CHOICE_ATTRIBUTE,
  CONSENT_CHOICE_EVENT,
  CONSENT_SOURCE_ATTRIBUTE,
  type ConsentMap,
  DEFAULT_CONSENT,
  parseConsentList,
} from './consent';
import { SELF_SCOPE } from './self';

export type StartupSource = 'startup' | 'do_not_track';

export interface StartupChoice {
  category: Category;
  source: StartupSource;
}

/**
 * The categories withdrawn at start and why: DO_NOT_TRACK for every category it turned off (the
 * non-essential ones); else `startup` for each category SONDE_CONSENT withdraws (see
 * deniedBySondeConsent) or the `consent` option sets to false. Defaults are not choices: `product`
 * off because nothing granted it is not counted.
 */
export function startupChoices(
  env: NodeJS.ProcessEnv,
  option: ConsentMap | undefined,
  resolved: { granted: Record<Category, boolean>; doNotTrack: boolean; essential: Category[] },
): StartupChoice[] {
  const out: StartupChoice[] = [];
  for (const category of CATEGORIES) {
    if (resolved.granted[category]) continue;
    if (resolved.doNotTrack && !resolved.essential.includes(category)) {
      out.push({ category, source: 'do_not_track' });
      continue;
    }
    const byOption = option?.[category] === false;
    const byEnv = option?.[category] === undefined && deniedBySondeConsent(env.SONDE_CONSENT, category);
    if (byOption || byEnv) out.push({ category, source: 'startup' });
  }
  return out;
}

/**
 * Whether SONDE_CONSENT withdraws `category` by choice: `none`, an explicit `category=false`, or a
 * list that leaves out a category that is on by default. A list that leaves out `product` (off by
 * default) states no choice about it.
 */
function deniedBySondeConsent(value: string | undefined, category: Category): boolean {
  if (value === undefined) return false;
  const v = value.trim().toLowerCase();
  if (v === 'none' || v === '') return true;
  if (parseConsentList(v).granted[category]) return false;
  // Explicit form: withdrawn when named (`performance=false`); the categories not named keep their defaults.
  if (v.includes('=')) return v.split(',').some((part) => part.split('=')[0].trim() === category);
  return DEFAULT_CONSENT[category];
}

/** service.name as the SDK will set it, without any other resource attribute. */
export function serviceNameOf(
  env: NodeJS.ProcessEnv,
  option: string | undefined,
  attrs?: Record<string, unknown>,
): string {
  if (option) return option;
  if (env.OTEL_SERVICE_NAME?.trim()) return env.OTEL_SERVICE_NAME.trim();
  const fromAttrs = attrs?.['service.name'];
  if (typeof fromAttrs === 'string' && fromAttrs) return fromAttrs;
  for (const pair of (env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === 'service.name') {
      try {
        return decodeURIComponent(pair.slice(eq + 1).trim());
      } catch {
        return pair.slice(eq + 1).trim();
      }
    }
  }
  return 'unknown_service:node';
}

/** Sends one anonymous record per choice through `exporter`; returns the provider (to flush and shut down). */
export function sendStartupChoices(
  choices: StartupChoice[],
  serviceName: string,
  exporter: LogRecordExporter,
  version: string,
): LoggerProvider | undefined {
  if (choices.length === 0) return undefined;
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger(SELF_SCOPE, version);
  for (const { category, source } of choices) {
    logger.emit({
      eventName: CONSENT_CHOICE_EVENT,
      severityNumber: SeverityNumber.INFO,
      severityText: 'INFO',
      attributes: {
        [CONSENT_CATEGORY_ATTRIBUTE]: category,
        [CONSENT_CHOICE_ATTRIBUTE]: 'denied',
        [CONSENT_SOURCE_ATTRIBUTE]: source,
      },
    });
  }
  return provider;
}

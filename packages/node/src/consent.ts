/**
 * Consent per category of telemetry. Three categories: `diagnostics` (traces, app logs, errors),
 * `performance` (metrics, runtime metrics) and `product` (business events sent with `track()`).
 *
 * The effective consent for a category, at a given point, is the AND of:
 * - the process-wide setting (start-up defaults from options and `SONDE_CONSENT`, `DO_NOT_TRACK`;
 *   changed at run time with `consent.set()`),
 * - the scope of the current OpenTelemetry context (`withConsent()` / `consentContext()`, e.g. one end
 *   user's choice for one request),
 * - the `sonde.consent` baggage entry that a Sonde-instrumented caller propagated (so that an end
 *   user's opt-out follows the request into the services it calls). Baggage can only withdraw consent,
 *   never grant it.
 *
 * Scopes and process-wide changes are not counted: a request is not a person. A person's choice is
 * recorded once, when it is made or changed, with `consent.record(choices, { subject })`: one
 * consent choice record (an OTLP log record `sonde.consent.choice`) per category, the subject a keyed
 * HMAC pseudonym computed here, so the receiver can estimate distinct people per category and choice
 * without ever holding an id (see CONSENT-WIRE in the README). Choice records are sent whatever the
 * consent: they are the consent record itself and hold no personal data.
 */
import {
  type Context,
  context,
  createContextKey,
  type Logger,
  propagation,
  ROOT_CONTEXT,
  SeverityNumber,
  trace,
} from '@opentelemetry/api';
import { createRedactor } from '@sonde/redact';

export const CATEGORIES = ['diagnostics', 'performance', 'product'] as const;
export type Category = (typeof CATEGORIES)[number];
export type ConsentMap = Partial<Record<Category, boolean>>;

const SCOPE_KEY = createContextKey('sonde.consent');
/** Baggage entry carrying withdrawn categories across services: `diagnostics=0,product=0` (only zeros count). */
export const CONSENT_BAGGAGE = 'sonde.consent';

/** The record attribute naming a category (events written by track(), consent choice records). */
export const CONSENT_CATEGORY_ATTRIBUTE = 'sonde.consent.category';

export function isCategory(value: unknown): value is Category {
  return typeof value === 'string' && (CATEGORIES as readonly string[]).includes(value);
}

/**
 * The start-up consent when nothing says otherwise: `diagnostics` and `performance` on (operating the
 * service: errors, latency), `product` off until granted (SONDE_CONSENT, the `consent` option or
 * `consent.set`): usage analytics are not needed to run the service.
 */
export const DEFAULT_CONSENT: Readonly<Record<Category, boolean>> = Object.freeze({
  diagnostics: true,
  performance: true,
  product: false,
});
/** The event name of a consent choice record (CONSENT-WIRE). */
export const CONSENT_CHOICE_EVENT = 'sonde.consent.choice';
export const CONSENT_CHOICE_ATTRIBUTE = 'sonde.consent.choice';
export const CONSENT_SUBJECT_ATTRIBUTE = 'sonde.consent.subject';
export const CONSENT_SOURCE_ATTRIBUTE = 'sonde.consent.source';
export const CONSENT_SCOPE = '@sonde/node/consent';
/** A person's choice for one category: `default` = the person made no choice (yet). */
export type Choice = 'granted' | 'denied' | 'default';
export const CHOICES: readonly Choice[] = ['granted', 'denied', 'default'];
/** Where a choice comes from: the person (`user`), start-up configuration, or a browser/OS signal. */
export type ChoiceSource = 'user' | 'startup' | 'do_not_track' | 'global_privacy_control';
const SOURCES: readonly ChoiceSource[] = ['user', 'startup', 'do_not_track', 'global_privacy_control'];
/** Choices per category: `true`/`'granted'`, `false`/`'denied'`, or `'default'` (no choice made). */
export type ChoiceMap = Partial<Record<Category, boolean | Choice>>;

export interface RecordOptions {
  /**
   * The application's own id of the person (a user id, an account id, a device id): pseudonymised
   * here with the keyed HMAC (`SONDE_HMAC_KEY` or `redaction.hmac_key`) before it leaves the
   * process. Absent: the record counts as one anonymous person of its own.
   */
  subject?: string;
  /** Default `user`. */
  source?: ChoiceSource;
}

/** Records made before start() are held (at most this many) and sent once the SDK runs. */
const MAX_PENDING_CHOICES = 1000;

interface PendingChoice {
  category: Category;
  choice: Choice;
  subject: string | undefined;
  source: ChoiceSource;
}

/** The SDK's side of consent choice records: where they go and how subjects are pseudonymised. */
export interface ChoiceRecorder {
  logger: Logger;
  /** Keyed HMAC pseudonym of a subject id; undefined without a key (subjects are then left out). */
  pseudonym?: (id: string) => string;
  /** Called once when a subject is left out for want of a key. */
  warnNoKey?: () => void;
}

/** The pseudonym function of an HMAC key (the same HMAC as `enduser.pseudo.id`): undefined without a usable key. */
export function pseudonymiser(key: string | undefined): ((id: string) => string) | undefined {
  if (!key) return undefined;
  const redactor = createRedactor({ hmac_key: key });
  return (id) => redactor.pseudonym(id);
}

type Listener = (category: Category, granted: boolean) => void;

class ConsentState {
  private readonly granted: Record<Category, boolean> = { ...DEFAULT_CONSENT };
  private recorder: ChoiceRecorder | undefined;
  private readonly pending: PendingChoice[] = [];
  private warnedNoKey = false;
  private readonly listeners: Listener[] = [];

  /** Start-up defaults. */
  init(initial: Record<Category, boolean>): void {
    Object.assign(this.granted, initial);
  }

  /** Attached by start() once the logger provider exists (undefined at shutdown); held records are sent then. */
  attachRecorder(recorder: ChoiceRecorder | undefined): void {
    this.recorder = recorder;
    if (recorder) for (const p of this.pending.splice(0)) this.emitChoice(p);
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** One consent choice record per category given (see `consent.record`). */
  record(choices: ChoiceMap, options: RecordOptions = {}): void {
    if (choices === null || typeof choices !== 'object')
      throw new TypeError('consent.record(choices): choices must be an object such as { product: false }');
    const subject = options.subject;
    if (subject !== undefined && (typeof subject !== 'string' || subject === ''))
      throw new TypeError('consent.record(): subject must be a non-empty string (or left out for an anonymous person)');
    const source = options.source ?? 'user';
    if (!SOURCES.includes(source))
      throw new TypeError(`consent.record(): unknown source ${String(source)}; use one of ${SOURCES.join(', ')}`);
    const list: PendingChoice[] = [];
    for (const [category, value] of Object.entries(choices)) {
      if (value === undefined) continue;
      if (!isCategory(category))
        throw new TypeError(`unknown consent category ${String(category)}; use one of ${CATEGORIES.join(', ')}`);
      const choice = value === true ? 'granted' : value === false ? 'denied' : value;
      if (!CHOICES.includes(choice as Choice))
        throw new TypeError(
          `consent.record(): the choice for ${category} must be true, false, 'granted', 'denied' or 'default', not ${String(value)}`,
        );
      list.push({ category, choice: choice as Choice, subject, source });
    }
    for (const p of list) {
      if (this.recorder) this.emitChoice(p);
      else if (this.pending.length < MAX_PENDING_CHOICES) this.pending.push(p);
    }
  }

  private emitChoice(p: PendingChoice): void {
    const recorder = this.recorder;
    if (!recorder) return;
    const attributes: Record<string, string> = {
      'event.name': CONSENT_CHOICE_EVENT,
      [CONSENT_CATEGORY_ATTRIBUTE]: p.category,
      [CONSENT_CHOICE_ATTRIBUTE]: p.choice,
      [CONSENT_SOURCE_ATTRIBUTE]: p.source,
    };
    if (p.subject !== undefined) {
      if (recorder.pseudonym) attributes[CONSENT_SUBJECT_ATTRIBUTE] = recorder.pseudonym(p.subject);
      else if (!this.warnedNoKey) {
        this.warnedNoKey = true;
        recorder.warnNoKey?.();
      }
    }
    // In the root context: the record carries no trace or span id, nothing that ties it to a request.
    recorder.logger.emit({
      eventName: CONSENT_CHOICE_EVENT,
      severityNumber: SeverityNumber.INFO,
      severityText: 'INFO',
      attributes,
      context: ROOT_CONTEXT,
    });
  }

  /** Process-wide consent for one category (e.g. from the operator's or the single user's settings). */
  set(category: Category, granted: boolean): void {
    if (!isCategory(category))
      throw new TypeError(`unknown consent category ${String(category)}; use one of ${CATEGORIES.join(', ')}`);
    this.granted[category] = granted;
    for (const l of this.listeners) l(category, granted);
  }

  /** Process-wide consent of one category (ignores any request scope). */
  get(category: Category): boolean {
    return this.granted[category];
  }

  /** Effective consent in `ctx` (the active context by default). */
  isGranted(category: Category, ctx: Context = context.active()): boolean {
    if (!this.granted[category]) return false;
    const scope = ctx.getValue(SCOPE_KEY) as ConsentMap | undefined;
    if (scope && scope[category] === false) return false;
    const entry = propagation.getBaggage(ctx)?.getEntry(CONSENT_BAGGAGE);
    if (entry && withdrawnIn(entry.value, category)) return false;
    return true;
  }

  snapshot(): Record<Category, boolean> {
    return { ...this.granted };
  }
}

function withdrawnIn(value: string, category: Category): boolean {
  for (const part of value.split(/[,;]/)) {
    const [k, v] = part.split('=');
    if (k?.trim() === category && (v?.trim() === '0' || v?.trim() === 'false')) return true;
  }
  return false;
}

export const consentState = new ConsentState();

/**
 * Traces in which a scope withdrew `diagnostics` after spans had started (the request's server span
 * and middleware spans): this process exports none of their spans. Bounded: the oldest are forgotten.
 */
const withdrawnTraces = new Set<string>();
const MAX_WITHDRAWN_TRACES = 10000;

function withdrawTrace(traceId: string): void {
  if (withdrawnTraces.has(traceId)) return;
  if (withdrawnTraces.size >= MAX_WITHDRAWN_TRACES)
    withdrawnTraces.delete(withdrawnTraces.values().next().value as string);
  withdrawnTraces.add(traceId);
}

export function isTraceWithdrawn(traceId: string): boolean {
  return withdrawnTraces.size > 0 && withdrawnTraces.has(traceId);
}

/**
 * Traces in which a scope withdrew `performance`: measurements recorded in their context (e.g. the
 * HTTP server duration, recorded when the response ends, outside the middleware's scope) are not
 * recorded (see metrics-consent.ts). Bounded like withdrawnTraces.
 */
const performanceWithdrawnTraces = new Set<string>();

export function isPerformanceWithdrawnInTrace(traceId: string): boolean {
  return performanceWithdrawnTraces.size > 0 && performanceWithdrawnTraces.has(traceId);
}

function withdrawPerformance(traceId: string): void {
  if (performanceWithdrawnTraces.has(traceId)) return;
  if (performanceWithdrawnTraces.size >= MAX_WITHDRAWN_TRACES)
    performanceWithdrawnTraces.delete(performanceWithdrawnTraces.values().next().value as string);
  performanceWithdrawnTraces.add(traceId);
}

/** The public consent API. */
export const consent = {
  /**
   * Records one person's choice, once, when it is made or changed: one consent choice record per
   * category given (`{ product: false, performance: true }`, or `'default'` for "this person made no
   * choice"). The subject is pseudonymised with the keyed HMAC before it leaves the process; without
   * a key (`SONDE_HMAC_KEY`) it is left out (one warning) and the record counts as an anonymous
   * person. It does not change what this process sends: apply the choice with `withConsent` / the
   * middleware (per request) or `set` (process-wide).
   */
  record: (choices: ChoiceMap, options?: RecordOptions): void => consentState.record(choices, options),
  /** Process-wide: grant or withdraw one category at run time (not counted: see `record`). */
  set: (category: Category, granted: boolean): void => consentState.set(category, granted),
  /** Process-wide setting of a category. */
  get: (category: Category): boolean => consentState.get(category),
  /** Effective consent of a category in a context (default: the active one), scopes and baggage included. */
  isGranted: (category: Category, ctx?: Context): boolean => consentState.isGranted(category, ctx),
  /** The process-wide settings. */
  snapshot: (): Record<Category, boolean> => consentState.snapshot(),
};

/**
 * A context in which the given categories are granted or withdrawn (for one end user, one request).
 * Not counted (a request is not a person: see `consent.record`). Withdrawn categories are also put in the baggage, so that
 * services called from this context honour the choice. A scope can only narrow the process-wide
 * consent: `{ product: true }` does not grant what the process has withdrawn.
 */
export function consentContext(choice: ConsentMap, ctx: Context = context.active()): Context {
  if (choice.diagnostics === false) {
    const span = trace.getSpan(ctx);
    if (span) withdrawTrace(span.spanContext().traceId);
  }
  if (choice.performance === false) {
    const span = trace.getSpan(ctx);
    if (span) withdrawPerformance(span.spanContext().traceId);
  }
  const outer = ctx.getValue(SCOPE_KEY) as ConsentMap | undefined;
  const merged: ConsentMap = { ...outer };
  const withdrawn: string[] = [];
  for (const category of CATEGORIES) {
    const value = choice[category];
    if (value === undefined) continue;
    merged[category] = value;
  }
  for (const category of CATEGORIES) if (merged[category] === false) withdrawn.push(`${category}=0`);
  let next = ctx.setValue(SCOPE_KEY, merged);
  if (withdrawn.length > 0) {
    const baggage = propagation.getBaggage(next) ?? propagation.createBaggage();
    next = propagation.setBaggage(next, baggage.setEntry(CONSENT_BAGGAGE, { value: withdrawn.join(',') }));
  }
  return next;
}

/** Runs `fn` with the given consent choice (see `consentContext`). */
export function withConsent<T>(choice: ConsentMap, fn: () => T): T {
  return context.with(consentContext(choice), fn);
}

/**
 * Express/connect-style middleware: `app.use(consentMiddleware((req) => ({ product: req.get('x-consent-product') !== 'no' })))`.
 * The rest of the request runs in the consent scope. The server span of the request was started
 * before any middleware: if the scope withdraws `diagnostics`, that span is dropped too (see consent-processors.ts).
 */
export function consentMiddleware<Req>(
  choose: (req: Req) => ConsentMap | undefined,
): (req: Req, res: unknown, next: (err?: unknown) => void) => void {
  return (req, _res, next) => {
    const choice = choose(req);
    if (!choice) {
      next();
      return;
    }
    withConsent(choice, () => next());
  };
}

/**
 * Parses a consent list: `diagnostics,performance` grants exactly those; `all` / `none`; or explicit
 * `product=false`-style entries. Unknown names are reported, not ignored.
 */
export function parseConsentList(value: string): { granted: Record<Category, boolean>; errors: string[] } {
  const v = value.trim().toLowerCase();
  const errors: string[] = [];
  if (v === 'all' || v === '*') return { granted: { diagnostics: true, performance: true, product: true }, errors };
  const granted: Record<Category, boolean> = { diagnostics: false, performance: false, product: false };
  if (v === 'none' || v === '') return { granted, errors };
  const explicit = v.includes('=');
  if (explicit) Object.assign(granted, DEFAULT_CONSENT); // `product=true` grants product on top of the defaults
  for (const part of v.split(',')) {
    const [name, flag] = part.split('=').map((s) => s.trim());
    if (!name) continue;
    if (!isCategory(name)) {
      errors.push(`unknown consent category "${name}" (use ${CATEGORIES.join(', ')}, all or none)`);
      continue;
    }
    granted[name] = flag === undefined ? true : !['0', 'false', 'no', 'off'].includes(flag);
  }
  return { granted, errors };
}

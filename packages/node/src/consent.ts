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
 * Every decision applied (a process-wide change, or a scope opened with `withConsent`) increments the
 * counter `sonde.consent.decisions{category, granted}`: anonymous (no user id), and sent whatever the
 * consent (it holds no personal data, and without it the share of users who opted out would itself be
 * invisible).
 */
import { type Context, type Counter, context, createContextKey, propagation, trace } from '@opentelemetry/api';

export const CATEGORIES = ['diagnostics', 'performance', 'product'] as const;
export type Category = (typeof CATEGORIES)[number];
export type ConsentMap = Partial<Record<Category, boolean>>;

const SCOPE_KEY = createContextKey('sonde.consent');
/** Baggage entry carrying withdrawn categories across services: `diagnostics=0,product=0` (only zeros count). */
export const CONSENT_BAGGAGE = 'sonde.consent';

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

type Listener = (category: Category, granted: boolean) => void;

class ConsentState {
  private readonly granted: Record<Category, boolean> = { ...DEFAULT_CONSENT };
  private counter: Counter | undefined;
  private readonly pending: [Category, boolean][] = [];
  private readonly listeners: Listener[] = [];

  /** Start-up defaults: not counted as decisions (they are configuration, not a choice). */
  init(initial: Record<Category, boolean>): void {
    Object.assign(this.granted, initial);
  }

  /** The counter is created once the meter provider exists; decisions made before are replayed. */
  attachCounter(counter: Counter | undefined): void {
    this.counter = counter;
    if (counter) for (const [category, granted] of this.pending.splice(0)) this.count(category, granted);
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  count(category: Category, granted: boolean): void {
    if (this.counter) this.counter.add(1, { category, granted: granted ? 'true' : 'false' });
    else if (this.pending.length < 1000) this.pending.push([category, granted]);
  }

  /** Process-wide consent for one category (e.g. from the operator's or the single user's settings). */
  set(category: Category, granted: boolean): void {
    if (!isCategory(category))
      throw new TypeError(`unknown consent category ${String(category)}; use one of ${CATEGORIES.join(', ')}`);
    this.granted[category] = granted;
    this.count(category, granted);
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
  /** Process-wide: grant or withdraw one category at run time. Counted as one decision. */
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
 * Counts one decision per category given. Withdrawn categories are also put in the baggage, so that
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
    consentState.count(category, value);
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
 * before any middleware: if the scope withdraws `diagnostics`, that span is dropped too (see sdk.ts).
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

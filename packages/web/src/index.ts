/**
 * @sonde/web: one call starts the OpenTelemetry web SDK for a page (document load, fetch/XHR and
 * user-interaction spans with W3C trace context, errors, Core Web Vitals, sessions, product events),
 * with consent per category, redaction before export, and deferral on metered or offline networks.
 */
import {
  type Attributes,
  type Context,
  context,
  type Histogram,
  type Logger,
  logs,
  metrics,
  propagation,
  SeverityNumber,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { DocumentLoadInstrumentation } from '@opentelemetry/instrumentation-document-load';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { UserInteractionInstrumentation } from '@opentelemetry/instrumentation-user-interaction';
import { XMLHttpRequestInstrumentation } from '@opentelemetry/instrumentation-xml-http-request';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  type Sampler,
  SamplingDecision,
  type Span,
  StackContextManager,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { onCLS, onINP, onLCP, onTTFB } from 'web-vitals';
import {
  browserOptOut,
  CATEGORIES,
  type Category,
  CONSENT_CATEGORY_ATTRIBUTE,
  type ConsentMap,
  ConsentState,
  isCategory,
  pseudonymOf,
} from './consent';
import { LogExporterImpl, MetricExporterImpl, SpanExporterImpl } from './exporters';
import { createWebRedaction, type RedactionConfig, type WebRedaction } from './redaction';
import { defaultRoute } from './route';
import { browserSegments } from './segments';
import { Sessions } from './session';
import { type DeferPolicy, Transport, type TransportStats } from './transport';

export type { Category, ConsentMap, DeferPolicy, RedactionConfig, TransportStats };
export { CATEGORIES, defaultRoute };

export const VERSION = '0.1.0';
export const CONSENT_CHOICE_EVENT = 'sonde.consent.choice';
const SCOPE = '@sonde/web';

export interface SondeWebOptions {
  /** Base URL of the receiver's OTLP/HTTP listener (e.g. `https://otlp.example.com:4318`); `/v1/<signal>` is appended. Required. */
  endpoint: string;
  /** `service.name` of this application. Required. */
  serviceName: string;
  /** `service.version`. */
  serviceVersion?: string;
  /** `service.namespace` (the receiver's `job` label is namespace/name). */
  serviceNamespace?: string;
  /** `deployment.environment.name`. */
  environment?: string;
  /** Extra headers on every export (e.g. `Authorization` for otlp.auth). Not sent on beacons the browser refuses to keep alive. */
  headers?: Record<string, string>;
  /** Start-up consent per category. Default: diagnostics and performance granted, product not until granted. */
  consent?: ConsentMap;
  /** Categories kept under Global Privacy Control or Do Not Track. Default none. */
  essential?: Category[];
  /** When telemetry waits in the IndexedDB queue: on a metered connection or offline (default), offline only, or never. */
  defer?: DeferPolicy;
  /** Bounds of the IndexedDB queue; the oldest exports are dropped beyond (counted in stats().dropped). */
  queue?: { maxItems?: number; maxBytes?: number };
  /** Gzip exports (CompressionStream) except on beacons. Default true. */
  compress?: boolean;
  /** How long spans and log records are batched before an export, ms. Default 5000. */
  batchDelayMs?: number;
  /** How often metrics (web vitals) are exported, ms. Default 30000; they are also sent when the page is hidden. */
  metricIntervalMs?: number;
  /** A session ends after this long without activity, ms. Default 30 minutes. */
  sessionInactivityMs?: number;
  /** URLs (other origins) to which fetch/XHR send `traceparent`; same-origin requests always get it. */
  propagateTraceHeaderCorsUrls?: (string | RegExp)[];
  /** Which automatic instrumentations run. Default all true. */
  instrumentations?: { documentLoad?: boolean; fetch?: boolean; xhr?: boolean; userInteraction?: boolean };
  /** Capture `error` and `unhandledrejection` as log records. Default true. */
  errors?: boolean;
  /** Record LCP, INP, CLS and TTFB as histograms. Default true. */
  webVitals?: boolean;
  /** The page route of a URL, for web vitals and events (default: the path with ids replaced by `:id`). */
  route?: (location: Location) => string;
  /** Redaction rules (@sonde/redact), or false. Default: URL query secrets, emails, bearer tokens and card numbers masked. */
  redaction?: RedactionConfig | false;
  /** Key of the HMAC that turns `consent.record`'s subject into a pseudonym (≥ 16 characters, as `SONDE_HMAC_KEY`; the pseudonym is `@sonde/node`'s). */
  hmacKey?: string;
  /** IndexedDB database of the queue. Default `sonde-web`. */
  dbName?: string;
}

export interface TrackOptions {
  /** Consent category of the event; default `product`. */
  category?: Category;
}

export type ConsentChoice = boolean | 'default';

interface State {
  options: SondeWebOptions;
  transport: Transport;
  tracerProvider: TracerProvider;
  loggerProvider: LoggerProvider;
  consentLoggerProvider: LoggerProvider;
  meterProvider: MeterProvider;
  logger: Logger;
  consentLogger: Logger;
  sessions: Sessions;
  route: () => string;
  cleanup: (() => void)[];
  unregister: () => void;
  vitals: Record<string, Histogram>;
}

const consentState = new ConsentState();
let state: State | undefined;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Spans are recorded only while `diagnostics` is granted (trace context still propagates, unsampled). */
const consentSampler: Sampler = {
  shouldSample: () => ({
    decision: consentState.get('diagnostics') ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD,
  }),
  toString: () => 'SondeConsentSampler',
};

/** Starts Sonde in this page. Once per page: later calls return false and change nothing. */
export function start(options: SondeWebOptions): boolean {
  if (state) return false;
  if (!options || typeof options.endpoint !== 'string' || !/^https?:\/\//.test(options.endpoint))
    throw new TypeError('sonde.start: endpoint must be an http(s) URL, e.g. https://otlp.example.com:4318');
  if (typeof options.serviceName !== 'string' || options.serviceName === '')
    throw new TypeError('sonde.start: serviceName is required');
  if (options.defer !== undefined && !['metered', 'offline', 'never'].includes(options.defer))
    throw new TypeError(`sonde.start: defer must be 'metered', 'offline' or 'never', not ${String(options.defer)}`);
  if (options.hmacKey !== undefined && options.hmacKey.length < 16)
    throw new TypeError('sonde.start: hmacKey must have at least 16 characters (as SONDE_HMAC_KEY)');
  for (const c of options.essential ?? [])
    if (!isCategory(c)) throw new TypeError(`sonde.start: unknown essential category ${String(c)}`);

  consentState.init(options.consent ?? {});
  const optOut = browserOptOut();
  if (optOut) for (const c of CATEGORIES) if (!options.essential?.includes(c)) consentState.init({ [c]: false });

  const transport = new Transport({
    endpoint: options.endpoint,
    headers: options.headers ?? {},
    defer: options.defer ?? 'metered',
    maxQueueItems: options.queue?.maxItems ?? 1000,
    maxQueueBytes: options.queue?.maxBytes ?? 5 * 1024 * 1024,
    maxBatchBytes: 512 * 1024,
    pollMs: 5000,
    compress: options.compress ?? true,
    dbName: options.dbName ?? 'sonde-web',
  });
  const rewrite: WebRedaction | undefined =
    options.redaction === false ? undefined : createWebRedaction(options.redaction);

  const resource = resourceFromAttributes({
    'service.name': options.serviceName,
    ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}),
    ...(options.serviceNamespace ? { 'service.namespace': options.serviceNamespace } : {}),
    ...(options.environment ? { 'deployment.environment.name': options.environment } : {}),
    'telemetry.sdk.name': '@sonde/web',
    'telemetry.sdk.language': 'webjs',
    'telemetry.sdk.version': VERSION,
    ...(optOut ? {} : browserSegments()),
  });
  const route = () => (options.route ?? defaultRoute)(location);
  const batchDelay = options.batchDelayMs ?? 5000;

  let sessions: Sessions | undefined;
  const sessionAttribute = {
    onStart(span: Span) {
      if (sessions) span.setAttribute('session.id', sessions.id);
    },
    onEnd() {},
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const tracerProvider = new TracerProvider({
    resource,
    sampler: consentSampler,
    spanProcessors: [
      sessionAttribute,
      new BatchSpanProcessor({
        exporter: new SpanExporterImpl(transport, consentState, rewrite),
        scheduledDelayMillis: batchDelay,
        disableAutoFlushOnDocumentHide: true,
      }),
    ],
  });
  const logExporter = new LogExporterImpl(transport, consentState, rewrite);
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [
      {
        onEmit(record: ReadWriteLogRecord) {
          if (sessions) record.setAttribute('session.id', sessions.id);
          record.setAttribute('page.route', route());
        },
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve(),
      },
      new BatchLogRecordProcessor({
        exporter: logExporter,
        scheduledDelayMillis: batchDelay,
        disableAutoFlushOnDocumentHide: true,
      }),
    ],
  });
  // Consent choice records: their own resource (service.name only) and no session: they hold no personal data.
  const consentLoggerProvider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    processors: [
      new BatchLogRecordProcessor({
        exporter: new LogExporterImpl(transport, consentState, rewrite),
        scheduledDelayMillis: batchDelay,
        disableAutoFlushOnDocumentHide: true,
      }),
    ],
  });
  const metricReader = new PeriodicExportingMetricReader({
    exporter: new MetricExporterImpl(transport, consentState),
    exportIntervalMillis: options.metricIntervalMs ?? 30_000,
  });
  const meterProvider = new MeterProvider({ resource, readers: [metricReader] });

  context.setGlobalContextManager(new StackContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(tracerProvider);
  logs.setGlobalLoggerProvider(loggerProvider);
  metrics.setGlobalMeterProvider(meterProvider);

  // Sonde's own listeners, before user-interaction patches addEventListener (else each is a span).
  const cleanup: (() => void)[] = [];
  const on = (target: EventTarget, type: string, fn: (e: Event) => void, opts?: AddEventListenerOptions) => {
    target.addEventListener(type, fn, opts);
    cleanup.push(() => target.removeEventListener(type, fn, opts));
  };
  for (const type of ['click', 'keydown', 'scroll', 'pointerdown'])
    on(document, type, () => sessions?.touch(), { capture: true, passive: true });

  const ignoreUrls = [new RegExp(`^${escapeRegExp(options.endpoint.replace(/\/+$/, ''))}/`)];
  const which = options.instrumentations ?? {};
  const propagateTraceHeaderCorsUrls = options.propagateTraceHeaderCorsUrls ?? [];
  const instrumentations = [
    which.documentLoad !== false && new DocumentLoadInstrumentation(),
    which.fetch !== false && new FetchInstrumentation({ ignoreUrls, propagateTraceHeaderCorsUrls }),
    which.xhr !== false && new XMLHttpRequestInstrumentation({ ignoreUrls, propagateTraceHeaderCorsUrls }),
    which.userInteraction !== false && new UserInteractionInstrumentation(),
  ].filter((i) => i !== false);
  const unregister = registerInstrumentations({ instrumentations, tracerProvider, meterProvider, loggerProvider });

  const logger = loggerProvider.getLogger(SCOPE, VERSION);
  const consentLogger = consentLoggerProvider.getLogger(SCOPE, VERSION);
  const emitProduct = (name: string, attributes: Attributes): boolean => {
    if (!consentState.get('product')) return false;
    logger.emit({
      eventName: name,
      severityNumber: SeverityNumber.INFO,
      severityText: 'INFO',
      attributes: { ...attributes, [CONSENT_CATEGORY_ATTRIBUTE]: 'product' },
    });
    return true;
  };
  sessions = new Sessions(options.sessionInactivityMs ?? 30 * 60_000, consentState.get('product'), emitProduct);

  state = {
    options,
    transport,
    tracerProvider,
    loggerProvider,
    consentLoggerProvider,
    meterProvider,
    logger,
    consentLogger,
    sessions,
    route,
    cleanup,
    unregister,
    vitals: {},
  };

  const s = sessions;
  consentState.onChange((category, granted) => {
    if (category === 'product') s.setPersist(granted);
  });

  if (optOut) recordStartupOptOut(optOut, options.essential ?? []);
  if (options.errors !== false) {
    on(window, 'error', (e) => {
      const ev = e as ErrorEvent;
      if (!(ev instanceof ErrorEvent)) return; // a resource that failed to load, not a script error
      captureError(ev.error ?? ev.message, 'error');
    });
    on(window, 'unhandledrejection', (e) => captureError((e as PromiseRejectionEvent).reason, 'unhandledrejection'));
  }
  if (options.webVitals !== false) startWebVitals(state);

  // The page is being hidden (tab switch, navigation, close): what is batched goes out now, and
  // synchronously while hidden, as the page may not come back.
  const hide = () => {
    transport.setUnloading(true);
    void flush();
  };
  on(window, 'pagehide', hide);
  on(document, 'visibilitychange', () => {
    if (document.visibilityState === 'hidden') hide();
    else transport.setUnloading(false);
  });
  on(window, 'pageshow', () => transport.setUnloading(false));
  return true;
}

function recordStartupOptOut(source: 'global_privacy_control' | 'do_not_track', essential: Category[]): void {
  // Once per tab session: each record counts as one anonymous person.
  const key = `sonde.consent.${source}`;
  try {
    if (sessionStorage.getItem(key)) return;
    sessionStorage.setItem(key, '1');
  } catch {
    // no storage: record once per page
  }
  for (const c of CATEGORIES) if (!essential.includes(c)) emitChoice(c, 'denied', source);
}

function emitChoice(category: Category, choice: 'granted' | 'denied' | 'default', source: string, subject?: string) {
  state?.consentLogger.emit({
    eventName: CONSENT_CHOICE_EVENT,
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    attributes: {
      'event.name': CONSENT_CHOICE_EVENT,
      'sonde.consent.category': category,
      'sonde.consent.choice': choice,
      'sonde.consent.source': source,
      ...(subject ? { 'sonde.consent.subject': subject } : {}),
    },
  });
}

const VITALS = {
  LCP: { name: 'web_vitals.lcp', unit: 'ms', buckets: [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 7500, 10000] },
  INP: { name: 'web_vitals.inp', unit: 'ms', buckets: [50, 100, 150, 200, 300, 400, 500, 750, 1000, 2000] },
  CLS: { name: 'web_vitals.cls', unit: '1', buckets: [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1] },
  TTFB: { name: 'web_vitals.ttfb', unit: 'ms', buckets: [100, 200, 400, 600, 800, 1000, 1500, 2000, 3000, 5000] },
} as const;

function startWebVitals(s: State): void {
  const meter = s.meterProvider.getMeter(SCOPE, VERSION);
  for (const [key, v] of Object.entries(VITALS)) {
    s.vitals[key] = meter.createHistogram(v.name, {
      unit: v.unit,
      description: `Core Web Vitals: ${key} of page views, by page route`,
      advice: { explicitBucketBoundaries: [...v.buckets] },
    });
  }
  const record = (metric: { name: string; value: number; rating: string }) => {
    if (!consentState.get('performance') || state !== s) return;
    s.vitals[metric.name]?.record(metric.value, { 'page.route': s.route(), 'web_vitals.rating': metric.rating });
  };
  onLCP(record);
  onINP(record);
  onCLS(record);
  onTTFB(record);
}

/** Records an error as a log record with `exception.*` (category diagnostics). Also called for `error` and `unhandledrejection`. */
export function captureError(error: unknown, mechanism = 'manual'): boolean {
  if (!state || !consentState.get('diagnostics')) return false;
  const err = error instanceof Error ? error : undefined;
  const type = err ? err.name || err.constructor?.name || 'Error' : typeof error;
  const message = err ? err.message : String(error);
  state.logger.emit({
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: message,
    attributes: {
      'exception.type': type,
      'exception.message': message,
      ...(err?.stack ? { 'exception.stacktrace': err.stack } : {}),
      'exception.mechanism': mechanism,
      [CONSENT_CATEGORY_ATTRIBUTE]: 'diagnostics',
    },
  });
  return true;
}

/** A business event (`eventName` = name, as @sonde/node's track). Returns whether it was emitted. */
export function track(name: string, attributes?: Attributes, options?: TrackOptions): boolean {
  if (typeof name !== 'string' || name === '') throw new TypeError('track(name): name must be a non-empty string');
  const category = options?.category ?? 'product';
  if (!isCategory(category)) throw new TypeError(`track(): unknown consent category ${String(category)}`);
  if (!state || !consentState.get(category)) return false;
  state.sessions.touch();
  const ctx: Context = context.active();
  state.logger.emit({
    eventName: name,
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    attributes: { ...attributes, [CONSENT_CATEGORY_ATTRIBUTE]: category },
    context: ctx,
  });
  return true;
}

export const consent = {
  /** Grants or withdraws one category now (not recorded as a person's choice: see record()). */
  set(category: Category, granted: boolean): void {
    consentState.set(category, granted);
  },
  get(category: Category): boolean {
    return consentState.get(category);
  },
  snapshot(): Record<Category, boolean> {
    return consentState.snapshot();
  },
  /**
   * A person's choice: applies it (as set) and sends one consent choice record per category, which
   * the receiver counts as people. `subject` (the application's own id of the person) is sent only
   * as its HMAC with `hmacKey`; without a subject the record is anonymous.
   */
  async record(choices: Partial<Record<Category, ConsentChoice>>, opts?: { subject?: string }): Promise<void> {
    if (!state) throw new Error('consent.record: call sonde.start first');
    let subject: string | undefined;
    if (opts?.subject !== undefined) {
      if (!state.options.hmacKey) throw new Error('consent.record: a subject needs the hmacKey option');
      subject = await pseudonymOf(state.options.hmacKey, String(opts.subject));
    }
    for (const [category, choice] of Object.entries(choices)) {
      if (!isCategory(category)) throw new TypeError(`consent.record: unknown category ${category}`);
      if (choice !== true && choice !== false && choice !== 'default')
        throw new TypeError(`consent.record: ${category} must be true, false or 'default'`);
    }
    for (const [category, choice] of Object.entries(choices) as [Category, ConsentChoice][]) {
      if (choice !== 'default') consentState.set(category, choice);
      emitChoice(category, choice === 'default' ? 'default' : choice ? 'granted' : 'denied', 'user', subject);
    }
  },
};

/** Exports everything batched now (metrics included). */
export async function flush(): Promise<void> {
  if (!state) return;
  await Promise.all([
    state.tracerProvider.forceFlush(),
    state.loggerProvider.forceFlush(),
    state.consentLoggerProvider.forceFlush(),
    state.meterProvider.forceFlush(),
  ]).catch(() => {});
}

/** Counters of the transport: sent, queued, dropped, rejected, beacons, and why exports wait now. */
export function stats(): TransportStats {
  return state
    ? { ...state.transport.stats }
    : { sent: 0, queued: 0, dropped: 0, rejected: 0, beacons: 0, deferredBy: '' };
}

/** The current anonymous session id. */
export function sessionId(): string | undefined {
  return state?.sessions.id;
}

/** Flushes, stops the instrumentations and listeners. */
export async function shutdown(): Promise<void> {
  const s = state;
  if (!s) return;
  await flush();
  state = undefined;
  s.unregister();
  for (const c of s.cleanup.splice(0)) c();
  s.sessions.close();
  await Promise.all([
    s.tracerProvider.shutdown(),
    s.loggerProvider.shutdown(),
    s.consentLoggerProvider.shutdown(),
    s.meterProvider.shutdown(),
  ]).catch(() => {});
  await s.transport.close();
  trace.disable();
  logs.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
}

/**
 * start() / shutdown(): the OpenTelemetry Node SDK with the auto-instrumentations, wired for Sonde:
 * consent gates in front of every signal, redaction before export, OTLP/HTTP export through a
 * transmission gate and a bounded buffer, runtime metrics and log sending on, node:sqlite traced,
 * graceful flush on SIGTERM/SIGINT and beforeExit, and one start-up summary line.
 */
import * as fs from 'node:fs';
import {
  type Attributes,
  type Context,
  context,
  diag,
  type Link,
  logs,
  metrics,
  type SpanKind,
  trace,
} from '@opentelemetry/api';
import { getNodeAutoInstrumentations, type InstrumentationConfigMap } from '@opentelemetry/auto-instrumentations-node';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchLogRecordProcessor,
  ConsoleLogRecordExporter,
  type LogRecordExporter,
  type LogRecordProcessor,
  type ReadableLogRecord,
  type ReadWriteLogRecord,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import {
  ConsoleMetricExporter,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type Span,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import type { RedactionConfig, Redactor } from '@sonde/redact';
import { RequestBuffer } from './buffer';
import {
  CATEGORIES,
  type Category,
  CONSENT_CHOICE_EVENT,
  CONSENT_SCOPE,
  type ConsentMap,
  consentState,
  DEFAULT_CONSENT,
  isCategory,
  isTraceWithdrawn,
  parseConsentList,
  pseudonymiser,
} from './consent';
import { installCrashHandlers } from './crash';
import { CONSENT_CATEGORY_ATTRIBUTE, setEventsActive } from './events';
import { ConsentMeterProvider } from './metrics-consent';
import {
  type HttpTarget,
  httpTarget,
  Shipper,
  SondeLogExporter,
  SondeMetricExporter,
  SondeSpanExporter,
} from './otlp-http';
import { registerProcessMetrics } from './process-metrics';
import { redactLogRecord, redactResource, redactSpan, setupRedaction } from './redaction';
import { resourceAllowList, resourceDetectors } from './resource';
import { instrumentSqlite } from './sqlite';
import { sendStartupChoices, serviceNameOf, startupChoices } from './startup-consent';
import { type DropReason, type Gate, SIGNALS, type Signal } from './types';

export const VERSION: string = (() => {
  try {
    return (require('../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

export const SELF_SCOPE = '@sonde/node';

export interface SondeOptions {
  /** service.name (wins over OTEL_SERVICE_NAME). */
  serviceName?: string;
  /** Base OTLP/HTTP URL, `/v1/<signal>` appended (wins over OTEL_EXPORTER_OTLP_ENDPOINT). Default http://localhost:4318. */
  endpoint?: string;
  /** Extra resource attributes (merged over OTEL_RESOURCE_ATTRIBUTES). */
  resourceAttributes?: Attributes;
  /** Start-up consent per category (wins over SONDE_CONSENT). Default: diagnostics and performance granted, product not. */
  consent?: ConsentMap;
  /**
   * One anonymous consent choice record per category withdrawn at start (DO_NOT_TRACK, SONDE_CONSENT,
   * `consent`), so that start-up opt-outs are counted: default true (SONDE_COUNT_OPT_OUT=false).
   */
  countOptOut?: boolean;
  /** Detected resource keys left out by default (host.name, host.id, process.owner, command line...) to keep (SONDE_RESOURCE_ALLOW). */
  resourceAllow?: string[];
  /** Categories kept when DO_NOT_TRACK is set (default SONDE_ESSENTIAL, else none). */
  essential?: Category[];
  /** Redaction rules (@sonde/redact), or false to turn redaction off. Default SONDE_REDACTION, else the built-in rules. */
  redaction?: RedactionConfig | false;
  /** Transmission gate: while it returns false, telemetry is held in the buffer. */
  gate?: Gate;
  /** How often a closed gate is asked again, ms (default SONDE_GATE_POLL_MS or 5000). */
  gatePollMs?: number;
  /** Directory of the on-disk buffer (default SONDE_BUFFER_DIR; unset: in memory). */
  bufferDir?: string;
  /** Byte bound of the buffer (default SONDE_BUFFER_MAX_BYTES or 16 MiB). */
  bufferMaxBytes?: number;
  /** Per-instrumentation configuration, as getNodeAutoInstrumentations takes it. */
  instrumentations?: InstrumentationConfigMap;
  /** Runtime metrics (event loop, heap, GC): default on (SONDE_RUNTIME_METRICS=false turns them off). */
  runtimeMetrics?: boolean;
  /** pino/winston records sent as OTLP logs (correlation ids are injected either way): default on (SONDE_LOG_SENDING). */
  logSending?: boolean;
  /** Metric export interval, ms (default OTEL_METRIC_EXPORT_INTERVAL or 60000). */
  metricExportIntervalMs?: number;
  /** Flush on SIGTERM/SIGINT and beforeExit: default true. */
  handleSignals?: boolean;
  /** Print the start-up summary line on stderr: default true (SONDE_SUMMARY=false). */
  summary?: boolean;
  /** Upper bound of shutdown(), ms: default 5000 (SONDE_SHUTDOWN_TIMEOUT_MS). */
  shutdownTimeoutMs?: number;
  /** Record uncaught exceptions and unhandled rejections, flush, then let the process die as it would: default true (SONDE_RECORD_CRASHES). See crash.ts. */
  recordCrashes?: boolean;
  /** Upper bound of the flush before a crashing process dies, ms: default 2000 (SONDE_CRASH_FLUSH_TIMEOUT_MS). */
  crashFlushTimeoutMs?: number;
  /** Set by the register entry: the ESM loader hooks are installed. */
  esmHooks?: boolean;
}

export interface SondeStatus {
  started: boolean;
  disabled: boolean;
  dropped: Record<string, number>;
  bufferedBytes: number;
  bufferedRequests: number;
  sentRequests: number;
}

interface State {
  sdk: NodeSDK;
  shipper?: Shipper;
  dropped: Map<string, number>;
  shutdownTimeoutMs: number;
  shuttingDown?: Promise<void>;
  listeners: [string, (...args: unknown[]) => void][];
  gateRef: { gate?: Gate };
  /** The provider of the start-up consent choice records (startup-consent.ts), if any were sent. */
  choicesProvider?: { shutdown(): Promise<void> };
}

let state: State | undefined;
let disabled = false;

function envBool(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const v = env[name]?.trim().toLowerCase();
  if (v === undefined || v === '') return undefined;
  return v === '1' || v === 'true' || v === 'yes' || v === 'on';
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** One structured line on stderr (not through pino: the app's pino is instrumented and would send it). */
export function logLine(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  const lv = { info: 30, warn: 40, error: 50 }[level];
  try {
    process.stderr.write(`${JSON.stringify({ level: lv, time: Date.now(), name: SELF_SCOPE, msg, ...fields })}\n`);
  } catch {
    // stderr closed: nothing to do
  }
}

/** The sampler of OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on). */
export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      logLine('warn', `sonde: unsupported OTEL_TRACES_SAMPLER "${name}", using parentbased_always_on`);
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** Spans are `diagnostics`: where it is withdrawn, spans are not even recorded. */
class ConsentSampler implements Sampler {
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
class ConsentSpanProcessor implements SpanProcessor {
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
class ConsentLogProcessor implements LogRecordProcessor {
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
function filterMetrics(rm: ResourceMetrics): ResourceMetrics {
  if (consentState.get('performance')) return rm;
  const silent = !consentState.get('diagnostics') && !consentState.get('product');
  return { ...rm, scopeMetrics: silent ? [] : rm.scopeMetrics.filter((sm) => sm.scope.name === SELF_SCOPE) };
}

function safeMap<T>(items: T[], fn: (item: T) => T, onError: (n: number) => void): T[] {
  const out: T[] = [];
  let failed = 0;
  for (const item of items) {
    try {
      out.push(fn(item));
    } catch {
      failed++; // fail closed: an item the redactor could not handle is not sent
    }
  }
  if (failed > 0) onError(failed);
  return out;
}

function headerList(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const v = env[name];
  if (!v) return undefined;
  return v
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

function instrumentationConfig(
  env: NodeJS.ProcessEnv,
  o: { runtimeMetrics: boolean; logSending: boolean; user?: InstrumentationConfigMap; exportPaths: Set<string> },
): InstrumentationConfigMap {
  const user = o.user ?? {};
  const userIgnore = user['@opentelemetry/instrumentation-http']?.ignoreOutgoingRequestHook;
  const cfg: InstrumentationConfigMap = { ...user };
  const serverReq = headerList(env, 'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS');
  const serverRes = headerList(env, 'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS');
  const clientReq = headerList(env, 'OTEL_INSTRUMENTATION_HTTP_CLIENT_CAPTURE_REQUEST_HEADERS');
  const clientRes = headerList(env, 'OTEL_INSTRUMENTATION_HTTP_CLIENT_CAPTURE_RESPONSE_HEADERS');
  cfg['@opentelemetry/instrumentation-http'] = {
    ...(serverReq || serverRes || clientReq || clientRes
      ? {
          headersToSpanAttributes: {
            server: { requestHeaders: serverReq, responseHeaders: serverRes },
            client: { requestHeaders: clientReq, responseHeaders: clientRes },
          },
        }
      : {}),
    ...user['@opentelemetry/instrumentation-http'],
    // Sonde's own OTLP requests: neither spans (they are sent with tracing suppressed) nor
    // http.client.request.duration points.
    ignoreOutgoingRequestHook: (req) =>
      (req.method === 'POST' && typeof req.path === 'string' && o.exportPaths.has(req.path.split('?')[0])) ||
      (userIgnore?.(req) ?? false),
  };
  cfg['@opentelemetry/instrumentation-pino'] = {
    disableLogSending: !o.logSending,
    ...user['@opentelemetry/instrumentation-pino'],
  };
  cfg['@opentelemetry/instrumentation-winston'] = {
    disableLogSending: !o.logSending,
    ...user['@opentelemetry/instrumentation-winston'],
  };
  // Sonde default: no span per express middleware (json parser, cors, ...) nor per route handler: they
  // are most of an express app's spans and cost, and say little that the server span (named by its
  // route, `http.route` set by this same instrumentation) does not. SONDE_EXPRESS_HANDLER_SPANS=true
  // brings the route-handler spans back; `ignoreLayersType: []` restores every layer span.
  cfg['@opentelemetry/instrumentation-express'] = {
    ignoreLayersType: (envBool(env, 'SONDE_EXPRESS_HANDLER_SPANS')
      ? ['middleware']
      : ['middleware', 'request_handler']) as never[],
    ...user['@opentelemetry/instrumentation-express'],
  };
  if (!env.OTEL_NODE_ENABLED_INSTRUMENTATIONS) {
    // Sonde defaults: dns and net spans are noise under every HTTP call, and cost; the router
    // instrumentation doubles every express 5 layer span (express 5 runs on the router package).
    // Opt back in by name (OTEL_NODE_ENABLED_INSTRUMENTATIONS).
    cfg['@opentelemetry/instrumentation-dns'] = { enabled: false, ...user['@opentelemetry/instrumentation-dns'] };
    cfg['@opentelemetry/instrumentation-net'] = { enabled: false, ...user['@opentelemetry/instrumentation-net'] };
    cfg['@opentelemetry/instrumentation-router'] = { enabled: false, ...user['@opentelemetry/instrumentation-router'] };
    if (!o.runtimeMetrics)
      cfg['@opentelemetry/instrumentation-runtime-node'] = {
        enabled: false,
        ...user['@opentelemetry/instrumentation-runtime-node'],
      };
  }
  return cfg;
}

function readRedactionConfig(
  env: NodeJS.ProcessEnv,
  option: RedactionConfig | false | undefined,
): RedactionConfig | false {
  if (option !== undefined) return option;
  const raw = env.SONDE_REDACTION?.trim();
  if (raw === 'off' || raw === 'false' || raw === '0') return false;
  if (raw) {
    try {
      return JSON.parse(raw) as RedactionConfig;
    } catch (err) {
      throw new Error(
        `SONDE_REDACTION is not valid JSON (${(err as Error).message}); give a JSON object such as {"mode":"block"}, or "off"`,
      );
    }
  }
  const file = env.SONDE_REDACTION_FILE?.trim();
  if (file) {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as RedactionConfig;
    } catch (err) {
      throw new Error(`SONDE_REDACTION_FILE ${file} cannot be read as JSON: ${(err as Error).message}`);
    }
  }
  return {};
}

/** Start-up consent: the defaults (product off), replaced by SONDE_CONSENT or the option, then DO_NOT_TRACK. */
export function resolveConsent(
  env: NodeJS.ProcessEnv,
  option: ConsentMap | undefined,
  essentialOption: Category[] | undefined,
): { granted: Record<Category, boolean>; doNotTrack: boolean; essential: Category[] } {
  let granted: Record<Category, boolean> = { ...DEFAULT_CONSENT };
  if (env.SONDE_CONSENT !== undefined) {
    const parsed = parseConsentList(env.SONDE_CONSENT);
    for (const e of parsed.errors) logLine('warn', `sonde: SONDE_CONSENT: ${e}`);
    granted = parsed.granted;
  }
  if (option) for (const c of CATEGORIES) if (option[c] !== undefined) granted[c] = option[c] === true;
  let essential = essentialOption;
  if (!essential && env.SONDE_ESSENTIAL) {
    essential = env.SONDE_ESSENTIAL.split(',')
      .map((s) => s.trim())
      .filter(isCategory);
  }
  essential ??= [];
  const dnt = env.DO_NOT_TRACK?.trim().toLowerCase();
  const doNotTrack = dnt !== undefined && dnt !== '' && dnt !== '0' && dnt !== 'false';
  if (doNotTrack) for (const c of CATEGORIES) if (!essential.includes(c)) granted[c] = false;
  return { granted, doNotTrack, essential };
}

/** Starts the SDK once per process (later calls return the same status). Never throws for the app's sake. */
export function start(options: SondeOptions = {}, env: NodeJS.ProcessEnv = process.env): SondeStatus {
  if (state || disabled) return status();
  if (envBool(env, 'OTEL_SDK_DISABLED')) {
    disabled = true;
    if (options.summary ?? envBool(env, 'SONDE_SUMMARY') ?? true)
      logLine('info', 'sonde: off (OTEL_SDK_DISABLED=true)', { version: VERSION });
    return status();
  }
  try {
    startInner(options, env);
  } catch (err) {
    logLine('error', `sonde: not started: ${(err as Error).message}`);
    disabled = true;
  }
  return status();
}

function startInner(options: SondeOptions, env: NodeJS.ProcessEnv): void {
  const consentCfg = resolveConsent(env, options.consent, options.essential);
  consentState.init(consentCfg.granted);

  const redactionInput = readRedactionConfig(env, options.redaction);
  let redactor: Redactor | undefined;
  let redactionSummary = 'off';
  if (redactionInput !== false) {
    const setup = setupRedaction(redactionInput, env.SONDE_HMAC_KEY);
    redactor = setup.redactor;
    redactionSummary = setup.describe;
  }

  const dropped = new Map<string, number>();
  const countDrop = (signal: Signal, items: number, reason: DropReason | 'redaction_failed') => {
    const key = `${signal}|${reason}`;
    dropped.set(key, (dropped.get(key) ?? 0) + items);
  };

  const protocol = (env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  const exportersOf = (signal: Signal) => {
    const v = env[`OTEL_${signal.toUpperCase()}_EXPORTER`]?.trim();
    const list = v ? v.split(',').map((s) => s.trim()) : ['otlp'];
    return list.includes('none') ? [] : list;
  };
  const signalProtocol = (signal: Signal) =>
    (env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`] ?? protocol).trim();
  const targets = Object.fromEntries(
    SIGNALS.map((s) => [
      s,
      httpTarget(s, env, {
        endpoint: options.endpoint,
        protocol: signalProtocol(s),
        warn: (message) => logLine('warn', `sonde: ${message}`),
      }),
    ]),
  ) as Record<Signal, HttpTarget>;

  const bufferDir = options.bufferDir ?? env.SONDE_BUFFER_DIR;
  const bufferMaxBytes = options.bufferMaxBytes ?? envNumber(env, 'SONDE_BUFFER_MAX_BYTES') ?? 16 * 1024 * 1024;
  const gateRef: { gate?: Gate } = { gate: options.gate };
  let lastWarn = 0;
  const shipper = new Shipper({
    targets,
    buffer: new RequestBuffer(bufferMaxBytes, countDrop, bufferDir),
    gate: () => (gateRef.gate ? gateRef.gate() : true),
    gatePollMs: options.gatePollMs ?? envNumber(env, 'SONDE_GATE_POLL_MS') ?? 5000,
    onDrop: countDrop,
    onSendError(signal, reason) {
      const now = Date.now();
      if (now - lastWarn < 60000) return;
      lastWarn = now;
      logLine(
        'warn',
        `sonde: cannot send ${signal} to ${targets[signal].url} (${reason}); holding telemetry in the buffer and retrying. Start the receiver (npx sonde-receiver) or set OTEL_EXPORTER_OTLP_ENDPOINT`,
        {
          bufferedBytes: shipper.buffer.bytes,
          bufferMaxBytes,
        },
      );
    },
  });

  const redactFailed = (signal: Signal) => (n: number) => countDrop(signal, n, 'redaction_failed');
  const spanTransform = (spans: ReadableSpan[]) =>
    redactor ? safeMap(spans, (s) => redactSpan(redactor, s), redactFailed('traces')) : spans;
  // Consent choice records hold only Sonde's own attributes (the subject already an HMAC pseudonym):
  // not redacted, so that no detector or allow list can mangle or drop the pseudonym.
  const logTransform = (records: ReadableLogRecord[]) =>
    redactor
      ? safeMap(
          records,
          (r) => (r.eventName === CONSENT_CHOICE_EVENT ? r : redactLogRecord(redactor, r)),
          redactFailed('logs'),
        )
      : records;
  const metricTransform = (rm: ResourceMetrics): ResourceMetrics => {
    const out = filterMetrics(rm);
    if (!redactor || out.scopeMetrics.length === 0) return out;
    const resource = redactResource(redactor, out.resource);
    return resource === out.resource ? out : { ...out, resource };
  };

  // Traces
  const spanProcessors: SpanProcessor[] = [];
  for (const kind of exportersOf('traces')) {
    let exporter: SpanExporter;
    if (kind === 'console') exporter = new ConsoleSpanExporter();
    else if (signalProtocol('traces') === 'grpc')
      exporter = transformSpanExporter(new GrpcTraceExporter(), spanTransform);
    else exporter = new SondeSpanExporter(shipper, targets.traces.json, spanTransform, countDrop);
    spanProcessors.push(new ConsentSpanProcessor(new BatchSpanProcessor({ exporter })));
  }

  // Logs and events
  const logRecordProcessors: LogRecordProcessor[] = [];
  for (const kind of exportersOf('logs')) {
    if (kind === 'console') {
      logRecordProcessors.push(
        new ConsentLogProcessor(new SimpleLogRecordProcessor({ exporter: new ConsoleLogRecordExporter() })),
      );
      continue;
    }
    const exporter: LogRecordExporter =
      signalProtocol('logs') === 'grpc'
        ? transformLogExporter(new GrpcLogExporter(), logTransform)
        : new SondeLogExporter(shipper, targets.logs.json, logTransform, countDrop);
    logRecordProcessors.push(new ConsentLogProcessor(new BatchLogRecordProcessor({ exporter })));
  }

  // Metrics
  const exportIntervalMillis = options.metricExportIntervalMs ?? envNumber(env, 'OTEL_METRIC_EXPORT_INTERVAL') ?? 60000;
  const metricReaders = exportersOf('metrics').map((kind) => {
    let exporter: PushMetricExporter;
    if (kind === 'console') exporter = new ConsoleMetricExporter();
    else if (signalProtocol('metrics') === 'grpc')
      exporter = transformMetricExporter(new GrpcMetricExporter(), metricTransform);
    else exporter = new SondeMetricExporter(shipper, targets.metrics.json, metricTransform, countDrop);
    return new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis,
      exportTimeoutMillis: Math.min(exportIntervalMillis, envNumber(env, 'OTEL_METRIC_EXPORT_TIMEOUT') ?? 30000),
    });
  });

  const runtimeMetrics = options.runtimeMetrics ?? envBool(env, 'SONDE_RUNTIME_METRICS') ?? true;
  const logSending = options.logSending ?? envBool(env, 'SONDE_LOG_SENDING') ?? true;
  const instrumentations = getNodeAutoInstrumentations(
    instrumentationConfig(env, {
      runtimeMetrics,
      logSending,
      user: options.instrumentations,
      exportPaths: new Set(SIGNALS.map((sig) => new URL(targets[sig].url).pathname)),
    }),
  );

  const resource = defaultResource().merge(
    resourceFromAttributes({
      'telemetry.distro.name': 'sonde',
      'telemetry.distro.version': VERSION,
      ...options.resourceAttributes,
    }),
  );

  const sdk = new NodeSDK({
    resource,
    resourceDetectors: resourceDetectors(env, resourceAllowList(env, options.resourceAllow)),
    serviceName: options.serviceName,
    sampler: new ConsentSampler(samplerFromEnv(env)),
    spanProcessors,
    logRecordProcessors,
    metricReaders,
    instrumentations,
  });
  sdk.start();
  bridgeApiLogs();
  // Per-request withdrawal of `performance`: the application's and the instrumentations' meters
  // come from a wrapper that drops measurements recorded where it is withdrawn (metrics-consent.ts).
  const sdkMeterProvider = metrics.getMeterProvider();
  if (metricReaders.length > 0) {
    metrics.disable();
    metrics.setGlobalMeterProvider(new ConsentMeterProvider(sdkMeterProvider));
    for (const i of instrumentations) i.setMeterProvider(metrics.getMeterProvider());
  }

  // Start-up opt-outs, counted anonymously (startup-consent.ts).
  let choicesProvider: { shutdown(): Promise<void> } | undefined;
  const choices = startupChoices(env, options.consent, consentCfg);
  if (choices.length > 0 && (options.countOptOut ?? envBool(env, 'SONDE_COUNT_OPT_OUT') ?? true)) {
    const kind = exportersOf('logs').find((k) => k === 'otlp');
    if (kind) {
      const exporter: LogRecordExporter =
        signalProtocol('logs') === 'grpc'
          ? new GrpcLogExporter()
          : new SondeLogExporter(shipper, targets.logs.json, (r) => r, countDrop);
      choicesProvider = sendStartupChoices(
        choices,
        serviceNameOf(env, options.serviceName, options.resourceAttributes),
        exporter,
        VERSION,
      );
    }
  }

  const sqlite = instrumentSqlite(() => trace.getTracer('@sonde/node/sqlite', VERSION));
  const meter = sdkMeterProvider.getMeter(SELF_SCOPE, VERSION);
  consentState.attachRecorder({
    logger: logs.getLogger(CONSENT_SCOPE, VERSION),
    pseudonym: pseudonymiser((redactionInput !== false && redactionInput.hmac_key) || env.SONDE_HMAC_KEY),
    warnNoKey: () =>
      logLine(
        'warn',
        'sonde: consent.record() was given a subject but no HMAC key is set (SONDE_HMAC_KEY): the subject is left out and each record counts as an anonymous person',
      ),
  });
  meter
    .createObservableCounter('sonde.telemetry.dropped', {
      unit: '{item}',
      description: 'Telemetry items dropped by the SDK, by signal and reason',
    })
    .addCallback((result) => {
      // buffer_full of each signal from 0, so that rate() and the SDK-drop alert have a series before the first loss.
      for (const signal of ['traces', 'metrics', 'logs'])
        if (!dropped.has(`${signal}|buffer_full`)) result.observe(0, { signal, reason: 'buffer_full' });
      for (const [key, value] of dropped) {
        const [signal, reason] = key.split('|');
        result.observe(value, { signal, reason });
      }
    });
  meter
    .createObservableGauge('sonde.buffer.usage', {
      unit: 'By',
      description: 'Bytes of encoded telemetry held while the gate is closed or the receiver unreachable',
    })
    .addCallback((result) =>
      result.observe(shipper.buffer.bytes, { 'sonde.buffer.kind': bufferDir ? 'disk' : 'memory' }),
    );
  meter
    .createObservableGauge('sonde.buffer.limit', {
      unit: 'By',
      description: 'Bound of sonde.buffer.usage (bufferMaxBytes): past it the oldest requests are dropped',
    })
    .addCallback((result) => result.observe(bufferMaxBytes, { 'sonde.buffer.kind': bufferDir ? 'disk' : 'memory' }));

  const runtime = instrumentations.find((i) => i.instrumentationName === '@opentelemetry/instrumentation-runtime-node');
  toggleRuntime(runtime, consentState.get('performance'));
  consentState.onChange((category, granted) => {
    if (category === 'performance') toggleRuntime(runtime, granted);
  });
  registerProcessMetrics(meter, () => runtime !== undefined && consentState.get('performance'));
  setEventsActive(true, VERSION);

  state = {
    sdk,
    shipper,
    dropped,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? envNumber(env, 'SONDE_SHUTDOWN_TIMEOUT_MS') ?? 5000,
    listeners: [],
    gateRef,
    choicesProvider,
  };
  if (options.handleSignals ?? true) installHandlers(state);
  if (options.recordCrashes ?? envBool(env, 'SONDE_RECORD_CRASHES') ?? true)
    installCrashHandlers({
      logger: logs.getLogger(SELF_SCOPE, VERSION),
      flush,
      flushTimeoutMs: options.crashFlushTimeoutMs ?? envNumber(env, 'SONDE_CRASH_FLUSH_TIMEOUT_MS') ?? 2000,
    });

  if (options.summary ?? envBool(env, 'SONDE_SUMMARY') ?? true) {
    const resourceAttrs = (sdk as unknown as { _resource?: { attributes: Attributes } })._resource?.attributes ?? {};
    logLine('info', 'sonde: instrumented', {
      version: VERSION,
      service: resourceAttrs['service.name'],
      endpoint:
        protocol === 'grpc'
          ? 'grpc (OTEL_EXPORTER_OTLP_ENDPOINT or localhost:4317)'
          : targets.traces.url.replace(/\/v1\/traces$/, ''),
      protocol,
      signals: Object.fromEntries(SIGNALS.map((s) => [s, exportersOf(s).join('+') || 'none'])),
      consent: consentState.snapshot(),
      doNotTrack: consentCfg.doNotTrack,
      redaction: redactionSummary,
      gate: gateRef.gate ? 'host gate' : 'none',
      buffer: `${bufferDir ? `disk ${bufferDir}` : 'memory'} ${bufferMaxBytes} B`,
      instrumentations: instrumentations.length + (sqlite ? 1 : 0),
      runtimeMetrics: runtimeMetrics && consentState.get('performance'),
      logSending,
      esm: options.esmHooks === true,
    });
  }
}

function toggleRuntime(runtime: Instrumentation | undefined, on: boolean): void {
  if (!runtime) return;
  try {
    if (on) runtime.enable();
    else runtime.disable();
  } catch (err) {
    diag.debug('sonde: runtime metrics toggle failed', err);
  }
}

/**
 * @opentelemetry/winston-transport emits through @opentelemetry/api-logs, whose global is not the one
 * of @opentelemetry/api's `logs`: give it the same provider so winston records are sent too.
 */
function bridgeApiLogs(): void {
  try {
    const apiLogs = require('@opentelemetry/api-logs') as {
      logs: { setGlobalLoggerProvider(p: unknown): unknown };
    };
    apiLogs.logs.setGlobalLoggerProvider(logs.getLoggerProvider());
  } catch {
    // api-logs absent: winston log sending is unavailable, correlation still works
  }
}

function transformSpanExporter(inner: SpanExporter, fn: (s: ReadableSpan[]) => ReadableSpan[]): SpanExporter {
  return {
    export: (spans, done) => inner.export(fn(spans), done),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

function transformLogExporter(
  inner: LogRecordExporter,
  fn: (r: ReadableLogRecord[]) => ReadableLogRecord[],
): LogRecordExporter {
  return {
    export: (records, done) => inner.export(fn(records), done),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

function transformMetricExporter(
  inner: PushMetricExporter,
  fn: (m: ResourceMetrics) => ResourceMetrics,
): PushMetricExporter {
  return {
    export: (m, done) => inner.export(fn(m), done),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
    selectAggregationTemporality: inner.selectAggregationTemporality?.bind(inner),
  };
}

function installHandlers(s: State): void {
  const onSignal = (signal: NodeJS.Signals) => {
    // The application has its own handler: it decides when and how to exit; send what we have now,
    // the rest goes at beforeExit (or is lost if the app exits synchronously).
    if (process.listenerCount(signal) > 1) {
      void flush();
      return;
    }
    // Nobody else handles it: flush, then die of the same signal, as Node would have without us.
    void shutdown().finally(() => {
      for (const [name, fn] of s.listeners) process.removeListener(name, fn);
      process.kill(process.pid, signal);
    });
  };
  const onBeforeExit = () => {
    if (!s.shuttingDown) void shutdown();
  };
  const add = (name: string, fn: (...args: unknown[]) => void) => {
    process.on(name as NodeJS.Signals, fn);
    s.listeners.push([name, fn]);
  };
  add('SIGTERM', () => onSignal('SIGTERM'));
  add('SIGINT', () => onSignal('SIGINT'));
  add('beforeExit', onBeforeExit);
}

function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => {
        clearTimeout(t);
        resolve();
      },
    );
  });
}

/** Sends everything the SDK holds now (spans, logs, a metrics collection, the buffer), bounded in time. */
export async function flush(timeoutMs?: number): Promise<void> {
  const s = state;
  if (!s) return;
  const ms = timeoutMs ?? s.shutdownTimeoutMs;
  const deadline = Date.now() + ms;
  const providers = [trace.getTracerProvider(), logs.getLoggerProvider(), metrics.getMeterProvider()] as unknown as {
    forceFlush?(): Promise<void>;
    getDelegate?(): { forceFlush?(): Promise<void> };
  }[];
  await withTimeout(
    Promise.all(
      providers.map((p) => {
        const target = p.forceFlush ? p : p.getDelegate?.();
        return target?.forceFlush?.();
      }),
    ),
    ms,
  );
  await s.shipper?.flush(Math.max(0, deadline - Date.now()));
}

/** Flushes and stops the SDK (bounded by shutdownTimeoutMs). Telemetry after it is not sent. */
export function shutdown(): Promise<void> {
  const s = state;
  if (!s) return Promise.resolve();
  if (s.shuttingDown) return s.shuttingDown;
  s.shuttingDown = (async () => {
    const deadline = Date.now() + s.shutdownTimeoutMs;
    setEventsActive(false);
    consentState.attachRecorder(undefined);
    await withTimeout(Promise.all([s.sdk.shutdown(), s.choicesProvider?.shutdown()]), s.shutdownTimeoutMs);
    await s.shipper?.shutdown(Math.max(0, deadline - Date.now()));
  })();
  return s.shuttingDown;
}

/** Replaces the transmission gate at run time (undefined: always open). */
export function setTransmissionGate(gate: Gate | undefined): void {
  if (state) state.gateRef.gate = gate;
}

/** Tries to send what the buffer holds now, e.g. right after the host's gate opened. */
export function drainBuffer(): Promise<void> {
  return state?.shipper?.drain() ?? Promise.resolve();
}

export function status(): SondeStatus {
  return {
    started: state !== undefined,
    disabled,
    dropped: Object.fromEntries(state?.dropped ?? []),
    bufferedBytes: state?.shipper?.buffer.bytes ?? 0,
    bufferedRequests: state?.shipper?.buffer.length ?? 0,
    sentRequests: state?.shipper?.sent ?? 0,
  };
}

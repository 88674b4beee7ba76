/**
 * Configuration from `start(options)` and the environment (SONDE_*, OTEL_*), read once into one
 * `SondeConfig`, as @opentelemetry/sdk-node's create-from-env reads OTEL_* before anything is built.
 * Options win over the environment; what is left unset gets Sonde's defaults (README, Options).
 *
 * The variables are read from the `env` given to start() (process.env by default, a plain object in
 * tests), so @opentelemetry/core's getStringFromEnv/getNumberFromEnv/getBooleanFromEnv, which read
 * process.env only, do not fit; the helpers below follow their rules (unset, empty or blank means
 * unset) except that booleans also take `1`/`yes`/`on` and numbers must be finite and not negative
 * (anything else means unset, hence the default). What the SDK reads itself (OTEL_BSP_*,
 * OTEL_BLRP_*, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_NODE_RESOURCE_DETECTORS) is left to it.
 */
import * as fs from 'node:fs';
import type { Attributes } from '@opentelemetry/api';
import type { InstrumentationConfigMap } from '@opentelemetry/auto-instrumentations-node';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import type { RedactionConfig } from '@sonde/redact';
import { CATEGORIES, type Category, type ConsentMap, DEFAULT_CONSENT, isCategory, parseConsentList } from './consent';
import { type HttpTarget, httpTarget } from './otlp-http';
import { resourceAllowList } from './resource';
import { logLine } from './self';
import { type Gate, SIGNALS, type Signal } from './types';

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

const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
const FALSE_WORDS = ['0', 'false', 'no', 'off'];

/** Where a variable that cannot be read is reported (one stderr line each, by default). */
export type Warn = (message: string) => void;
const warnOnStderr: Warn = (message) => logLine('warn', `sonde: ${message}`);

/**
 * A boolean variable: `1`, `true`, `yes`, `on` (any case) are true, anything else set is false (a
 * value that is not a false word either is reported to `warn`); unset or blank: undefined.
 */
export function envBool(env: NodeJS.ProcessEnv, name: string, warn?: Warn): boolean | undefined {
  const v = env[name]?.trim().toLowerCase();
  if (v === undefined || v === '') return undefined;
  if (TRUE_WORDS.includes(v)) return true;
  if (!FALSE_WORDS.includes(v))
    warn?.(`${name}=${JSON.stringify(env[name])} is not a boolean (true/false, 1/0, yes/no, on/off); read as false`);
  return false;
}

/** A finite, non-negative number; undefined when unset or empty, and when anything else (reported to `warn`). */
export function envNumber(env: NodeJS.ProcessEnv, name: string, warn?: Warn): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (Number.isFinite(n) && n >= 0) return n;
  warn?.(`${name}=${JSON.stringify(v)} is not a non-negative number; using the default`);
  return undefined;
}

/** A comma-separated list, entries trimmed (and lower-cased with `lower`), empty ones left out; undefined when unset or empty. */
export function envList(env: NodeJS.ProcessEnv, name: string, lower = false): string[] | undefined {
  const v = env[name];
  if (!v) return undefined;
  return v
    .split(',')
    .map((s) => (lower ? s.trim().toLowerCase() : s.trim()))
    .filter(Boolean);
}

export interface ResolvedConsent {
  granted: Record<Category, boolean>;
  doNotTrack: boolean;
  essential: Category[];
}

/** Start-up consent: the defaults (product off), replaced by SONDE_CONSENT or the option, then DO_NOT_TRACK. */
export function resolveConsent(
  env: NodeJS.ProcessEnv,
  option: ConsentMap | undefined,
  essentialOption: Category[] | undefined,
): ResolvedConsent {
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

/** The redaction configuration: the option, else SONDE_REDACTION (JSON or `off`), else SONDE_REDACTION_FILE, else the built-in rules. */
export function readRedactionConfig(
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

/** How one signal is exported: OTEL_<SIGNAL>_EXPORTER, the OTLP protocol and the OTLP/HTTP target. */
export interface SignalConfig {
  /** `otlp`, `console` (several allowed); empty with `none`. */
  exporters: string[];
  /** `http/protobuf`, `http/json` or `grpc`. */
  protocol: string;
  target: HttpTarget;
}

/** Everything start() needs, options and environment resolved. */
export interface SondeConfig {
  consent: ResolvedConsent;
  /** One anonymous consent choice record per category withdrawn at start. */
  countOptOut: boolean;
  redaction: RedactionConfig | false;
  /** SONDE_HMAC_KEY (never logged). */
  hmacKey: string | undefined;
  /** OTEL_EXPORTER_OTLP_PROTOCOL (the default of every signal). */
  protocol: string;
  signals: Record<Signal, SignalConfig>;
  bufferDir: string | undefined;
  bufferMaxBytes: number;
  gatePollMs: number;
  metricExportIntervalMs: number;
  metricExportTimeoutMs: number;
  runtimeMetrics: boolean;
  logSending: boolean;
  /** SONDE_EXPRESS_HANDLER_SPANS. */
  expressHandlerSpans: boolean;
  /** OTEL_INSTRUMENTATION_HTTP_{SERVER,CLIENT}_CAPTURE_{REQUEST,RESPONSE}_HEADERS, lower-cased. */
  captureHeaders: {
    serverRequest?: string[];
    serverResponse?: string[];
    clientRequest?: string[];
    clientResponse?: string[];
  };
  /** OTEL_NODE_ENABLED_INSTRUMENTATIONS is set: Sonde's default opt-outs (dns, net, router) do not apply. */
  instrumentationsByEnv: boolean;
  resourceAllow: string[];
  sampler: Sampler;
  handleSignals: boolean;
  summary: boolean;
  shutdownTimeoutMs: number;
  recordCrashes: boolean;
  crashFlushTimeoutMs: number;
}

/** Whether start() prints its summary line (also read before anything else, for OTEL_SDK_DISABLED). */
export function summaryOn(options: SondeOptions, env: NodeJS.ProcessEnv): boolean {
  return options.summary ?? envBool(env, 'SONDE_SUMMARY') ?? true;
}

/**
 * The whole configuration, options over the environment; `consent` is resolved beforehand
 * (resolveConsent), so that consent is in force even if a later part of the configuration is invalid.
 * Throws on a redaction configuration that cannot be read.
 */
export function resolveConfig(
  options: SondeOptions,
  env: NodeJS.ProcessEnv,
  consent: ResolvedConsent,
  warn: Warn = warnOnStderr,
): SondeConfig {
  const num = (name: string) => envNumber(env, name, warn);
  const bool = (name: string) => envBool(env, name, warn);
  const redaction = readRedactionConfig(env, options.redaction);
  const protocol = (env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  const signalConfig = (signal: Signal): SignalConfig => {
    const S = signal.toUpperCase();
    const listed = env[`OTEL_${S}_EXPORTER`]?.trim();
    const exporters = listed ? listed.split(',').map((s) => s.trim()) : ['otlp'];
    const signalProtocol = (env[`OTEL_EXPORTER_OTLP_${S}_PROTOCOL`] ?? protocol).trim();
    return {
      exporters: exporters.includes('none') ? [] : exporters,
      protocol: signalProtocol,
      target: httpTarget(signal, env, {
        endpoint: options.endpoint,
        protocol: signalProtocol,
        warn,
      }),
    };
  };
  const metricExportIntervalMs = options.metricExportIntervalMs ?? num('OTEL_METRIC_EXPORT_INTERVAL') ?? 60000;
  return {
    consent,
    countOptOut: options.countOptOut ?? bool('SONDE_COUNT_OPT_OUT') ?? true,
    redaction,
    hmacKey: env.SONDE_HMAC_KEY,
    protocol,
    signals: Object.fromEntries(SIGNALS.map((s) => [s, signalConfig(s)])) as Record<Signal, SignalConfig>,
    bufferDir: options.bufferDir ?? env.SONDE_BUFFER_DIR,
    bufferMaxBytes: options.bufferMaxBytes ?? num('SONDE_BUFFER_MAX_BYTES') ?? 16 * 1024 * 1024,
    gatePollMs: options.gatePollMs ?? num('SONDE_GATE_POLL_MS') ?? 5000,
    metricExportIntervalMs,
    metricExportTimeoutMs: Math.min(metricExportIntervalMs, num('OTEL_METRIC_EXPORT_TIMEOUT') ?? 30000),
    runtimeMetrics: options.runtimeMetrics ?? bool('SONDE_RUNTIME_METRICS') ?? true,
    logSending: options.logSending ?? bool('SONDE_LOG_SENDING') ?? true,
    expressHandlerSpans: bool('SONDE_EXPRESS_HANDLER_SPANS') === true,
    captureHeaders: {
      serverRequest: envList(env, 'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS', true),
      serverResponse: envList(env, 'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS', true),
      clientRequest: envList(env, 'OTEL_INSTRUMENTATION_HTTP_CLIENT_CAPTURE_REQUEST_HEADERS', true),
      clientResponse: envList(env, 'OTEL_INSTRUMENTATION_HTTP_CLIENT_CAPTURE_RESPONSE_HEADERS', true),
    },
    instrumentationsByEnv: Boolean(env.OTEL_NODE_ENABLED_INSTRUMENTATIONS),
    resourceAllow: resourceAllowList(env, options.resourceAllow),
    sampler: samplerFromEnv(env),
    handleSignals: options.handleSignals ?? true,
    summary: summaryOn(options, env),
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? num('SONDE_SHUTDOWN_TIMEOUT_MS') ?? 5000,
    recordCrashes: options.recordCrashes ?? bool('SONDE_RECORD_CRASHES') ?? true,
    crashFlushTimeoutMs: options.crashFlushTimeoutMs ?? num('SONDE_CRASH_FLUSH_TIMEOUT_MS') ?? 2000,
  };
}

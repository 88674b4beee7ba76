/**
 * start() / shutdown(): the OpenTelemetry Node SDK with the auto-instrumentations, wired for Sonde:
 * consent gates in front of every signal, redaction before export, OTLP/HTTP export through a
 * transmission gate and a bounded buffer, runtime metrics and log sending on, node:sqlite traced,
 * graceful flush on SIGTERM/SIGINT and beforeExit, and one start-up summary line.
 *
 * This file is the wiring only; each concern lives beside it (README, Layout): the configuration
 * from options and environment (env.ts), the consent sampler and processors (consent-processors.ts),
 * the exporters per signal and protocol (exporters.ts), the instrumentations (instrumentations.ts),
 * the resource (resource.ts), flush, shutdown and process signals (lifecycle.ts), the module state
 * (state.ts), Sonde's own stderr line and self-metrics (self.ts).
 */
import { type Attributes, logs, metrics, trace } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { CONSENT_SCOPE, consentState, pseudonymiser } from './consent';
import { ConsentSampler } from './consent-processors';
import { installCrashHandlers } from './crash';
import { envBool, resolveConfig, resolveConsent, type SondeConfig, type SondeOptions, summaryOn } from './env';
import { setEventsActive } from './events';
import {
  createLogRecordProcessors,
  createMetricReaders,
  createShipper,
  createSpanProcessors,
  createStartupChoicesExporter,
  type ExportContext,
} from './exporters';
import { bridgeApiLogs, createInstrumentations, followPerformanceConsent } from './instrumentations';
import { flush, installSignalHandlers } from './lifecycle';
import { ConsentMeterProvider } from './metrics-consent';
import { registerProcessMetrics } from './process-metrics';
import { setupRedaction } from './redaction';
import { baseResource, resourceDetectors } from './resource';
import { dropCounter, logLine, registerSelfMetrics, SELF_SCOPE, VERSION } from './self';
import { instrumentSqlite } from './sqlite';
import { sendStartupChoices, serviceNameOf, startupChoices } from './startup-consent';
import { type State, sdkState } from './state';
import { type Gate, SIGNALS } from './types';

export { resolveConsent, type SondeOptions, samplerFromEnv } from './env';
export { flush, shutdown } from './lifecycle';
export { logLine, SELF_SCOPE, VERSION } from './self';

export interface SondeStatus {
  started: boolean;
  disabled: boolean;
  dropped: Record<string, number>;
  bufferedBytes: number;
  bufferedRequests: number;
  sentRequests: number;
}

/** Starts the SDK once per process (later calls return the same status). Never throws for the app's sake. */
export function start(options: SondeOptions = {}, env: NodeJS.ProcessEnv = process.env): SondeStatus {
  if (sdkState.current || sdkState.disabled) return status();
  if (envBool(env, 'OTEL_SDK_DISABLED')) {
    sdkState.disabled = true;
    if (summaryOn(options, env)) logLine('info', 'sonde: off (OTEL_SDK_DISABLED=true)', { version: VERSION });
    return status();
  }
  try {
    startInner(options, env);
  } catch (err) {
    logLine('error', `sonde: not started: ${(err as Error).message}`);
    sdkState.disabled = true;
  }
  return status();
}

function startInner(options: SondeOptions, env: NodeJS.ProcessEnv): void {
  const consent = resolveConsent(env, options.consent, options.essential);
  consentState.init(consent.granted);
  const config = resolveConfig(options, env, consent);
  const redaction = config.redaction === false ? undefined : setupRedaction(config.redaction, config.hmacKey);

  const dropped = new Map<string, number>();
  const countDrop = dropCounter(dropped);
  const gateRef: { gate?: Gate } = { gate: options.gate };
  const shipper = createShipper(config, gateRef, countDrop);
  const exportCtx: ExportContext = { config, shipper, countDrop, redactor: redaction?.redactor };

  // Per signal: exporter(s) behind the consent processor; then the instrumentations.
  const spanProcessors = createSpanProcessors(exportCtx);
  const logRecordProcessors = createLogRecordProcessors(exportCtx);
  const metricReaders = createMetricReaders(exportCtx);
  const instrumentations = createInstrumentations(config, {
    user: options.instrumentations,
    exportPaths: new Set(SIGNALS.map((sig) => new URL(config.signals[sig].target.url).pathname)),
  });

  const sdk = new NodeSDK({
    resource: baseResource(VERSION, options.resourceAttributes),
    resourceDetectors: resourceDetectors(env, config.resourceAllow),
    serviceName: options.serviceName,
    sampler: new ConsentSampler(config.sampler),
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
  const choices = config.countOptOut ? startupChoices(env, options.consent, consent) : [];
  const choicesExporter = choices.length > 0 ? createStartupChoicesExporter(exportCtx) : undefined;
  const choicesProvider = choicesExporter
    ? sendStartupChoices(
        choices,
        serviceNameOf(env, options.serviceName, options.resourceAttributes),
        choicesExporter,
        VERSION,
      )
    : undefined;

  const sqlite = instrumentSqlite(() => trace.getTracer('@sonde/node/sqlite', VERSION));
  consentState.attachRecorder({
    logger: logs.getLogger(CONSENT_SCOPE, VERSION),
    pseudonym: pseudonymiser((config.redaction !== false && config.redaction.hmac_key) || config.hmacKey),
    warnNoKey: () =>
      logLine(
        'warn',
        'sonde: consent.record() was given a subject but no HMAC key is set (SONDE_HMAC_KEY): the subject is left out and each record counts as an anonymous person',
      ),
  });
  const meter = sdkMeterProvider.getMeter(SELF_SCOPE, VERSION);
  registerSelfMetrics(meter, {
    dropped,
    bufferedBytes: () => shipper.buffer.bytes,
    bufferDir: config.bufferDir,
    bufferMaxBytes: config.bufferMaxBytes,
  });
  const runtime = followPerformanceConsent(instrumentations);
  registerProcessMetrics(meter, () => runtime !== undefined && consentState.get('performance'));
  setEventsActive(true, VERSION);

  const state: State = {
    sdk,
    shipper,
    dropped,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    listeners: [],
    gateRef,
    choicesProvider,
  };
  sdkState.current = state;
  if (config.handleSignals) installSignalHandlers(state);
  if (config.recordCrashes)
    installCrashHandlers({
      logger: logs.getLogger(SELF_SCOPE, VERSION),
      flush,
      flushTimeoutMs: config.crashFlushTimeoutMs,
    });

  if (config.summary)
    printSummary(sdk, config, {
      redaction: redaction?.describe ?? 'off',
      gate: gateRef.gate ? 'host gate' : 'none',
      instrumentations: instrumentations.length + (sqlite ? 1 : 0),
      esm: options.esmHooks === true,
    });
}

/** The start-up summary line: what is on, where it goes (never a secret). */
function printSummary(
  sdk: NodeSDK,
  config: SondeConfig,
  o: { redaction: string; gate: string; instrumentations: number; esm: boolean },
): void {
  const resourceAttrs = (sdk as unknown as { _resource?: { attributes: Attributes } })._resource?.attributes ?? {};
  logLine('info', 'sonde: instrumented', {
    version: VERSION,
    service: resourceAttrs['service.name'],
    endpoint:
      config.protocol === 'grpc'
        ? 'grpc (OTEL_EXPORTER_OTLP_ENDPOINT or localhost:4317)'
        : config.signals.traces.target.url.replace(/\/v1\/traces$/, ''),
    protocol: config.protocol,
    signals: Object.fromEntries(SIGNALS.map((s) => [s, config.signals[s].exporters.join('+') || 'none'])),
    consent: consentState.snapshot(),
    doNotTrack: config.consent.doNotTrack,
    redaction: o.redaction,
    gate: o.gate,
    buffer: `${config.bufferDir ? `disk ${config.bufferDir}` : 'memory'} ${config.bufferMaxBytes} B`,
    instrumentations: o.instrumentations,
    runtimeMetrics: config.runtimeMetrics && consentState.get('performance'),
    logSending: config.logSending,
    esm: o.esm,
  });
}

/** Replaces the transmission gate at run time (undefined: always open). */
export function setTransmissionGate(gate: Gate | undefined): void {
  if (sdkState.current) sdkState.current.gateRef.gate = gate;
}

/** Tries to send what the buffer holds now, e.g. right after the host's gate opened. */
export function drainBuffer(): Promise<void> {
  return sdkState.current?.shipper?.drain() ?? Promise.resolve();
}

export function status(): SondeStatus {
  const s = sdkState.current;
  return {
    started: s !== undefined,
    disabled: sdkState.disabled,
    dropped: Object.fromEntries(s?.dropped ?? []),
    bufferedBytes: s?.shipper?.buffer.bytes ?? 0,
    bufferedRequests: s?.shipper?.buffer.length ?? 0,
    sentRequests: s?.shipper?.sent ?? 0,
  };
}

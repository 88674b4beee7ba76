/**
 * The auto-instrumentations with Sonde's defaults (README, "Defaults that differ from the upstream
 * SDK"): Sonde's own OTLP requests neither traced nor measured, no express layer spans, dns, net and
 * router off, log sending per `logSending`, HTTP header capture from OTEL_INSTRUMENTATION_HTTP_*;
 * runtime metrics that follow `performance` consent; winston's logs API given the SDK's provider.
 */
import { diag, logs } from '@opentelemetry/api';
import { getNodeAutoInstrumentations, type InstrumentationConfigMap } from '@opentelemetry/auto-instrumentations-node';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { consentState } from './consent';
import type { SondeConfig } from './env';

/** The configuration getNodeAutoInstrumentations gets: Sonde's defaults, the user's `instrumentations` over them. */
export function instrumentationConfig(
  config: SondeConfig,
  o: { user?: InstrumentationConfigMap; exportPaths: Set<string> },
): InstrumentationConfigMap {
  const user = o.user ?? {};
  const userIgnore = user['@opentelemetry/instrumentation-http']?.ignoreOutgoingRequestHook;
  const cfg: InstrumentationConfigMap = { ...user };
  const { serverRequest, serverResponse, clientRequest, clientResponse } = config.captureHeaders;
  cfg['@opentelemetry/instrumentation-http'] = {
    ...(serverRequest || serverResponse || clientRequest || clientResponse
      ? {
          headersToSpanAttributes: {
            server: { requestHeaders: serverRequest, responseHeaders: serverResponse },
            client: { requestHeaders: clientRequest, responseHeaders: clientResponse },
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
    disableLogSending: !config.logSending,
    ...user['@opentelemetry/instrumentation-pino'],
  };
  cfg['@opentelemetry/instrumentation-winston'] = {
    disableLogSending: !config.logSending,
    ...user['@opentelemetry/instrumentation-winston'],
  };
  // Sonde default: no span per express middleware (json parser, cors, ...) nor per route handler: they
  // are most of an express app's spans and cost, and say little that the server span (named by its
  // route, `http.route` set by this same instrumentation) does not. SONDE_EXPRESS_HANDLER_SPANS=true
  // brings the route-handler spans back; `ignoreLayersType: []` restores every layer span.
  cfg['@opentelemetry/instrumentation-express'] = {
    ignoreLayersType: (config.expressHandlerSpans ? ['middleware'] : ['middleware', 'request_handler']) as never[],
    ...user['@opentelemetry/instrumentation-express'],
  };
  if (!config.instrumentationsByEnv) {
    // Sonde defaults: dns and net spans are noise under every HTTP call, and cost; the router
    // instrumentation doubles every express 5 layer span (express 5 runs on the router package).
    // Opt back in by name (OTEL_NODE_ENABLED_INSTRUMENTATIONS).
    cfg['@opentelemetry/instrumentation-dns'] = { enabled: false, ...user['@opentelemetry/instrumentation-dns'] };
    cfg['@opentelemetry/instrumentation-net'] = { enabled: false, ...user['@opentelemetry/instrumentation-net'] };
    cfg['@opentelemetry/instrumentation-router'] = { enabled: false, ...user['@opentelemetry/instrumentation-router'] };
    if (!config.runtimeMetrics)
      cfg['@opentelemetry/instrumentation-runtime-node'] = {
        enabled: false,
        ...user['@opentelemetry/instrumentation-runtime-node'],
      };
  }
  return cfg;
}

/** The auto-instrumentations, configured (not yet registered: NodeSDK does that). */
export function createInstrumentations(
  config: SondeConfig,
  o: { user?: InstrumentationConfigMap; exportPaths: Set<string> },
): Instrumentation[] {
  return getNodeAutoInstrumentations(instrumentationConfig(config, o));
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

/** Runtime metrics run only while `performance` is granted process-wide; returns the runtime instrumentation, if any. */
export function followPerformanceConsent(instrumentations: Instrumentation[]): Instrumentation | undefined {
  const runtime = instrumentations.find((i) => i.instrumentationName === '@opentelemetry/instrumentation-runtime-node');
  toggleRuntime(runtime, consentState.get('performance'));
  consentState.onChange((category, granted) => {
    if (category === 'performance') toggleRuntime(runtime, granted);
  });
  return runtime;
}

/**
 * @opentelemetry/winston-transport emits through @opentelemetry/api-logs, whose global is not the one
 * of @opentelemetry/api's `logs`: give it the same provider so winston records are sent too.
 */
export function bridgeApiLogs(): void {
  try {
    const apiLogs = require('@opentelemetry/api-logs') as {
      logs: { setGlobalLoggerProvider(p: unknown): unknown };
    };
    apiLogs.logs.setGlobalLoggerProvider(logs.getLoggerProvider());
  } catch {
    // api-logs absent: winston log sending is unavailable, correlation still works
  }
}

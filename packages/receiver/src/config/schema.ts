/**
 * The receiver's configuration: the components' sections, composed into one schema that validates the
 * YAML file, fills in the documented defaults and yields the typed settings. Keys are snake_case, as
 * in the OpenTelemetry Collector. Each section, with its defaults and its conversion to the
 * component's options, lives beside its component in a `config.ts` (as a Collector component's
 * `config.go`); this file only says where each one goes, and holds the receiver's own keys (`log`,
 * `shutdown_timeout`, `data_dir`). The root README's configuration reference lists every key: keep
 * them in step (a test checks it).
 */
import { z } from 'zod';
import { adminSection, debugSection } from '../admin/config';
import { consentPeopleSection } from '../consent/config';
import { erasureSection } from '../erasure/config';
import { eventMetricsSection } from '../events/config';
import { lokiSection, tempoSection } from '../export/config';
import { limitsSection, otlpSection, overloadSection } from '../intake/config';
import { logStoreSection } from '../log-store/config';
import { redactionSection } from '../pipeline/config';
import { prometheusSection } from '../prometheus/config';
import { traceStoreSection } from '../trace-store/config';
import { serviceGraphSection, spanMetricsSection } from '../traces/config';
import { workersField } from '../workers/config';
import { duration } from './fields';

export const configSchema = z.strictObject({
  /** The OTLP/HTTP and OTLP/gRPC listeners (src/intake/config.ts). */
  otlp: otlpSection,
  /** The admin listener (src/admin/config.ts). */
  admin: adminSection,
  /** What one request may hold (src/intake/config.ts). */
  limits: limitsSection,
  /** Admission under load (src/intake/config.ts). */
  overload: overloadSection,
  prometheus: prometheusSection,
  span_metrics: spanMetricsSection,
  event_metrics: eventMetricsSection,
  erasure: erasureSection,
  consent_people: consentPeopleSection,
  service_graph: serviceGraphSection,
  /** Forwarding of traces to Tempo (src/export/config.ts). */
  tempo: tempoSection,
  /** Forwarding of logs to Loki's OTLP intake (src/export/config.ts). */
  loki: lokiSection,
  /** The redaction processor (src/pipeline/config.ts). */
  redaction: redactionSection,
  /** The embedded trace store with Tempo's query API (src/trace-store/config.ts). */
  trace_store: traceStoreSection,
  /** The embedded log store with Loki's query API, on the same engine (src/log-store/config.ts). */
  log_store: logStoreSection,
  /** /debug/recent (src/admin/config.ts). */
  debug: debugSection,
  log: z
    .strictObject({
      /** pino level: fatal, error, warn, info, debug, trace or silent. At debug, every request is logged. */
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Interval of the "received" summary line at info level (0 turns it off). */
      summary_interval: duration.default(60_000),
    })
    .prefault({}),
  /** Worker threads that decode and process traces and logs: 0 (all on the main thread), N, or auto (src/workers/config.ts). */
  workers: workersField,
  /** Bounded time to drain in-flight requests on SIGTERM/SIGINT. */
  shutdown_timeout: duration.default(10_000),
  /** Directory for persistent state (export queue, trace store). */
  data_dir: z.string().min(1).default('./.sonde-data'),
});

/** Formerly defined here; the redaction section lives in src/pipeline/config.ts. */
export { END_USER_KEYS, toRedactionConfig } from '../pipeline/config';

/** The validated configuration, with every default filled in. */
export type ReceiverConfig = z.output<typeof configSchema>;
/** What a configuration file may contain (every key optional). */
export type ReceiverConfigInput = z.input<typeof configSchema>;

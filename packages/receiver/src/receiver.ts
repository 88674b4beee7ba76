/**
 * Wires the receiver together from its configuration and runs it: the components (components.ts),
 * the OTLP/HTTP and OTLP/gRPC intakes, and the admin server. Each component's config section and its
 * conversion to the component's options live beside the component (`config.ts`). `startReceiver`
 * resolves once every listener is bound; `close()` stops accepting, drains in-flight requests
 * (bounded by shutdown_timeout) and flushes the pipeline's consumers.
 */
import { startAdmin } from './admin/start';
import { buildComponents } from './components';
import type { ReceiverConfig } from './config/schema';
import { Admission } from './intake/admission';
import { toAdmissionOptions, toHandlerOptions } from './intake/config';
import { ExportHandler } from './intake/export-handler';
import { type StartedListener, startOtlpListeners } from './intake/listeners';
import type { LogStore } from './log-store/log-store';
import { createLogger, type Logger } from './logger';
import { ITEM_NAME, SIGNALS } from './model';
import { Pipeline } from './pipeline/pipeline';
import type { RecentTelemetry } from './pipeline/recent';
import { openListenerSecurity } from './security/config';
import { SelfMetrics } from './self-metrics';
import type { TraceStore } from './trace-store/trace-store';
import { type IntakeWorkers, startIntakeWorkers } from './workers/pool';

export interface ReceiverAddresses {
  /** "host:port" of each listener, or undefined when it is off. */
  otlpHttp: string | undefined;
  otlpGrpc: string | undefined;
  admin: string | undefined;
}

export interface Receiver {
  readonly addresses: ReceiverAddresses;
  readonly pipeline: Pipeline;
  readonly metrics: SelfMetrics;
  readonly logger: Logger;
  /** The embedded trace store, when it is on (trace_store.enabled). */
  readonly traceStore: TraceStore | undefined;
  /** The embedded log store, when it is on (log_store.enabled): a LogSource for Loki's query API. */
  readonly logStore: LogStore | undefined;
  readonly recent: {
    traces: RecentTelemetry<'traces'>;
    metrics: RecentTelemetry<'metrics'>;
    logs: RecentTelemetry<'logs'>;
  };
  /** The intake workers (`workers` ≥ 1), undefined in single-thread mode. */
  readonly intakeWorkers: IntakeWorkers | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Register process and Node runtime metrics (default true; tests that start many receivers turn it off). */
  defaultMetrics?: boolean;
}

export async function startReceiver(config: ReceiverConfig, options: StartOptions = {}): Promise<Receiver> {
  const logger = options.logger ?? createLogger(config.log.level);
  const metrics = new SelfMetrics({ defaultMetrics: options.defaultMetrics });
  const pipeline = new Pipeline();
  const components = await buildComponents(config, pipeline, metrics, logger);
  const { traceStore, logStore, recent } = components;
  const workers = await startIntakeWorkers(config, metrics, logger).catch(async (err: unknown) => {
    await pipeline.shutdown();
    throw err;
  });
  const admission = new Admission(toAdmissionOptions(config.overload), metrics);
  const handler = new ExportHandler(toHandlerOptions(config), pipeline, admission, metrics, logger, workers);

  let draining = false;
  let listening = false;
  const otlp: { http?: StartedListener; grpc?: StartedListener } = {};
  let admin: StartedListener | undefined;
  /** The certificate and token files being watched, closed with the receiver. */
  const watched: { close(): void }[] = [];
  const closeListeners = (which: (StartedListener | undefined)[]) =>
    Promise.all(which.map((l) => l?.close(config.shutdown_timeout)));
  try {
    const security = openListenerSecurity(config, logger, watched);
    const state = { ready: () => listening && !draining };
    admin = await startAdmin(config, components, security, state, metrics, logger);
    await startOtlpListeners(config.otlp, config.limits, handler, security, metrics, logger, otlp);
  } catch (err) {
    await Promise.allSettled([closeListeners([otlp.http, otlp.grpc]), closeListeners([admin])]);
    for (const w of watched) w.close();
    await traceStore?.shutdown();
    await logStore?.shutdown();
    await workers?.close();
    admission.close();
    throw err;
  }
  listening = true;
  const addresses: ReceiverAddresses = {
    otlpHttp: otlp.http?.address,
    otlpGrpc: otlp.grpc?.address,
    admin: admin?.address,
  };
  logger.info(
    {
      ...addresses,
      tempo: config.tempo.endpoint || undefined,
      loki: config.loki.endpoint || undefined,
      traceStore: traceStore?.options.path,
      logStore: logStore?.options.path,
      dataDir: config.data_dir,
      workers: workers?.count ?? 0,
    },
    'sonde-receiver listening',
  );

  const summary = new ReceivedSummary(logger, handler.received);
  const summaryTimer =
    config.log.summary_interval > 0 ? setInterval(() => summary.log(), config.log.summary_interval).unref() : undefined;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      if (summaryTimer) clearInterval(summaryTimer);
      await closeListeners([otlp.http, otlp.grpc]);
      await workers?.close();
      await pipeline.shutdown();
      admission.close();
      await closeListeners([admin]);
      for (const w of watched) w.close();
      summary.log();
      logger.info('sonde-receiver stopped');
    })();
    return closing;
  };
  return { addresses, pipeline, metrics, logger, recent, traceStore, logStore, intakeWorkers: workers, close };
}

/** The periodic "received N spans, ..." line: what arrived since the previous line, if anything. */
class ReceivedSummary {
  private readonly last = { traces: 0, metrics: 0, logs: 0 };

  constructor(
    private readonly logger: Logger,
    private readonly received: ExportHandler['received'],
  ) {}

  log(): void {
    const delta = SIGNALS.map((s) => this.received[s] - this.last[s]);
    if (delta.every((d) => d === 0)) return;
    this.logger.info(
      { spans: delta[0], dataPoints: delta[1], logRecords: delta[2] },
      `received ${SIGNALS.map((s, i) => `${delta[i]} ${ITEM_NAME[s]}`).join(', ')}`,
    );
    for (const s of SIGNALS) this.last[s] = this.received[s];
  }
}

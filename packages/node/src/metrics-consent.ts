/**
 * Per-request withdrawal of `performance` for metrics. The application's and the instrumentations'
 * meters come from a wrapper of the SDK's MeterProvider whose synchronous instruments (counter,
 * up-down counter, histogram, gauge) drop a measurement recorded where `performance` is withdrawn:
 * in a consent scope (`withConsent({ performance: false })`, the `sonde.consent` baggage), or in a
 * trace whose scope withdrew it (the HTTP server duration is recorded when the response ends, in the
 * server span's context, outside the middleware's scope). The measurement is not recorded at all, so
 * no sum, count or bucket holds it.
 *
 * Why here rather than in a view or the exporter: an aggregated point cannot be taken apart at export
 * time, and views see attributes only, not the context. Observable instruments are read by the SDK
 * outside any request and are left as they are; a process-wide withdrawal of `performance` drops
 * every point at export (consent-processors.ts).
 */
import {
  type Attributes,
  type Context,
  context,
  type Meter,
  type MeterOptions,
  type MeterProvider,
  type MetricOptions,
  trace,
} from '@opentelemetry/api';
import { consentState, isPerformanceWithdrawnInTrace } from './consent';

/** Whether a measurement recorded in `ctx` may be kept. */
export function performanceGrantedIn(ctx: Context): boolean {
  if (!consentState.isGranted('performance', ctx)) return false;
  const span = trace.getSpan(ctx);
  return !(span && isPerformanceWithdrawnInTrace(span.spanContext().traceId));
}

type Recorder = { [k: string]: unknown };

function gate<T extends object>(instrument: T, method: 'add' | 'record'): T {
  const inner = instrument as unknown as Recorder;
  const fn = inner[method] as (value: number, attributes?: Attributes, ctx?: Context) => void;
  const wrapped = Object.create(instrument) as Recorder;
  wrapped[method] = (value: number, attributes?: Attributes, ctx?: Context) => {
    if (!performanceGrantedIn(ctx ?? context.active())) return;
    fn.call(instrument, value, attributes, ctx);
  };
  return wrapped as unknown as T;
}

function wrapMeter(meter: Meter): Meter {
  const m = Object.create(meter) as Meter;
  m.createCounter = (name: string, options?: MetricOptions) => gate(meter.createCounter(name, options), 'add');
  m.createUpDownCounter = (name: string, options?: MetricOptions) =>
    gate(meter.createUpDownCounter(name, options), 'add');
  m.createHistogram = ((name: string, options?: MetricOptions) =>
    gate(meter.createHistogram(name, options), 'record')) as Meter['createHistogram'];
  m.createGauge = (name: string, options?: MetricOptions) => gate(meter.createGauge(name, options), 'record');
  return m;
}

/** The SDK's MeterProvider, its meters' synchronous instruments gated by `performance` consent. */
export class ConsentMeterProvider implements MeterProvider {
  constructor(readonly inner: MeterProvider) {}
  getMeter(name: string, version?: string, options?: MeterOptions): Meter {
    return wrapMeter(this.inner.getMeter(name, version, options));
  }
  forceFlush(): Promise<void> {
    return (this.inner as { forceFlush?(): Promise<void> }).forceFlush?.() ?? Promise.resolve();
  }
  shutdown(): Promise<void> {
    return (this.inner as { shutdown?(): Promise<void> }).shutdown?.() ?? Promise.resolve();
  }
}

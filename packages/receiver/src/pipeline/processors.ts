/**
 * Each signal's processors, in the order they run, built from the configuration: the main thread's
 * pipeline (components.ts) and each intake worker's (src/workers/intake-worker.ts) build theirs here.
 */
import type { ReceiverConfig } from '../config/schema';
import type { SelfMetrics } from '../self-metrics';
import { AttributeLimitsProcessor } from './attribute-limits';
import { toAttributeLimits, toRedactionConfig } from './config';
import type { Processor } from './pipeline';
import { Redaction } from './redaction';

export interface SignalProcessors {
  traces: Processor<'traces'>[];
  metrics: Processor<'metrics'>[];
  logs: Processor<'logs'>[];
}

export function buildProcessors(config: ReceiverConfig, metrics: SelfMetrics): SignalProcessors {
  const limits = toAttributeLimits(config.limits);
  const processors: SignalProcessors = { traces: [], metrics: [], logs: [] };
  // Redaction runs before the attribute limits, so that truncation cannot cut a value (an email, a
  // card number) to a piece the detectors no longer recognise.
  if (config.redaction.enabled) {
    const redaction = new Redaction(toRedactionConfig(config.redaction), metrics.registry);
    processors.traces.push(redaction.processor());
    processors.metrics.push(redaction.processor());
    processors.logs.push(redaction.processor());
  }
  processors.traces.push(new AttributeLimitsProcessor(limits, metrics));
  processors.metrics.push(new AttributeLimitsProcessor(limits, metrics));
  processors.logs.push(new AttributeLimitsProcessor(limits, metrics));
  return processors;
}

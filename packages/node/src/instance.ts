/**
 * `service.instance.id`: one random UUID per process, as OpenTelemetry's semantic conventions
 * recommend, so that replicas of a service (and a restarted process) write their own metric series
 * (Prometheus `instance`) instead of overwriting each other's cumulative counters.
 *
 * Given in `OTEL_RESOURCE_ATTRIBUTES` (`service.instance.id=…`) or in the `resourceAttributes` option,
 * that value is used instead: both are merged over this default.
 */
import { randomUUID } from 'node:crypto';
import type { Attributes } from '@opentelemetry/api';

let processInstanceId: string | undefined;

/** The default instance attribute of this process's resource: the same UUID for every start() in it. */
export function defaultInstanceAttributes(): Attributes {
  processInstanceId ??= randomUUID();
  return { 'service.instance.id': processInstanceId };
}

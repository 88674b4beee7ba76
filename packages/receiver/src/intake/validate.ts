/**
 * Semantic validation of a decoded request, after decoding succeeded: items that the OTLP
 * specification calls invalid are rejected one by one (the rest is accepted, and the client is
 * told through partial_success), and the per-request item limit is applied.
 *
 * - spans need a non-zero 16-byte trace id and a non-zero 8-byte span id;
 * - metrics need a name;
 * - items beyond `maxItems` are rejected, the first `maxItems` accepted.
 */
import type { ResourceLogs, ResourceMetrics, ResourceSpans, Signal, SignalData } from '../model';

export interface Rejection {
  /** Items accepted (what remains in the data). */
  kept: number;
  /** Items rejected. */
  count: number;
  /** One line per kind of problem, for partial_success.error_message. */
  messages: string[];
  /** Items rejected because of the per-request limit (part of `count`). */
  overLimit: number;
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

export function validateRequest<S extends Signal>(signal: S, data: SignalData[S], maxItems: number): Rejection {
  const rejection: Rejection = { kept: 0, count: 0, messages: [], overLimit: 0 };
  if (signal === 'traces') validateSpans(data as ResourceSpans[], maxItems, rejection);
  else if (signal === 'metrics') validateMetrics(data as ResourceMetrics[], maxItems, rejection);
  else validateLogs(data as ResourceLogs[], maxItems, rejection);
  if (rejection.overLimit > 0) {
    rejection.messages.push(
      `request holds more than ${maxItems} items (limits.max_items_per_request): ${rejection.overLimit} were rejected; send smaller batches`,
    );
  }
  return rejection;
}

function validateSpans(data: ResourceSpans[], maxItems: number, rejection: Rejection): void {
  let kept = 0;
  let badTrace = 0;
  let badSpan = 0;
  for (const rs of data) {
    for (const ss of rs.scopeSpans) {
      const spans = ss.spans;
      let write = 0;
      for (let read = 0; read < spans.length; read++) {
        const span = spans[read];
        if (span.traceId === '' || span.traceId === ZERO_TRACE_ID) badTrace++;
        else if (span.spanId === '' || span.spanId === ZERO_SPAN_ID) badSpan++;
        else if (kept >= maxItems) rejection.overLimit++;
        else {
          kept++;
          spans[write++] = span;
        }
      }
      spans.length = write;
    }
  }
  if (badTrace > 0) rejection.messages.push(`${badTrace} spans rejected: trace_id is missing or all zeros`);
  if (badSpan > 0) rejection.messages.push(`${badSpan} spans rejected: span_id is missing or all zeros`);
  rejection.count += badTrace + badSpan + rejection.overLimit;
  rejection.kept = kept;
}

function validateMetrics(data: ResourceMetrics[], maxItems: number, rejection: Rejection): void {
  let kept = 0;
  let unnamed = 0;
  for (const rm of data) {
    for (const sm of rm.scopeMetrics) {
      const metrics = sm.metrics;
      let write = 0;
      for (let read = 0; read < metrics.length; read++) {
        const metric = metrics[read];
        const points = metric.data.dataPoints.length;
        if (metric.name === '') {
          unnamed += points;
          continue;
        }
        if (kept + points > maxItems) {
          const room = maxItems - kept;
          rejection.overLimit += points - room;
          if (room === 0) continue;
          metric.data.dataPoints.length = room;
        }
        kept += metric.data.dataPoints.length;
        metrics[write++] = metric;
      }
      metrics.length = write;
    }
  }
  if (unnamed > 0) rejection.messages.push(`${unnamed} data points rejected: their metric has no name`);
  rejection.count += unnamed + rejection.overLimit;
  rejection.kept = kept;
}

function validateLogs(data: ResourceLogs[], maxItems: number, rejection: Rejection): void {
  let kept = 0;
  for (const rl of data) {
    for (const sl of rl.scopeLogs) {
      if (kept + sl.logRecords.length > maxItems) {
        const room = maxItems - kept;
        rejection.overLimit += sl.logRecords.length - room;
        sl.logRecords.length = room;
      }
      kept += sl.logRecords.length;
    }
  }
  rejection.count += rejection.overLimit;
  rejection.kept = kept;
}

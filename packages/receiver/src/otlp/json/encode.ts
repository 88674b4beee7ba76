/**
 * OTLP/JSON encoder: the inverse of decode.ts, for the debug endpoint and for round-trip tests.
 *
 * It writes what a protobuf JSON printer writes under the OTLP rules: lowerCamelCase keys, hex ids,
 * 64-bit integers as decimal strings, enums as integers, bytes as base64, non-finite doubles as
 * "NaN"/"Infinity"/"-Infinity", and fields equal to their zero value left out (except the members
 * of a oneof and the optional histogram sum/min/max, whose presence is meaningful). Not a hot path:
 * it favours plainness over speed.
 *
 * This file writes the request; each signal's messages are written by encode-traces.ts,
 * encode-metrics.ts and encode-logs.ts, the messages they share by encode-common.ts.
 */
import type { ResourceLogs, ResourceMetrics, ResourceSpans, Signal, SignalData } from '../../model';
import type { JsonObject } from './encode-common';
import { encodeResourceLogs } from './encode-logs';
import { encodeResourceMetrics } from './encode-metrics';
import { encodeResourceSpans } from './encode-traces';

/** The OTLP JSON export request (`{resourceSpans: [...]}` etc.) carrying `data`. */
export function encodeJsonRequest<S extends Signal>(signal: S, data: SignalData[S]): Record<string, unknown> {
  switch (signal) {
    case 'traces':
      return { resourceSpans: (data as ResourceSpans[]).map(encodeResourceSpans) };
    case 'metrics':
      return { resourceMetrics: (data as ResourceMetrics[]).map(encodeResourceMetrics) };
    case 'logs':
      return { resourceLogs: (data as ResourceLogs[]).map(encodeResourceLogs) };
  }
  throw new Error(`unknown signal ${String(signal)}`);
}

/** The request's one field: the list of resources (`resourceSpans`, ...). */
export const JSON_RESOURCES_FIELD = {
  traces: 'resourceSpans',
  metrics: 'resourceMetrics',
  logs: 'resourceLogs',
} as const;

/** One item of that list (a request encoded resource by resource: /debug/recent's render in pieces). */
export function encodeJsonResource<S extends Signal>(signal: S, resource: SignalData[S][number]): JsonObject {
  switch (signal) {
    case 'traces':
      return encodeResourceSpans(resource as ResourceSpans);
    case 'metrics':
      return encodeResourceMetrics(resource as ResourceMetrics);
    case 'logs':
      return encodeResourceLogs(resource as ResourceLogs);
  }
  throw new Error(`unknown signal ${String(signal)}`);
}

/**
 * The Tempo exporter: forwards traces to Tempo (or any OTLP/HTTP traces endpoint) as protobuf, to
 * `<base>/v1/traces`. An OtlpHttpExporter (otlp-http-exporter.ts: queue, batching, retry, TLS,
 * persistent queue) carrying spans; its self-metrics are `sonde_exporter_*{exporter="tempo"}` and
 * `sonde_exporter_sent_spans_total`, `sonde_exporter_send_failed_spans_total{reason}`.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ResourceSpans } from '../model';
import { encodeTraceRequest } from '../otlp/protobuf/encode-traces';
import {
  type ExportSignal,
  OtlpHttpExporter,
  type OtlpHttpExporterOptions,
  type OtlpHttpExporterOptionsInput,
} from './otlp-http-exporter';

export { tempoEndpoint } from './config';
export { checkHeaders, headerProblem, parseHeaders, parseRetryAfter, partialSuccess } from './http';
export type { RetryOptions, SendFailedReason, TlsOptions } from './otlp-http-exporter';

export type TempoExporterOptions = OtlpHttpExporterOptions;
export type TempoExporterOptionsInput = OtlpHttpExporterOptionsInput;

export const TRACES_SIGNAL: ExportSignal<'traces'> = {
  name: 'tempo',
  backend: 'Tempo',
  section: 'tempo',
  items: 'spans',
  metricItems: 'spans',
  jsonRejectedField: 'rejectedSpans',
  encode: encodeTraceRequest,
  count: countSpans,
};

export class TempoExporter extends OtlpHttpExporter<'traces'> {
  constructor(options: TempoExporterOptionsInput, registry: Registry, logger: Logger) {
    super(TRACES_SIGNAL, options, registry, logger);
  }
}

function countSpans(data: readonly ResourceSpans[]): number {
  let n = 0;
  for (const rs of data) for (const ss of rs.scopeSpans) n += ss.spans.length;
  return n;
}

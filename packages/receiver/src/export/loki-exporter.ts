/**
 * The Loki exporter: forwards logs to Loki's native OTLP intake (or any OTLP/HTTP logs endpoint) as
 * protobuf, to `<base>/otlp/v1/logs`. An OtlpHttpExporter (otlp-http-exporter.ts: queue, batching,
 * retry, TLS, persistent queue) carrying log records; its self-metrics are
 * `sonde_exporter_*{exporter="loki"}` and `sonde_exporter_sent_log_records_total`,
 * `sonde_exporter_send_failed_log_records_total{reason}`.
 *
 * Loki answers a push with 204 and an empty body (no ExportLogsServiceResponse, so no partial
 * success); an OTLP receiver may answer 200 with a partial_success, which is counted. The tenant is
 * the `X-Scope-OrgID` header, set in `loki.headers`.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ResourceLogs } from '../model';
import { encodeLogsRequest } from '../otlp/protobuf/encode-logs';

export { lokiEndpoint } from './config';

import { type ExportSignal, OtlpHttpExporter, type OtlpHttpExporterOptionsInput } from './otlp-http-exporter';

export const LOGS_SIGNAL: ExportSignal<'logs'> = {
  name: 'loki',
  backend: 'Loki',
  section: 'loki',
  items: 'log records',
  metricItems: 'log_records',
  jsonRejectedField: 'rejectedLogRecords',
  encode: encodeLogsRequest,
  count: countLogRecords,
};

export class LokiExporter extends OtlpHttpExporter<'logs'> {
  constructor(options: OtlpHttpExporterOptionsInput, registry: Registry, logger: Logger) {
    super(LOGS_SIGNAL, options, registry, logger);
  }
}

function countLogRecords(data: readonly ResourceLogs[]): number {
  let n = 0;
  for (const rl of data) for (const sl of rl.scopeLogs) n += sl.logRecords.length;
  return n;
}

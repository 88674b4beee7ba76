/** @sonde/receiver: the OTLP receiver, as a library. The CLI is `sonde-receiver` (src/cli.ts). */
export { ConfigError, ENV_OVERRIDES, loadConfig, validateConfig } from './config/load';
export type { ReceiverConfig, ReceiverConfigInput } from './config/schema';
export { LokiExporter, lokiEndpoint } from './export/loki-exporter';
export { OtlpHttpExporter, type OtlpHttpExporterOptions } from './export/otlp-http-exporter';
export { parseHeaders, TempoExporter, type TempoExporterOptions, tempoEndpoint } from './export/tempo-exporter';
export { createLokiApi, LOKI_API_DEFAULTS, type LokiApiOptions } from './log-store/api';
export { LogDb } from './log-store/log-db';
export { LogStore, type LogStoreOptions } from './log-store/log-store';
export {
  type LabelMatcher,
  type LogSelection,
  type LogSource,
  type LokiEntry,
  toLokiEntries,
} from './log-store/loki-entry';
export { MemoryLogSource } from './log-store/memory-source';
export { createLogger } from './logger';
export * from './model';
export {
  GrpcCode,
  MalformedPayloadError,
  OtlpError,
  OverloadedError,
  PayloadTooLargeError,
  TooDeepError,
} from './otlp/errors';
export type { DecodeLimits } from './otlp/limits';
export { decodeLogsRequest } from './otlp/protobuf/decode-logs';
export { decodeMetricsRequest } from './otlp/protobuf/decode-metrics';
export { decodeTraceRequest } from './otlp/protobuf/decode-traces';
export { encodeLogsRequest } from './otlp/protobuf/encode-logs';
export type { Batch, Consumer, Processor, ReceiveContext } from './pipeline/pipeline';
export { Pipeline, SignalPipeline } from './pipeline/pipeline';
export { PrometheusConsumer, type PrometheusOptions } from './prometheus/consumer';
export { type Receiver, type ReceiverAddresses, type StartOptions, startReceiver } from './receiver';
export { SelfMetrics } from './self-metrics';
export { type Format as ExpositionFormat, writeFamilies } from './series/exposition';
export { MetricStore } from './series/store';
export { TraceDb } from './trace-store/db';
export { type ScanResult, scanTraceRequest } from './trace-store/scan';
export { TraceStore, type TraceStoreOptions } from './trace-store/trace-store';
export { ServiceGraphConsumer, type ServiceGraphOptions } from './traces/service-graph';
export { SpanMetricsConsumer, type SpanMetricsOptions } from './traces/span-metrics';

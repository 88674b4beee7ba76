/**
 * The OTLP/HTTP exporters' config: one section shape for every signal (`tempo:`, `loki:`), the
 * exporter's defaults (which the keys default to), the signals' endpoint URLs, and the conversion to
 * OtlpHttpExporterOptions (TLS files read, the persistent queue in <data_dir>/<section>-queue).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { duration, positiveInt, size } from '../config/fields';
import { ON_FULL, onFullKey } from '../queue/on-full';
import { checkHeaders, otlpEndpoint, parseHeaders } from './http';
import { DEFAULT_EXPORTER_OPTIONS, type OtlpHttpExporterOptionsInput, type TlsOptions } from './otlp-http-exporter';

/**
 * `SONDE_TEMPO_ENDPOINT`: a base URL as in OTEL_EXPORTER_OTLP_ENDPOINT; `/v1/traces` is appended
 * unless the URL already has a path other than `/`.
 */
export function tempoEndpoint(base: string): string {
  return otlpEndpoint(base, '/v1/traces', 'Tempo');
}

/**
 * `SONDE_LOKI_ENDPOINT`: Loki's base URL (`http://loki:3100`); `/otlp/v1/logs` is appended unless
 * the URL already has a path other than `/` (so `https://otlp.example/v1/logs` is kept as it is).
 */
export function lokiEndpoint(base: string): string {
  return otlpEndpoint(base, '/otlp/v1/logs', 'Loki');
}

/** The exporter's own defaults (what it takes when an option is left out) are the keys' defaults. */
const D = DEFAULT_EXPORTER_OPTIONS;

/**
 * An OTLP/HTTP exporter's section (`tempo:`, `loki:`): the same keys for every signal (one
 * OtlpHttpExporter, otlp-http-exporter.ts). `endpoint` turns a base URL into the signal's
 * endpoint; `headersVariable` names the environment variable in a header-list error.
 */
export function otlpExporterSection(endpoint: (base: string) => string, headersVariable: string) {
  return z
    .strictObject({
      /**
       * OTLP/HTTP endpoint to forward to: a base URL, to which the signal's path (tempo: /v1/traces,
       * loki: /otlp/v1/logs) is appended unless it has a path. Empty: no export.
       */
      endpoint: z
        .string()
        .default('')
        .transform((v, ctx) => {
          if (v.trim() === '') return '';
          try {
            return endpoint(v.trim());
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
            return z.NEVER;
          }
        }),
      /**
       * Headers on every export request: a map, or `key=value,key2=value2` as OTEL_EXPORTER_OTLP_HEADERS.
       * Names must be RFC 9110 tokens, values free of CR, LF and NUL; host, content-length,
       * transfer-encoding, connection and the other hop-by-hop headers cannot be set.
       */
      headers: z
        .union([z.string(), z.record(z.string(), z.string())])
        .default({})
        .transform((v, ctx) => {
          try {
            if (typeof v === 'string') return parseHeaders(v, headersVariable);
            checkHeaders(v);
            return v;
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
            return z.NEVER;
          }
        }),
      /**
       * Request body compression, level 1: zstd (less than half of gzip's CPU for a smaller body),
       * gzip or none. An endpoint that turns zstd down (415, or 400 naming the encoding; or another
       * 400 while a gzip-compressed resend of the same batch gets through, before it ever took zstd)
       * gets gzip from then on, the refused batch included, with one warning.
       */
      compression: z.enum(['zstd', 'gzip', 'none']).default(D.compression),
      /** Per-request timeout. */
      timeout: duration.default(D.timeoutMs),
      /** Bound of the export queue, in bytes of protobuf. */
      queue_size: size.default(D.queueBytes),
      /** When the queue is full (queue/on-full.ts): refuse new data with 503 + Retry-After (clients retry), accept it without queuing it (drop_newest), or drop the oldest queued data (drop_oldest); drops are counted. */
      on_full: onFullKey({ supported: ON_FULL, default: D.onFull }),
      /** An export request carries at most this many bytes... */
      batch_max_size: size.default(D.batchMaxBytes),
      /** ...and waits at most this long for more. */
      batch_timeout: duration.default(D.batchTimeoutMs),
      /** TLS for an https endpoint (the Collector's configtls client settings). */
      tls: z
        .strictObject({
          /** PEM file of CA certificates to trust instead of the system's. */
          ca_file: z.string().default(''),
          /** PEM client certificate and key, for mutual TLS. */
          cert_file: z.string().default(''),
          key_file: z.string().default(''),
          /** Accept any server certificate (testing only). */
          insecure_skip_verify: z.boolean().default(false),
          /** Name to verify the server certificate against, instead of the endpoint's host. */
          server_name_override: z.string().default(''),
        })
        .prefault({}),
      /** Export requests in flight at once, each with its own batch (the Collector's num_consumers). */
      concurrency: positiveInt.default(D.concurrency),
      retry: z
        .strictObject({
          initial_interval: duration.default(D.retry.initialMs),
          max_interval: duration.default(D.retry.maxMs),
          /** After this long, a batch that still fails is dropped (counted). */
          max_elapsed_time: duration.default(D.retry.maxElapsedMs),
          multiplier: z.number().min(1).default(D.retry.multiplier),
        })
        .prefault({}),
      /** How long shutdown tries to send what is queued. */
      shutdown_timeout: duration.default(D.shutdownTimeoutMs),
      /** Keep the export queue on disk (<data_dir>/tempo-queue, <data_dir>/loki-queue): what was accepted survives a restart, kill -9 included. */
      persistent_queue: z.boolean().default(false),
    })
    .prefault({});
}

/** Forwarding of traces to Tempo (or any OTLP/HTTP traces endpoint), to <endpoint>/v1/traces. */
export const tempoSection = otlpExporterSection(tempoEndpoint, 'SONDE_TEMPO_HEADERS');
/** Forwarding of logs to Loki's OTLP intake (or any OTLP/HTTP logs endpoint), to <endpoint>/otlp/v1/logs. */
export const lokiSection = otlpExporterSection(lokiEndpoint, 'SONDE_LOKI_HEADERS');

export type ExporterConfig = z.output<typeof tempoSection>;

/** An exporter's options from its config section (tempo, loki); its persistent queue in <data_dir>/<section>-queue. */
export function toExporterOptions(
  c: ExporterConfig,
  section: 'tempo' | 'loki',
  dataDir: string,
): OtlpHttpExporterOptionsInput {
  return {
    endpoint: c.endpoint,
    tls: readTls(c.tls, section),
    headers: c.headers,
    compression: c.compression,
    timeoutMs: c.timeout,
    queueBytes: c.queue_size,
    onFull: c.on_full,
    batchMaxBytes: c.batch_max_size,
    batchTimeoutMs: c.batch_timeout,
    concurrency: c.concurrency,
    retry: {
      initialMs: c.retry.initial_interval,
      maxMs: c.retry.max_interval,
      maxElapsedMs: c.retry.max_elapsed_time,
      multiplier: c.retry.multiplier,
    },
    shutdownTimeoutMs: c.shutdown_timeout,
    persistentDir: c.persistent_queue ? join(dataDir, `${section}-queue`) : undefined,
  };
}

/** Reads <section>.tls's files, with an error that names the key and the file. */
function readTls(tls: ExporterConfig['tls'], section: string): TlsOptions {
  const read = (key: string, file: string) => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`${section}.tls.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  if (Boolean(tls.cert_file) !== Boolean(tls.key_file)) {
    throw new Error(`${section}.tls: cert_file and key_file go together (mutual TLS needs both)`);
  }
  return {
    ca: read('ca_file', tls.ca_file),
    cert: read('cert_file', tls.cert_file),
    key: read('key_file', tls.key_file),
    insecureSkipVerify: tls.insecure_skip_verify,
    serverName: tls.server_name_override || undefined,
  };
}

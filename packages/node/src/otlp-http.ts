/**
 * OTLP/HTTP export with a transmission gate and a bounded buffer. The SDK's batch processors hand
 * batches to the exporters below; each exporter applies its signal's transform (consent filter,
 * redaction), encodes the batch as an OTLP request (protobuf or JSON) and gives it to the one
 * `Shipper`, which sends it at once when it can, and otherwise holds it in the buffer: while the gate
 * is closed, or the receiver is unreachable or overloaded (network errors, 429, 502, 503, 504). The
 * buffer drains in order once the gate opens and the receiver answers. Exports never fail towards the
 * SDK (so nothing is retried twice) and never block the application: sends happen on the event loop
 * with a timeout, and everything held is bounded in bytes, with drops counted.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { resolve as resolvePath } from 'node:path';
import { gzipSync } from 'node:zlib';
import { context } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, suppressTracing } from '@opentelemetry/core';
import {
  JsonLogsSerializer,
  JsonMetricsSerializer,
  JsonTraceSerializer,
  ProtobufLogsSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { RequestBuffer } from './buffer';
import type { DropReason, Gate, Signal } from './types';

export interface HttpTarget {
  url: string;
  headers: Record<string, string>;
  json: boolean;
  gzip: boolean;
  timeoutMs: number;
  /**
   * PEM files for an https endpoint, from OTEL_EXPORTER_OTLP_[<SIGNAL>_]CERTIFICATE (CAs to trust instead
   * of the system's), _CLIENT_CERTIFICATE and _CLIENT_KEY (mutual TLS). Undefined when none is set.
   */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** Parses `key=value,key2=value2` (values URL-decoded), as OTEL_EXPORTER_OTLP_HEADERS. */
export function parseHeaderList(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!value) return out;
  for (const part of value.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    try {
      out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
    }
  }
  return out;
}

/**
 * The TLS files of one signal, as the OpenTelemetry exporters read them: the signal's variable, else
 * the general one; a path relative to the working directory. A file that cannot be read is left out,
 * with a warning (as the upstream exporters do).
 */
export function tlsFromEnv(
  signal: Signal,
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void = () => {},
): HttpTarget['tls'] {
  const S = signal.toUpperCase();
  const read = (name: string) => {
    const file = (env[`OTEL_EXPORTER_OTLP_${S}_${name}`] || env[`OTEL_EXPORTER_OTLP_${name}`])?.trim();
    if (!file) return undefined;
    try {
      return readFileSync(resolvePath(file));
    } catch (err) {
      warn(`cannot read ${file} (OTEL_EXPORTER_OTLP_${name}): ${(err as NodeJS.ErrnoException).code ?? err}`);
      return undefined;
    }
  };
  const tls = { ca: read('CERTIFICATE'), cert: read('CLIENT_CERTIFICATE'), key: read('CLIENT_KEY') };
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    warn(
      'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together; sending without a client certificate',
    );
    tls.cert = undefined;
    tls.key = undefined;
  }
  return tls.ca || tls.cert ? tls : undefined;
}

/** The OTLP/HTTP target of one signal from the standard variables, the base endpoint defaulting to a local receiver. */
export function httpTarget(
  signal: Signal,
  env: NodeJS.ProcessEnv,
  options: { endpoint?: string; protocol: string; warn?: (message: string) => void },
): HttpTarget {
  const S = signal.toUpperCase();
  const signalEndpoint = env[`OTEL_EXPORTER_OTLP_${S}_ENDPOINT`];
  const base = options.endpoint ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318';
  const url = signalEndpoint || `${base.replace(/\/+$/, '')}/v1/${signal}`;
  const timeout = Number(env[`OTEL_EXPORTER_OTLP_${S}_TIMEOUT`] ?? env.OTEL_EXPORTER_OTLP_TIMEOUT ?? 10000);
  const compression = env[`OTEL_EXPORTER_OTLP_${S}_COMPRESSION`] ?? env.OTEL_EXPORTER_OTLP_COMPRESSION;
  return {
    url,
    headers: {
      ...parseHeaderList(env.OTEL_EXPORTER_OTLP_HEADERS),
      ...parseHeaderList(env[`OTEL_EXPORTER_OTLP_${S}_HEADERS`]),
    },
    json: options.protocol === 'http/json',
    gzip: compression === 'gzip',
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 10000,
    tls: url.startsWith('https:') ? tlsFromEnv(signal, env, options.warn) : undefined,
  };
}

type SendResult = { ok: true } | { ok: false; retryable: boolean; reason: string };

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 4 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 4 }),
};

/** An https agent per target with its own CAs or client certificate. */
const tlsAgents = new WeakMap<HttpTarget, https.Agent>();

function agentFor(target: HttpTarget, url: URL): http.Agent {
  if (url.protocol !== 'https:') return agents.http;
  if (!target.tls) return agents.https;
  let agent = tlsAgents.get(target);
  if (!agent) {
    agent = new https.Agent({ keepAlive: true, maxSockets: 4, ...target.tls });
    tlsAgents.set(target, agent);
  }
  return agent;
}

/** One POST, outside any trace (so the HTTP instrumentation does not trace its own exports). */
export function postOtlp(target: HttpTarget, body: Uint8Array): Promise<SendResult> {
  return context.with(suppressTracing(context.active()), () => {
    return new Promise<SendResult>((resolve) => {
      let url: URL;
      try {
        url = new URL(target.url);
      } catch {
        resolve({ ok: false, retryable: false, reason: `invalid endpoint ${target.url}` });
        return;
      }
      const payload = target.gzip ? gzipSync(body) : body;
      const headers: Record<string, string> = {
        ...target.headers,
        'content-type': target.json ? 'application/json' : 'application/x-protobuf',
        'content-length': String(payload.byteLength),
      };
      if (target.gzip) headers['content-encoding'] = 'gzip';
      const mod = url.protocol === 'https:' ? https : http;
      const req = mod.request(
        url,
        {
          method: 'POST',
          headers,
          agent: agentFor(target, url),
          timeout: target.timeoutMs,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve({ ok: true });
            else
              resolve({
                ok: false,
                retryable: status === 429 || status === 502 || status === 503 || status === 504,
                reason: `HTTP ${status}`,
              });
          });
          res.on('error', (err) => resolve({ ok: false, retryable: true, reason: err.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${target.timeoutMs} ms`)));
      req.on('error', (err) => resolve({ ok: false, retryable: true, reason: err.message }));
      req.end(payload);
    });
  });
}

export interface ShipperOptions {
  targets: Record<Signal, HttpTarget>;
  buffer: RequestBuffer;
  gate?: Gate;
  /** How often a closed gate is asked again (ms). */
  gatePollMs: number;
  onDrop(signal: Signal, items: number, reason: DropReason): void;
  onSendError?(signal: Signal, reason: string): void;
}

/** Sends encoded requests, or holds them while the gate is closed or the receiver unreachable. */
export class Shipper {
  private draining: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private closed = false;
  sent = 0;

  constructor(private readonly o: ShipperOptions) {
    // Requests left on disk by a previous run go out as soon as the gate and the receiver allow.
    if (o.buffer.length > 0) this.schedule(0);
  }

  get buffer(): RequestBuffer {
    return this.o.buffer;
  }

  private async gateOpen(): Promise<boolean> {
    if (!this.o.gate) return true;
    try {
      return (await this.o.gate()) === true;
    } catch {
      return false; // a failing gate holds telemetry rather than sending it against the host's wish
    }
  }

  async submit(signal: Signal, body: Uint8Array, items: number): Promise<void> {
    if (this.o.buffer.length === 0 && !this.draining && (await this.gateOpen())) {
      const result = await postOtlp(this.o.targets[signal], body);
      if (result.ok) {
        this.sent++;
        return;
      }
      if (!result.retryable) {
        this.o.onSendError?.(signal, result.reason);
        this.o.onDrop(signal, items, 'rejected');
        return;
      }
      this.o.onSendError?.(signal, result.reason);
      this.o.buffer.push(signal, body, items);
      this.schedule(this.nextBackoff());
      return;
    }
    this.o.buffer.push(signal, body, items);
    if (!this.timer && !this.draining) this.schedule(0);
  }

  /** Tries to send what is held now (e.g. when the host knows its gate has just opened). */
  drain(): Promise<void> {
    if (this.draining) return this.draining;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.draining = this.drainLoop().finally(() => {
      this.draining = undefined;
      // A request pushed while the loop was finishing: go round again (a closed gate or a backoff
      // has already set a timer).
      if (this.o.buffer.length > 0 && !this.timer) this.schedule(0);
    });
    return this.draining;
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.drain();
    }, delayMs);
    this.timer.unref();
  }

  private nextBackoff(): number {
    this.backoffMs = this.backoffMs === 0 ? 500 : Math.min(this.backoffMs * 2, 30000);
    return this.backoffMs * (0.75 + Math.random() * 0.5);
  }

  private async drainLoop(): Promise<void> {
    const buffer = this.o.buffer;
    while (buffer.length > 0) {
      if (!(await this.gateOpen())) {
        this.schedule(this.o.gatePollMs);
        return;
      }
      const head = buffer.peek()!;
      const body = buffer.read(head);
      if (!body) {
        buffer.shift();
        continue;
      }
      const result = await postOtlp(this.o.targets[head.signal], body);
      if (buffer.peek() !== head) continue; // dropped as oldest meanwhile
      if (result.ok) {
        this.sent++;
        this.backoffMs = 0;
        buffer.shift();
      } else if (!result.retryable) {
        this.o.onSendError?.(head.signal, result.reason);
        buffer.shift();
        this.o.onDrop(head.signal, head.items, 'rejected');
      } else {
        this.o.onSendError?.(head.signal, result.reason);
        this.schedule(this.nextBackoff());
        return;
      }
    }
  }

  /** Sends what it can until the buffer is empty or `timeoutMs` passes. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.o.buffer.length > 0 && Date.now() < deadline) {
      if (!(await this.gateOpen())) return;
      const before = this.o.buffer.length;
      const bytesBefore = this.o.buffer.bytes;
      await Promise.race([this.drain(), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
      if (this.o.buffer.length === before && this.o.buffer.bytes === bytesBefore) {
        // no progress (receiver down): wait a little, within the deadline
        await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))).unref());
      }
    }
    if (this.draining)
      await Promise.race([
        this.draining,
        new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref()),
      ]);
  }

  /** Final flush; what is held in memory and could not be sent is counted as dropped (disk files stay). */
  async shutdown(timeoutMs: number): Promise<void> {
    await this.flush(timeoutMs);
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const lost of this.o.buffer.dropMemory()) this.o.onDrop(lost.signal, lost.items, 'shutdown');
  }
}

interface Serializer<T> {
  serializeRequest(request: T): Uint8Array | undefined;
}

const SUCCESS: ExportResult = { code: ExportResultCode.SUCCESS };

/** The shared part of the three exporters: transform, encode, hand to the shipper. */
class BufferedExporter<T> {
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly signal: Signal,
    private readonly shipper: Shipper,
    private readonly serializer: Serializer<T>,
    private readonly prepare: (batch: T) => { request: T; items: number } | undefined,
    private readonly onDrop: ShipperOptions['onDrop'],
  ) {}

  export(batch: T, done: (result: ExportResult) => void): void {
    if (this.stopped) {
      done({ code: ExportResultCode.FAILED, error: new Error('exporter shut down') });
      return;
    }
    const prepared = this.prepare(batch);
    if (!prepared || prepared.items === 0) {
      done(SUCCESS);
      return;
    }
    let body: Uint8Array | undefined;
    try {
      body = this.serializer.serializeRequest(prepared.request);
    } catch {
      body = undefined;
    }
    if (!body) {
      this.onDrop(this.signal, prepared.items, 'encode_failed');
      done(SUCCESS);
      return;
    }
    const p = this.shipper.submit(this.signal, body, prepared.items).then(
      () => done(SUCCESS),
      () => done(SUCCESS),
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  async forceFlush(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.stopped = true;
  }
}

/** A list of items (spans, log records) after `transform`, counted by its length. */
function listOf<I>(transform: (items: I[]) => I[]): (items: I[]) => { request: I[]; items: number } {
  return (items) => {
    const out = transform(items);
    return { request: out, items: out.length };
  };
}

export class SondeSpanExporter extends BufferedExporter<ReadableSpan[]> implements SpanExporter {
  constructor(
    shipper: Shipper,
    json: boolean,
    transform: (spans: ReadableSpan[]) => ReadableSpan[],
    onDrop: ShipperOptions['onDrop'],
  ) {
    super('traces', shipper, json ? JsonTraceSerializer : ProtobufTraceSerializer, listOf(transform), onDrop);
  }
}

export class SondeLogExporter extends BufferedExporter<ReadableLogRecord[]> implements LogRecordExporter {
  constructor(
    shipper: Shipper,
    json: boolean,
    transform: (records: ReadableLogRecord[]) => ReadableLogRecord[],
    onDrop: ShipperOptions['onDrop'],
  ) {
    super('logs', shipper, json ? JsonLogsSerializer : ProtobufLogsSerializer, listOf(transform), onDrop);
  }
}

export function countDataPoints(rm: ResourceMetrics): number {
  let n = 0;
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) n += m.dataPoints.length;
  return n;
}

export class SondeMetricExporter extends BufferedExporter<ResourceMetrics> implements PushMetricExporter {
  constructor(
    shipper: Shipper,
    json: boolean,
    transform: (rm: ResourceMetrics) => ResourceMetrics,
    onDrop: ShipperOptions['onDrop'],
  ) {
    super(
      'metrics',
      shipper,
      json ? JsonMetricsSerializer : ProtobufMetricsSerializer,
      (rm) => {
        const out = transform(rm);
        return { request: out, items: countDataPoints(out) };
      },
      onDrop,
    );
  }
  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }
}

/**
 * OTLP/JSON exporters for the three signals, on the transport (which sends, defers or beacons). The
 * consent filter runs here too, at export time: what was recorded before a category was withdrawn and
 * still waits in a batch is dropped, not sent. The redaction hook runs last, before serialization.
 */
import type { Attributes } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { JsonLogsSerializer, JsonMetricsSerializer, JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { type Category, CONSENT_CATEGORY_ATTRIBUTE, type ConsentState } from './consent';
import type { WebRedaction } from './redaction';
import type { Signal, Transport } from './transport';

const decoder = new TextDecoder();

/** A view of `item` with redacted attributes (and body): its other fields and methods are read through the prototype. */
function redacted<T extends { attributes: Attributes; body?: unknown }>(
  item: T,
  redaction: WebRedaction | undefined,
): T {
  if (!redaction) return item;
  const attributes = redaction.attributes(item.attributes);
  const body = item.body === undefined ? undefined : redaction.value(item.body);
  if (attributes === item.attributes && body === item.body) return item;
  // Own data properties (the SDK's records have accessors that ignore writes once emitted).
  return Object.create(item, {
    attributes: { value: attributes, enumerable: true },
    ...(body === item.body ? {} : { body: { value: body, enumerable: true } }),
  }) as T;
}

abstract class Base {
  protected pending = new Set<Promise<unknown>>();
  constructor(
    protected readonly transport: Transport,
    protected readonly signal: Signal,
  ) {}

  /**
   * Serializes (redacting first) and ships. When redaction met values without their pseudonym yet
   * (WebCrypto is asynchronous), they are computed and the items redacted and serialized again.
   */
  protected redactAndShip(
    serialize: () => Uint8Array | undefined,
    redaction: WebRedaction | undefined,
    done: (r: ExportResult) => void,
  ): void {
    const bytes = serialize();
    if (!redaction?.pending()) {
      this.ship(bytes, done);
      return;
    }
    redaction.compute().then(
      () => this.ship(serialize(), done),
      (error: Error) => done({ code: ExportResultCode.FAILED, error }),
    );
  }

  protected ship(bytes: Uint8Array | undefined, done: (r: ExportResult) => void): void {
    if (!bytes) {
      done({ code: ExportResultCode.FAILED, error: new Error('serialization failed') });
      return;
    }
    const p = this.transport.send(this.signal, decoder.decode(bytes)).then(
      () => done({ code: ExportResultCode.SUCCESS }),
      (error: Error) => done({ code: ExportResultCode.FAILED, error }),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.pending);
  }

  shutdown(): Promise<void> {
    return this.forceFlush();
  }
}

export class SpanExporterImpl extends Base implements SpanExporter {
  constructor(
    transport: Transport,
    private readonly consent: ConsentState,
    private readonly redaction?: WebRedaction,
  ) {
    super(transport, 'traces');
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (!this.consent.get('diagnostics') || spans.length === 0) {
      done({ code: ExportResultCode.SUCCESS });
      return;
    }
    this.redactAndShip(
      () => JsonTraceSerializer.serializeRequest(spans.map((s) => redacted(s, this.redaction))),
      this.redaction,
      done,
    );
  }
}

export class LogExporterImpl extends Base implements LogRecordExporter {
  constructor(
    transport: Transport,
    private readonly consent: ConsentState,
    private readonly redaction?: WebRedaction,
  ) {
    super(transport, 'logs');
  }

  export(records: ReadableLogRecord[], done: (r: ExportResult) => void): void {
    const kept = records.filter((r) => {
      // Consent choice records are sent whatever the consent (they are the consent record itself).
      if (r.eventName === 'sonde.consent.choice') return true;
      const category = r.attributes[CONSENT_CATEGORY_ATTRIBUTE] as Category | undefined;
      return category === undefined || this.consent.get(category);
    });
    if (kept.length === 0) {
      done({ code: ExportResultCode.SUCCESS });
      return;
    }
    this.redactAndShip(
      () => JsonLogsSerializer.serializeRequest(kept.map((r) => redacted(r, this.redaction))),
      this.redaction,
      done,
    );
  }
}

export class MetricExporterImpl extends Base implements PushMetricExporter {
  constructor(
    transport: Transport,
    private readonly consent: ConsentState,
  ) {
    super(transport, 'metrics');
  }

  export(metrics: ResourceMetrics, done: (r: ExportResult) => void): void {
    const empty = metrics.scopeMetrics.every((s) => s.metrics.every((m) => m.dataPoints.length === 0));
    if (!this.consent.get('performance') || empty) {
      done({ code: ExportResultCode.SUCCESS });
      return;
    }
    this.ship(JsonMetricsSerializer.serializeRequest(metrics), done);
  }

  /** Delta: a page's histograms are summed by the backend, pages come and go. */
  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.DELTA;
  }
}

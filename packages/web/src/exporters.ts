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
import type { Signal, Transport } from './transport';

/** Rewrites attributes before export (redaction); returns the same object when nothing changed. */
export type AttributeRewriter = (attrs: Attributes) => Attributes;

const decoder = new TextDecoder();

/** A view of `item` with other attributes: the item's other fields and methods are read through the prototype. */
function withAttributes<T extends { attributes: Attributes }>(item: T, rewrite: AttributeRewriter | undefined): T {
  if (!rewrite) return item;
  const attributes = rewrite(item.attributes);
  if (attributes === item.attributes) return item;
  return Object.assign(Object.create(item) as T, { attributes });
}

abstract class Base {
  protected pending = new Set<Promise<unknown>>();
  constructor(
    protected readonly transport: Transport,
    protected readonly signal: Signal,
  ) {}

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
    private readonly rewrite?: AttributeRewriter,
  ) {
    super(transport, 'traces');
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (!this.consent.get('diagnostics') || spans.length === 0) {
      done({ code: ExportResultCode.SUCCESS });
      return;
    }
    this.ship(JsonTraceSerializer.serializeRequest(spans.map((s) => withAttributes(s, this.rewrite))), done);
  }
}

export class LogExporterImpl extends Base implements LogRecordExporter {
  constructor(
    transport: Transport,
    private readonly consent: ConsentState,
    private readonly rewrite?: AttributeRewriter,
  ) {
    super(transport, 'logs');
  }

  export(records: ReadableLogRecord[], done: (r: ExportResult) => void): void {
    const kept = records
      .filter((r) => {
        // Consent choice records are sent whatever the consent (they are the consent record itself).
        if (r.eventName === 'sonde.consent.choice') return true;
        const category = r.attributes[CONSENT_CATEGORY_ATTRIBUTE] as Category | undefined;
        return category === undefined || this.consent.get(category);
      })
      .map((r) => withAttributes(r, this.rewrite));
    if (kept.length === 0) {
      done({ code: ExportResultCode.SUCCESS });
      return;
    }
    this.ship(JsonLogsSerializer.serializeRequest(kept), done);
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

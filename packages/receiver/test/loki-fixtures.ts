/**
 * Demo-like log records for the LogQL and Loki API tests, made as the demo shop makes them: emitted
 * through the OpenTelemetry JS logs SDK, serialized by its protobuf serializer, decoded by the
 * receiver, mapped by toLokiEntries. Three services over five minutes from BASE_S: `cart` (plain text
 * lines, every third an error with a trace id), `payment` (JSON lines and logfmt lines), `frontend`
 * (warnings).
 */
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { decodeLogsRequest, type ResourceLogs } from '../src';
import { MemoryLogSource } from '../src/log-store/memory-source';
import { DEFAULT_DECODE_LIMITS } from '../src/otlp/limits';

/** 2024-08-22T04:13:20Z. */
export const BASE_S = 1_724_300_000;
export const NS = 1_000_000_000n;
export const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

export function traceIdOf(i: number): string {
  return i === 0 ? TRACE_ID : i.toString(16).padStart(32, 'a');
}

async function emit(
  service: string,
  records: (logger: ReturnType<LoggerProvider['getLogger']>) => void,
): Promise<ResourceLogs[]> {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({
      'service.name': service,
      'service.namespace': 'shop',
      'deployment.environment.name': 'demo',
      'host.name': `${service}-1`,
    }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  records(provider.getLogger('pino', '9.6.0'));
  await provider.forceFlush();
  const body = ProtobufLogsSerializer.serializeRequest(exporter.getFinishedLogRecords());
  await provider.shutdown();
  return decodeLogsRequest(Buffer.from(body ?? []), DEFAULT_DECODE_LIMITS);
}

const span = (i: number) =>
  trace.setSpanContext(ROOT_CONTEXT, {
    traceId: traceIdOf(i),
    spanId: (i + 1).toString(16).padStart(16, '0'),
    traceFlags: 1,
  });

/** The demo records: 30 per service, one every 10 s from BASE_S. */
export async function demoRequests(): Promise<ResourceLogs[][]> {
  const cart = await emit('cart', (logger) => {
    for (let i = 0; i < 30; i++) {
      const error = i % 3 === 0;
      logger.emit({
        timestamp: [BASE_S + i * 10, 0],
        severityNumber: error ? SeverityNumber.ERROR : SeverityNumber.INFO,
        severityText: error ? 'error' : 'info',
        body: error ? `payment failed for cart ${i}: card declined` : `added item ${i} to cart`,
        attributes: { 'http.route': '/cart', 'cart.items': i % 5 },
        context: span(i),
      });
    }
  });
  const payment = await emit('payment', (logger) => {
    for (let i = 0; i < 30; i++) {
      const error = i % 5 === 0;
      const body =
        i % 2 === 0
          ? JSON.stringify({
              level: error ? 'error' : 'info',
              msg: error ? 'charge failed' : 'charged',
              amount: 10 + i,
              duration: `${100 + i * 10}ms`,
              card: { brand: i % 4 === 0 ? 'visa' : 'amex' },
            })
          : `level=${error ? 'error' : 'info'} msg="${error ? 'charge failed' : 'charged'}" amount=${10 + i} duration=${100 + i * 10}ms size=${i}KB`;
      logger.emit({
        timestamp: [BASE_S + i * 10, 5_000_000],
        severityNumber: error ? SeverityNumber.ERROR : SeverityNumber.INFO,
        severityText: error ? 'ERROR' : 'INFO',
        body,
        context: span(100 + i),
      });
    }
  });
  const frontend = await emit('frontend', (logger) => {
    for (let i = 0; i < 30; i++) {
      logger.emit({
        timestamp: [BASE_S + i * 10, 7_000_000],
        severityNumber: i % 10 === 0 ? SeverityNumber.FATAL : SeverityNumber.WARN,
        severityText: i % 10 === 0 ? 'fatal' : 'warn',
        body: `slow render of /products/${i} took ${200 + i}ms`,
        attributes: { 'url.path': `/products/${i}` },
      });
    }
  });
  return [cart, payment, frontend];
}

export async function demoSource(): Promise<MemoryLogSource> {
  const source = new MemoryLogSource();
  for (const r of await demoRequests()) source.add(r);
  return source;
}

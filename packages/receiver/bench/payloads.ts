/**
 * Realistic OTLP trace payloads, made by the real OpenTelemetry JS SDK and serialized by its own
 * protobuf serializer (@opentelemetry/otlp-transformer), as an instrumented service would send them.
 *
 * Spans come in traces of one SERVER span and 3-7 children (CLIENT and INTERNAL), each with 11
 * attributes (HTTP semantic conventions plus a few application ones); about a quarter of the spans
 * carry one event and a tenth two (an exception, with an ERROR status). Two instrumentation scopes,
 * one resource with the usual service/host/process/SDK attributes. Everything comes from a seeded
 * generator, so every run sends the same bytes.
 */
import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type TimeInput, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  type IdGenerator,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { prng } from './prng.ts';

function hex(rand: () => number, bytes: number): string {
  let s = '';
  for (let i = 0; i < bytes; i++)
    s += Math.floor(rand() * 256)
      .toString(16)
      .padStart(2, '0');
  return s;
}

class SeededIdGenerator implements IdGenerator {
  private readonly rand: () => number;
  constructor(seed: number) {
    this.rand = prng(seed);
  }
  generateTraceId(): string {
    return hex(this.rand, 16);
  }
  generateSpanId(): string {
    return hex(this.rand, 8);
  }
}

const ROUTES = [
  '/api/cart/:id',
  '/api/checkout',
  '/api/products/:sku',
  '/api/users/:id/orders',
  '/api/payments/:id/capture',
  '/healthz',
];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
const USER_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'okhttp/4.12.0',
  'node-fetch/1.0 (+https://github.com/bitinn/node-fetch)',
];
const DOWNSTREAMS = ['inventory.internal', 'payments.internal', 'users.internal', 'pricing.internal'];
const INTERNAL_OPS = ['cart.compute_totals', 'pricing.apply_discounts', 'render.template', 'auth.verify_token'];
const STATUS_CODES = [200, 200, 200, 200, 200, 201, 204, 304, 400, 404, 500];
/** 2026-01-01T00:00:00Z, so that timestamps do not depend on when the bench runs. */
const BASE_EPOCH_SECONDS = 1_767_225_600;

const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)];

function time(ms: number): TimeInput {
  const seconds = Math.floor(ms / 1000);
  return [BASE_EPOCH_SECONDS + seconds, Math.round((ms - seconds * 1000) * 1e6)];
}

/** Makes `count` finished spans with the SDK. */
export async function makeSpans(count: number, seed = 42): Promise<ReadableSpan[]> {
  const rand = prng(seed ^ 0x5eed);
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'checkout',
      'service.namespace': 'shop',
      'service.version': '1.42.0',
      'service.instance.id': '4f1c2a9e-7b3d-4c8e-9f21-6a5d0e3b7c10',
      'deployment.environment.name': 'production',
      'host.name': 'checkout-7d9f8b6c5-x2k4p',
      'host.arch': 'amd64',
      'os.type': 'linux',
      'process.pid': 4242,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': '24.11.0',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.name': 'opentelemetry',
      'telemetry.sdk.version': '2.2.0',
    }),
    idGenerator: new SeededIdGenerator(seed),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const httpTracer = provider.getTracer('@opentelemetry/instrumentation-http', '0.207.0');
  const appTracer = provider.getTracer('checkout-service', '1.42.0');

  const attributesFor = (route: string, method: string, status: number, server: string) => ({
    'http.method': method,
    'http.route': route,
    'url.full': `https://${server}${route.replace(/:(\w+)/g, () => String(Math.floor(rand() * 1e6)))}?locale=en-GB`,
    'http.status_code': status,
    'server.address': server,
    'server.port': 443,
    'user_agent.original': pick(rand, USER_AGENTS),
    'app.tenant_id': `tenant-${Math.floor(rand() * 500)}`,
    'app.user_id': Math.floor(rand() * 10_000_000),
    'app.cache_hit': rand() < 0.7,
    'app.queue_ms': Math.round(rand() * 50_000) / 1000,
  });

  const decorate = (span: Span, startMs: number, durationMs: number, status: number) => {
    const r = rand();
    if (r < 0.35) {
      span.addEvent(
        'cache.miss',
        { 'cache.key': `sku:${Math.floor(rand() * 1e5)}`, 'cache.backend': 'redis' },
        time(startMs + durationMs / 3),
      );
    }
    if (r < 0.1 || status >= 500) {
      span.addEvent(
        'exception',
        {
          'exception.type': 'UpstreamTimeoutError',
          'exception.message': 'upstream did not answer within 2000 ms',
          'exception.stacktrace':
            'UpstreamTimeoutError: upstream did not answer within 2000 ms\n    at fetchInventory (/app/dist/inventory.js:88:13)\n    at async handler (/app/dist/routes/checkout.js:41:5)',
        },
        time(startMs + durationMs / 2),
      );
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream timeout' });
    }
  };

  let made = 0;
  let clockMs = 0;
  while (made < count) {
    const route = pick(rand, ROUTES);
    const method = pick(rand, METHODS);
    const status = pick(rand, STATUS_CODES);
    const rootDuration = 5 + rand() * 200;
    const rootStart = clockMs;
    clockMs += 1 + rand() * 20;
    const root = httpTracer.startSpan(
      `${method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: attributesFor(route, method, status, 'shop.example.com'),
        startTime: time(rootStart),
      },
      ROOT_CONTEXT,
    );
    decorate(root, rootStart, rootDuration, status);
    made++;
    const parent = trace.setSpan(ROOT_CONTEXT, root);
    const children = Math.min(3 + Math.floor(rand() * 5), count - made);
    for (let c = 0; c < children; c++) {
      const start = rootStart + (rootDuration * c) / (children + 1);
      const duration = (rootDuration / (children + 1)) * (0.5 + rand() * 0.5);
      let child: Span;
      if (rand() < 0.6) {
        const server = pick(rand, DOWNSTREAMS);
        const childMethod = pick(rand, METHODS);
        const childRoute = pick(rand, ROUTES);
        child = httpTracer.startSpan(
          childMethod,
          {
            kind: SpanKind.CLIENT,
            attributes: attributesFor(childRoute, childMethod, pick(rand, STATUS_CODES), server),
            startTime: time(start),
          },
          parent,
        );
      } else {
        child = appTracer.startSpan(
          pick(rand, INTERNAL_OPS),
          {
            kind: SpanKind.INTERNAL,
            attributes: attributesFor(route, method, status, 'shop.example.com'),
            startTime: time(start),
          },
          parent,
        );
      }
      decorate(child, start, duration, 200);
      child.end(time(start + duration));
      made++;
    }
    root.end(time(rootStart + rootDuration));
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans().slice(0, count);
  await provider.shutdown();
  return spans;
}

export interface Payload {
  /** Items (spans, log records) per request. */
  spansPerRequest: number;
  /** The OTLP/HTTP path the bodies go to (default /v1/traces). */
  path?: string;
  /** Several different bodies of the same size class (different traces), cycled through by the client. */
  bodies: Buffer[];
}

/** `variants` protobuf ExportTraceServiceRequest bodies of `spansPerRequest` spans each, from distinct spans. */
export function makePayload(spans: readonly ReadableSpan[], spansPerRequest: number, variants: number): Payload {
  if (spans.length < spansPerRequest * variants)
    throw new Error(`need ${spansPerRequest * variants} spans, have ${spans.length}`);
  const bodies: Buffer[] = [];
  for (let v = 0; v < variants; v++) {
    const bytes = ProtobufTraceSerializer.serializeRequest(
      spans.slice(v * spansPerRequest, (v + 1) * spansPerRequest) as ReadableSpan[],
    );
    if (!bytes) throw new Error('the OTLP serializer returned nothing');
    bodies.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
  return { spansPerRequest, bodies };
}

/**
 * The service graph consumer on hand-built batches: pairing, virtual nodes, expiry, limits, and the
 * exact series it renders. Time is a fake clock passed to the constructor; `expire()` is called directly.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Batch } from '../src';
import type { KeyValue, ResourceSpans, Span } from '../src/model';
import { SpanKind, StatusCode } from '../src/model';
import { renderFamily } from '../src/series/exposition';
import {
  DEFAULT_SERVICE_GRAPH_BUCKETS,
  ServiceGraphConsumer,
  type ServiceGraphOptions,
} from '../src/traces/service-graph';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const TRACE2 = '4bf92f3577b34da6a3ce929d0e0e4736';
/** 2023-11-14T22:13:20Z in ns; spans start here. */
const T0 = 1_700_000_000_000_000_000n;

interface SpanInit {
  service: string;
  kind: number;
  spanId: string;
  parentSpanId?: string;
  traceId?: string;
  /** Duration in ms (start at T0). */
  ms?: number;
  error?: boolean;
  attributes?: Record<string, string>;
}

function span(init: SpanInit): { service: string; span: Span } {
  const attributes: KeyValue[] = Object.entries(init.attributes ?? {}).map(([key, value]) => ({ key, value }));
  return {
    service: init.service,
    span: {
      traceId: init.traceId ?? TRACE,
      spanId: init.spanId,
      traceState: '',
      parentSpanId: init.parentSpanId ?? '',
      flags: 0,
      name: 'op',
      kind: init.kind,
      startTimeUnixNano: T0,
      endTimeUnixNano: T0 + BigInt(init.ms ?? 100) * 1_000_000n,
      attributes,
      droppedAttributesCount: 0,
      events: [],
      droppedEventsCount: 0,
      links: [],
      droppedLinksCount: 0,
      status: { message: '', code: init.error ? StatusCode.ERROR : StatusCode.UNSET },
    },
  };
}

/** One ResourceSpans per span, with the span's service as `service.name`. */
function batch(...spans: { service: string; span: Span }[]): Batch<'traces'> {
  const data: ResourceSpans[] = spans.map((s) => ({
    resource: { attributes: [{ key: 'service.name', value: s.service }], droppedAttributesCount: 0 },
    scopeSpans: [
      {
        scope: { name: 'test', version: '', attributes: [], droppedAttributesCount: 0 },
        spans: [s.span],
        schemaUrl: '',
      },
    ],
    schemaUrl: '',
  }));
  return {
    signal: 'traces',
    data,
    itemCount: spans.length,
    context: { transport: 'http', encoding: 'json', receivedAt: 0, raw: undefined, modified: false },
    warnings: [],
    decodeStats: undefined,
  } as Batch<'traces'>;
}

const client = (service: string, spanId: string, more: Partial<SpanInit> = {}) =>
  span({ service, kind: SpanKind.CLIENT, spanId, parentSpanId: 'aaaaaaaaaaaaaaaa', ...more });
const server = (service: string, parentSpanId: string, more: Partial<SpanInit> = {}) =>
  span({ service, kind: SpanKind.SERVER, spanId: `5${parentSpanId.slice(1)}`, parentSpanId, ...more });

const OPTIONS: ServiceGraphOptions = {
  waitMs: 10_000,
  maxItems: 10_000,
  latencyBuckets: DEFAULT_SERVICE_GRAPH_BUCKETS,
  maxSeriesPerMetric: 1000,
  metricExpirationMs: 300_000,
};

let clock = 1_000_000;
let registry: Registry;
let consumers: ServiceGraphConsumer[] = [];

function make(options: Partial<ServiceGraphOptions> = {}): ServiceGraphConsumer {
  registry = new Registry();
  const c = new ServiceGraphConsumer({ ...OPTIONS, ...options }, registry, pino({ level: 'silent' }), () => clock);
  consumers.push(c);
  return c;
}

beforeEach(() => {
  clock = 1_000_000;
});
afterEach(async () => {
  for (const c of consumers) await c.shutdown();
  consumers = [];
});

/** The rendered lines of a family (HELP and TYPE left out); [] when it has no series. */
function lines(c: ServiceGraphConsumer, name: string, format: 'text' | 'openmetrics' = 'text'): string[] {
  const family = c.store.families.get(name);
  if (!family) throw new Error(`no family ${name}`);
  return renderFamily(family, format)
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('# '));
}

const total = (c: ServiceGraphConsumer) => lines(c, 'traces_service_graph_request_total');
const failed = (c: ServiceGraphConsumer) => lines(c, 'traces_service_graph_request_failed_total');
const unpaired = (c: ServiceGraphConsumer) => lines(c, 'traces_service_graph_unpaired_spans_total');
const dropped = (c: ServiceGraphConsumer) => lines(c, 'traces_service_graph_dropped_spans_total');

/** The bucket lines of a histogram series, all counts given, then _sum and _count. */
function histogram(name: string, labels: string, counts: number[], sum: string): string[] {
  const bounds = ['0.1', '0.2', '0.4', '0.8', '1.6', '3.2', '6.4', '12.8', '+Inf'];
  return [
    ...bounds.map((le, i) => `${name}_bucket{${labels},le="${le}"} ${counts[i]}`),
    `${name}_sum{${labels}} ${sum}`,
    `${name}_count{${labels}} ${counts[8]}`,
  ];
}

async function selfMetric(name: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
}

describe('pairing', () => {
  test('client and server in the same batch: one request, both histograms, nothing left waiting', () => {
    const c = make();
    c.consume(batch(client('web', '1111111111111111', { ms: 250 }), server('api', '1111111111111111', { ms: 125 })));
    const labels = 'client="web",server="api",connection_type=""';
    expect(total(c)).toEqual([`traces_service_graph_request_total{${labels}} 1`]);
    expect(failed(c)).toEqual([]);
    expect(lines(c, 'traces_service_graph_request_server_seconds')).toEqual(
      histogram('traces_service_graph_request_server_seconds', labels, [0, 1, 1, 1, 1, 1, 1, 1, 1], '0.125'),
    );
    expect(lines(c, 'traces_service_graph_request_client_seconds')).toEqual(
      histogram('traces_service_graph_request_client_seconds', labels, [0, 0, 1, 1, 1, 1, 1, 1, 1], '0.25'),
    );
    expect(c.waitingEdges).toBe(0);
    expect(unpaired(c)).toEqual([]);
  });

  test('client and server in two batches, with the client first', async () => {
    const c = make();
    c.consume(batch(client('web', '1111111111111111')));
    expect(c.waitingEdges).toBe(1);
    expect(await selfMetric('sonde_service_graph_waiting_edges')).toEqual(['sonde_service_graph_waiting_edges 1']);
    expect(total(c)).toEqual([]);
    clock += 9_999;
    c.consume(batch(server('api', '1111111111111111')));
    expect(total(c)).toEqual(['traces_service_graph_request_total{client="web",server="api",connection_type=""} 1']);
    expect(c.waitingEdges).toBe(0);
    expect(await selfMetric('sonde_service_graph_waiting_edges')).toEqual(['sonde_service_graph_waiting_edges 0']);
  });

  test('server before client; the histograms still get each side its own duration', () => {
    const c = make();
    c.consume(batch(server('api', '1111111111111111', { ms: 500 })));
    expect(c.waitingEdges).toBe(1);
    c.consume(batch(client('web', '1111111111111111', { ms: 1500 })));
    const labels = 'client="web",server="api",connection_type=""';
    expect(total(c)).toEqual([`traces_service_graph_request_total{${labels}} 1`]);
    expect(lines(c, 'traces_service_graph_request_server_seconds')).toEqual(
      histogram('traces_service_graph_request_server_seconds', labels, [0, 0, 0, 1, 1, 1, 1, 1, 1], '0.5'),
    );
    expect(lines(c, 'traces_service_graph_request_client_seconds')).toEqual(
      histogram('traces_service_graph_request_client_seconds', labels, [0, 0, 0, 0, 1, 1, 1, 1, 1], '1.5'),
    );
  });

  test('halves of different traces or different span ids do not pair', () => {
    const c = make();
    c.consume(
      batch(
        client('web', '1111111111111111'),
        server('api', '1111111111111111', { traceId: TRACE2 }),
        server('api', '2222222222222222'),
      ),
    );
    expect(total(c)).toEqual([]);
    expect(c.waitingEdges).toBe(3);
  });

  test('two traces whose spans share a span id pair each with its own half, whichever leaves first', () => {
    const c = make();
    // Trace 1's client holds the span id; trace 2's client waits under its trace id too.
    c.consume(batch(client('web', '1111111111111111'), client('shop', '1111111111111111', { traceId: TRACE2 })));
    expect(c.waitingEdges).toBe(2);
    // Trace 1 pairs and leaves: the span id is free while trace 2's client still waits.
    c.consume(batch(server('api', '1111111111111111')));
    expect(c.waitingEdges).toBe(1);
    // Trace 2's server finds its client with the span id free.
    c.consume(batch(server('cart', '1111111111111111', { traceId: TRACE2 })));
    expect(c.waitingEdges).toBe(0);
    // Again with a third trace on the freed span id while trace 2's client waits.
    const TRACE3 = '11111111111111111111111111111111';
    c.consume(batch(client('web', '2222222222222222'), client('shop', '2222222222222222', { traceId: TRACE2 })));
    c.consume(batch(server('api', '2222222222222222')));
    c.consume(batch(client('cli', '2222222222222222', { traceId: TRACE3 })));
    c.consume(batch(server('cart', '2222222222222222', { traceId: TRACE2 })));
    c.consume(batch(server('bin', '2222222222222222', { traceId: TRACE3 })));
    expect(c.waitingEdges).toBe(0);
    expect(total(c)).toEqual([
      'traces_service_graph_request_total{client="web",server="api",connection_type=""} 2',
      'traces_service_graph_request_total{client="shop",server="cart",connection_type=""} 2',
      'traces_service_graph_request_total{client="cli",server="bin",connection_type=""} 1',
    ]);
  });

  test('internal and unspecified spans are ignored', () => {
    const c = make();
    c.consume(
      batch(
        span({ service: 'web', kind: SpanKind.INTERNAL, spanId: '1111111111111111' }),
        span({ service: 'web', kind: SpanKind.UNSPECIFIED, spanId: '2222222222222222' }),
      ),
    );
    expect(c.waitingEdges).toBe(0);
    expect(total(c)).toEqual([]);
  });

  test('producer and consumer → connection_type="messaging_system"', () => {
    const c = make();
    c.consume(
      batch(
        span({
          service: 'orders',
          kind: SpanKind.PRODUCER,
          spanId: '1111111111111111',
          parentSpanId: 'aaaaaaaaaaaaaaaa',
        }),
        span({
          service: 'billing',
          kind: SpanKind.CONSUMER,
          spanId: '5111111111111111',
          parentSpanId: '1111111111111111',
        }),
      ),
    );
    expect(total(c)).toEqual([
      'traces_service_graph_request_total{client="orders",server="billing",connection_type="messaging_system"} 1',
    ]);
  });

  test('several requests between the same services add up; label values are escaped', () => {
    const c = make();
    c.consume(batch(client('web', '1111111111111111'), server('api "v2"\\x', '1111111111111111')));
    c.consume(batch(client('web', '2222222222222222'), server('api "v2"\\x', '2222222222222222')));
    c.consume(batch(client('web', '3333333333333333'), server('db-proxy', '3333333333333333')));
    expect(total(c)).toEqual([
      'traces_service_graph_request_total{client="web",server="api \\"v2\\"\\\\x",connection_type=""} 2',
      'traces_service_graph_request_total{client="web",server="db-proxy",connection_type=""} 1',
    ]);
  });
});

describe('database clients', () => {
  test('complete at once with server = db.namespace, connection_type="database", both durations the client span', () => {
    const c = make();
    c.consume(
      batch(
        client('api', '1111111111111111', {
          ms: 250,
          attributes: { 'db.system.name': 'postgresql', 'db.namespace': 'shop', 'server.address': 'pg.local' },
        }),
      ),
    );
    const labels = 'client="api",server="shop",connection_type="database"';
    expect(c.waitingEdges).toBe(0);
    expect(total(c)).toEqual([`traces_service_graph_request_total{${labels}} 1`]);
    expect(lines(c, 'traces_service_graph_request_server_seconds')).toEqual(
      histogram('traces_service_graph_request_server_seconds', labels, [0, 0, 1, 1, 1, 1, 1, 1, 1], '0.25'),
    );
    expect(lines(c, 'traces_service_graph_request_client_seconds')).toEqual(
      histogram('traces_service_graph_request_client_seconds', labels, [0, 0, 1, 1, 1, 1, 1, 1, 1], '0.25'),
    );
  });

  test('server falls back to db.name, then server.address, then the db system (old db.system too)', () => {
    const c = make();
    c.consume(
      batch(
        client('api', '1111111111111111', { attributes: { 'db.system': 'mysql', 'db.name': 'legacy' } }),
        client('api', '2222222222222222', {
          attributes: { 'db.system.name': 'redis', 'server.address': 'cache.local' },
        }),
        client('api', '3333333333333333', { attributes: { 'db.system.name': 'sqlite' } }),
      ),
    );
    expect(total(c)).toEqual([
      'traces_service_graph_request_total{client="api",server="legacy",connection_type="database"} 1',
      'traces_service_graph_request_total{client="api",server="cache.local",connection_type="database"} 1',
      'traces_service_graph_request_total{client="api",server="sqlite",connection_type="database"} 1',
    ]);
    expect(c.waitingEdges).toBe(0);
  });

  test('a PRODUCER with db.system waits like any producer', () => {
    const c = make();
    c.consume(
      batch(
        span({ service: 'api', kind: SpanKind.PRODUCER, spanId: '1111111111111111', attributes: { 'db.system': 'x' } }),
      ),
    );
    expect(c.waitingEdges).toBe(1);
    expect(total(c)).toEqual([]);
  });
});

describe('failed requests', () => {
  test('an ERROR status on either side (or both) counts one failed request', () => {
    const c = make();
    c.consume(batch(client('web', '1111111111111111', { error: true }), server('api', '1111111111111111')));
    c.consume(batch(client('web', '2222222222222222'), server('api', '2222222222222222', { error: true })));
    c.consume(
      batch(client('web', '3333333333333333', { error: true }), server('api', '3333333333333333', { error: true })),
    );
    c.consume(batch(client('web', '4444444444444444'), server('api', '4444444444444444')));
    expect(total(c)).toEqual(['traces_service_graph_request_total{client="web",server="api",connection_type=""} 4']);
    expect(failed(c)).toEqual([
      'traces_service_graph_request_failed_total{client="web",server="api",connection_type=""} 3',
    ]);
  });

  test('a failing database call and a failing root server span count as failed', () => {
    const c = make();
    c.consume(
      batch(
        client('api', '1111111111111111', { error: true, attributes: { 'db.system.name': 'postgresql' } }),
        span({ service: 'web', kind: SpanKind.SERVER, spanId: '2222222222222222', error: true }),
      ),
    );
    expect(failed(c)).toEqual([
      'traces_service_graph_request_failed_total{client="api",server="postgresql",connection_type="database"} 1',
      'traces_service_graph_request_failed_total{client="user",server="web",connection_type="virtual_node"} 1',
    ]);
  });
});

describe('expiry and virtual nodes', () => {
  test('a root server span is emitted at once with client="user"', () => {
    const c = make();
    c.consume(batch(span({ service: 'web', kind: SpanKind.SERVER, spanId: '1111111111111111', ms: 250 })));
    const labels = 'client="user",server="web",connection_type="virtual_node"';
    expect(c.waitingEdges).toBe(0);
    expect(total(c)).toEqual([`traces_service_graph_request_total{${labels}} 1`]);
    expect(lines(c, 'traces_service_graph_request_client_seconds')).toEqual(
      histogram('traces_service_graph_request_client_seconds', labels, [0, 0, 1, 1, 1, 1, 1, 1, 1], '0.25'),
    );
  });

  test('a client without its server expires after waitMs to its peer.service, connection_type="virtual_node"', () => {
    const c = make();
    c.consume(batch(client('web', '1111111111111111', { ms: 500, attributes: { 'peer.service': 'stripe' } })));
    c.expire(clock + 9_999);
    expect(c.waitingEdges).toBe(1);
    expect(total(c)).toEqual([]);
    c.expire(clock + 10_000);
    expect(c.waitingEdges).toBe(0);
    const labels = 'client="web",server="stripe",connection_type="virtual_node"';
    expect(total(c)).toEqual([`traces_service_graph_request_total{${labels}} 1`]);
    expect(lines(c, 'traces_service_graph_request_server_seconds')).toEqual(
      histogram('traces_service_graph_request_server_seconds', labels, [0, 0, 0, 1, 1, 1, 1, 1, 1], '0.5'),
    );
    expect(unpaired(c)).toEqual([]);
  });

  test('peer.service wins over server.address; server.address, db.name and service.peer.name serve too', () => {
    const c = make();
    c.consume(
      batch(
        client('web', '1111111111111111', { attributes: { 'server.address': 'a.example', 'peer.service': 'p' } }),
        client('web', '2222222222222222', { attributes: { 'server.address': 'b.example' } }),
        client('web', '3333333333333333', { attributes: { 'db.name': 'cache' } }),
        client('web', '4444444444444444', { attributes: { 'service.peer.name': 'q' } }),
      ),
    );
    c.expire(clock + 10_000);
    expect(total(c)).toEqual([
      'traces_service_graph_request_total{client="web",server="p",connection_type="virtual_node"} 1',
      'traces_service_graph_request_total{client="web",server="b.example",connection_type="virtual_node"} 1',
      'traces_service_graph_request_total{client="web",server="cache",connection_type="virtual_node"} 1',
      'traces_service_graph_request_total{client="web",server="q",connection_type="virtual_node"} 1',
    ]);
  });

  test('halves that cannot become virtual nodes are counted as unpaired, the missing side ""', () => {
    const c = make();
    c.consume(batch(client('web', '1111111111111111'), client('web', '2222222222222222')));
    c.consume(batch(server('api', '3333333333333333')));
    c.expire(clock + 10_000);
    expect(c.waitingEdges).toBe(0);
    expect(total(c)).toEqual([]);
    expect(unpaired(c)).toEqual([
      'traces_service_graph_unpaired_spans_total{client="web",server=""} 2',
      'traces_service_graph_unpaired_spans_total{client="",server="api"} 1',
    ]);
  });

  test('only edges that waited waitMs expire; a half arriving later pairs with what is left', () => {
    const c = make();
    c.consume(batch(client('web', '1111111111111111')));
    clock += 6_000;
    c.consume(batch(client('web', '2222222222222222')));
    clock += 4_000;
    c.expire(clock);
    expect(c.waitingEdges).toBe(1);
    expect(unpaired(c)).toEqual(['traces_service_graph_unpaired_spans_total{client="web",server=""} 1']);
    c.consume(batch(server('api', '2222222222222222'), server('api', '1111111111111111')));
    expect(total(c)).toEqual(['traces_service_graph_request_total{client="web",server="api",connection_type=""} 1']);
    expect(c.waitingEdges).toBe(1);
  });

  test('shutdown expires every waiting edge at once', async () => {
    const c = make();
    c.consume(
      batch(
        client('web', '1111111111111111', { attributes: { 'peer.service': 'stripe' } }),
        server('api', '2222222222222222'),
      ),
    );
    await c.shutdown();
    expect(c.waitingEdges).toBe(0);
    expect(total(c)).toEqual([
      'traces_service_graph_request_total{client="web",server="stripe",connection_type="virtual_node"} 1',
    ]);
    expect(unpaired(c)).toEqual(['traces_service_graph_unpaired_spans_total{client="",server="api"} 1']);
  });
});

describe('limits', () => {
  test('past maxItems waiting edges, new halves are dropped and counted; waiting edges still pair', () => {
    const c = make({ maxItems: 2 });
    c.consume(batch(client('web', '1111111111111111'), server('api', '2222222222222222')));
    c.consume(
      batch(client('web', '3333333333333333'), server('api', '4444444444444444'), server('api', '4444444444444444')),
    );
    expect(c.waitingEdges).toBe(2);
    expect(dropped(c)).toEqual([
      'traces_service_graph_dropped_spans_total{client="web",server=""} 1',
      'traces_service_graph_dropped_spans_total{client="",server="api"} 2',
    ]);
    c.consume(batch(server('api', '1111111111111111'), client('web', '2222222222222222')));
    expect(total(c)).toEqual(['traces_service_graph_request_total{client="web",server="api",connection_type=""} 2']);
    expect(c.waitingEdges).toBe(0);
  });

  test('when full, edges due for expiry make room first', () => {
    const c = make({ maxItems: 1 });
    c.consume(batch(client('web', '1111111111111111')));
    clock += 10_000;
    c.consume(batch(client('web', '2222222222222222')));
    expect(dropped(c)).toEqual([]);
    expect(unpaired(c)).toEqual(['traces_service_graph_unpaired_spans_total{client="web",server=""} 1']);
    expect(c.waitingEdges).toBe(1);
  });

  test('database and root server edges need no room in the store', () => {
    const c = make({ maxItems: 1 });
    c.consume(batch(client('web', '1111111111111111')));
    c.consume(
      batch(
        client('api', '2222222222222222', { attributes: { 'db.system.name': 'postgresql' } }),
        span({ service: 'web', kind: SpanKind.SERVER, spanId: '3333333333333333' }),
      ),
    );
    expect(dropped(c)).toEqual([]);
    expect(total(c)).toEqual([
      'traces_service_graph_request_total{client="api",server="postgresql",connection_type="database"} 1',
      'traces_service_graph_request_total{client="user",server="web",connection_type="virtual_node"} 1',
    ]);
  });

  test('series past maxSeriesPerMetric go to the overflow series, counted in sonde_service_graph_overflow_points_total', async () => {
    const c = make({ maxSeriesPerMetric: 1 });
    c.consume(batch(client('web', '1111111111111111'), server('api', '1111111111111111')));
    c.consume(batch(client('web', '2222222222222222'), server('auth', '2222222222222222')));
    expect(total(c)).toEqual([
      'traces_service_graph_request_total{client="web",server="api",connection_type=""} 1',
      'traces_service_graph_request_total{otel_metric_overflow="true"} 1',
    ]);
    // request_total, both histograms (failed has no series): three folded updates
    expect(await selfMetric('sonde_service_graph_overflow_points_total')).toEqual([
      'sonde_service_graph_overflow_points_total 3',
    ]);
  });

  test('series not updated within metricExpirationMs are swept; the families stay', async () => {
    const c = make({ metricExpirationMs: 60_000 });
    c.consume(batch(client('web', '1111111111111111'), server('api', '1111111111111111')));
    clock += 30_000;
    c.consume(batch(client('web', '2222222222222222'), server('auth', '2222222222222222')));
    expect(c.store.sweep(clock + 30_001)).toBe(3);
    expect(total(c)).toEqual(['traces_service_graph_request_total{client="web",server="auth",connection_type=""} 1']);
    expect(await selfMetric('sonde_service_graph_expired_series_total')).toEqual([
      'sonde_service_graph_expired_series_total 3',
    ]);
    expect(c.store.sweep(clock + 60_001)).toBe(3);
    c.consume(batch(client('web', '3333333333333333'), server('api', '3333333333333333')));
    expect(total(c)).toEqual(['traces_service_graph_request_total{client="web",server="api",connection_type=""} 1']);
  });
});

describe('histograms and exemplars', () => {
  test('bucket counts (upper bounds inclusive), sums and counts are exact', () => {
    const c = make();
    const ms = [50, 100, 125, 200, 375, 1600, 3250, 12_800, 20_000];
    ms.forEach((d, i) => {
      const id = (i + 1).toString(16).padStart(16, '0');
      c.consume(batch(client('web', id, { ms: 1 }), server('api', id, { ms: d })));
    });
    const labels = 'client="web",server="api",connection_type=""';
    expect(lines(c, 'traces_service_graph_request_server_seconds')).toEqual(
      histogram('traces_service_graph_request_server_seconds', labels, [2, 4, 5, 5, 6, 6, 7, 8, 9], '38.5'),
    );
    expect(lines(c, 'traces_service_graph_request_client_seconds')).toEqual(
      histogram(
        'traces_service_graph_request_client_seconds',
        labels,
        [9, 9, 9, 9, 9, 9, 9, 9, 9],
        '0.009000000000000001',
      ),
    );
  });

  test('custom buckets', () => {
    const c = make({ latencyBuckets: [0.5, 1] });
    c.consume(batch(client('web', '1111111111111111', { ms: 750 }), server('api', '1111111111111111', { ms: 1000 })));
    const labels = 'client="web",server="api",connection_type=""';
    expect(lines(c, 'traces_service_graph_request_server_seconds')).toEqual([
      `traces_service_graph_request_server_seconds_bucket{${labels},le="0.5"} 0`,
      `traces_service_graph_request_server_seconds_bucket{${labels},le="1"} 1`,
      `traces_service_graph_request_server_seconds_bucket{${labels},le="+Inf"} 1`,
      `traces_service_graph_request_server_seconds_sum{${labels}} 1`,
      `traces_service_graph_request_server_seconds_count{${labels}} 1`,
    ]);
  });

  test('OpenMetrics exemplars carry the server span as traceID/spanID (value 1 on counters, seconds on histograms)', () => {
    const c = make({ latencyBuckets: [0.5] });
    c.consume(
      batch(
        client('web', '1111111111111111', { ms: 250, error: true }),
        server('api', '1111111111111111', { ms: 125 }),
      ),
    );
    const labels = 'client="web",server="api",connection_type=""';
    // the server span ends at T0 + 125 ms = 1700000000.125 s
    const ex = (v: string) => ` # {traceID="${TRACE}",spanID="5111111111111111"} ${v} 1700000000.125`;
    expect(lines(c, 'traces_service_graph_request_total', 'openmetrics')).toEqual([
      `traces_service_graph_request_total{${labels}} 1${ex('1')}`,
    ]);
    expect(lines(c, 'traces_service_graph_request_failed_total', 'openmetrics')).toEqual([
      `traces_service_graph_request_failed_total{${labels}} 1${ex('1')}`,
    ]);
    expect(lines(c, 'traces_service_graph_request_server_seconds', 'openmetrics')).toEqual([
      `traces_service_graph_request_server_seconds_bucket{${labels},le="0.5"} 1${ex('0.125')}`,
      `traces_service_graph_request_server_seconds_bucket{${labels},le="+Inf"} 1`,
      `traces_service_graph_request_server_seconds_sum{${labels}} 0.125`,
      `traces_service_graph_request_server_seconds_count{${labels}} 1`,
    ]);
    expect(lines(c, 'traces_service_graph_request_client_seconds', 'openmetrics')).toEqual([
      `traces_service_graph_request_client_seconds_bucket{${labels},le="0.5"} 1${ex('0.25')}`,
      `traces_service_graph_request_client_seconds_bucket{${labels},le="+Inf"} 1`,
      `traces_service_graph_request_client_seconds_sum{${labels}} 0.25`,
      `traces_service_graph_request_client_seconds_count{${labels}} 1`,
    ]);
    // text format has no exemplars
    expect(total(c)).toEqual([`traces_service_graph_request_total{${labels}} 1`]);
  });

  test('edges with one span carry that span in their exemplar; unpaired and dropped counters carry none', () => {
    const c = make({ latencyBuckets: [], maxItems: 1 });
    c.consume(
      batch(
        client('api', '1111111111111111', { ms: 250, attributes: { 'db.system.name': 'postgresql' } }),
        client('web', '2222222222222222'),
        client('web', '3333333333333333'),
      ),
    );
    c.expire(clock + 10_000);
    expect(lines(c, 'traces_service_graph_request_total', 'openmetrics')).toEqual([
      `traces_service_graph_request_total{client="api",server="postgresql",connection_type="database"} 1 # {traceID="${TRACE}",spanID="1111111111111111"} 1 1700000000.250`,
    ]);
    expect(lines(c, 'traces_service_graph_unpaired_spans_total', 'openmetrics')).toEqual([
      'traces_service_graph_unpaired_spans_total{client="web",server=""} 1',
    ]);
    expect(lines(c, 'traces_service_graph_dropped_spans_total', 'openmetrics')).toEqual([
      'traces_service_graph_dropped_spans_total{client="web",server=""} 1',
    ]);
  });

  test('family HELP and TYPE lines', () => {
    const c = make();
    c.consume(batch(client('web', '1111111111111111'), server('api', '1111111111111111')));
    const family = c.store.families.get('traces_service_graph_request_total');
    expect(family && renderFamily(family, 'openmetrics').split('\n').slice(0, 2)).toEqual([
      '# HELP traces_service_graph_request Requests between two nodes, by client, server and connection type',
      '# TYPE traces_service_graph_request counter',
    ]);
  });
});

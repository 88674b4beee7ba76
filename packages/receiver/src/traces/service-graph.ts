/**
 * Service graph metrics from spans, as Tempo's metrics-generator writes them, because Grafana's Tempo
 * datasource queries these exact names and labels for its service map (node stats go to the server):
 *
 * - `traces_service_graph_request_total{client, server, connection_type}`: one per request;
 * - `traces_service_graph_request_failed_total{…}`: requests where either side has status ERROR;
 * - `traces_service_graph_request_server_seconds_*{…, le}` and `…_client_seconds_*`: the duration of
 *   the server span and of the client span, in seconds;
 * - `traces_service_graph_unpaired_spans_total{client, server}`: halves that expired without their
 *   other half and could not be made into a virtual-node edge (the missing side is "");
 * - `traces_service_graph_dropped_spans_total{client, server}`: halves not kept because `maxItems`
 *   edges were already waiting.
 *
 * Pairing: a CLIENT or PRODUCER span waits under (traceId, spanId), a SERVER or CONSUMER span under
 * (traceId, parentSpanId); when both halves of a key are there (in any order, across requests), the
 * edge is emitted. connection_type is `messaging_system` when the client half is a PRODUCER or the
 * server half a CONSUMER, else "". Edges are found by the span id alone, checked against the trace
 * id, and only a span id that another trace's edge already holds waits under `traceId:spanId` (span
 * ids are random 64-bit numbers: that is rare), so that the lookup per span hashes the 16-character
 * id the decoder made rather than a new 49-character string.
 *
 * Edges that need no partner are emitted at once:
 * - a CLIENT span with `db.system.name` or `db.system` → server = `db.namespace`, else `db.name`,
 *   else `server.address`, else the db system; connection_type `database`; both durations are the
 *   client span's (there is no server span), as Tempo does;
 * - a SERVER or CONSUMER span without a parent → client `user`, connection_type `virtual_node`.
 *
 * A waiting half expires after `waitMs` (and on shutdown). A client half with `peer.service`,
 * `service.peer.name`, `server.address`, `db.name` or `db.system` (first found) becomes an edge to that
 * virtual server, connection_type `virtual_node`; any other half is counted as unpaired.
 *
 * For an edge with only one span, both histograms observe that span's duration: the missing side's
 * best estimate, and it keeps `server_seconds_sum / request_total` (Grafana's average) meaningful.
 *
 * Exemplars (`traceID`/`spanID`, Tempo's label names) carry the server span's ids, or the only span's;
 * their value is 1 on counters and the observed seconds on histograms, their time the span's end.
 *
 * Sampling: each edge counts as many requests as its spans' adjusted count (adjusted-count.ts: the
 * `ot=th` threshold in the tracestate, else the configured multiplier attribute, else 1), the server
 * half's when there is one, else the client's; so do the histograms' buckets, counts and sums. The
 * unpaired and dropped counters count spans, unweighted.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerMetrics } from '../metrics/define';
import { type AnyValue, attributeValue, type Span, SpanKind, StatusCode } from '../model';
import { attributesInBytes, endLookups, firstValues, KeySet } from '../otlp/protobuf/lean';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { createMeasuredStore } from '../series/measured-store';
import { escapeLabelValue, labelValue } from '../series/naming';
import { type Family, type MetricStore, SpanExemplar } from '../series/store';
import { AdjustedCounter } from './adjusted-count';
import { SERVICE_GRAPH_METRICS, SERVICE_GRAPH_STORE } from './metrics';

export interface ServiceGraphOptions {
  /** How long an unpaired half waits for its other half, in ms. */
  waitMs: number;
  /** Edges waiting at once; a new one past it is dropped and counted. */
  maxItems: number;
  /** Latency histogram bounds, in seconds. */
  latencyBuckets: number[];
  maxSeriesPerMetric: number;
  metricExpirationMs: number;
  /** Span, else resource, attribute holding a sampling multiplier (Tempo's span_multiplier_key); '' for none. */
  spanMultiplierKey?: string;
}

export const DEFAULT_SERVICE_GRAPH_WAIT_MS = 10_000;
export const DEFAULT_SERVICE_GRAPH_MAX_ITEMS = 10_000;
/** Tempo's default service graph buckets, in seconds. */
export const DEFAULT_SERVICE_GRAPH_BUCKETS = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];

export type ConnectionType = '' | 'virtual_node' | 'messaging_system' | 'database';

const EXEMPLAR_LABELS = { trace: 'traceID', span: 'spanID' };
/** Span attributes naming the server of a client span whose server never reported, first found wins. */
/** Span attributes that make a client span a database client span, first found wins. */
export const DATABASE_SYSTEM_ATTRIBUTES = ['db.system.name', 'db.system'];
export const PEER_ATTRIBUTES = ['peer.service', 'service.peer.name', 'server.address', 'db.name', 'db.system'];
/** Span attributes naming the database of a database client span, first found wins. */
export const DATABASE_NAME_ATTRIBUTES = ['db.namespace', 'db.name', 'server.address', 'db.system.name', 'db.system'];

/** One side of an edge: what its span tells. */
interface Half {
  service: string;
  spanId: string;
  seconds: number;
  failed: boolean;
  /** The span's end (Unix ns), the time of the edge's exemplars. */
  end: bigint;
  /** The span's adjusted count (how many requests it stands for after sampling). */
  weight: number;
  /** PRODUCER for a client half, CONSUMER for a server half. */
  messaging: boolean;
  /** Client halves: the virtual server to use on expiry ('' when none). */
  peer: string;
}

interface Edge {
  /** Its key in the waiting edges: the span id, or `traceId:spanId` when another trace held the span id. */
  key: string;
  /** Whether `key` is `traceId:spanId`. */
  composite: boolean;
  traceId: string;
  /** When the first half arrived (ms); the edge expires `waitMs` later. */
  createdAt: number;
  client: Half | undefined;
  server: Half | undefined;
}

export class ServiceGraphConsumer implements Consumer<'traces'> {
  readonly name = 'service_graph';
  readonly store: MetricStore;
  /** Waiting edges by key, in creation order (updates do not move them), so the oldest come first. */
  private readonly edges = new Map<string, Edge>();
  /** Waiting edges keyed `traceId:spanId` (their span id was taken by another trace's edge). */
  private composites = 0;
  private readonly requests: Family;
  private readonly failed: Family;
  private readonly serverSeconds: Family;
  private readonly clientSeconds: Family;
  private readonly unpaired: Family;
  private readonly dropped: Family;
  private readonly expirer: NodeJS.Timeout;
  private readonly stopStore: () => void;
  private readonly adjusted: AdjustedCounter;
  private readonly edgeLabels = new LastLabels(
    (client, server, connectionType) =>
      `client="${escapeLabelValue(client)}",server="${escapeLabelValue(server)}",connection_type="${connectionType}"`,
  );
  private readonly countLabels = new LastLabels(
    (client, server) => `client="${escapeLabelValue(client)}",server="${escapeLabelValue(server)}"`,
  );

  constructor(
    private readonly options: ServiceGraphOptions,
    registry: Registry,
    logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    const measured = createMeasuredStore(
      SERVICE_GRAPH_STORE.prefix,
      SERVICE_GRAPH_STORE.what,
      { maxSeriesPerMetric: options.maxSeriesPerMetric, metricExpirationMs: options.metricExpirationMs },
      registry,
      (family) => logger.warn({ metric: family.name }, 'service graph: metric name conflict'),
      now,
    );
    this.store = measured.store;
    this.stopStore = measured.stop;
    this.adjusted = new AdjustedCounter(options.spanMultiplierKey ?? '');
    const edges = this.edges;
    registerMetrics(registry, SERVICE_GRAPH_METRICS, {
      waitingEdges() {
        this.set(edges.size);
      },
    });
    this.requests = this.family(
      'traces_service_graph_request_total',
      'counter',
      'Requests between two nodes, by client, server and connection type',
    );
    this.failed = this.family(
      'traces_service_graph_request_failed_total',
      'counter',
      'Failed requests between two nodes, by client, server and connection type',
    );
    this.serverSeconds = this.family(
      'traces_service_graph_request_server_seconds',
      'histogram',
      'Request duration as seen by the server, in seconds',
    );
    this.clientSeconds = this.family(
      'traces_service_graph_request_client_seconds',
      'histogram',
      'Request duration as seen by the client, in seconds',
    );
    this.unpaired = this.family(
      'traces_service_graph_unpaired_spans_total',
      'counter',
      'Client and server spans that expired without their other half',
    );
    this.dropped = this.family(
      'traces_service_graph_dropped_spans_total',
      'counter',
      'Client and server spans not paired because too many edges were waiting',
    );
    this.expirer = setInterval(() => this.expire(this.now()), 1000);
    this.expirer.unref();
  }

  private family(name: string, type: 'counter' | 'histogram', help: string): Family {
    const family = this.store.family(name, type, type === 'histogram' ? 's' : '', help, 0) as Family;
    family.exemplarLabels = EXEMPLAR_LABELS;
    family.pinned = true;
    return family;
  }

  /** Edges waiting for their other half. */
  get waitingEdges(): number {
    return this.edges.size;
  }

  consume(batch: Batch<'traces'>): void {
    try {
      this.spans(batch.data);
    } finally {
      forgetLookups();
    }
  }

  private spans(data: Batch<'traces'>['data']): void {
    const now = this.now();
    for (const rs of data) {
      const resource = rs.resource.attributes;
      const service = stringOf(attributeValue(resource, 'service.name'));
      for (const ss of rs.scopeSpans) {
        for (const span of ss.spans) {
          switch (span.kind) {
            case SpanKind.CLIENT:
            case SpanKind.PRODUCER:
              this.client(span, service, this.adjusted.of(span.traceState, span, resource), now);
              break;
            case SpanKind.SERVER:
            case SpanKind.CONSUMER:
              this.server(span, service, this.adjusted.of(span.traceState, span, resource), now);
              break;
          }
        }
      }
    }
  }

  private client(span: Span, service: string, weight: number, now: number): void {
    if (span.kind === SpanKind.CLIENT) {
      const system = firstOf(span, DATABASE_SYSTEM);
      if (system !== '') {
        const half = halfOf(span, service, weight, false);
        const database = firstOf(span, DATABASE_NAME);
        this.emit(span.traceId, half, { ...half, service: database }, 'database', now);
        return;
      }
    }
    const edge = this.edgeFor(span.spanId, span.traceId, now);
    // A half that finds no room is counted, without being made.
    if (!edge) {
      this.count(this.dropped, service, '', now);
      return;
    }
    const half = halfOf(span, service, weight, span.kind === SpanKind.PRODUCER);
    half.peer = firstOf(span, PEER);
    edge.client = half;
    this.pairUp(edge, now);
  }

  private server(span: Span, service: string, weight: number, now: number): void {
    if (span.parentSpanId === '') {
      const half = halfOf(span, service, weight, span.kind === SpanKind.CONSUMER);
      this.emit(span.traceId, { ...half, service: 'user' }, half, 'virtual_node', now);
      return;
    }
    const edge = this.edgeFor(span.parentSpanId, span.traceId, now);
    if (!edge) {
      this.count(this.dropped, '', service, now);
      return;
    }
    edge.server = halfOf(span, service, weight, span.kind === SpanKind.CONSUMER);
    this.pairUp(edge, now);
  }

  /**
   * The edge waiting for (traceId, spanId), made when new; undefined when `maxItems` wait already
   * (even after expiry).
   */
  private edgeFor(spanId: string, traceId: string, now: number): Edge | undefined {
    const edges = this.edges;
    let edge = edges.get(spanId);
    if (edge !== undefined && edge.traceId === traceId) return edge;
    const taken = edge !== undefined;
    if (taken || this.composites > 0) {
      edge = edges.get(`${traceId}:${spanId}`);
      if (edge !== undefined && edge.traceId === traceId) return edge;
    }
    if (edges.size >= this.options.maxItems) {
      this.expire(now);
      if (edges.size >= this.options.maxItems) return undefined;
    }
    // The span id may have been freed by that expiry.
    const composite = edges.has(spanId);
    const key = composite ? `${traceId}:${spanId}` : spanId;
    if (composite) this.composites++;
    edge = { key, composite, traceId, createdAt: now, client: undefined, server: undefined };
    edges.set(key, edge);
    return edge;
  }

  private remove(edge: Edge): void {
    this.edges.delete(edge.key);
    if (edge.composite) this.composites--;
  }

  /** Emits the edge once it has both halves. */
  private pairUp(edge: Edge, now: number): void {
    const traceId = edge.traceId;
    if (edge.client && edge.server) {
      this.remove(edge);
      const messaging = edge.client.messaging || edge.server.messaging;
      this.emit(traceId, edge.client, edge.server, messaging ? 'messaging_system' : '', now);
    }
  }

  /** Expires the edges that waited `waitMs` or longer: virtual-node edges where possible, else unpaired. */
  expire(now: number): void {
    for (const edge of this.edges.values()) {
      if (now - edge.createdAt < this.options.waitMs) break;
      this.remove(edge);
      this.expired(edge, now);
    }
  }

  private expired(edge: Edge, now: number): void {
    const { client, server } = edge;
    if (client && client.peer !== '') {
      this.emit(edge.traceId, client, { ...client, service: client.peer }, 'virtual_node', now);
    } else {
      this.count(this.unpaired, client?.service ?? '', server?.service ?? '', now);
    }
  }

  private emit(traceId: string, client: Half, server: Half, connectionType: ConnectionType, now: number): void {
    const labels = this.edgeLabels.of(client.service, server.service, connectionType);
    const exemplar = (value: number) => new SpanExemplar(traceId, server.spanId, value, server.end);
    const store = this.store;
    const buckets = this.options.latencyBuckets;
    // A virtual or database server half is a copy of the client half, so it has the client's weight.
    const weight = server.weight;
    // One exemplar for both counters: exemplars are not changed once made.
    const counted = exemplar(1);
    store.increment(this.requests, labels, weight, counted, now);
    if (client.failed || server.failed) store.increment(this.failed, labels, weight, counted, now);
    store.observe(this.serverSeconds, labels, buckets, server.seconds, exemplar(server.seconds), now, weight);
    store.observe(this.clientSeconds, labels, buckets, client.seconds, exemplar(client.seconds), now, weight);
  }

  private count(family: Family, client: string, server: string, now: number): void {
    this.store.increment(family, this.countLabels.of(client, server, ''), 1, undefined, now);
  }

  /** Stops the timers and expires every waiting edge (virtual-node edges where possible, else unpaired). */
  async shutdown(): Promise<void> {
    clearInterval(this.expirer);
    this.stopStore();
    const now = this.now();
    for (const edge of this.edges.values()) this.expired(edge, now);
    this.edges.clear();
    this.composites = 0;
  }
}

/**
 * The label string of the last (client, server, connection type) asked for, made again only when one
 * of them changes: the spans of a request mostly share their services, so the series lookups that
 * follow hash one string rather than a new one per edge.
 */
class LastLabels {
  private client: string | undefined;
  private server: string | undefined;
  private connectionType: string | undefined;
  private labels = '';

  constructor(private readonly make: (client: string, server: string, connectionType: string) => string) {}

  of(client: string, server: string, connectionType: string): string {
    if (client !== this.client || server !== this.server || connectionType !== this.connectionType) {
      this.client = client;
      this.server = server;
      this.connectionType = connectionType;
      this.labels = this.make(client, server, connectionType);
    }
    return this.labels;
  }
}

function halfOf(span: Span, service: string, weight: number, messaging: boolean): Half {
  const seconds =
    span.endTimeUnixNano > span.startTimeUnixNano ? Number(span.endTimeUnixNano - span.startTimeUnixNano) / 1e9 : 0;
  return {
    service,
    spanId: span.spanId,
    seconds,
    failed: span.status.code === StatusCode.ERROR,
    end: span.endTimeUnixNano,
    weight,
    messaging,
    peer: '',
  };
}

/**
 * The attributes the service graph reads (its three lists), found in a lean span's bytes in one walk
 * (otlp/protobuf/lean.ts) rather than one per list; remembered for the span last read, until the end
 * of the batch (forgetLookups: a span references its request's bytes).
 */
const LOOKED_UP = [...new Set([...DATABASE_SYSTEM_ATTRIBUTES, ...PEER_ATTRIBUTES, ...DATABASE_NAME_ATTRIBUTES])];
const LOOKED_UP_KEYS = new KeySet(LOOKED_UP);
const lookedUp = new Array<AnyValue>(LOOKED_UP.length);
let lookedUpIn: Span | undefined;

function forgetLookups(): void {
  lookedUpIn = undefined;
  lookedUp.fill(undefined);
  endLookups();
}

/** A list of keys, first found wins, by their place in LOOKED_UP. */
class Keys {
  readonly at: number[];
  constructor(readonly keys: readonly string[]) {
    this.at = keys.map((k) => LOOKED_UP.indexOf(k));
  }
}

const DATABASE_SYSTEM = new Keys(DATABASE_SYSTEM_ATTRIBUTES);
const DATABASE_NAME = new Keys(DATABASE_NAME_ATTRIBUTES);
const PEER = new Keys(PEER_ATTRIBUTES);

/**
 * The value of the first of `keys` the span has with a non-empty value ('' when none), as attributeValue
 * finds each. A lean span's attributes still in bytes are searched there, not decoded.
 */
function firstOf(span: Span, keys: Keys): string {
  if (attributesInBytes(span)) {
    if (lookedUpIn !== span) {
      firstValues(span, LOOKED_UP_KEYS, lookedUp);
      lookedUpIn = span;
    }
    for (const at of keys.at) {
      const value = stringOf(lookedUp[at]);
      if (value !== '') return value;
    }
    return '';
  }
  const attributes = span.attributes;
  for (const key of keys.keys) {
    const value = stringOf(attributeValue(attributes, key));
    if (value !== '') return value;
  }
  return '';
}

function stringOf(value: AnyValue): string {
  return value === undefined ? '' : labelValue(value);
}

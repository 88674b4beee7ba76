/**
 * Client compatibility: the OpenTelemetry JS SDK at several release lines (0.27, before the OTLP
 * scope renames; 0.57; 0.200; the latest) exports the same scenario over OTLP/HTTP JSON,
 * OTLP/HTTP protobuf and OTLP/gRPC, each signal where that line has an exporter, to a real
 * receiver; what reaches its pipeline is compared with what the SDK recorded: span names, ids,
 * timestamps, attributes, events and status; metric names, kinds and values; log bodies,
 * severities and attributes; and events counted in sonde_events_total.
 */
import type { AnyValue, KeyValue, Metric, ResourceLogs, ResourceMetrics, ResourceSpans } from '@sonde/receiver';
import { KeyValueList } from '@sonde/receiver';
import { type Harness, received, startHarness } from '../helpers';
import { type Endpoints, LINES, type Line, type Transport } from './clients';

jest.setTimeout(15_000);

let harness: Harness;
let endpoints: Endpoints;

beforeAll(async () => {
  harness = await startHarness();
  endpoints = { http: harness.httpUrl, grpc: harness.grpcUrl };
});

afterAll(() => harness.close());

/** Attribute values as plain JS values (ints as numbers: the SDK API has only numbers). */
function plain(value: AnyValue): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof KeyValueList) return attributes(value.values);
  return value;
}

function attributes(kvs: readonly KeyValue[]): Record<string, unknown> {
  return Object.fromEntries(kvs.map((kv) => [kv.key, plain(kv.value)]));
}

function ofService<R extends { resource: { attributes: KeyValue[] } }>(all: R[], service: string): R[] {
  return all.filter((r) => attributes(r.resource.attributes)['service.name'] === service);
}

/**
 * Waits until `ready` holds (bounded): some old exporters (0.27) resolve shutdown() before their last
 * request has been answered.
 */
async function arrival(ready: () => boolean): Promise<void> {
  for (let waited = 0; !ready() && waited < 5_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
}

const cases = (signal: 'traces' | 'metrics' | 'logs'): [string, Transport, Line][] =>
  LINES.flatMap((line) => line.transports[signal].map((t): [string, Transport, Line] => [line.name, t, line]));

/** A timestamp as the exporter of `line` put it on the wire over `transport`. */
function onWire(line: Line, transport: Transport, nanos: bigint): bigint {
  if (!line.nanosAsDouble) return nanos;
  return transport === 'http/json' ? BigInt(String(Number(nanos))) : BigInt(Number(nanos));
}

describe.each(cases('traces'))('OpenTelemetry JS %s traces over %s', (lineName, transport, line) => {
  test('arrive exactly', async () => {
    const service = `compat-${lineName}-${transport}-traces`;
    const sent = await line.sendTraces(endpoints, transport, service);
    const spanCount = () =>
      ofService(received(harness.batches.traces) as ResourceSpans[], service).flatMap((r) =>
        r.scopeSpans.flatMap((s) => s.spans),
      ).length;
    await arrival(() => spanCount() >= 2);
    const resources = ofService(received(harness.batches.traces) as ResourceSpans[], service);
    expect(resources.length).toBeGreaterThanOrEqual(1);
    for (const r of resources) {
      expect(attributes(r.resource.attributes)).toMatchObject({
        'service.name': service,
        'telemetry.sdk.version': line.sdkVersion,
      });
    }
    const scopes = resources.flatMap((r) => r.scopeSpans);
    expect(scopes.map((s) => [s.scope.name, s.scope.version])).toEqual(scopes.map(() => ['compat', '1.2.3']));
    const spans = scopes.flatMap((s) => s.spans);
    expect(
      spans.map((s) => ({
        name: s.name,
        kind: s.kind,
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId,
        start: s.startTimeUnixNano,
        end: s.endTimeUnixNano,
        attributes: attributes(s.attributes),
        events: s.events.map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
        status: { code: s.status.code, message: s.status.message },
      })),
    ).toEqual(
      // SimpleSpanProcessor exports each span as it ends: the child first.
      [sent.spans[1], sent.spans[0]]
        .map(({ start, end, ...sentSpan }) => ({
          ...sentSpan,
          start: onWire(line, transport, start),
          end: onWire(line, transport, end),
        }))
        .map((s) =>
          s.name === 'GET /compat'
            ? {
                ...s,
                kind: 2, // OTLP SPAN_KIND_SERVER
                attributes: { 'http.route': '/compat', 'compat.int': 42, 'compat.double': 1.5, 'compat.bool': true },
                events: [{ name: 'retry', attributes: { attempt: 2 } }],
                status: { code: 0, message: '' },
              }
            : {
                ...s,
                kind: 3, // OTLP SPAN_KIND_CLIENT
                attributes: { 'db.system': 'sqlite', 'compat.list': ['a', 'b'] },
                events: [],
                status: { code: 2, message: 'boom' },
              },
        ),
    );
    expect(sent.spans[1].parentSpanId).toBe(sent.spans[0].spanId);
  });
});

describe.each(cases('metrics'))('OpenTelemetry JS %s metrics over %s', (lineName, transport, line) => {
  test('arrive exactly', async () => {
    const service = `compat-${lineName}-${transport}-metrics`;
    await line.sendMetrics(endpoints, transport, service);
    await arrival(() => ofService(received(harness.batches.metrics) as ResourceMetrics[], service).length > 0);
    const resources = ofService(received(harness.batches.metrics) as ResourceMetrics[], service);
    expect(resources.length).toBeGreaterThanOrEqual(1);
    const metrics = resources.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics));
    // One metric per name with the latest point of each attribute set: 0.27 sends a metric per
    // attribute set, and the later lines export again (the same cumulative values) at shutdown.
    const byName: Record<string, Metric> = {};
    for (const m of metrics) {
      const seen = byName[m.name];
      const points = new Map<string, unknown>(
        ((seen?.data.dataPoints ?? []) as { attributes: KeyValue[] }[]).map((p) => [
          JSON.stringify(attributes(p.attributes)),
          p,
        ]),
      );
      for (const p of m.data.dataPoints as { attributes: KeyValue[] }[]) {
        points.set(JSON.stringify(attributes(p.attributes)), p);
      }
      byName[m.name] = { ...m, data: { ...m.data, dataPoints: [...points.values()] } as Metric['data'] };
    }
    const counter = byName['compat.requests'];
    expect(counter?.data.type).toBe('sum');
    if (counter?.data.type !== 'sum') return;
    expect(counter.data.isMonotonic).toBe(true);
    expect(counter.data.aggregationTemporality).toBe(2); // cumulative
    expect(
      counter.data.dataPoints
        .map((p) => [attributes(p.attributes), p.value])
        .sort((a, b) => Number(a[1]) - Number(b[1])),
    ).toEqual([
      [{ route: '/b' }, 1],
      [{ route: '/a' }, 5],
    ]);
    const histogram = byName['compat.latency'];
    expect(histogram?.data.type).toBe('histogram');
    if (histogram?.data.type !== 'histogram') return;
    expect(histogram.data.dataPoints.map((p) => [attributes(p.attributes), p.count, p.sum])).toEqual([
      [{ route: '/a' }, 2, 40],
    ]);
    const points = histogram.data.dataPoints[0];
    expect(points.bucketCounts.reduce((a, b) => a + b, 0)).toBe(2);
    expect(points.bucketCounts).toHaveLength(points.explicitBounds.length + 1);
  });
});

describe.each(cases('logs'))('OpenTelemetry JS %s logs over %s', (lineName, transport, line) => {
  test('arrive exactly', async () => {
    const service = `compat-${lineName}-${transport}-logs`;
    await line.sendLogs(endpoints, transport, service);
    const resources = ofService(received(harness.batches.logs) as ResourceLogs[], service);
    const records = resources.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords));
    const plainLogs = records.filter((r) => r.body === 'compat log body');
    expect(
      plainLogs.map((r) => ({
        severityNumber: r.severityNumber,
        severityText: r.severityText,
        attributes: attributes(r.attributes),
        eventName: r.eventName,
        hasTime: r.timeUnixNano > 0n || r.observedTimeUnixNano > 0n,
      })),
    ).toEqual([
      {
        severityNumber: 9,
        severityText: 'INFO',
        attributes: { 'compat.key': 'value', 'compat.int': 7 },
        eventName: '',
        hasTime: true,
      },
    ]);
    if (line.events === 'attribute') {
      const events = records.filter((r) => r !== plainLogs[0]);
      expect(events.map((r) => attributes(r.attributes)['event.name'])).toEqual(['compat.clicked']);
      const metrics = await (await fetch(`${harness.adminUrl}/metrics`)).text();
      expect(metrics).toContain(`sonde_events_total{service="${service}",event_name="compat.clicked",category=""} 1`);
    } else {
      expect(records).toHaveLength(1);
    }
  });
});

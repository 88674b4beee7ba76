/**
 * Shared harness of the end-to-end tests: a receiver on free loopback ports that records every batch
 * reaching its pipeline, TCP pass-through proxies in front of its OTLP listeners (to count the bytes
 * an exporter really puts on the wire, e.g. to see that gzip was used), a tap on SDK exporters, and
 * helpers to compare the receiver's model exactly.
 */
import * as net from 'node:net';
import type { HrTime } from '@opentelemetry/api';
import {
  type AnyValue,
  type Batch,
  type KeyValue,
  KeyValueList,
  type Receiver,
  type Signal,
  type SignalData,
  startReceiver,
  validateConfig,
} from '@sonde/receiver';

/** A stand-in backend's request body decoded by its Content-Encoding: the receiver package's test helper. */
export { decodeBody } from '../packages/receiver/test/content-encoding';

// ---------------------------------------------------------------------------------------------
// Receiver

export interface Harness {
  receiver: Receiver;
  /** What reached the pipeline since the last `reset()`, per signal. */
  batches: { [S in Signal]: Batch<S>[] };
  /** Base URLs the exporters use (through the byte-counting proxies). */
  httpUrl: string;
  grpcUrl: string;
  /** Base URL of the admin server (direct). */
  adminUrl: string;
  /** Bytes sent by clients to the OTLP/HTTP and OTLP/gRPC listeners since the last `reset()`. */
  wireBytes(transport: 'http' | 'grpc'): number;
  /** Request body bytes the receiver read (after decompression) for `signal` over `transport`, since start. */
  bodyBytes(signal: Signal, transport: 'http' | 'grpc'): Promise<number>;
  reset(): void;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const config = validateConfig({
    otlp: {
      http: { address: '127.0.0.1:0' },
      grpc: { address: '127.0.0.1:0' },
    },
    admin: { address: '127.0.0.1:0' },
    log: { level: 'silent', summary_interval: 0 },
    trace_store: { enabled: false },
  });
  const receiver = await startReceiver(config, { defaultMetrics: false });
  const batches = { traces: [], metrics: [], logs: [] } as Harness['batches'];
  receiver.pipeline.traces.addConsumer({
    name: 'capture',
    consume: (b) => void batches.traces.push(b),
  });
  receiver.pipeline.metrics.addConsumer({
    name: 'capture',
    consume: (b) => void batches.metrics.push(b),
  });
  receiver.pipeline.logs.addConsumer({
    name: 'capture',
    consume: (b) => void batches.logs.push(b),
  });
  const httpProxy = await startTcpProxy(required(receiver.addresses.otlpHttp));
  const grpcProxy = await startTcpProxy(required(receiver.addresses.otlpGrpc));
  return {
    receiver,
    batches,
    httpUrl: `http://${httpProxy.address}`,
    grpcUrl: `http://${grpcProxy.address}`,
    adminUrl: `http://${required(receiver.addresses.admin)}`,
    wireBytes: (transport) => (transport === 'http' ? httpProxy : grpcProxy).bytesIn,
    bodyBytes: async (signal, transport) => {
      const { values } = await receiver.metrics.receivedBytes.get();
      return values.find((v) => v.labels.signal === signal && v.labels.transport === transport)?.value ?? 0;
    },
    reset() {
      for (const signal of ['traces', 'metrics', 'logs'] as const) batches[signal].length = 0;
      httpProxy.bytesIn = 0;
      grpcProxy.bytesIn = 0;
    },
    async close() {
      await Promise.all([httpProxy.close(), grpcProxy.close()]);
      await receiver.close();
    },
  };
}

function required(address: string | undefined): string {
  if (!address) throw new Error('the receiver did not report a listen address');
  return address;
}

interface TcpProxy {
  address: string;
  bytesIn: number;
  close(): Promise<void>;
}

/** A transparent TCP proxy to `target` ("host:port") that counts the bytes clients send. */
async function startTcpProxy(target: string): Promise<TcpProxy> {
  const colon = target.lastIndexOf(':');
  const host = target.slice(0, colon);
  const port = Number(target.slice(colon + 1));
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const proxy: TcpProxy = { address: '', bytesIn: 0, close: async () => {} };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    track(client);
    track(upstream);
    client.on('data', (chunk: Buffer) => {
      proxy.bytesIn += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const bound = server.address() as net.AddressInfo;
  proxy.address = `127.0.0.1:${bound.port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}

// ---------------------------------------------------------------------------------------------
// Exporter tap

/** What an exporter reports for one export() call (ExportResult of @opentelemetry/core). */
export interface ExportResultLike {
  code: number;
  error?: Error;
}

export interface Tap<I> {
  /** What the SDK handed to the exporter, one entry per export() call. */
  exported: I[];
  /** The result the real exporter reported for each export() call. */
  results: ExportResultLike[];
}

/**
 * Records what the SDK passes to a real exporter and the ExportResult the exporter reports, by
 * wrapping its export() in place (so its other methods, e.g. the metric exporter's temporality
 * selector, stay as they are).
 */
export function tap<I>(exporter: {
  export(items: I, resultCallback: (result: ExportResultLike) => void): void;
}): Tap<I> {
  const record: Tap<I> = { exported: [], results: [] };
  const original = exporter.export.bind(exporter);
  exporter.export = (items, cb) => {
    record.exported.push(items);
    original(items, (result) => {
      record.results.push(result);
      cb(result);
    });
  };
  return record;
}

// ---------------------------------------------------------------------------------------------
// Model helpers

/** An HrTime as nanoseconds since the epoch, as the receiver's model holds timestamps. */
export function ns(time: HrTime): bigint {
  return BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);
}

/** KeyValue[] in the given order, from a record of model values. */
export function attrs(values: Record<string, AnyValue>): KeyValue[] {
  return Object.entries(values).map(([key, value]) => ({ key, value }));
}

/** A KeyValueList AnyValue from a record of model values. */
export function kvlist(values: Record<string, AnyValue>): KeyValueList {
  return new KeyValueList(attrs(values));
}

/**
 * A comparable form of model data: KeyValueList and byte arrays become tagged plain objects, so that
 * `toStrictEqual` tells a map from an array or a plain object, and bytes from numbers, whatever
 * Uint8Array subclass the decoder used. bigint and number stay apart. The protobuf decoder's field
 * offsets (`at`, for patches) are left out: data from JSON or from the SDK has none.
 */
export function comparable(value: unknown): unknown {
  if (value instanceof KeyValueList) return { $kvlist: value.values.map(comparable) };
  if (value instanceof Uint8Array)
    return {
      $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex'),
    };
  if (Array.isArray(value)) return value.map(comparable);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (k !== 'at') out[k] = comparable(v);
    return out;
  }
  return value;
}

/** The batches' data of one signal, concatenated. */
export function received<S extends Signal>(batches: Batch<S>[]): SignalData[S] {
  return batches.flatMap((b) => b.data as unknown[]) as SignalData[S];
}

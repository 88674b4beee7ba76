/**
 * The OTLP/gRPC listener's connections (issue 11, finding 4): a cap on open connections
 * (otlp.grpc.max_connections) and a deadline for a connection's HTTP/2 preface, after its TLS handshake
 * when there is one (otlp.grpc.read_header_timeout), so that idle sockets cannot exhaust file
 * descriptors. Real sockets and a real grpc-js client against a real receiver.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../src/intake/grpc';
import { makePki, type TestPki } from './certs';
import { span, startTestReceiver, type TestReceiver, traceRequest } from './helpers';

const BODY = traceRequest([span()]);
/** The client connection preface (RFC 9113 §3.4): the magic, then an empty SETTINGS frame. */
const MAGIC = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const PREFACE = Buffer.concat([MAGIC, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

const TraceClient = grpc.makeGenericClientConstructor(serviceDefinition('traces'), 'TraceService');
type TraceClient = grpc.Client & {
  Export(req: Buffer, md: grpc.Metadata, cb: (err: grpc.ServiceError | null) => void): void;
};

/** A grpc-js client, closed after the test. */
function newClient(address: string, credentials: grpc.ChannelCredentials): TraceClient {
  const client = new TraceClient(address, credentials) as unknown as TraceClient;
  clients.push(client);
  return client;
}

function exportOn(client: TraceClient): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => client.Export(BODY, new grpc.Metadata(), (err) => resolve(err)));
}

/** A raw connection: what it received, and when it closed. */
interface Conn {
  socket: net.Socket;
  received: () => Buffer;
  /** Resolves with the milliseconds from the connection to its close; rejects after `withinMs`. */
  closed: (withinMs: number) => Promise<number>;
  isOpen: () => boolean;
}

function track(socket: net.Socket, connected: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let closedAt: number | undefined;
    const waiters: (() => void)[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => {
      closedAt = performance.now();
      for (const w of waiters) w();
    });
    socket.once('error', reject);
    socket.once(connected, () => {
      socket.on('error', () => {});
      const openedAt = performance.now();
      resolve({
        socket,
        received: () => Buffer.concat(chunks),
        isOpen: () => closedAt === undefined,
        closed: (withinMs) =>
          new Promise((res, rej) => {
            if (closedAt !== undefined) return res(closedAt - openedAt);
            const timer = setTimeout(() => rej(new Error(`still open after ${withinMs} ms`)), withinMs);
            waiters.push(() => {
              clearTimeout(timer);
              res((closedAt as number) - openedAt);
            });
          }),
      });
    });
  });
}

function open(address: string): Promise<Conn> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  return track(net.connect({ host, port }), 'connect');
}

/** Polls `read` until it returns `expected` (or fails after `withinMs`). */
async function eventually<T>(read: () => Promise<T> | T, expected: T, withinMs = 5000): Promise<void> {
  const until = performance.now() + withinMs;
  let last = await read();
  while (last !== expected && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 25));
    last = await read();
  }
  expect(last).toEqual(expected);
}

async function metric(t: TestReceiver, name: string, labels: Record<string, string>): Promise<number> {
  const m = t.receiver.metrics.registry.getSingleMetric(name);
  const v = (await m?.get())?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

/** An HTTP/2 server's first frame, its SETTINGS: the connection was taken and the preface read. */
const answeredSettings = (c: Conn) => c.received().length >= 9 && c.received()[3] === 4;

let t: TestReceiver | undefined;
const clients: grpc.Client[] = [];
const conns: Conn[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const c of conns.splice(0)) c.socket.destroy();
  await t?.close();
  t = undefined;
});

test('max_connections: a connection over the cap is closed and counted; /healthz and calls on open connections go on', async () => {
  t = await startTestReceiver({ otlp: { grpc: { max_connections: 3 } } });
  const client = newClient(t.grpc, grpc.credentials.createInsecure());
  expect(await exportOn(client)).toBeNull();
  for (let i = 0; i < 2; i++) {
    const c = await open(t.grpc);
    conns.push(c);
    c.socket.write(PREFACE);
    await eventually(() => answeredSettings(c), true);
  }
  const extra = await open(t.grpc);
  conns.push(extra);
  extra.socket.write(PREFACE);
  await extra.closed(5000);
  expect(extra.received().length).toBe(0);
  const refused = { listener: 'otlp_grpc' };
  expect(await metric(t, 'sonde_receiver_connections_refused_total', refused)).toBe(1);
  expect((await fetch(`${t.admin}/healthz`)).status).toBe(200);
  // The client's connection is one of the three: its calls still go through.
  expect(await exportOn(client)).toBeNull();
  expect(t.batches.traces.length).toBe(2);
  // A slot freed is a slot taken again.
  conns[0].socket.destroy();
  const other = newClient(t.grpc, grpc.credentials.createInsecure());
  await eventually(async () => (await exportOn(other)) === null, true);
});

test('read_header_timeout: a connection without its HTTP/2 preface in time is closed and counted', async () => {
  t = await startTestReceiver({ otlp: { grpc: { read_header_timeout: '300ms' } } });
  const silent = await open(t.grpc);
  // Half the magic, then nothing.
  const partial = await open(t.grpc);
  partial.socket.write(MAGIC.subarray(0, 12));
  // The whole magic but no SETTINGS frame.
  const magicOnly = await open(t.grpc);
  magicOnly.socket.write(MAGIC);
  // A whole preface in two writes, in time: the connection is kept.
  const complete = await open(t.grpc);
  complete.socket.write(PREFACE.subarray(0, 30));
  await new Promise((r) => setTimeout(r, 50));
  complete.socket.write(PREFACE.subarray(30));
  conns.push(silent, partial, magicOnly, complete);
  for (const c of [silent, partial, magicOnly]) expect(await c.closed(5000)).toBeGreaterThanOrEqual(250);
  expect(await metric(t, 'sonde_receiver_request_timeouts_total', { listener: 'otlp_grpc', kind: 'read_header' })).toBe(
    3,
  );
  await eventually(() => answeredSettings(complete), true);
  await new Promise((r) => setTimeout(r, 400));
  expect(complete.isOpen()).toBe(true);
  // And calls go through.
  const client = newClient(t.grpc, grpc.credentials.createInsecure());
  expect(await exportOn(client)).toBeNull();
});

test('a connection that is not HTTP/2 is handed over at once, and HTTP/2 refuses it (no timeout)', async () => {
  t = await startTestReceiver({ otlp: { grpc: { read_header_timeout: '10s' } } });
  const c = await open(t.grpc);
  conns.push(c);
  c.socket.write(`GET / HTTP/1.1\r\nhost: ${t.grpc}\r\n\r\n`);
  await c.closed(5000);
  expect(await metric(t, 'sonde_receiver_request_timeouts_total', { listener: 'otlp_grpc', kind: 'read_header' })).toBe(
    0,
  );
});

test('shutdown: new connections are refused, a call in progress completes, then close resolves', async () => {
  t = await startTestReceiver({ shutdown_timeout: '10s' });
  const receiver = t;
  const session = http2.connect(`http://${receiver.grpc}`);
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const status = new Promise<string>((resolve) => {
    stream.on('trailers', (trailers) => resolve(String(trailers['grpc-status'])));
    stream.on('close', () => resolve('closed without a status'));
  });
  stream.on('data', () => {});
  stream.on('error', () => {});
  // The call is open (its headers taken) before the receiver closes.
  await new Promise((r) => stream.once('ready', r));
  await new Promise((r) => setTimeout(r, 100));
  const startedAt = performance.now();
  const closed = receiver.close();
  t = undefined;
  await new Promise((r) => setTimeout(r, 100));
  const refused = await open(receiver.grpc).then(
    (c) => {
      c.socket.destroy();
      return false;
    },
    () => true,
  );
  expect(refused).toBe(true);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(BODY.length, 1);
  stream.end(Buffer.concat([prefix, BODY]));
  expect(await status).toBe('0');
  await closed;
  session.destroy();
  expect(performance.now() - startedAt).toBeLessThan(5000);
  expect(receiver.batches.traces.length).toBe(1);
});

describe('over TLS', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki?.cleanup());

  test('read_header_timeout covers the TLS handshake and the preface after it', async () => {
    t = await startTestReceiver({
      otlp: {
        tls: { cert_file: pki.server.cert, key_file: pki.server.key },
        grpc: { read_header_timeout: '300ms', max_connections: 3 },
      },
    });
    const [host, port] = t.grpc.split(':');
    const silent = await open(t.grpc);
    // The handshake done, then nothing.
    const secure = await track(
      tls.connect({
        host,
        port: Number(port),
        ca: pki.read(pki.ca.cert),
        servername: 'localhost',
        ALPNProtocols: ['h2'],
      }),
      'secureConnect',
    );
    conns.push(silent, secure);
    for (const c of [silent, secure]) expect(await c.closed(5000)).toBeGreaterThanOrEqual(250);
    expect(
      await metric(t, 'sonde_receiver_request_timeouts_total', { listener: 'otlp_grpc', kind: 'read_header' }),
    ).toBe(2);
    const client = newClient(t.grpc, grpc.credentials.createSsl(pki.read(pki.ca.cert)));
    expect(await exportOn(client)).toBeNull();
    await new Promise((r) => setTimeout(r, 400));
    // Past the timeout: the client's connection was not cut (no third timeout).
    expect(await exportOn(client)).toBeNull();
    expect(t.batches.traces.length).toBe(2);
    expect(
      await metric(t, 'sonde_receiver_request_timeouts_total', { listener: 'otlp_grpc', kind: 'read_header' }),
    ).toBe(2);
  });
});

/**
 * Slow, stalled, idle and greedy clients: the listeners' timeouts and connection cap
 * (otlp.http.* / admin.*: read_header_timeout, read_timeout, idle_timeout, write_timeout,
 * max_connections), and uploads counted in flight from their headers on, so that stalled bodies fill
 * overload.max_in_flight_bytes and are released whatever ends them. Real sockets against a real receiver.
 */
import { createServer } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Counter } from 'prom-client';
import { applyServerLimits } from '../src/intake/server-limits';
import { makePki } from './certs';
import { PROTOBUF, post, span, startTestReceiver, type TestReceiver, traceRequest } from './helpers';

/** A raw TCP connection to `base` (http://host:port), with everything it receives and when it closed. */
interface Conn {
  socket: Socket;
  received: () => string;
  /** Resolves with the milliseconds from `since` to the socket's close; rejects after `withinMs`. */
  closed: (withinMs: number) => Promise<number>;
}

function open(base: string): Promise<Conn> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    let closedAt: number | undefined;
    const waiters: (() => void)[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      closedAt = performance.now();
      for (const w of waiters) w();
    });
    socket.once('connect', () => {
      const openedAt = performance.now();
      resolve({
        socket,
        received: () => Buffer.concat(chunks).toString('latin1'),
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
    socket.once('error', reject);
  });
}

const hostOf = (base: string) => new URL(base).host;

function postHeaders(base: string, headers: Record<string, string | number>): string {
  const lines = Object.entries({ host: hostOf(base), 'content-type': PROTOBUF['content-type'], ...headers }).map(
    ([k, v]) => `${k}: ${v}`,
  );
  return `POST /v1/traces HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** A sample's value on the admin port's /metrics (0 when the series is not there). */
async function metric(t: TestReceiver, series: string): Promise<number> {
  const text = await (await fetch(`${t.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Polls `read` until it returns `expected` (or fails after `withinMs`). */
async function eventually<T>(read: () => Promise<T>, expected: T, withinMs = 5000): Promise<void> {
  const until = performance.now() + withinMs;
  let last: T = await read();
  while (last !== expected && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 25));
    last = await read();
  }
  expect(last).toBe(expected);
}

const IN_FLIGHT = 'sonde_receiver_in_flight_bytes';
const timeouts = (listener: string, kind: string) =>
  `sonde_receiver_request_timeouts_total{listener="${listener}",kind="${kind}"}`;

describe('timeouts', () => {
  let t: TestReceiver;
  beforeAll(async () => {
    t = await startTestReceiver({
      otlp: { http: { read_header_timeout: '300ms', read_timeout: '500ms', idle_timeout: '300ms' } },
      admin: { read_header_timeout: '300ms' },
    });
  });
  afterAll(() => t.close());

  test('headers that do not arrive within read_header_timeout → 408, connection closed, counted', async () => {
    const c = await open(t.http);
    c.socket.write(`POST /v1/traces HTTP/1.1\r\nhost: ${hostOf(t.http)}\r\n`);
    const ms = await c.closed(5000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(250);
    // A connection that never sends anything is closed as well (the admin port has its own settings).
    const silent = await open(t.admin);
    await silent.closed(5000);
    expect(await metric(t, timeouts('otlp_http', 'read_header'))).toBe(1);
    expect(await metric(t, timeouts('admin', 'read_header'))).toBe(1);
  });

  test('a stalled body is counted in flight, cut at read_timeout (408), and released', async () => {
    const c = await open(t.http);
    c.socket.write(postHeaders(t.http, { 'content-length': 1024 * 1024 }));
    c.socket.write(Buffer.alloc(1000));
    await eventually(() => metric(t, IN_FLIGHT), 1024 * 1024);
    await c.closed(5000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    await eventually(() => metric(t, IN_FLIGHT), 0);
    expect(await metric(t, timeouts('otlp_http', 'read'))).toBe(1);
  });

  test('a stalled gzip body is released too (its decompressor never sees the end)', async () => {
    const c = await open(t.http);
    c.socket.write(postHeaders(t.http, { 'content-length': 200_000, 'content-encoding': 'gzip' }));
    c.socket.write(Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03]));
    await eventually(() => metric(t, IN_FLIGHT), 200_000);
    await c.closed(5000);
    await eventually(() => metric(t, IN_FLIGHT), 0);
  });

  test('a chunked body is counted as it arrives, and released when the client goes away', async () => {
    const c = await open(t.http);
    c.socket.write(postHeaders(t.http, { 'transfer-encoding': 'chunked' }));
    c.socket.write(`${(3000).toString(16)}\r\n${'x'.repeat(3000)}\r\n`);
    await eventually(() => metric(t, IN_FLIGHT), 3000);
    c.socket.destroy();
    await eventually(() => metric(t, IN_FLIGHT), 0);
  });

  test('an idle keep-alive connection is closed after idle_timeout', async () => {
    const c = await open(t.http);
    const body = traceRequest([span()]);
    c.socket.write(postHeaders(t.http, { 'content-length': body.length }));
    c.socket.write(body);
    const ms = await c.closed(3000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(await metric(t, timeouts('otlp_http', 'idle'))).toBe(1);
  });
});

describe('stalled uploads and admission', () => {
  test('stalled uploads fill max_in_flight_bytes: the next request gets 429 on its headers; all released after', async () => {
    const t = await startTestReceiver({ overload: { max_in_flight_bytes: '4MiB', retry_after: '3s' } });
    const stalled: Conn[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const c = await open(t.http);
        c.socket.write(postHeaders(t.http, { 'content-length': 1024 * 1024 }));
        c.socket.write(Buffer.alloc(50_000));
        stalled.push(c);
        await eventually(() => metric(t, IN_FLIGHT), (i + 1) * 1024 * 1024);
      }
      // Headers only: the answer comes before any body is sent, and the connection is not kept.
      const next = await open(t.http);
      next.socket.write(postHeaders(t.http, { 'content-length': 1000 }));
      await next.closed(5000);
      expect(next.received()).toMatch(/^HTTP\/1\.1 429 [\s\S]*\r\nretry-after: 3\r\n/i);
      expect(next.received()).toMatch(/\r\nconnection: close\r\n/i);
      expect((await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF)).status).toBe(429);
      // Clients that give up release what they held.
      for (const c of stalled) c.socket.destroy();
      await eventually(() => metric(t, IN_FLIGHT), 0);
      expect((await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF)).status).toBe(200);
      expect(await metric(t, IN_FLIGHT)).toBe(0);
    } finally {
      for (const c of stalled) c.socket.destroy();
      await t.close();
    }
  });

  test('a declared length over max_request_body_size → 413 on the headers, body not read', async () => {
    const t = await startTestReceiver({ limits: { max_request_body_size: '1MiB' } });
    try {
      const c = await open(t.http);
      c.socket.write(postHeaders(t.http, { 'content-length': 100 * 1024 * 1024 }));
      await c.closed(5000);
      expect(c.received()).toMatch(/^HTTP\/1\.1 413 /);
    } finally {
      await t.close();
    }
  });
});

test('max_connections: sockets over the cap are closed and counted; the admin port still answers', async () => {
  const t = await startTestReceiver({ otlp: { http: { max_connections: 3 } } });
  const held: Conn[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const c = await open(t.http);
      // A whole answered request: the server has taken the connection (and keeps it alive).
      c.socket.write(`GET /nowhere HTTP/1.1\r\nhost: ${hostOf(t.http)}\r\n\r\n`);
      await eventually(async () => /^HTTP\/1\.1 404 [\s\S]*\r\n\r\n/.test(c.received()), true);
      held.push(c);
    }
    const extra = await open(t.http);
    extra.socket.write(`GET /nowhere HTTP/1.1\r\nhost: ${hostOf(t.http)}\r\n\r\n`);
    await extra.closed(5000);
    expect(extra.received()).toBe('');
    expect((await fetch(`${t.admin}/healthz`)).status).toBe(200);
    expect(await metric(t, 'sonde_receiver_connections_refused_total{listener="otlp_http"}')).toBe(1);
    // A slot freed is a slot taken again.
    held.pop()?.socket.destroy();
    await eventually(async () => {
      const res = await post(`${t.http}/v1/traces`, traceRequest([span()]), PROTOBUF).catch(() => undefined);
      return res?.status;
    }, 200);
  } finally {
    for (const c of held) c.socket.destroy();
    await t.close();
  }
});

test('write_timeout: a client that does not read a large response has its connection cut', async () => {
  const registry = { registers: [] };
  const requestTimeouts = new Counter({ name: 't', help: 't', labelNames: ['listener', 'kind'], ...registry });
  const connectionsRefused = new Counter({ name: 'r', help: 'r', labelNames: ['listener'], ...registry });
  let responseClosed: (ms: number) => void = () => {};
  const cut = new Promise<number>((resolve) => {
    responseClosed = resolve;
  });
  const server = createServer((_req, res) => {
    const started = performance.now();
    res.on('close', () => responseClosed(performance.now() - started));
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    // Far more than socket buffers hold: most of it waits in the process for a reader.
    res.end(Buffer.alloc(64 * 1024 * 1024));
  });
  applyServerLimits(
    server,
    {
      listener: 'test',
      readHeaderTimeoutMs: 0,
      readTimeoutMs: 0,
      idleTimeoutMs: 0,
      writeTimeoutMs: 400,
      maxConnections: 0,
    },
    { requestTimeouts, connectionsRefused },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const c = await open(base);
  try {
    c.socket.pause();
    c.socket.write(`GET / HTTP/1.1\r\nhost: ${hostOf(base)}\r\n\r\n`);
    const ms = await Promise.race([
      cut,
      new Promise<number>((_, reject) => setTimeout(() => reject(new Error('response never cut')), 5000).unref()),
    ]);
    expect(ms).toBeGreaterThanOrEqual(350);
    expect((await requestTimeouts.get()).values).toEqual([{ labels: { listener: 'test', kind: 'write' }, value: 1 }]);
  } finally {
    c.socket.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('gRPC: a connection with no call is closed after max_connection_idle', async () => {
  const t = await startTestReceiver({ otlp: { grpc: { max_connection_idle: '300ms' } } });
  try {
    const c = await open(`http://${t.grpc}`);
    // The HTTP/2 preface and empty SETTINGS, then nothing.
    c.socket.write(
      Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]),
    );
    expect(await c.closed(5000)).toBeGreaterThanOrEqual(250);
  } finally {
    await t.close();
  }
});

test('gRPC: the server announces max_concurrent_streams (grpc-js would allow 2^32-1 calls per connection)', async () => {
  const t = await startTestReceiver({ otlp: { grpc: { max_concurrent_streams: 7 } } });
  const session = http2Connect(`http://${t.grpc}`);
  try {
    session.on('error', () => {});
    const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) =>
      session.once('remoteSettings', resolve),
    );
    expect(settings.maxConcurrentStreams).toBe(7);
  } finally {
    session.destroy();
    await t.close();
  }
});

test('over TLS, the same limits apply and are counted', async () => {
  const pki = makePki();
  const registers = { registers: [] };
  const requestTimeouts = new Counter({ name: 't', help: 't', labelNames: ['listener', 'kind'], ...registers });
  const connectionsRefused = new Counter({ name: 'r', help: 'r', labelNames: ['listener'], ...registers });
  const server = createHttpsServer({ key: pki.read(pki.server.key), cert: pki.read(pki.server.cert) }, (_req, res) =>
    res.end(),
  );
  applyServerLimits(
    server,
    {
      listener: 'tls',
      readHeaderTimeoutMs: 300,
      readTimeoutMs: 0,
      idleTimeoutMs: 0,
      writeTimeoutMs: 0,
      maxConnections: 0,
    },
    { requestTimeouts, connectionsRefused },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    await new Promise((r) => socket.once('secureConnect', r));
    socket.write('POST / HTTP/1.1\r\nhost: localhost\r\n');
    await new Promise<void>((resolve, reject) => {
      socket.once('close', () => resolve());
      setTimeout(() => reject(new Error('still open')), 5000).unref();
    });
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 408 /);
    expect((await requestTimeouts.get()).values).toEqual([
      { labels: { listener: 'tls', kind: 'read_header' }, value: 1 },
    ]);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    pki.cleanup();
  }
});

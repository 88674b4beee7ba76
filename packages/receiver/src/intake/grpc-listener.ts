/**
 * The OTLP/gRPC listening socket, owned by the receiver rather than by grpc-js: the socket grpc-js
 * binds itself (`bindAsync`) takes any number of connections, and keeps one that sends nothing, or
 * only part of its HTTP/2 preface, until `max_connection_idle` (longer still when it does not read
 * either), or through a TLS handshake for Node's 120 s. Thousands of such sockets exhaust file
 * descriptors, and then every port of the process is offline.
 *
 * Here a `net.Server` accepts connections, `maxConnections` open at most (Node closes those over it on
 * arrival: its 'drop' event, counted). A connection must send its client preface — the magic and its
 * first SETTINGS frame (RFC 9113 §3.4) — within `prefaceTimeoutMs`, else it is destroyed and counted.
 * The preface is read here and put back (`unshift`): Node's HTTP/2 session reads what a socket holds
 * already. Then the connection goes to grpc-js through `createConnectionInjector`, where its calls are
 * served, bounded and shut down as on a port grpc-js bound (`tryShutdown` and `forceShutdown` cover
 * injected connections).
 *
 * With TLS, the handshake is done here as well, by a `tls.Server` that never listens (a connection is
 * handed to it by emitting 'connection', as grpc-js does with its own secure server); the handshake has
 * `prefaceTimeoutMs` (its handshakeTimeout, counted the same) and the preface as long again after it,
 * as the HTTP listeners' header timeout starts after theirs. grpc-js would do the handshake itself on
 * an injected TCP socket with TLS credentials, but then the TLS socket stays inside it and the preface
 * that comes over it cannot be waited for. So the injector gets insecure credentials (with the
 * per-port interceptors, e.g. the token check) and the TLS socket; grpc-js takes the session's socket
 * as it comes (its auth context reads the peer certificate off a TLS socket). The certificate follows
 * its files (`ServerTls.createTlsServer`: `setSecureContext` on reload), and mutual TLS is the tls.Server's
 * `requestCert` and `rejectUnauthorized`.
 */
import * as net from 'node:net';
import type * as tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import type { ServerTls } from '../security/tls';

export interface GrpcListenOptions {
  host: string;
  port: number;
  /** Insecure server credentials, possibly with per-port interceptors (TLS is `tls`). */
  credentials: grpc.ServerCredentials;
  tls?: ServerTls;
  /** Open connections at most (0: no cap); `onConnectionRefused` counts those closed on arrival. */
  maxConnections: number;
  onConnectionRefused?(): void;
  /** How long a connection has for its HTTP/2 preface, and before that for its TLS handshake (0: no limit). */
  prefaceTimeoutMs: number;
  /** Counts a connection closed for its preface or its handshake not done in time. */
  onPrefaceTimeout?(): void;
}

export interface GrpcListener {
  readonly port: number;
  /**
   * Stops accepting connections and lets calls in progress finish (GOAWAY); what is left after
   * `timeoutMs` is cut. Connections that have not sent their preface are closed at once.
   */
  close(timeoutMs: number): Promise<void>;
}

const MAGIC = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER_SIZE = 9;
const SETTINGS_FRAME = 4;
/** SETTINGS_MAX_FRAME_SIZE's initial value: no frame before the server's SETTINGS may be longer. */
const MAX_INITIAL_FRAME_SIZE = 16_384;

/**
 * How far the first bytes of a connection, `head`, are from the whole client preface: 0 when they hold
 * it, -1 when they are something else (left for HTTP/2 to refuse), else how many bytes to look again at.
 */
export function prefaceNeeds(head: Buffer): number {
  const magic = head.subarray(0, MAGIC.length);
  if (!magic.equals(MAGIC.subarray(0, magic.length))) return -1;
  if (head.length < MAGIC.length + FRAME_HEADER_SIZE) return head.length + 1;
  const length = head.readUIntBE(MAGIC.length, 3);
  if (head[MAGIC.length + 3] !== SETTINGS_FRAME || length > MAX_INITIAL_FRAME_SIZE) return -1;
  const total = MAGIC.length + FRAME_HEADER_SIZE + length;
  return head.length >= total ? 0 : total;
}

/** Listens on `options.host`:`options.port` and serves the connections with `server`. */
export function listenGrpc(server: grpc.Server, options: GrpcListenOptions): Promise<GrpcListener> {
  const { prefaceTimeoutMs } = options;
  const injector = server.createConnectionInjector(options.credentials);
  /** Every accepted TCP socket still open. */
  const sockets = new Set<net.Socket>();
  /** Connections (TCP, or TLS once its handshake is done) waiting for their preface. */
  const awaiting = new Set<net.Socket>();
  /**
   * TCP sockets whose TLS handshake is in progress, by peer address (a TLS socket does not give its
   * TCP socket away, but reports the same peer; unique among open connections to one port).
   */
  const handshaking = new Map<string, net.Socket>();
  const peer = (socket: net.Socket) => `${socket.remoteAddress} ${socket.remotePort}`;
  let closing = false;

  /** Reads `socket`'s preface, then hands the socket to grpc-js (or closes it past the deadline). */
  const awaitPreface = (socket: net.Socket) => {
    if (closing) return void socket.destroy();
    if (prefaceTimeoutMs <= 0) return injector.injectConnection(socket);
    awaiting.add(socket);
    let chunks: Buffer[] = [];
    let received = 0;
    let needs = 1;
    const timer = setTimeout(() => {
      options.onPrefaceTimeout?.();
      socket.destroy();
    }, prefaceTimeoutMs);
    const done = () => {
      clearTimeout(timer);
      awaiting.delete(socket);
      socket.off('data', onData);
      socket.off('close', done);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      // Joined only when they may be enough: a SETTINGS frame trickled byte by byte is not copied over and over.
      if (received < needs) return;
      const head = Buffer.concat(chunks);
      chunks = [head];
      needs = prefaceNeeds(head);
      if (needs > 0) return;
      done();
      socket.pause();
      socket.unshift(head);
      injector.injectConnection(socket);
    };
    // Until HTTP/2 has the socket (it then reports errors on its session); a reset client is no error of ours.
    socket.on('error', () => {});
    socket.on('data', onData);
    socket.once('close', done);
  };

  let tlsServer: tls.Server | undefined;
  if (options.tls) {
    tlsServer = options.tls.createTlsServer({
      ALPNProtocols: ['h2'],
      ...(prefaceTimeoutMs > 0 ? { handshakeTimeout: prefaceTimeoutMs } : {}),
    });
    tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
      handshaking.delete(peer(socket));
      awaitPreface(socket);
    });
    // A failed handshake (wrong CA, no client certificate, plain text, too slow) closes the connection.
    tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') options.onPrefaceTimeout?.();
      socket.destroy();
    });
  }

  const netServer = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (tlsServer) {
      const key = peer(socket);
      handshaking.set(key, socket);
      socket.once('close', () => {
        if (handshaking.get(key) === socket) handshaking.delete(key);
      });
      socket.on('error', () => {});
      tlsServer.emit('connection', socket);
    } else awaitPreface(socket);
  });
  if (options.maxConnections > 0) netServer.maxConnections = options.maxConnections;
  netServer.on('drop', () => options.onConnectionRefused?.());

  const close = async (timeoutMs: number) => {
    closing = true;
    // Resolves once every connection has ended.
    const closed = new Promise<void>((resolve) => netServer.close(() => resolve()));
    tlsServer?.close();
    for (const socket of [...awaiting, ...handshaking.values()]) socket.destroy();
    // GOAWAY on every session: each ends once its calls have. grpc-js's callback cannot say when: the
    // server it made for injected connections counts none of them, and so reports closed at once.
    server.tryShutdown(() => {});
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    if (await Promise.race([closed.then(() => false), late])) {
      server.forceShutdown();
      for (const socket of sockets) socket.destroy();
      await closed;
    }
    clearTimeout(timer);
  };

  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.forceShutdown();
      const where = options.host.includes(':')
        ? `[${options.host}]:${options.port}`
        : `${options.host}:${options.port}`;
      const hint = err.code === 'EADDRINUSE' ? ' (another process holds the port; set another address or port 0)' : '';
      reject(new Error(`cannot listen for OTLP/gRPC on ${where}: ${err.code ?? err.message}${hint}`));
    };
    netServer.once('error', onError);
    netServer.listen(options.port, options.host, () => {
      netServer.off('error', onError);
      resolve({ port: (netServer.address() as net.AddressInfo).port, close });
    });
  });
}

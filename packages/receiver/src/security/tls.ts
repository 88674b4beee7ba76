/**
 * TLS of the receiver's listeners (`otlp.tls` for OTLP/HTTP and OTLP/gRPC, `admin.tls`): the
 * Collector's configtls server settings. `cert_file` + `key_file` turn TLS on; `client_ca_file` turns
 * on mutual TLS (a client certificate signed by one of its CAs is required and verified);
 * `min_version` is the lowest protocol version accepted. The files are re-read when they change
 * (see watch.ts): new handshakes use the new certificate, established connections keep theirs.
 *
 * Every listener takes the new context through `server.setSecureContext`: the HTTP ones on their
 * HTTPS server, the gRPC one on the `tls.Server` that does its handshakes (src/intake/grpc-listener.ts).
 */
import type { Server as HttpServer, RequestListener } from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { Logger } from '../logger';
import { WatchedFiles } from './watch';

export interface ServerTlsConfig {
  cert_file: string;
  key_file: string;
  client_ca_file: string;
  min_version: '1.2' | '1.3';
  reload_interval: number;
}

const MIN_VERSION: Record<ServerTlsConfig['min_version'], tls.SecureVersion> = { '1.2': 'TLSv1.2', '1.3': 'TLSv1.3' };

/** The certificate, key and client CAs of one listener, kept up to date with their files. */
export class ServerTls {
  private context: tls.SecureContextOptions = {};
  private readonly listeners = new Set<(context: tls.SecureContextOptions) => void>();
  private readonly watched: WatchedFiles;
  readonly mutual: boolean;

  /** Reads the files (throws, naming the key and the file, when they are missing or do not fit). */
  constructor(
    config: ServerTlsConfig,
    /** The configuration section, for errors and logs ("otlp.tls"). */
    readonly section: string,
    logger: Logger,
  ) {
    this.mutual = config.client_ca_file !== '';
    const files = [config.cert_file, config.key_file, ...(this.mutual ? [config.client_ca_file] : [])];
    this.watched = new WatchedFiles(
      files,
      config.reload_interval,
      ([cert, key, ca]) => {
        const context: tls.SecureContextOptions = { cert, key, ca, minVersion: MIN_VERSION[config.min_version] };
        try {
          // Refuses a key that does not match its certificate, or PEM that does not parse.
          tls.createSecureContext(context);
        } catch (err) {
          throw new Error(`${section}: cert_file, key_file or client_ca_file is not usable: ${(err as Error).message}`);
        }
        this.context = context;
        for (const listener of this.listeners) listener(context);
      },
      logger,
      section,
    );
  }

  /** Server options that are not part of the secure context (and so cannot change on reload). */
  get serverOptions(): tls.TlsOptions {
    return { requestCert: this.mutual, rejectUnauthorized: this.mutual };
  }

  get contextOptions(): tls.SecureContextOptions {
    return this.context;
  }

  onUpdate(listener: (context: tls.SecureContextOptions) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the files now if they changed (what the timer does every reload_interval). */
  reload(): Promise<void> {
    return this.watched.poll();
  }

  close(): void {
    this.watched.close();
    this.listeners.clear();
  }

  /**
   * An HTTPS server for `app` that follows the files. A client has `handshakeTimeoutMs` to complete its
   * TLS handshake (0: Node's 120 s): the listener's read_header_timeout, which only starts after it.
   */
  createHttpsServer(app: RequestListener, handshakeTimeoutMs = 0): HttpServer {
    const server = https.createServer(
      {
        ...this.serverOptions,
        ...this.context,
        ...(handshakeTimeoutMs > 0 ? { handshakeTimeout: handshakeTimeoutMs } : {}),
      },
      app,
    );
    const off = this.onUpdate((context) => server.setSecureContext(context));
    server.once('close', off);
    // A failed handshake (wrong CA, no client certificate, plain HTTP) is the client's problem: Node
    // already closes the socket; without a listener the error would go unnoticed anyway.
    server.on('tlsClientError', () => {});
    // https.Server has every method of http.Server that the receiver uses (close*Connections, address).
    return server as unknown as HttpServer;
  }

  /**
   * A TLS server that follows the files, with `options` besides (ALPN, handshake timeout). It need not
   * listen: a TCP socket emitted to it as 'connection' goes through the handshake.
   */
  createTlsServer(options: tls.TlsOptions = {}): tls.Server {
    const server = tls.createServer({ ...options, ...this.serverOptions, ...this.context });
    const off = this.onUpdate((context) => server.setSecureContext(context));
    server.once('close', off);
    return server;
  }
}

/** TLS on when a certificate is configured (cert_file and key_file go together, checked by the schema). */
export function openServerTls(config: ServerTlsConfig, section: string, logger: Logger): ServerTls | undefined {
  return config.cert_file ? new ServerTls(config, section, logger) : undefined;
}

/**
 * Bearer tokens (`otlp.auth.bearer_tokens_file`, `admin.auth.bearer_tokens_file`): a file with one
 * token per line, optionally followed by whitespace and a tenant name; empty lines and lines starting
 * with `#` are skipped. A request is let in when its `Authorization: Bearer <token>` names one of them.
 *
 * - Compared in constant time: the presented token and every known one are hashed (SHA-256) and the
 *   digests compared with `crypto.timingSafeEqual`, all of them, without stopping at a match, so the
 *   time says nothing about how much of a token was right, nor which one matched.
 * - The file is re-read when it changes (watch.ts); when it cannot be read or parsed, the previous
 *   tokens stay in force.
 * - A token is never logged nor echoed: errors name the line, not its content.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../logger';
import { WatchedFiles } from './watch';

export interface Authenticated {
  /** The tenant written after the token, if any. */
  tenant: string | undefined;
}

/** Why a request was not let in: no usable Authorization header, or a token that is not known. */
export type AuthFailure = 'missing' | 'invalid';

/** A token is visible ASCII without spaces (RFC 6750's b64token, and more). */
const TOKEN = /^[\x21-\x7e]+$/;
const TENANT = /^[A-Za-z0-9!\-_.*'()]{1,150}$/;

export function parseTokenFile(text: string, what: string): { digest: Buffer; tenant: string | undefined }[] {
  const tokens: { digest: Buffer; tenant: string | undefined }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    if (fields.length > 2 || !TOKEN.test(fields[0])) {
      throw new Error(`${what}: line ${i + 1} is not "<token>" or "<token> <tenant>"`);
    }
    const tenant = fields[1];
    if (tenant !== undefined && !TENANT.test(tenant)) {
      throw new Error(
        `${what}: line ${i + 1}: the tenant must be 1-150 of A-Z a-z 0-9 ! - _ . * ' ( ) (Tempo's X-Scope-OrgID)`,
      );
    }
    tokens.push({ digest: sha256(fields[0]), tenant });
  }
  return tokens;
}

export class BearerTokens {
  private tokens: { digest: Buffer; tenant: string | undefined }[] = [];
  private readonly watched: WatchedFiles;

  /** Reads the file (throws, naming the key, when it cannot be read, holds no token or a bad line). */
  constructor(file: string, reloadIntervalMs: number, logger: Logger, what: string) {
    let first = true;
    this.watched = new WatchedFiles(
      [file],
      reloadIntervalMs,
      ([content]) => {
        const tokens = parseTokenFile(content.toString('utf8'), what);
        if (tokens.length === 0) {
          if (first) throw new Error(`${what}: ${file} holds no token (one per line)`);
          logger.warn({ what }, `${what}: the file holds no token any more: every request is refused`);
        }
        first = false;
        this.tokens = tokens;
      },
      logger,
      what,
    );
  }

  /** The `Authorization` header's verdict: who, or why not. */
  authenticate(authorization: string | undefined): Authenticated | AuthFailure {
    const presented = bearerToken(authorization);
    if (presented === undefined) return 'missing';
    const digest = sha256(presented);
    let match = -1;
    for (let i = 0; i < this.tokens.length; i++) {
      // Every digest is compared; `match` keeps the first hit without a data-dependent early exit.
      const equal = timingSafeEqual(digest, this.tokens[i].digest);
      match = equal && match < 0 ? i : match;
    }
    return match < 0 ? 'invalid' : { tenant: this.tokens[match].tenant };
  }

  /** Re-reads the file now if it changed (what the timer does every reload_interval). */
  reload(): Promise<void> {
    return this.watched.poll();
  }

  close(): void {
    this.watched.close();
  }
}

/** The token of `Bearer <token>` (scheme case-insensitive, RFC 7235), or undefined. */
function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** What the client is told, without the token: no header, or a token that is not known. */
export function authFailureMessage(failure: AuthFailure): string {
  return failure === 'missing'
    ? 'unauthenticated: send the header Authorization: Bearer <token>'
    : 'unauthenticated: the bearer token is not valid';
}

/** The WWW-Authenticate of a 401 (RFC 6750 §3). */
export function wwwAuthenticate(failure: AuthFailure, realm: string): string {
  return failure === 'missing' ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token"`;
}

/**
 * A gRPC server interceptor that refuses a call without a known token with UNAUTHENTICATED, on its
 * metadata, before its message is read or the handler runs. `onRefused` gets the method's path.
 */
export function grpcAuthInterceptor(
  tokens: BearerTokens,
  onRefused: (path: string, status: { code: grpc.status; details: string }) => void,
): grpc.ServerInterceptor {
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const values = metadata.get('authorization');
            const header = values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined;
            const verdict = tokens.authenticate(header);
            if (typeof verdict === 'object') {
              mdNext(metadata);
              return;
            }
            const status = { code: grpc.status.UNAUTHENTICATED, details: authFailureMessage(verdict) };
            onRefused(method.path, status);
            call.sendStatus(status);
          },
        });
      },
    });
}

/**
 * The listeners' security sections (the Collector's configtls server settings and a bearer-token
 * authenticator): `otlp.tls`, `admin.tls`, `otlp.auth`, `admin.auth`, and their opening.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { duration } from '../config/fields';
import { openServerTls } from './tls';
import { BearerTokens } from './tokens';

/** TLS of a listener (the Collector's configtls server settings); on when cert_file is set. */
export const serverTlsSection = z
  .strictObject({
    /** PEM certificate (chain) of the listener; with key_file, turns TLS on. */
    cert_file: z.string().default(''),
    /** PEM private key of cert_file. */
    key_file: z.string().default(''),
    /** PEM CA certificates: when set, clients must present a certificate they signed (mutual TLS). */
    client_ca_file: z.string().default(''),
    /** Lowest TLS version accepted. */
    min_version: z.enum(['1.2', '1.3']).default('1.2'),
    /** How often the files are checked for changes (new handshakes use the new ones); 0: never. */
    reload_interval: duration.default(1000),
  })
  .superRefine((v, ctx) => {
    if (Boolean(v.cert_file) !== Boolean(v.key_file))
      ctx.addIssue({ code: 'custom', message: 'cert_file and key_file go together (both, or neither)' });
    if (v.client_ca_file && !v.cert_file)
      ctx.addIssue({ code: 'custom', message: 'client_ca_file (mutual TLS) needs cert_file and key_file' });
  })
  .prefault({});

/** The keys of a listener's `auth:` section: a bearer token file and its reload interval. */
export const bearerTokensFields = {
  /** One token per line, optionally followed by whitespace and a tenant; empty: no token needed. */
  bearer_tokens_file: z.string().default(''),
  /** How often the token file is checked for changes; 0: never. */
  reload_interval: duration.default(1000),
};

type ServerTlsConfig = z.output<typeof serverTlsSection>;
interface AuthConfig {
  bearer_tokens_file: string;
  reload_interval: number;
}
interface ListenerSecurityConfig {
  otlp: { tls: ServerTlsConfig; auth: AuthConfig };
  admin: { tls: ServerTlsConfig; auth: AuthConfig };
}

/** The listeners' TLS and bearer tokens, as configured (each file read now, then watched: `watched` gets each one to close). */
export function openListenerSecurity(config: ListenerSecurityConfig, logger: Logger, watched: { close(): void }[]) {
  const log = logger.child({ component: 'security' });
  const keep = <T extends { close(): void }>(x: T | undefined) => {
    if (x) watched.push(x);
    return x;
  };
  const tokens = (auth: AuthConfig, key: string) =>
    auth.bearer_tokens_file ? new BearerTokens(auth.bearer_tokens_file, auth.reload_interval, log, key) : undefined;
  return {
    otlpTls: keep(openServerTls(config.otlp.tls, 'otlp.tls', log)),
    adminTls: keep(openServerTls(config.admin.tls, 'admin.tls', log)),
    otlpTokens: keep(tokens(config.otlp.auth, 'otlp.auth.bearer_tokens_file')),
    adminTokens: keep(tokens(config.admin.auth, 'admin.auth.bearer_tokens_file')),
  };
}

export type ListenerSecurity = ReturnType<typeof openListenerSecurity>;

/**
 * Loading of the configuration: YAML file, then environment overrides, then validation.
 * Errors name the key (and the environment variable when it came from one) and say what is expected.
 */
import { readFileSync } from 'node:fs';
import type * as Yaml from 'yaml';
import type { z } from 'zod';
import { FORMER_ON_FULL } from '../queue/on-full';
import { configSchema, type ReceiverConfig, type ReceiverConfigInput } from './schema';

/** Environment variables and the configuration keys they override (env wins over the file). */
export const ENV_OVERRIDES: Record<string, string[]> = {
  SONDE_OTLP_HTTP_ADDR: ['otlp', 'http', 'address'],
  SONDE_OTLP_GRPC_ADDR: ['otlp', 'grpc', 'address'],
  SONDE_ADMIN_ADDR: ['admin', 'address'],
  SONDE_OTLP_TLS_CERT_FILE: ['otlp', 'tls', 'cert_file'],
  SONDE_OTLP_TLS_KEY_FILE: ['otlp', 'tls', 'key_file'],
  SONDE_OTLP_TLS_CLIENT_CA_FILE: ['otlp', 'tls', 'client_ca_file'],
  SONDE_OTLP_BEARER_TOKENS_FILE: ['otlp', 'auth', 'bearer_tokens_file'],
  SONDE_ADMIN_TLS_CERT_FILE: ['admin', 'tls', 'cert_file'],
  SONDE_ADMIN_TLS_KEY_FILE: ['admin', 'tls', 'key_file'],
  SONDE_ADMIN_TLS_CLIENT_CA_FILE: ['admin', 'tls', 'client_ca_file'],
  SONDE_ADMIN_BEARER_TOKENS_FILE: ['admin', 'auth', 'bearer_tokens_file'],
  SONDE_DATA_DIR: ['data_dir'],
  SONDE_LOG_LEVEL: ['log', 'level'],
  SONDE_TEMPO_ENDPOINT: ['tempo', 'endpoint'],
  SONDE_TEMPO_HEADERS: ['tempo', 'headers'],
  SONDE_LOKI_ENDPOINT: ['loki', 'endpoint'],
  SONDE_LOKI_HEADERS: ['loki', 'headers'],
  SONDE_HMAC_KEY: ['redaction', 'hmac_key'],
  SONDE_TRACE_STORE: ['trace_store', 'enabled'],
  SONDE_LOG_STORE: ['log_store', 'enabled'],
  SONDE_WORKERS: ['workers'],
};

/**
 * Former names of environment variables and their current names. A former name is still read when
 * the current one is not set, and either way reported by one deprecation line (`onWarning`).
 * SONDE_HMAC_KEY is the name @sonde/node reads: one variable gives both the same pseudonym key.
 */
export const DEPRECATED_ENV: Record<string, string> = {
  SONDE_REDACTION_HMAC_KEY: 'SONDE_HMAC_KEY',
};

/**
 * Former spellings of config values, still read (their section's schema maps them to the current
 * ones), each reported by one deprecation line (`onWarning`): the stores' `on_full: drop`.
 */
export const DEPRECATED_VALUES: { path: string[]; former: string; current: string }[] = [
  'trace_store',
  'log_store',
].flatMap((section) =>
  Object.entries(FORMER_ON_FULL).map(([former, current]) => ({ path: [section, 'on_full'], former, current })),
);

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates the configuration. `file` is optional; every setting has a default.
 * `onWarning` receives one line per deprecated variable set or value written (by default, a Node DeprecationWarning).
 */
export function loadConfig(
  options: { file?: string; env?: NodeJS.ProcessEnv; onWarning?: (message: string) => void } = {},
): ReceiverConfig {
  const env = options.env ?? process.env;
  const warn = options.onWarning ?? ((message: string) => process.emitWarning(message, 'DeprecationWarning'));
  let raw: unknown = {};
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${options.file}: ${(err as Error).message}`);
    }
    try {
      // Required here: a receiver started without a file does not load (and keep in memory) the YAML parser.
      raw = (require('yaml') as typeof Yaml).parse(text) ?? {};
    } catch (err) {
      throw new ConfigError(`config file ${options.file} is not valid YAML: ${(err as Error).message}`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError(`config file ${options.file} must hold a YAML mapping at the top level`);
    }
  }
  const fromEnv: Record<string, string> = {};
  const set = (variable: string, path: string[], value: string) => {
    setPath(raw as Record<string, unknown>, path, value);
    fromEnv[path.join('.')] = variable;
  };
  for (const [former, current] of Object.entries(DEPRECATED_ENV)) {
    const value = env[former];
    if (value === undefined || value === '') continue;
    const inUse = env[current] === undefined || env[current] === '';
    warn(`${former} is deprecated: set ${current} instead${inUse ? '' : ` (${current} is set and wins)`}`);
    if (inUse) set(former, ENV_OVERRIDES[current], value);
  }
  for (const [variable, path] of Object.entries(ENV_OVERRIDES)) {
    const value = env[variable];
    if (value !== undefined && value !== '') set(variable, path, value);
  }
  for (const { path, former, current } of DEPRECATED_VALUES) {
    if (getPath(raw, path) === former) {
      warn(`${path.join('.')}: ${former} is deprecated: write ${current} instead (the same behaviour)`);
    }
  }
  return validateConfig(raw as ReceiverConfigInput, { source: options.file, fromEnv });
}

/** Validates a configuration object (as parsed from YAML) and fills in the defaults. */
export function validateConfig(
  raw: ReceiverConfigInput,
  context: { source?: string; fromEnv?: Record<string, string> } = {},
): ReceiverConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => describeIssue(issue, context.fromEnv ?? {}));
  const where = context.source ? ` in ${context.source}` : '';
  throw new ConfigError(`invalid configuration${where}:\n${lines.map((l) => `  - ${l}`).join('\n')}`);
}

function describeIssue(issue: z.core.$ZodIssue, fromEnv: Record<string, string>): string {
  const key = issue.path.map(String).join('.');
  const variable = fromEnv[key];
  const name = variable ? `${key} (from ${variable})` : key || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (key ? `${key}.${k}` : k));
    return `unknown key${keys.length > 1 ? 's' : ''} ${keys.join(', ')}: check the spelling against the configuration reference in the README`;
  }
  return `${name}: ${issue.message}`;
}

function getPath(target: unknown, path: string[]): unknown {
  let node = target;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

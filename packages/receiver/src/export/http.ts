/**
 * What an OTLP/HTTP exporter (otlp-http-exporter.ts) reads and checks around a request: the endpoint
 * URL, the configured headers, Retry-After and an export response's partial_success.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { ProtoReader } from '../otlp/protobuf/reader';

/**
 * The `partial_success` of an Export*ServiceResponse (protobuf, or JSON when the endpoint answers in
 * JSON): rejected items and the message. Every signal's response has the same shape (field 1, a
 * message of {1: rejected count, 2: error_message}); only the JSON name of the count differs
 * (`rejectedSpans`, `rejectedLogRecords`). Anything unreadable, or an empty body (Loki answers 204
 * with none), counts as a full success, as the Collector's otlphttp exporter treats it.
 */
export function partialSuccess(
  body: Buffer,
  headers: Record<string, string | string[] | undefined>,
  jsonRejectedField = 'rejectedSpans',
): { rejected: number; message: string } {
  const none = { rejected: 0, message: '' };
  if (body.length === 0) return none;
  const type = String(headers['content-type'] ?? '');
  try {
    if (type.includes('json')) {
      const p = (JSON.parse(body.toString('utf8')) as { partialSuccess?: Record<string, unknown> }).partialSuccess;
      return { rejected: Number(p?.[jsonRejectedField] ?? 0) || 0, message: String(p?.errorMessage ?? '') };
    }
    const r = new ProtoReader(body);
    while (r.pos < body.length) {
      const tag = r.uint32();
      if (tag >>> 3 !== 1 || (tag & 7) !== 2) {
        r.skip(tag & 7);
        continue;
      }
      const end = r.delimitedEnd();
      const out = { rejected: 0, message: '' };
      while (r.pos < end) {
        const t = r.uint32();
        if (t === 0x08) out.rejected = r.uint64Number();
        else if (t === 0x12) out.message = r.string();
        else r.skip(t & 7);
      }
      return out;
    }
  } catch {
    // An unreadable body is not a reason to send the batch again.
  }
  return none;
}

/** Retry-After as delta-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - Date.now());
}

/**
 * Headers an exporter's `headers` (tempo.headers, loki.headers) may not set: the connection's and the message framing's (RFC 9110 §7.6.1,
 * §8.6, §6.1), which the HTTP client sets itself. Overriding them made every export fail.
 */
const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/**
 * Why a configured header (tempo.headers, loki.headers) cannot be sent, or undefined when it can: a name that is not an
 * RFC 9110 token, a value with CR, LF, NUL or another control character, or a header the HTTP client
 * owns (FORBIDDEN_HEADERS). Names the header, never quotes its value (it may be a credential).
 */
export function headerProblem(name: string, value: string): string | undefined {
  try {
    validateHeaderName(name);
  } catch {
    return `${JSON.stringify(name)} is not a valid header name (an RFC 9110 token: letters, digits and !#$%&'*+-.^_\`|~, no spaces or separators)`;
  }
  if (FORBIDDEN_HEADERS.has(name.toLowerCase())) {
    return `the ${JSON.stringify(name)} header cannot be set: the exporter's HTTP client sets it (connection and message framing)`;
  }
  try {
    validateHeaderValue(name, value);
  } catch {
    return `the value of ${JSON.stringify(name)} holds a character a header value cannot have (CR, LF, NUL or another control character)`;
  }
  return undefined;
}

/** Throws on the first header that cannot be sent (see headerProblem). */
export function checkHeaders(headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    const problem = headerProblem(name, value);
    if (problem) throw new Error(problem);
  }
}

/**
 * `SONDE_TEMPO_HEADERS`, `SONDE_LOKI_HEADERS`: `key=value,key2=value2`, as OTEL_EXPORTER_OTLP_HEADERS
 * (W3C Baggage-like; keys and values are trimmed and percent-decoded). Empty entries are skipped.
 * Throws on an entry that is not key=value (naming `source`) and on a header that cannot be sent
 * (checkHeaders).
 */
export function parseHeaders(text: string, source = 'SONDE_TEMPO_HEADERS'): Record<string, string> {
  const headers: Record<string, string> = {};
  const entries = text.split(',');
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i].trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const key = eq > 0 ? decode(entry.slice(0, eq).trim()) : '';
    if (key === '') throw new Error(`${source}: entry ${i + 1} is not key=value`);
    headers[key.toLowerCase()] = decode(entry.slice(eq + 1).trim());
  }
  checkHeaders(headers);
  return headers;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * An OTLP/HTTP endpoint from a base URL as in OTEL_EXPORTER_OTLP_ENDPOINT: `path` is appended unless
 * the URL already has a path other than `/`. `backend` names it in the error.
 */
export function otlpEndpoint(base: string, path: string, backend: string): string {
  const url = new URL(base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`the ${backend} endpoint must be an http(s) URL, not ${url.protocol}`);
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = path;
  return url.toString();
}

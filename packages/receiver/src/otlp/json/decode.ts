/**
 * OTLP/JSON decoder: turns the body of an OTLP/HTTP JSON export request into the receiver's model.
 *
 * It follows the proto3 JSON mapping with the OTLP deviations (opentelemetry-proto
 * docs/specification.md, "JSON Protobuf Encoding"): hex trace and span ids, integer enums,
 * lowerCamelCase keys, unknown fields ignored. 64-bit integers come as decimal strings or numbers,
 * doubles as numbers or "NaN"/"Infinity"/"-Infinity", bytes as base64. Two courtesies beyond the
 * spec, as the OpenTelemetry Collector grants them: enum names ("SPAN_KIND_SERVER") and snake_case
 * keys (noticed at the top of the request, then handled by the slow parse below). And, as the
 * Collector did for years, the names of OTLP before 0.15 that exporters before OpenTelemetry JS 0.29
 * send: `instrumentationLibrarySpans`/`…Metrics`/`…Logs` for the scope lists and
 * `instrumentationLibrary` for the scope (read when the new name is absent).
 *
 * Hot path: one plain JSON.parse, then one small reader per message, building each model object in
 * one literal in the field order of the model interfaces. Only a request using snake_case keys, or
 * holding a timestamp or intValue as a JSON number beyond 2^53 (which JSON.parse rounds), is parsed
 * again with a reviver, several times slower.
 *
 * Errors: a reader throws a MalformedPayloadError (or TooDeepError) naming its field; each enclosing
 * reader prefixes its own path segment as the error unwinds (a try/catch costs nothing until something
 * throws), giving paths such as `resourceSpans[0].scopeSpans[0].spans[2].traceId`.
 *
 * This file reads the request; the readers of each signal are in decode-traces.ts, decode-metrics.ts
 * and decode-logs.ts, those of the messages they share (and the scalars) in decode-common.ts, as in
 * ../protobuf/.
 */
import type { Signal, SignalData } from '../../model';
import { MalformedPayloadError, TooManyStructuresError } from '../errors';
import type { DecodeLimits, DecodeStats } from '../limits';
import { describe, type JsonObject, ROUNDED_INTEGER, readList, startCounting, structuresLeft } from './decode-common';
import { readResourceLogs } from './decode-logs';
import { readResourceMetrics } from './decode-metrics';
import { readResourceSpans } from './decode-traces';

/**
 * Decodes an OTLP/HTTP JSON export request of `signal`. An empty body or `{}` is an empty request.
 * `stats`, when given, receives the structures counted (DecodeStats.structures), and nothing else.
 */
export function decodeJsonRequest<S extends Signal>(
  signal: S,
  body: Buffer,
  limits: DecodeLimits,
  stats?: DecodeStats,
): SignalData[S] {
  if (body.length === 0) return [] as SignalData[S];
  const maxStructures = limits.maxDecodedStructures ?? Number.MAX_SAFE_INTEGER;
  // JSON.parse builds a tree of the whole text, unknown fields included: bounded before it runs. (A
  // body can count no more than one per byte, so a small one needs no scan.)
  if (body.length > maxStructures && jsonStructures(body) > maxStructures) {
    throw new TooManyStructuresError(maxStructures);
  }
  const text = requestText(body);
  const maxDepth = limits.maxAnyValueDepth;
  const root = parseRoot(text, false);
  let data: SignalData[Signal] | undefined;
  if (!usesSnakeCase(signal, root)) {
    try {
      data = readCounted(signal, root, maxDepth, maxStructures);
    } catch (e) {
      if (e !== ROUNDED_INTEGER) throw e;
    }
  }
  // The slow path, for snake_case keys or an integer that JSON.parse rounded: parse again, exactly.
  data ??= readCounted(signal, parseRoot(text, true), maxDepth, maxStructures);
  if (stats) stats.structures = maxStructures - structuresLeft();
  return data as SignalData[S];
}

function readCounted(signal: Signal, root: JsonObject, maxDepth: number, maxStructures: number): SignalData[Signal] {
  startCounting(maxStructures);
  return readRequest(signal, root, maxDepth);
}

/**
 * What JSON.parse would build from `body`, counted on its bytes before it runs: each object and
 * array, and each value or member after a comma at half weight. Quotes, backslashes, braces,
 * brackets and commas are ASCII, never part of a multi-byte UTF-8 sequence, so bytes are enough.
 */
function jsonStructures(body: Buffer): number {
  let containers = 0;
  let commas = 0;
  const n = body.length;
  for (let i = 0; i < n; i++) {
    const c = body[i];
    if (c === 0x22) {
      // A string: skip to its closing quote (one not escaped).
      for (i++; i < n; i++) {
        const d = body[i];
        if (d === 0x22) break;
        if (d === 0x5c) i++;
      }
    } else if (c === 0x7b || c === 0x5b) containers++;
    else if (c === 0x2c) commas++;
  }
  return containers + commas / 2;
}

// ---------------------------------------------------------------------------------------------
// Parsing

const ROOT_KEY: Record<Signal, string> = {
  traces: 'resourceSpans',
  metrics: 'resourceMetrics',
  logs: 'resourceLogs',
};
const SNAKE_ROOT_KEY: Record<Signal, string> = {
  traces: 'resource_spans',
  metrics: 'resource_metrics',
  logs: 'resource_logs',
};

const INTEGER_SOURCE = /^-?\d+$/;

function requestText(body: Buffer): string {
  const text = body.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // without a byte order mark
}

/** The request object; `exactly` selects the slow parse (see `reviveExactly`). */
function parseRoot(text: string, exactly: boolean): JsonObject {
  let root: unknown;
  try {
    root = exactly ? JSON.parse(text, reviveExactly) : JSON.parse(text);
  } catch (e) {
    throw new MalformedPayloadError(`invalid JSON: ${(e as Error).message}`);
  }
  if (typeof root === 'object' && root !== null && !Array.isArray(root)) return root as JsonObject;
  throw new MalformedPayloadError(`expected a JSON object, got ${describe(root)}`);
}

/** A sender that writes the original proto field names does so everywhere: the top key tells. */
function usesSnakeCase(signal: Signal, root: JsonObject): boolean {
  return root[ROOT_KEY[signal]] === undefined && root[SNAKE_ROOT_KEY[signal]] !== undefined;
}

/**
 * The reviver of the slow parse. An integer beyond 2^53 becomes a bigint: exact, from its source
 * text (Node 24 passes it as `context.source`), when written as digits; so no number left in the
 * tree can be a rounded integer. And snake_case keys become lowerCamelCase.
 */
function reviveExactly(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) || !Number.isInteger(value)) return value;
    const source = context?.source;
    return source !== undefined && INTEGER_SOURCE.test(source) ? BigInt(source) : BigInt(value);
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return withCamelCaseKeys(value as JsonObject);
  }
  return value;
}

function withCamelCaseKeys(object: JsonObject): JsonObject {
  const keys = Object.keys(object);
  if (!keys.some((key) => key.includes('_'))) return object;
  const renamed: JsonObject = {};
  for (const key of keys) renamed[camelCase(key)] = object[key];
  return renamed;
}

function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

function readRequest(signal: Signal, root: JsonObject, maxDepth: number): SignalData[Signal] {
  switch (signal) {
    case 'traces':
      return readList(root.resourceSpans, 'resourceSpans', maxDepth, readResourceSpans);
    case 'metrics':
      return readList(root.resourceMetrics, 'resourceMetrics', maxDepth, readResourceMetrics);
    case 'logs':
      return readList(root.resourceLogs, 'resourceLogs', maxDepth, readResourceLogs);
  }
}

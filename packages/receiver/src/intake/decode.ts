/**
 * Decodes an OTLP export request body of either encoding into the model. Protobuf decoding also fills
 * `stats` (the JSON decoder only its `structures`). With `lean`, protobuf traces are decoded lean
 * (their spans' and events' attributes decoded when read: otlp/protobuf/lean.ts).
 */
import type { Signal, SignalData } from '../model';
import { decodeJsonRequest } from '../otlp/json/decode';
import type { DecodeLimits, DecodeStats } from '../otlp/limits';
import { decodeLogsRequest } from '../otlp/protobuf/decode-logs';
import { decodeMetricsRequest } from '../otlp/protobuf/decode-metrics';
import { decodeTraceRequest, decodeTraceRequestLean } from '../otlp/protobuf/decode-traces';
import type { Encoding } from '../otlp/responses';

const PROTOBUF_DECODERS: { [S in Signal]: (buf: Buffer, limits: DecodeLimits, stats?: DecodeStats) => SignalData[S] } =
  {
    traces: decodeTraceRequest,
    metrics: decodeMetricsRequest,
    logs: decodeLogsRequest,
  };

export function decodeRequest<S extends Signal>(
  signal: S,
  encoding: Encoding,
  body: Buffer,
  limits: DecodeLimits,
  stats?: DecodeStats,
  lean = false,
): SignalData[S] {
  if (encoding === 'json') return decodeJsonRequest(signal, body, limits, stats);
  if (signal === 'traces' && lean) return decodeTraceRequestLean(body, limits, stats) as SignalData[S];
  const decode = PROTOBUF_DECODERS[signal] as (buf: Buffer, limits: DecodeLimits, stats?: DecodeStats) => SignalData[S];
  return decode(body, limits, stats);
}

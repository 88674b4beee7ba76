/**
 * Lean decoding against full decoding, in process (`node bench/lean-cpu.ts [spans/request]`): the
 * bench payloads decoded by decodeTraceRequest (every attribute made) and by decodeTraceRequestLean
 * (attributes left as bytes until read: src/otlp/protobuf/lean.ts), each followed by the default
 * redaction processor (which reads every attribute, so the lean spans' are decoded there) and the
 * service graph, one request at a time, in alternating rounds timed with process.cpuUsage. Prints CPU
 * per span for each and their ratio.
 *
 * REDACTION=0 leaves redaction out (the case in which the receiver decodes lean). ONLY=full or
 * ONLY=lean runs one way only: the two share the decoder's functions, whose type feedback then mixes.
 */
import { createRequire } from 'node:module';
import pino from 'pino';
import { Registry } from 'prom-client';
import type * as Schema from '../src/config/schema.ts';
import type * as DecodeModule from '../src/otlp/protobuf/decode-traces.ts';
import type * as RedactionModule from '../src/pipeline/redaction.ts';
import type * as TracesConfig from '../src/traces/config.ts';
import type * as GraphModule from '../src/traces/service-graph.ts';
import { makePayload, makeSpans } from './payloads.ts';

const require = createRequire(import.meta.url);
const { configSchema, toRedactionConfig } = require('../dist/config/schema.js') as typeof Schema;
const { Redaction } = require('../dist/pipeline/redaction.js') as typeof RedactionModule;
const { decodeTraceRequest, decodeTraceRequestLean } =
  require('../dist/otlp/protobuf/decode-traces.js') as typeof DecodeModule;
const { ServiceGraphConsumer } = require('../dist/traces/service-graph.js') as typeof GraphModule;
const { toServiceGraphOptions } = require('../dist/traces/config.js') as typeof TracesConfig;

const spansPerRequest = Number(process.argv[2] ?? 100);
const ROUND_MS = Number(process.env.ROUND_MS ?? 500);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const LIMITS = { maxAnyValueDepth: 32, maxDecodedStructures: 4_000_000 };

const payload = makePayload(await makeSpans(spansPerRequest * 4), spansPerRequest, 4);
const config = configSchema.parse({});

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const redaction = new Redaction(toRedactionConfig(config.redaction), new Registry());
type Decode = (buf: Buffer, limits: typeof LIMITS, stats: { longestString: number; mostAttributes: number }) => unknown;
const ways: Record<
  'full' | 'lean',
  { decode: Decode; us: { decode: number; redact: number; graph: number }; spans: number }
> = {
  full: { decode: decodeTraceRequest, us: { decode: 0, redact: 0, graph: 0 }, spans: 0 },
  lean: {
    decode: decodeTraceRequestLean,
    us: { decode: 0, redact: 0, graph: 0 },
    spans: 0,
  },
};
const processor = redaction.processor<'traces'>();
const graph = new ServiceGraphConsumer(
  toServiceGraphOptions(config.service_graph),
  new Registry(),
  pino({ level: 'silent' }),
);
let next = 0;
const redact = process.env.REDACTION !== '0';
const only = process.env.ONLY as keyof typeof ways | undefined;
for (let round = 0; round < 2 * (ROUNDS + 1); round++) {
  const way = only ? ways[only] : round % 2 === 0 ? ways.full : ways.lean;
  const deadline = Date.now() + ROUND_MS;
  let d = 0;
  let r = 0;
  let g = 0;
  let n = 0;
  while (Date.now() < deadline) {
    const t0 = cpuUs();
    const data = way.decode(payload.bodies[next++ % payload.bodies.length], LIMITS, {
      longestString: 0,
      mostAttributes: 0,
    });
    const batch = { signal: 'traces' as const, data, context: { modified: false }, warnings: [] as string[] };
    const t1 = cpuUs();
    // biome-ignore lint/suspicious/noExplicitAny: the bench builds a minimal batch
    if (redact) processor.process(batch as any);
    const t2 = cpuUs();
    // biome-ignore lint/suspicious/noExplicitAny: the bench builds a minimal batch
    graph.consume(batch as any);
    const t3 = cpuUs();
    d += t1 - t0;
    r += t2 - t1;
    g += t3 - t2;
    n += spansPerRequest;
  }
  if (round < 2) continue; // warm-up
  way.us.decode += d;
  way.us.redact += r;
  way.us.graph += g;
  way.spans += n;
}
const per = (w: (typeof ways)['full']) => {
  const total = (w.us.decode + w.us.redact + w.us.graph) / w.spans;
  return {
    total,
    text: `decode ${(w.us.decode / w.spans).toFixed(2)} + redaction ${(w.us.redact / w.spans).toFixed(2)} + service graph ${(w.us.graph / w.spans).toFixed(2)} = ${total.toFixed(2)} µs/span`,
  };
};
if (only) console.log(`${spansPerRequest} spans/request, ${only} only: ${per(ways[only]).text}`);
else {
  const full = per(ways.full);
  const lean = per(ways.lean);
  console.log(
    `${spansPerRequest} spans/request\n  full: ${full.text}\n  lean: ${lean.text}\n  lean/full: ${(lean.total / full.total).toFixed(3)}`,
  );
}
await graph.shutdown();

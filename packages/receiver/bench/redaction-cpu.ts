/**
 * The receiver's redaction CPU cost per span, in process (`node bench/redaction-cpu.ts [spans/request]`):
 * the bench payloads decoded, then the default redaction processor run over them, each timed with
 * process.cpuUsage, so the two can be compared without a network client sharing the cores; and the
 * cost of encoding anew the batches redaction modified, which the trace store and the Tempo exporter
 * must do instead of forwarding the bytes received. Run it under `node --cpu-prof` to see where
 * redaction's time goes.
 *
 * GROUP=n (environment) decodes n requests before redacting them (default: 6400 spans' worth), so
 * that each timed stretch is long; the decoded data is then no longer in the CPU caches, which the
 * receiver's redaction finds it in (it runs right after each request is decoded): GROUP=1 measures that.
 */
import { createRequire } from 'node:module';
import { Registry } from 'prom-client';
import type * as Schema from '../src/config/schema.ts';
import type * as EncodeModule from '../src/otlp/protobuf/encode-traces.ts';
import type * as RedactionModule from '../src/pipeline/redaction.ts';
import { makePayload, makeSpans } from './payloads.ts';
import { decodeTraceRequest } from './receiver.ts';

const require = createRequire(import.meta.url);
const { configSchema, toRedactionConfig } = require('../dist/config/schema.js') as typeof Schema;
const { Redaction } = require('../dist/pipeline/redaction.js') as typeof RedactionModule;
const { encodeTraceRequest } = require('../dist/otlp/protobuf/encode-traces.js') as typeof EncodeModule;

const spansPerRequest = Number(process.argv[2] ?? 100);
const ROUND_MS = Number(process.env.ROUND_MS ?? 500);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const LIMITS = { maxAnyValueDepth: 32, maxDecodedStructures: 4_000_000 };

const payload = makePayload(await makeSpans(spansPerRequest * 4), spansPerRequest, 4);
const config = configSchema.parse({});
const redaction = new Redaction(toRedactionConfig(config.redaction), new Registry());
const processor = redaction.processor<'traces'>();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Requests decoded, then redacted, at a time (fresh strings each time, as in the receiver). */
const GROUP = Number(process.env.GROUP ?? Math.max(1, Math.round(6400 / spansPerRequest)));

let modified = 0;
let decodeUs = 0;
let redactUs = 0;
let encodeUs = 0;
let spans = 0;
let next = 0;
const perRound: number[] = [];
for (let round = 0; round < ROUNDS + 1; round++) {
  const deadline = Date.now() + ROUND_MS;
  let d = 0;
  let r = 0;
  let n = 0;
  while (Date.now() < deadline) {
    const t0 = cpuUs();
    const batches = [];
    for (let i = 0; i < GROUP; i++) {
      const data = decodeTraceRequest(payload.bodies[next++ % payload.bodies.length], LIMITS);
      batches.push({ signal: 'traces' as const, data, context: { modified: false }, warnings: [] as string[] });
    }
    const t1 = cpuUs();
    // biome-ignore lint/suspicious/noExplicitAny: the bench builds a minimal batch
    for (const batch of batches) processor.process(batch as any);
    const t2 = cpuUs();
    // What the trace store and the Tempo exporter then do with a modified batch: encode it anew
    // (an unmodified one is forwarded as the bytes received).
    for (const batch of batches) {
      if (!batch.context.modified) continue;
      modified++;
      if (round > 0) {
        const t3 = cpuUs();
        encodeTraceRequest(batch.data);
        encodeUs += cpuUs() - t3;
      }
    }
    d += t1 - t0;
    r += t2 - t1;
    n += GROUP * spansPerRequest;
  }
  if (round === 0) continue; // warm-up
  perRound.push(r / n);
  decodeUs += d;
  redactUs += r;
  spans += n;
}
console.log(
  `${spansPerRequest} spans/request: decode ${(decodeUs / spans).toFixed(2)} µs/span, redaction ${(redactUs / spans).toFixed(2)} µs/span ` +
    `(${((100 * redactUs) / decodeUs).toFixed(0)}% of decode; median of rounds ${median(perRound).toFixed(2)} µs/span); ` +
    `batches modified: ${modified}; re-encoding them (trace store, Tempo export) ${(encodeUs / spans).toFixed(2)} µs/span`,
);

/**
 * The CPU per record of turning a redacted logs request back into protobuf (`node bench/log-encode-cpu.ts
 * [rounds]`): what the intake thread does for the log store and the Loki exporter when a processor
 * changed the request (the bench's records carry `user.id`, which the default redaction drops), so that
 * its original bytes cannot be stored as they are. Two ways, alternating in each round: encoding the
 * redacted model anew (encodeLogsRequest), and applying the redaction's patch to the bytes received
 * (what the receiver does: otlp/protobuf/patch.ts).
 */
import { createRequire } from 'node:module';
import { Registry } from 'prom-client';
import type * as Schema from '../src/config/schema.ts';
import type * as Receiver from '../src/index.ts';
import type * as PatchModule from '../src/otlp/protobuf/patch.ts';
import type * as PipelineModule from '../src/pipeline/pipeline.ts';
import type * as RedactionModule from '../src/pipeline/redaction.ts';
import { logsRequest } from './log-store-bench.ts';

const require = createRequire(import.meta.url);
const { configSchema, toRedactionConfig } = require('../dist/config/schema.js') as typeof Schema;
const { Redaction } = require('../dist/pipeline/redaction.js') as typeof RedactionModule;
const { applyPatch } = require('../dist/otlp/protobuf/patch.js') as typeof PatchModule;
const { SignalPipeline } = require('../dist/pipeline/pipeline.js') as typeof PipelineModule;
const { decodeLogsRequest, encodeLogsRequest } = require('../dist/index.js') as typeof Receiver;

const rounds = Number(process.argv[2] ?? 5);
const now = BigInt(Date.now()) * 1_000_000n;
const redaction = new Redaction(toRedactionConfig(configSchema.parse({}).redaction), new Registry());
const pipeline = new SignalPipeline('logs').addProcessor(redaction.processor<'logs'>());

const batches = await Promise.all(
  Array.from({ length: 40 }, async (_, v) => {
    const raw = logsRequest(v % 20, 100, now, 1_000_000n, v * 100);
    const batch: PipelineModule.Batch<'logs'> = {
      signal: 'logs',
      data: decodeLogsRequest(raw, { maxAnyValueDepth: 64 }),
      itemCount: 100,
      warnings: [],
      decodeStats: undefined,
      context: { transport: 'http', encoding: 'protobuf', receivedAt: 0, raw, modified: false },
    };
    await pipeline.consume(batch);
    if (!batch.context.modified || !batch.context.patch) throw new Error('the bench request was not redacted');
    return batch;
  }),
);

const REPEAT = 50;
const records = REPEAT * batches.length * 100;
const best = { encode: Number.POSITIVE_INFINITY, patch: Number.POSITIVE_INFINITY };
for (let round = 0; round < rounds; round++) {
  let t = process.cpuUsage();
  let bytes = 0;
  for (let i = 0; i < REPEAT; i++) for (const b of batches) bytes += encodeLogsRequest(b.data, 24 * 1024).length;
  let d = process.cpuUsage(t);
  const encodeUs = (d.user + d.system) / records;
  t = process.cpuUsage();
  let patched = 0;
  for (let i = 0; i < REPEAT; i++) {
    for (const b of batches)
      patched += applyPatch(b.context.raw as Buffer, b.context.patch as PatchModule.RawPatch).length;
  }
  d = process.cpuUsage(t);
  const patchUs = (d.user + d.system) / records;
  if (patched !== bytes)
    throw new Error(`the patched requests (${patched} bytes) differ from the encoded ones (${bytes})`);
  best.encode = Math.min(best.encode, encodeUs);
  best.patch = Math.min(best.patch, patchUs);
  console.log(
    `round ${round}: encode anew ${encodeUs.toFixed(3)} µs/record, apply the patch ${patchUs.toFixed(3)} µs/record (${bytes} bytes)`,
  );
}
// The least of the rounds: the one least disturbed by other processes (a CPU-bound loop's own cost does not vary).
console.log(
  `least: encode anew ${best.encode.toFixed(3)} µs/record, apply the patch ${best.patch.toFixed(3)} µs/record`,
);

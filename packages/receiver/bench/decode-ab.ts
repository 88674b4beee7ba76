/**
 * Two builds' trace decoder in one process (`node bench/decode-ab.ts SPANS OTHER_CHECKOUT...`): this
 * build's `decodeTraceRequest` and that of each other checkout (its packages/receiver/dist, built),
 * on the bench payloads of SPANS spans per request, in alternating rounds of 200 ms (ROUNDS, default
 * 30, the first three not counted); prints each one's median and least CPU µs per span. In one
 * process the two meet the same machine load, which separate runs on a shared machine do not.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Decoder from '../src/otlp/protobuf/decode-traces.ts';
import { makePayload, makeSpans } from './payloads.ts';

const [spansArg, ...others] = process.argv.slice(2);
const spans = Number(spansArg ?? 500);
const require = createRequire(import.meta.url);
const builds = [join(import.meta.dirname, '..'), ...others.map((o) => join(o, 'packages', 'receiver'))];
const decoders = builds.map(
  (b) => (require(join(b, 'dist/otlp/protobuf/decode-traces.js')) as typeof Decoder).decodeTraceRequest,
);
const payload = makePayload(await makeSpans(spans * 8), spans, 8);
const LIMITS = { maxAnyValueDepth: 32, maxDecodedStructures: 4_000_000 };
const samples = builds.map(() => [] as number[]);
let sink = 0;
for (let round = 0; round < Number(process.env.ROUNDS ?? 30); round++) {
  decoders.forEach((decode, b) => {
    const start = process.cpuUsage();
    let n = 0;
    const until = performance.now() + 200;
    while (performance.now() < until) {
      for (const body of payload.bodies) {
        sink += decode(body, LIMITS).length;
        n += spans;
      }
    }
    const used = process.cpuUsage(start);
    if (round >= 3) samples[b].push((used.user + used.system) / n);
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const [i, b] of builds.entries()) {
  console.log(`${b}: median ${median(samples[i]).toFixed(3)} µs/span, least ${Math.min(...samples[i]).toFixed(3)}`);
}
if (sink < 0) console.log('unreachable');

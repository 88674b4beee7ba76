/**
 * The CPU per record of re-encoding a decoded logs request (`node bench/log-encode-cpu.ts [rounds]`):
 * what the intake thread does for the log store when a processor (redaction, attribute limits) changed
 * the request, so that its original bytes cannot be stored.
 */
import { decodeLogsRequest, encodeLogsRequest } from '../dist/index.js';
import { logsRequest } from './log-store-bench.ts';

const rounds = Number(process.argv[2] ?? 5);
const now = BigInt(Date.now()) * 1_000_000n;
const decoded = Array.from({ length: 40 }, (_, v) =>
  decodeLogsRequest(logsRequest(v % 20, 100, now, 1_000_000n, v * 100), { maxAnyValueDepth: 64 }),
);
for (let round = 0; round < rounds; round++) {
  const t = process.cpuUsage();
  let bytes = 0;
  for (let i = 0; i < 50; i++) for (const d of decoded) bytes += encodeLogsRequest(d, 24 * 1024).length;
  const d = process.cpuUsage(t);
  console.log(`encodeLogsRequest: ${((d.user + d.system) / (50 * 40 * 100)).toFixed(3)} µs/record (${bytes} bytes)`);
}

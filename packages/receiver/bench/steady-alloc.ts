/**
 * What the receiver allocates per steady-case request, by function (`node bench/steady-alloc.ts
 * [requests]`): the built receiver (dist/, the bench's defaults: trace and log stores off) runs in this
 * process, is sent `requests` requests of 100 spans one after the other over a keep-alive connection,
 * under V8's sampling heap profiler with collected objects kept (young garbage is what the scavenges
 * pay for). Prints the bytes per request by allocating function (self) and by file; the client's own
 * allocations (this file, payloads, node:http's client side) are in the total too, so read the rows.
 * SONDE_WORKERS=N runs it with intake workers: the rows are then the main thread's (a worker's heap
 * is its own isolate, which this profiler does not see).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postProtobuf } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

const require = createRequire(import.meta.url);
const { loadConfig } = require('../dist/config/load.js');
const { startReceiver } = require('../dist/receiver.js');
const { createLogger } = require('../dist/logger.js');

const requests = Number(process.argv[2] ?? 2000);
const dataDir = mkdtempSync(join(tmpdir(), 'sonde-bench-alloc-'));
const config = loadConfig({
  env: {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_LOG_LEVEL: 'warn',
    SONDE_DATA_DIR: dataDir,
    SONDE_TRACE_STORE: process.env.SONDE_TRACE_STORE ?? 'false',
    SONDE_LOG_STORE: 'false',
    ...(process.env.SONDE_WORKERS ? { SONDE_WORKERS: process.env.SONDE_WORKERS } : {}),
  },
});
const receiver = await startReceiver(config, { logger: createLogger('warn') });
const port = Number(String(receiver.addresses.otlpHttp).split(':').pop());
const payload = makePayload(await makeSpans(400), 100, 4);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const send = async (body: Buffer) => {
  const status = await postProtobuf(port, agent, '/v1/traces', body);
  if (status !== 200) throw new Error(`status ${status}`);
};
for (let i = 0; i < 500; i++) await send(payload.bodies[i % payload.bodies.length]);

const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
for (let i = 0; i < requests; i++) await send(payload.bodies[i % payload.bodies.length]);
const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: SamplingNode } };
session.disconnect();
agent.destroy();
await receiver.close();
rmSync(dataDir, { recursive: true, force: true });

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
const short = (url: string) => {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 13);
  const dist = url.indexOf('/receiver/dist/');
  if (dist >= 0) return url.slice(dist + 15);
  return url.replace(/^file:\/\/.*\/packages\//, '');
};
const walk = (n: SamplingNode) => {
  if (n.selfSize > 0) {
    const f = n.callFrame;
    const file = short(f.url) || '(native)';
    const key = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + n.selfSize);
    byFile.set(file, (byFile.get(file) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c);
};
walk(profile.head);
const kb = (b: number) => (b / requests / 1024).toFixed(1).padStart(7);
console.log(`${kb(total)} KiB allocated per request (sampled), ${requests} requests`);
console.log('\nby file, KiB/request:');
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${kb(v)}  ${k}`);
console.log('\nby function, KiB/request:');
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${kb(v)}  ${k}`);

/**
 * Where the steady case's CPU per request goes, against the same receiver at saturation
 * (`node bench/steady-profile.ts [seconds]`): two fresh receivers under `node --cpu-prof`, one sent 100
 * requests of 100 spans a second (the steady case), one sent the same requests by 10 connections as
 * fast as it answers. Only the samples of the measured window count (V8's profile clock and
 * process.hrtime are both CLOCK_MONOTONIC). Prints, per function and per category, the self time per
 * request in each case and the difference: what costs more per request at the low rate.
 * SONDE_BENCH_CONFIG=FILE runs both receivers with `--config FILE` (e.g. every processor off, to see
 * what decoding and HTTP alone cost at the low rate).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postProtobuf, steady } from './load.ts';
import { makePayload, makeSpans, type Payload } from './payloads.ts';
import { configArgs, type Server, startReceiver } from './proc.ts';
import type { CallFrame, CpuProfile, ProfileNode } from './profile.ts';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

function shortWhere(f: CallFrame): string {
  if (!f.url) return '';
  let u = f.url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm + 'node_modules/'.length);
  const dist = u.indexOf('/receiver/dist/');
  if (dist >= 0) u = u.slice(dist + '/receiver/dist/'.length);
  return `${u}:${f.lineNumber + 1}`;
}

function category(f: CallFrame): string {
  if (f.functionName === '(garbage collector)') return 'gc';
  if (f.functionName === '(program)') return '(program)';
  if (!f.url) return 'native';
  if (f.url.startsWith('node:'))
    return f.url
      .replace(/^node:internal\//, 'node:')
      .split('/')
      .slice(0, 2)
      .join('/');
  const nm = f.url.lastIndexOf('node_modules/');
  if (nm >= 0) return `dep:${f.url.slice(nm + 13).split('/')[0]}`;
  const dist = f.url.indexOf('/receiver/dist/');
  if (dist >= 0)
    return `receiver:${f.url
      .slice(dist + 15)
      .split('/')
      .slice(0, 2)
      .join('/')}`;
  return f.url;
}

/** Self µs by function key and by category, over samples in [from, to] (µs, monotonic). */
function selfTimes(file: string, from: number, to: number) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const cat = new Map<string, number>();
  let t = p.startTime;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (t < from || t > to) continue;
    const f = (byId.get(p.samples[i]) as ProfileNode).callFrame;
    if (f.functionName === '(idle)') continue;
    busy += dt;
    const key = `${f.functionName || '(anonymous)'} ${shortWhere(f)}`;
    fn.set(key, (fn.get(key) ?? 0) + dt);
    const c = category(f);
    cat.set(c, (cat.get(c) ?? 0) + dt);
  }
  return { fn, cat, busy };
}

/** Sends requests over `connections` keep-alive connections, each one after the other, for `seconds`. */
async function saturate(server: Server, payload: Payload, connections: number, seconds: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const end = performance.now() + seconds * 1000;
  let ok = 0;
  let i = 0;
  const one = async (body: Buffer) => {
    if ((await postProtobuf(server.port, agent, '/v1/traces', body)) === 200) ok++;
  };
  const loop = async () => {
    while (performance.now() < end) await one(payload.bodies[i++ % payload.bodies.length]);
  };
  await Promise.all(Array.from({ length: connections }, loop));
  agent.destroy();
  return ok;
}

async function profiled(
  name: string,
  env: Record<string, string>,
  run: (server: Server) => Promise<number>,
): Promise<{ fn: Map<string, number>; cat: Map<string, number>; busy: number; requests: number }> {
  const dir = mkdtempSync(join(tmpdir(), `sonde-steady-profile-${name}-`));
  const dataDir = mkdtempSync(join(tmpdir(), 'sonde-steady-profile-data-'));
  const server = await startReceiver({
    dataDir,
    env,
    args: configArgs(),
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-name=p.cpuprofile'],
  });
  let from = 0;
  let to = 0;
  let requests = 0;
  try {
    await run(server); // warm-up
    from = nowUs();
    requests = await run(server);
    to = nowUs();
  } finally {
    await server.stop();
  }
  const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.cpuprofile')) as string);
  const times = selfTimes(file, from, to);
  if (process.env.SONDE_KEEP_PROFILE) console.log(`${name} profile: ${file}`);
  else rmSync(dir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
  return { ...times, requests };
}

const seconds = Number(process.argv[2] ?? 15);
// SONDE_TRACE_STORE=true etc. pass through: the receiver runs on the bench's defaults unless set here.
const env: Record<string, string> = {};
for (const k of ['SONDE_TRACE_STORE', 'SONDE_LOG_STORE']) if (process.env[k]) env[k] = process.env[k] as string;
const payload = makePayload(await makeSpans(400), 100, 4);
const low = await profiled('steady', env, async (s) => {
  const r = await steady(s, payload, { requestsPerSec: 100, warmupSec: 0, durationSec: seconds });
  return r.ok;
});
const high = await profiled('saturated', env, (s) => saturate(s, payload, 10, Math.max(5, seconds / 2)));
const perReq = (us: number, n: number) => us / n;
console.log(
  `steady: ${low.requests} requests, ${(perReq(low.busy, low.requests)).toFixed(0)} µs busy/request; ` +
    `saturated: ${high.requests} requests, ${(perReq(high.busy, high.requests)).toFixed(0)} µs busy/request; load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
);
const table = (title: string, a: Map<string, number>, b: Map<string, number>, n: number) => {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const rows = [...keys].map((k) => {
    const s = perReq(a.get(k) ?? 0, low.requests);
    const h = perReq(b.get(k) ?? 0, high.requests);
    return { k, s, h, d: s - h };
  });
  rows.sort((x, y) => y.d - x.d);
  console.log(`\n${title}: µs/request steady, saturated, difference (top ${n} by difference)`);
  for (const r of rows.slice(0, n))
    console.log(`${r.s.toFixed(1).padStart(8)} ${r.h.toFixed(1).padStart(8)} ${r.d.toFixed(1).padStart(8)}  ${r.k}`);
};
table('by category', low.cat, high.cat, 30);
table('by function', low.fn, high.fn, 50);

/**
 * Where redaction's cost goes in the receiver (`node bench/redaction-profile.ts [spans/request] [seconds]`):
 * two receivers under `node --cpu-prof`, redaction off and on (the default), each sent the same
 * requests by 10 connections as fast as it answers for the same time. Prints per function the self
 * time per span in each and the difference (on − off), largest first (BY_ON=1: by the on receiver's
 * time instead). KEEP=1 keeps the profiles (their directory is printed). LINES=<function> prints
 * where that function's samples fall in the on receiver, by source line (a callee inlined into it
 * counts at its own line, in its own file: the profile does not name that file), with each line's
 * share of the function's samples.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postProtobuf } from './load.ts';
import { makePayload, makeSpans } from './payloads.ts';
import { startReceiver } from './proc.ts';
import { type CpuProfile, summariseProfile } from './profile.ts';

const spansPerRequest = Number(process.argv[2] ?? 500);
const seconds = Number(process.argv[3] ?? 8);
const work = mkdtempSync(join(tmpdir(), 'sonde-redaction-profile-'));
const payload = makePayload(await makeSpans(spansPerRequest * 8), spansPerRequest, 8);

const profiles = new Map<string, string>();

async function run(name: string, args: string[]): Promise<Map<string, number>> {
  const dir = join(work, name);
  const server = await startReceiver({ dataDir: dir, args, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}/prof`] });
  const agent = new Agent({ keepAlive: true, maxSockets: 10 });
  let spans = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 10 }, async (_, c) => {
      for (let i = c; Date.now() < until; i++) {
        const status = await postProtobuf(server.port, agent, '/v1/traces', payload.bodies[i % payload.bodies.length]);
        if (status === 200) spans += spansPerRequest;
      }
    }),
  );
  agent.destroy();
  await server.stop();
  // The main thread's profile: the largest (other threads write their own).
  const files = readdirSync(join(dir, 'prof')).map((f) => join(dir, 'prof', f));
  const file = files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
  profiles.set(name, file);
  const summary = summariseProfile(file, 400);
  const perSpan = new Map<string, number>();
  for (const row of summary.top) perSpan.set(`${row.function} ${row.where}`, (row.selfMs * 1000) / spans);
  perSpan.set('(busy total)', (summary.busyMs * 1000) / spans);
  console.log(`${name}: ${spans} spans, busy ${(summary.busyMs / 1000).toFixed(1)} s`);
  return perSpan;
}

const offConfig = join(work, 'off.yaml');
// Decoded in full as with redaction on, so that on − off is redaction's own work (redaction-bench.ts).
writeFileSync(offConfig, 'redaction:\n  enabled: false\ndebug:\n  full_decode: true\n');
const off = await run('off', ['--config', offConfig]);
const on = await run('on', []);
const keys = new Set([...off.keys(), ...on.keys()]);
const rows = [...keys].map((k) => ({ k, off: off.get(k) ?? 0, on: on.get(k) ?? 0 }));
rows.sort(process.env.BY_ON ? (a, b) => b.on - a.on : (a, b) => b.on - b.off - (a.on - a.off));
console.log('µs/span   off     on   diff  function');
for (const r of rows.slice(0, 40))
  console.log(`        ${r.off.toFixed(3)}  ${r.on.toFixed(3)}  ${(r.on - r.off).toFixed(3)}  ${r.k}`);
const lines = process.env.LINES;
if (lines) {
  const profile = JSON.parse(readFileSync(profiles.get('on') as string, 'utf8')) as CpuProfile;
  const byLine = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    if (node.callFrame.functionName !== lines) continue;
    for (const t of node.positionTicks ?? []) {
      const key = `line ${t.line}`;
      byLine.set(key, (byLine.get(key) ?? 0) + t.ticks);
      total += t.ticks;
    }
  }
  // V8 gives the line of an inlined callee in the callee's own file: a line outside the function is one.
  const where = profile.nodes.find((n) => n.callFrame.functionName === lines)?.callFrame;
  console.log(
    `${lines} (${where?.url.split('/').slice(-2).join('/')}, from line ${(where?.lineNumber ?? 0) + 1}), redaction on: ` +
      `${total} samples by line; lines outside it are in callees inlined into it, in their own files`,
  );
  for (const [line, ticks] of [...byLine].sort((a, b) => b[1] - a[1]).slice(0, 15))
    console.log(`  ${((ticks / total) * 100).toFixed(1).padStart(5)}%  ${line}`);
}
if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
else console.log(work);

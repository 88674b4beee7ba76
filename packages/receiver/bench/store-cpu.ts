/**
 * The trace store writer's CPU cost per span (`node bench/store-cpu.ts [spans] [preload] [batch MiB]`):
 * what the writer thread does for each batch (index the request bodies, compress them into blobs, one
 * write transaction of up to batch_max_size bytes, default 16 MiB as the config's), timed with process.cpuUsage on this thread alone, into a store that already
 * holds `preload` spans (default 1M: B-tree inserts get dearer as the indexes grow). Bodies are the
 * bench payloads with fresh trace ids, prepared before timing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanTraceRequest, TraceDb } from '../dist/index.js';
import { fmtInt } from './decode-bench.ts';
import { makePayload, makeSpans, type Payload } from './payloads.ts';
import { profiledIf } from './profile.ts';

const INDEXED = ['http.route', 'http.method', 'http.status_code', 'http.request.method', 'db.system.name'];

/** The payload's bodies with fresh trace ids: `count` of them. */
function freshBodies(payload: Payload, count: number): Buffer[] {
  const indexed = { indexedAttributes: new Set(INDEXED) };
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const template = payload.bodies[i % payload.bodies.length];
    const body = Buffer.from(template);
    const ids = new Set(scanTraceRequest(Buffer.from(template), indexed).spans.map((s) => s.traceHex));
    for (const old of ids) {
      const oldId = Buffer.from(old, 'hex');
      const id = randomBytes(16);
      for (let at = body.indexOf(oldId); at >= 0; at = body.indexOf(oldId, at + 16)) id.copy(body, at);
    }
    out.push(body);
  }
  return out;
}

export interface WriterCpuResult {
  usPerSpan: number;
  spansPerCpuSec: number;
  spans: number;
  preload: number;
}

export function measureWriterCpu(
  payload: Payload,
  options: { spans: number; preload: number; batchBytes: number; log: (line: string) => void },
): WriterCpuResult {
  const work = mkdtempSync(join(tmpdir(), 'sonde-bench-store-cpu-'));
  try {
    const db = TraceDb.open(join(work, 'traces.db'), { indexedAttributes: INDEXED });
    const run = (bodies: Buffer[]) => {
      let spans = 0;
      for (let at = 0; at < bodies.length; ) {
        const batch: Buffer[] = [];
        let bytes = 0;
        while (at < bodies.length && bytes < options.batchBytes) {
          batch.push(bodies[at]);
          bytes += bodies[at].length;
          at++;
        }
        spans += db.write(batch, Date.now()).spans;
      }
      return spans;
    };
    const perBody = payload.spansPerRequest;
    for (let done = 0; done < options.preload; done += 200 * perBody) run(freshBodies(payload, 200));
    const bodies = freshBodies(payload, Math.ceil(options.spans / perBody));
    // SONDE_BENCH_PROFILE=<file>: a CPU profile of the timed writes (Chrome DevTools format).
    const cpu = process.cpuUsage();
    const spans = profiledIf(() => run(bodies));
    const used = process.cpuUsage(cpu);
    db.close();
    const us = (used.user + used.system) / spans;
    options.log(
      `store writer: ${fmtInt(spans)} spans into a store of ${fmtInt(options.preload)}: ${us.toFixed(1)} µs CPU per span ` +
        `(user ${(used.user / spans).toFixed(1)}, system ${(used.system / spans).toFixed(1)}), ${fmtInt(1e6 / us)} spans per CPU second`,
    );
    return { usPerSpan: us, spansPerCpuSec: 1e6 / us, spans, preload: options.preload };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const spans = Number(process.argv[2] ?? 200_000);
  const preload = Number(process.argv[3] ?? 1_000_000);
  const made = await makeSpans(500 * 4);
  measureWriterCpu(makePayload(made, 100, 4), {
    spans,
    preload,
    batchBytes: Number(process.argv[4] ?? 16) * 1024 * 1024,
    log: (l) => console.log(l),
  });
}

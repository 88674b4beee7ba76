/**
 * Two receiver configurations side by side: each started from its config file, both loaded in
 * alternating slices by the same client (compareMaxThroughput), at each request size. What the
 * redaction case (redaction-bench.ts: off vs on) and the lean decoding case (lean-bench.ts: full vs
 * lean) are made of.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmtInt } from './decode-bench.ts';
import { compareMaxThroughput, type MaxThroughputSettings, type ThroughputResult } from './load.ts';
import type { Payload } from './payloads.ts';
import { type Server, startReceiver } from './proc.ts';

/** One of the two: its name in the log and the table, and its configuration (YAML). */
export interface PairSide {
  name: string;
  yaml: string;
}

export interface PairRow {
  spansPerRequest: number;
  a: ThroughputResult;
  b: ThroughputResult;
  /** b / a spans per second. */
  ratio: number;
  /**
   * a / b server CPU per span: the same ratio from the receivers' own CPU time, which other load on a
   * shared machine moves much less than throughput (a receiver starved of CPU in a slice sends fewer
   * spans but does not spend more CPU per span).
   */
  cpuRatio: number;
}

/** Server CPU (core-seconds) per span. */
export const cpuPerSpan = (r: ThroughputResult) => r.serverCores / r.spansPerSec;

export async function runPairBench(
  what: string,
  [a, b]: [PairSide, PairSide],
  payloads: Payload[],
  settings: MaxThroughputSettings,
  work: string,
  log: (line: string) => void,
): Promise<PairRow[]> {
  mkdirSync(work, { recursive: true });
  const files = [a, b].map((side, i) => {
    const file = join(work, `side-${i}.yaml`);
    // An empty file is not a YAML mapping: the defaults then need one key.
    writeFileSync(file, side.yaml || 'log:\n  level: info\n');
    return file;
  });
  const rows: PairRow[] = [];
  for (const payload of payloads) {
    log(
      `${what}, ${payload.spansPerRequest} spans/request: receiver with ${a.name} vs ${b.name}, ` +
        `${settings.connections} connections, alternating slices`,
    );
    const servers: Server[] = [];
    try {
      for (const [i, side] of [a, b].entries()) {
        const s = await startReceiver({ dataDir: join(work, `data-${i}`), args: ['--config', files[i]] });
        servers.push({ ...s, name: side.name });
      }
      const [r0, r1] = await compareMaxThroughput(servers, payload, settings, log);
      const ratio = r1.spansPerSec / r0.spansPerSec;
      const cpuRatio = cpuPerSpan(r0) / cpuPerSpan(r1);
      rows.push({ spansPerRequest: payload.spansPerRequest, a: r0, b: r1, ratio, cpuRatio });
      log(
        `  ${a.name} ${fmtInt(r0.spansPerSec)} spans/s, ${b.name} ${fmtInt(r1.spansPerSec)} spans/s: ratio ${ratio.toFixed(3)}, ` +
          `by server CPU per span (${(cpuPerSpan(r0) * 1e6).toFixed(2)} vs ${(cpuPerSpan(r1) * 1e6).toFixed(2)} µs) ${cpuRatio.toFixed(3)} ` +
          `(server CPU ${(r0.serverCores * 100).toFixed(0)}% vs ${(r1.serverCores * 100).toFixed(0)}% of a core; ` +
          `other processes ${(r0.otherCores * 100).toFixed(0)}% / ${(r1.otherCores * 100).toFixed(0)}%)`,
      );
    } finally {
      for (const s of servers) await s.stop();
    }
  }
  return rows;
}

/** The rows as a Markdown table whose columns name the two sides (`a`, `b`, short). */
export function renderPairTable(rows: PairRow[], a: string, b: string): string {
  const lines = [
    `| spans/request | ${a}: spans/s | ${b}: spans/s | ${b}/${a} | server CPU µs/span ${a} / ${b} | ${b}/${a} by CPU per span | server CPU ${a} / ${b} | other processes ${a} / ${b} |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.spansPerRequest} | ${fmtInt(r.a.spansPerSec)} | ${fmtInt(r.b.spansPerSec)} | ${r.ratio.toFixed(3)} | ` +
        `${(cpuPerSpan(r.a) * 1e6).toFixed(2)} / ${(cpuPerSpan(r.b) * 1e6).toFixed(2)} | ${r.cpuRatio.toFixed(3)} | ` +
        `${(r.a.serverCores * 100).toFixed(0)}% / ${(r.b.serverCores * 100).toFixed(0)}% | ` +
        `${(r.a.otherCores * 100).toFixed(0)}% / ${(r.b.otherCores * 100).toFixed(0)}% |`,
    );
  }
  return lines.join('\n');
}

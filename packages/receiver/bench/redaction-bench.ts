/**
 * `npm run bench -- redaction`: the cost of the receiver's redaction (on by default) on trace intake.
 * Two receivers side by side, one with `redaction.enabled: false` (a config file), one with the
 * defaults (every detector on, secrets masked), measured in alternating slices by the same client
 * (compareMaxThroughput), 100 and 500 spans per request. The ratio on/off is what redaction costs
 * in intake throughput; the target is at most 15% less.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmtInt } from './decode-bench.ts';
import { compareMaxThroughput, type MaxThroughputSettings, type ThroughputResult } from './load.ts';
import type { Payload } from './payloads.ts';
import { type Server, startReceiver } from './proc.ts';

export interface RedactionBenchRow {
  spansPerRequest: number;
  off: ThroughputResult;
  on: ThroughputResult;
  /** on / off spans per second. */
  ratio: number;
  /**
   * off / on server CPU per span: the same ratio from the receivers' own CPU time, which other load
   * on a shared machine moves much less than throughput (a receiver starved of CPU in a slice sends
   * fewer spans but does not spend more CPU per span).
   */
  cpuRatio: number;
}

/** Server CPU (core-seconds) per span. */
const cpuPerSpan = (r: ThroughputResult) => r.serverCores / r.spansPerSec;

export async function runRedactionBench(
  payloads: Payload[],
  settings: MaxThroughputSettings,
  work: string,
  log: (line: string) => void,
): Promise<RedactionBenchRow[]> {
  mkdirSync(work, { recursive: true });
  const offConfig = join(work, 'redaction-off.yaml');
  writeFileSync(offConfig, 'redaction:\n  enabled: false\n');
  const rows: RedactionBenchRow[] = [];
  for (const payload of payloads) {
    log(
      `redaction cost, ${payload.spansPerRequest} spans/request: receiver with redaction off vs on (the default), ` +
        `${settings.connections} connections, alternating slices`,
    );
    const servers: Server[] = [];
    try {
      const off = await startReceiver({ dataDir: join(work, 'off'), args: ['--config', offConfig] });
      servers.push({ ...off, name: 'redaction off' });
      const on = await startReceiver({ dataDir: join(work, 'on') });
      servers.push({ ...on, name: 'redaction on' });
      const [r0, r1] = await compareMaxThroughput(servers, payload, settings, log);
      const ratio = r1.spansPerSec / r0.spansPerSec;
      const cpuRatio = cpuPerSpan(r0) / cpuPerSpan(r1);
      rows.push({ spansPerRequest: payload.spansPerRequest, off: r0, on: r1, ratio, cpuRatio });
      log(
        `  off ${fmtInt(r0.spansPerSec)} spans/s, on ${fmtInt(r1.spansPerSec)} spans/s: on/off = ${ratio.toFixed(3)}, ` +
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

export function renderRedactionSection(rows: RedactionBenchRow[]): string {
  const lines = [
    '## Redaction cost (trace intake, redaction off vs on)',
    '',
    '| spans/request | off: spans/s | on: spans/s | on/off | server CPU µs/span off / on | on/off by CPU per span | server CPU off / on | other processes off / on |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.spansPerRequest} | ${fmtInt(r.off.spansPerSec)} | ${fmtInt(r.on.spansPerSec)} | ${r.ratio.toFixed(3)} | ` +
        `${(cpuPerSpan(r.off) * 1e6).toFixed(2)} / ${(cpuPerSpan(r.on) * 1e6).toFixed(2)} | ${r.cpuRatio.toFixed(3)} | ` +
        `${(r.off.serverCores * 100).toFixed(0)}% / ${(r.on.serverCores * 100).toFixed(0)}% | ` +
        `${(r.off.otherCores * 100).toFixed(0)}% / ${(r.on.otherCores * 100).toFixed(0)}% |`,
    );
  }
  return lines.join('\n');
}

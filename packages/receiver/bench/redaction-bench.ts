/**
 * `npm run bench -- redaction`: the cost of the receiver's redaction (on by default) on trace intake.
 * Two receivers side by side (pair-bench.ts), one with `redaction.enabled: false` and
 * `debug.full_decode: true` (decoded in full, as redaction on decodes), one with the defaults (every
 * detector on, secrets masked), 100 and 500 spans per request. The ratio on/off is what redaction
 * itself costs in intake throughput; the target is at most 15% less. (With redaction off the receiver
 * decodes lean, faster still: lean-bench.ts.)
 */
import type { MaxThroughputSettings } from './load.ts';
import { type PairRow, renderPairTable, runPairBench } from './pair-bench.ts';
import type { Payload } from './payloads.ts';

/** `a` is redaction off, `b` on. */
export type RedactionBenchRow = PairRow;

export function runRedactionBench(
  payloads: Payload[],
  settings: MaxThroughputSettings,
  work: string,
  log: (line: string) => void,
): Promise<RedactionBenchRow[]> {
  return runPairBench(
    'redaction cost',
    [
      { name: 'redaction off', yaml: 'redaction:\n  enabled: false\ndebug:\n  full_decode: true\n' },
      { name: 'redaction on (the default)', yaml: '' },
    ],
    payloads,
    settings,
    work,
    log,
  );
}

export function renderRedactionSection(rows: RedactionBenchRow[]): string {
  return ['## Redaction cost (trace intake, redaction off vs on)', '', renderPairTable(rows, 'off', 'on')].join('\n');
}

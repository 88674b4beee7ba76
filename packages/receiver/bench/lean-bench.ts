/**
 * `npm run bench -- lean`: lean trace decoding (src/otlp/protobuf/lean.ts), which the receiver uses when
 * no processor reads every attribute. Two receivers with redaction off side by side (pair-bench.ts),
 * one with `debug.full_decode: true` (every attribute decoded at intake), one decoding lean, 100 and
 * 500 spans per request.
 */
import type { MaxThroughputSettings } from './load.ts';
import { type PairRow, renderPairTable, runPairBench } from './pair-bench.ts';
import type { Payload } from './payloads.ts';

/** `a` is full decoding, `b` lean. */
export type LeanBenchRow = PairRow;

export function runLeanBench(
  payloads: Payload[],
  settings: MaxThroughputSettings,
  work: string,
  log: (line: string) => void,
): Promise<LeanBenchRow[]> {
  return runPairBench(
    'lean decoding',
    [
      { name: 'full decoding', yaml: 'redaction:\n  enabled: false\ndebug:\n  full_decode: true\n' },
      { name: 'lean decoding', yaml: 'redaction:\n  enabled: false\n' },
    ],
    payloads,
    settings,
    work,
    log,
  );
}

export function renderLeanSection(rows: LeanBenchRow[]): string {
  return [
    '## Lean decoding (trace intake with redaction off, full vs lean)',
    '',
    renderPairTable(rows, 'full', 'lean'),
  ].join('\n');
}

/**
 * Sonde's own voice: its version and instrumentation scope, the one-line JSON messages it writes on
 * stderr, and its self-metrics (`sonde.telemetry.dropped`, `sonde.buffer.usage`, `sonde.buffer.limit`),
 * which hold no personal data and no user or request attribute.
 */
import type { Meter } from '@opentelemetry/api';
import type { DropReason, Signal } from './types';

export const VERSION: string = (() => {
  try {
    return (require('../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/** The scope of Sonde's own metrics and crash records. */
export const SELF_SCOPE = '@sonde/node';

/** One structured line on stderr (not through pino: the app's pino is instrumented and would send it). */
export function logLine(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  const lv = { info: 30, warn: 40, error: 50 }[level];
  try {
    process.stderr.write(`${JSON.stringify({ level: lv, time: Date.now(), name: SELF_SCOPE, msg, ...fields })}\n`);
  } catch {
    // stderr closed: nothing to do
  }
}

/** Counts items dropped before they reached the receiver, by signal and reason. */
export type CountDrop = (signal: Signal, items: number, reason: DropReason | 'redaction_failed') => void;

/** A drop counter adding into `dropped` (keys `<signal>|<reason>`). */
export function dropCounter(dropped: Map<string, number>): CountDrop {
  return (signal, items, reason) => {
    const key = `${signal}|${reason}`;
    dropped.set(key, (dropped.get(key) ?? 0) + items);
  };
}

/** The self-metrics, read at each collection from the drop counts and the buffer. */
export function registerSelfMetrics(
  meter: Meter,
  o: { dropped: Map<string, number>; bufferedBytes: () => number; bufferDir?: string; bufferMaxBytes: number },
): void {
  const kind = { 'sonde.buffer.kind': o.bufferDir ? 'disk' : 'memory' };
  meter
    .createObservableCounter('sonde.telemetry.dropped', {
      unit: '{item}',
      description: 'Telemetry items dropped by the SDK, by signal and reason',
    })
    .addCallback((result) => {
      // buffer_full of each signal from 0, so that rate() and the SDK-drop alert have a series before the first loss.
      for (const signal of ['traces', 'metrics', 'logs'])
        if (!o.dropped.has(`${signal}|buffer_full`)) result.observe(0, { signal, reason: 'buffer_full' });
      for (const [key, value] of o.dropped) {
        const [signal, reason] = key.split('|');
        result.observe(value, { signal, reason });
      }
    });
  meter
    .createObservableGauge('sonde.buffer.usage', {
      unit: 'By',
      description: 'Bytes of encoded telemetry held while the gate is closed or the receiver unreachable',
    })
    .addCallback((result) => result.observe(o.bufferedBytes(), kind));
  meter
    .createObservableGauge('sonde.buffer.limit', {
      unit: 'By',
      description: 'Bound of sonde.buffer.usage (bufferMaxBytes): past it the oldest requests are dropped',
    })
    .addCallback((result) => result.observe(o.bufferMaxBytes, kind));
}

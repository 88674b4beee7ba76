/**
 * Process CPU and memory, as the OpenTelemetry semantic conventions name them, beside the runtime
 * metrics of @opentelemetry/instrumentation-runtime-node (which has event loop, heap and GC, but
 * neither CPU nor RSS):
 *
 * - `process.cpu.time` (counter, s, `cpu.mode` = user | system): process.cpuUsage();
 * - `process.memory.usage` (up-down counter, By): the resident set size, process.memoryUsage.rss().
 *
 * In Prometheus (through the receiver): `process_cpu_time_seconds_total{cpu_mode}` and
 * `process_memory_usage_bytes`. Observed only while `active()` holds (the runtime metrics are on and
 * `performance` is granted), so a withdrawn consent stops them with the rest of the runtime metrics.
 */
import type { Meter } from '@opentelemetry/api';

export function registerProcessMetrics(meter: Meter, active: () => boolean): void {
  meter
    .createObservableCounter('process.cpu.time', {
      unit: 's',
      description: 'Total CPU seconds of the process, by CPU mode (user, system)',
    })
    .addCallback((result) => {
      if (!active()) return;
      const { user, system } = process.cpuUsage();
      result.observe(user / 1e6, { 'cpu.mode': 'user' });
      result.observe(system / 1e6, { 'cpu.mode': 'system' });
    });
  meter
    .createObservableUpDownCounter('process.memory.usage', {
      unit: 'By',
      description: 'Physical memory in use by the process (resident set size)',
    })
    .addCallback((result) => {
      if (active()) result.observe(process.memoryUsage.rss());
    });
}

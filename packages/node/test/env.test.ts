/** The configuration read from options and the environment (src/env.ts). */
import { resolveConfig, resolveConsent } from '../src/env';

const consent = resolveConsent({}, undefined, undefined);

test('options win over the environment, the environment over the defaults', () => {
  const env = { SONDE_BUFFER_MAX_BYTES: '1024', OTEL_METRIC_EXPORT_INTERVAL: '500', OTEL_LOGS_EXPORTER: 'none' };
  const warnings: string[] = [];
  const cfg = resolveConfig({ bufferMaxBytes: 2048 }, env, consent, (m) => warnings.push(m));
  expect(cfg.bufferMaxBytes).toBe(2048);
  expect(cfg.metricExportIntervalMs).toBe(500);
  expect(cfg.metricExportTimeoutMs).toBe(500);
  expect(cfg.gatePollMs).toBe(5000);
  expect(cfg.signals.logs.exporters).toEqual([]);
  expect(cfg.signals.traces).toMatchObject({ exporters: ['otlp'], protocol: 'http/protobuf' });
  expect(cfg.signals.traces.target.url).toBe('http://localhost:4318/v1/traces');
  expect(warnings).toEqual([]);
});

test('a number or a boolean that cannot be read: one warning naming the variable, and the default', () => {
  const warnings: string[] = [];
  const cfg = resolveConfig(
    {},
    {
      SONDE_BUFFER_MAX_BYTES: '16MB',
      OTEL_METRIC_EXPORT_INTERVAL: '-5',
      SONDE_GATE_POLL_MS: '1000',
      SONDE_RUNTIME_METRICS: 'flase',
      SONDE_LOG_SENDING: 'off',
    },
    consent,
    (m) => warnings.push(m),
  );
  expect(cfg.bufferMaxBytes).toBe(16 * 1024 * 1024);
  expect(cfg.metricExportIntervalMs).toBe(60000);
  expect(cfg.gatePollMs).toBe(1000);
  expect(cfg.runtimeMetrics).toBe(false); // as before: a value that is not a true word is false
  expect(cfg.logSending).toBe(false);
  expect(warnings).toEqual([
    'OTEL_METRIC_EXPORT_INTERVAL="-5" is not a non-negative number; using the default',
    'SONDE_BUFFER_MAX_BYTES="16MB" is not a non-negative number; using the default',
    'SONDE_RUNTIME_METRICS="flase" is not a boolean (true/false, 1/0, yes/no, on/off); read as false',
  ]);
});

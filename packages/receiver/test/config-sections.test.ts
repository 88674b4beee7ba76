/**
 * Each component owns its config section (src/<component>/config.ts: keys, defaults, conversion to
 * its options); src/config/schema.ts only composes them, and startReceiver only wires. A component's
 * defaults are written once, in the component (what it takes when an option is left out, as a
 * library); these tests check that its config keys give the same, through the section's conversion.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src';
import { toAdminOptions } from '../src/admin/config';
import { ADMIN_DEFAULTS } from '../src/admin/server';
import { toBlobStoreOptions } from '../src/blob-store/config';
import { BLOB_STORE_DEFAULTS } from '../src/blob-store/engine';
import { toExporterOptions } from '../src/export/config';
import { DEFAULT_EXPORTER_OPTIONS } from '../src/export/otlp-http-exporter';
import { toHandlerOptions } from '../src/intake/config';
import { LOKI_API_DEFAULTS } from '../src/log-store/api';
import { toLokiApiOptions } from '../src/log-store/config';
import { LOG_STORE_DURABILITY } from '../src/log-store/log-store';
import { DEFAULT_DECODE_LIMITS } from '../src/otlp/limits';
import { toPrometheusOptions } from '../src/prometheus/config';
import { PROMETHEUS_DEFAULTS } from '../src/prometheus/consumer';
import { toServiceGraphOptions, toSpanMetricsOptions } from '../src/traces/config';
import {
  DEFAULT_SERVICE_GRAPH_BUCKETS,
  DEFAULT_SERVICE_GRAPH_MAX_ITEMS,
  DEFAULT_SERVICE_GRAPH_WAIT_MS,
} from '../src/traces/service-graph';
import { DEFAULT_LATENCY_BUCKETS } from '../src/traces/span-metrics';

const SRC = join(__dirname, '..', 'src');
const defaults = loadConfig({ env: {} });

describe("a component's library defaults are its config defaults", () => {
  test('OTLP/HTTP exporters (tempo, loki)', () => {
    for (const section of ['tempo', 'loki'] as const) {
      const { endpoint, tls, persistentDir, ...options } = toExporterOptions(defaults[section], section, '/data');
      expect(options).toEqual(DEFAULT_EXPORTER_OPTIONS);
      expect([endpoint, persistentDir]).toEqual(['', undefined]);
    }
  });

  test('the embedded stores (trace_store, log_store)', () => {
    expect(toBlobStoreOptions(defaults.trace_store, '/data')).toMatchObject(BLOB_STORE_DEFAULTS);
    // The log store's own durability default (LOG_STORE_DURABILITY), the engine's for the rest.
    expect(toBlobStoreOptions(defaults.log_store, '/data')).toMatchObject({
      ...BLOB_STORE_DEFAULTS,
      durability: LOG_STORE_DURABILITY,
    });
    expect(toBlobStoreOptions(defaults.trace_store, '/data').path).toBe(join('/data', 'traces.db'));
    expect(toBlobStoreOptions({ ...defaults.log_store, path: '/abs/logs.db' }, '/data').path).toBe('/abs/logs.db');
  });

  test("Loki's query API (log_store), but for the query budget, which is the store's", () => {
    const { onLimit, logger, queryTimeoutMs, ...api } = toLokiApiOptions(
      defaults.log_store,
      () => {},
      undefined as never,
    );
    const { queryTimeoutMs: apiTimeout, maxQueryChars, ...expected } = LOKI_API_DEFAULTS;
    expect(api).toEqual(expected);
    expect(queryTimeoutMs).toBe(BLOB_STORE_DEFAULTS.queryTimeoutMs);
  });

  test('the decoders (limits), Prometheus, the admin app, span metrics and the service graph', () => {
    expect(toHandlerOptions(defaults).decodeLimits).toEqual(DEFAULT_DECODE_LIMITS);
    expect(toPrometheusOptions(defaults.prometheus, {})).toMatchObject(PROMETHEUS_DEFAULTS);
    expect(toAdminOptions(defaults.admin, defaults.debug)).toMatchObject(ADMIN_DEFAULTS);
    expect(toSpanMetricsOptions(defaults.span_metrics).latencyBuckets).toEqual(DEFAULT_LATENCY_BUCKETS);
    expect(toServiceGraphOptions(defaults.service_graph)).toMatchObject({
      waitMs: DEFAULT_SERVICE_GRAPH_WAIT_MS,
      maxItems: DEFAULT_SERVICE_GRAPH_MAX_ITEMS,
      latencyBuckets: DEFAULT_SERVICE_GRAPH_BUCKETS,
    });
  });

  test('a default list handed out is a copy: changing one configuration leaves the next one alone', () => {
    const first = loadConfig({ env: {} });
    first.span_metrics.latency_buckets.push(99);
    first.service_graph.latency_buckets.push(99);
    const second = loadConfig({ env: {} });
    expect(second.span_metrics.latency_buckets).toEqual(DEFAULT_LATENCY_BUCKETS);
    expect(second.service_graph.latency_buckets).toEqual(DEFAULT_SERVICE_GRAPH_BUCKETS);
  });
});

describe('where the configuration lives', () => {
  test("schema.ts composes the components' sections and imports nothing else of theirs", () => {
    const text = readFileSync(join(SRC, 'config', 'schema.ts'), 'utf8');
    const imports = [...text.matchAll(/^(?:import|export)[^;]*? from '([^']+)';/gms)].map((m) => m[1]);
    expect(imports.length).toBeGreaterThan(5);
    expect(imports.filter((i) => !(i === 'zod' || i === './fields' || /^\.\.\/[\w-]+\/config$/.test(i)))).toEqual([]);
  });

  test('startReceiver is short wiring (at most 80 lines)', () => {
    const lines = readFileSync(join(SRC, 'receiver.ts'), 'utf8').split('\n');
    const start = lines.findIndex((l) => l.startsWith('export async function startReceiver'));
    const end = lines.findIndex((l, i) => i > start && l === '}');
    expect(start).toBeGreaterThan(0);
    expect(end - start + 1).toBeLessThanOrEqual(80);
  });
});

/**
 * The self-metric tables (src/metrics/): the helper registers a table as prom-client metrics, and
 * the receiver README's "Self-metrics" section holds every entry of every table the receiver
 * registers (src/metrics/catalogue.ts), with its type, labels and help as /metrics says them; and
 * every row of it is such an entry, prom-client's process and Node.js metrics and the event
 * metrics' series aside. (self-metrics-reference.test.ts checks the same section against a live
 * receiver's /metrics.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { SELF_METRIC_TABLES } from '../src/metrics/catalogue';
import { type MetricTable, registerMetric, registerMetrics } from '../src/metrics/define';

interface Row {
  section: string;
  type: string;
  labels: string[];
  help: string;
}

/** The rows of the README's self-metric tables, with the `###` section each is in. */
function readmeRows(): Map<string, Row> {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Self-metrics\n');
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  const rows = new Map<string, Row>();
  let section = '';
  for (const line of readme.slice(start, end < 0 ? undefined : end).split('\n')) {
    if (line.startsWith('### ')) section = line.slice(4);
    const m = /^\| `(sonde_\w+)` \| (\w+) \| ([^|]*) \| (.+) \|$/.exec(line);
    if (m) rows.set(m[1], { section, type: m[2], labels: [...m[3].matchAll(/`(\w+)`/g)].map((l) => l[1]), help: m[4] });
  }
  return rows;
}

const entries = SELF_METRIC_TABLES.flatMap(({ source, table }) =>
  Object.values(table).map((def) => ({ source, ...def, labels: [...(def.labels ?? [])] })),
);
const rowOf = (e: (typeof entries)[number]) =>
  `| \`${e.name}\` | ${e.type} | ${e.labels.map((l) => `\`${l}\``).join(', ') || '—'} | ${e.help} |`;

describe('the self-metric tables', () => {
  const rows = readmeRows();

  test('declare each family once', () => {
    const names = entries.map((e) => e.name);
    expect(names.length).toBeGreaterThan(80);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  test('are each in the README with their type, labels and help', () => {
    const wrong = entries
      .filter((e) => {
        const row = rows.get(e.name);
        return !row || row.type !== e.type || row.labels.join() !== e.labels.join() || row.help !== e.help;
      })
      .map((e) => `${e.source}: ${rowOf(e)}`);
    expect(wrong).toEqual([]);
  });

  test('are all the README lists, beside the process metrics and the event series', () => {
    const declared = new Set(entries.map((e) => e.name));
    const undeclared = [...rows]
      .filter(([name, row]) => !declared.has(name) && row.section !== 'Process and Node.js')
      .map(([name]) => name);
    expect(undeclared).toEqual(['sonde_events_total']);
  });
});

describe('registerMetrics', () => {
  const TABLE = {
    requests: { type: 'counter', name: 'sonde_test_requests_total', help: 'Requests, by outcome', labels: ['outcome'] },
    queued: { type: 'gauge', name: 'sonde_test_queue_bytes', help: 'Bytes queued', unit: 'bytes' },
    duration: {
      type: 'histogram',
      name: 'sonde_test_duration_seconds',
      help: 'Time taken',
      unit: 'seconds',
      buckets: [0.1, 1],
    },
  } as const satisfies MetricTable;

  test('registers each entry as the prom-client metric it declares, collect included', async () => {
    const registry = new Registry();
    let queued = 0;
    const m = registerMetrics(registry, TABLE, {
      queued() {
        this.set(queued);
      },
    });
    m.requests.inc({ outcome: 'success' }, 2);
    m.duration.observe(0.5);
    queued = 42;
    const text = await registry.metrics();
    expect(text).toContain(
      '# HELP sonde_test_requests_total Requests, by outcome\n# TYPE sonde_test_requests_total counter\nsonde_test_requests_total{outcome="success"} 2\n',
    );
    expect(text).toContain('# TYPE sonde_test_queue_bytes gauge\nsonde_test_queue_bytes 42\n');
    expect(text).toContain(
      'sonde_test_duration_seconds_bucket{le="0.1"} 0\nsonde_test_duration_seconds_bucket{le="1"} 1\n',
    );
    expect(registry.getMetricsAsArray().map((metric) => metric.name)).toEqual([
      'sonde_test_requests_total',
      'sonde_test_queue_bytes',
      'sonde_test_duration_seconds',
    ]);
  });

  test('refuses an entry whose name does not end with its unit', () => {
    expect(() =>
      registerMetric(new Registry(), { type: 'gauge', name: 'sonde_test_queue', help: 'Bytes queued', unit: 'bytes' }),
    ).toThrow('self-metric sonde_test_queue is declared in bytes but its name does not end with _bytes');
  });

  test('the tables declare units their names end with', () => {
    const registry = new Registry();
    for (const { table } of SELF_METRIC_TABLES) registerMetrics(registry, table);
    expect(registry.getMetricsAsArray().length).toBe(entries.length);
  });
});

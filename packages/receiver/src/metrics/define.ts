/**
 * Self-metric tables: each component declares the `sonde_*` families it emits in one table beside its
 * code (`<component>/metrics.ts`), an entry per family with its name, type, help, label names, unit
 * and (histograms) buckets, and registers the table on the receiver's registry to get typed
 * prom-client handles. A thin layer: the handles are prom-client's own Counter, Gauge and Histogram.
 *
 *     export const ERASURE_METRICS = {
 *       requests: { type: 'counter', name: 'sonde_erasure_requests_total', help: '…', labels: ['outcome'] },
 *     } as const satisfies MetricTable;
 *     const m = registerMetrics(registry, ERASURE_METRICS);
 *     m.requests.inc({ outcome: 'erased' });
 *
 * A component whose names or help depend on how it is used (a store's prefix, its item word) has a
 * function that returns its table. Gauges read at scrape time get their `collect` at registration.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

interface Common {
  /** The full family name (`sonde_…`; a counter's with its `_total`). */
  name: string;
  help: string;
  /** Label names, in the order prom-client is given them. */
  labels?: readonly string[];
  /** The unit the name ends with (before `_total`): `seconds`, `bytes`. Checked at registration. */
  unit?: string;
}

export interface CounterDef extends Common {
  type: 'counter';
}
export interface GaugeDef extends Common {
  type: 'gauge';
}
export interface HistogramDef extends Common {
  type: 'histogram';
  buckets: readonly number[];
}
export type MetricDef = CounterDef | GaugeDef | HistogramDef;

/** A component's families, keyed by the name its code calls the handle. */
export type MetricTable = Record<string, MetricDef>;

type LabelsOf<D> = D extends { labels: readonly (infer L extends string)[] } ? L : string;

/** The prom-client metric a table entry registers as. */
export type MetricHandle<D extends MetricDef> = D extends { type: 'counter' }
  ? Counter<LabelsOf<D>>
  : D extends { type: 'gauge' }
    ? Gauge<LabelsOf<D>>
    : Histogram<LabelsOf<D>>;

export type MetricHandles<T extends MetricTable> = { [K in keyof T]: MetricHandle<T[K]> };

/** Scrape-time callbacks (prom-client's `collect`), by table key. */
export type Collectors<T extends MetricTable> = {
  [K in keyof T]?: (this: MetricHandle<T[K]>) => void | Promise<void>;
};

/** Registers one table entry on `registry`. */
export function registerMetric<D extends MetricDef>(
  registry: Registry,
  def: D,
  collect?: (this: MetricHandle<D>) => void | Promise<void>,
): MetricHandle<D> {
  if (def.unit !== undefined && !def.name.replace(/_total$/, '').endsWith(`_${def.unit}`)) {
    throw new Error(`self-metric ${def.name} is declared in ${def.unit} but its name does not end with _${def.unit}`);
  }
  const config = {
    name: def.name,
    help: def.help,
    labelNames: def.labels ?? [],
    registers: [registry],
    ...(collect ? { collect } : {}),
  };
  switch (def.type) {
    case 'counter':
      return new Counter(config as ConstructorParameters<typeof Counter>[0]) as MetricHandle<D>;
    case 'gauge':
      return new Gauge(config as ConstructorParameters<typeof Gauge>[0]) as MetricHandle<D>;
    case 'histogram':
      return new Histogram({
        ...(config as ConstructorParameters<typeof Histogram>[0]),
        buckets: [...def.buckets],
      }) as MetricHandle<D>;
  }
}

/** Registers every entry of `table` on `registry`, in the table's order, and returns their handles. */
export function registerMetrics<T extends MetricTable>(
  registry: Registry,
  table: T,
  collectors: Collectors<T> = {},
): MetricHandles<T> {
  const handles: Record<string, unknown> = {};
  for (const key of Object.keys(table)) {
    handles[key] = registerMetric(
      registry,
      table[key],
      collectors[key] as ((this: MetricHandle<MetricDef>) => void | Promise<void>) | undefined,
    );
  }
  return handles as MetricHandles<T>;
}

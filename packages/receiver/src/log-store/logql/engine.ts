/**
 * Runs parsed LogQL over a LogSource: log queries (entries of the matching streams through the
 * pipeline, up to `limit`, in the asked direction) and metric queries (range aggregations over step
 * windows `(t − range, t]` for t = start + k·step ≤ end, vector aggregations, binary operations).
 * Every query reads under an AbortSignal (the time budget and the client) and within series bounds.
 */
import type { LabelMatcher, LogSelection, LogSource, LokiEntry } from '../loki-entry';
import type { BinaryOp, Expr, LogExpr, MetricExpr, Stage } from './ast';
import { compileLineOnly, compilePipeline, type EntryLabels } from './pipeline';

/** A query's input is wrong or over a limit: answered 400 with the message. */
export class QueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryError';
  }
}

/** A query stopped: its time budget ran out (`timeout`) or its client left. */
export class QueryAbortedError extends Error {
  constructor(readonly timeout: boolean) {
    super(timeout ? 'the query exceeded its time budget (query_timeout)' : 'the client closed the request');
    this.name = 'QueryAbortedError';
  }
}

export interface QueryStats {
  linesProcessed: number;
  bytesProcessed: number;
  entriesReturned: number;
}

export interface EngineLimits {
  /** Series a metric query may return (Loki's max_query_series). */
  maxSeries: number;
  /** Signals the query's end: its time budget, its client leaving. */
  signal?: AbortSignal;
  /** Whether the signal's abort was the time budget (else the client left). */
  timedOut?: () => boolean;
}

export interface LogResultEntry {
  timeNs: bigint;
  line: string;
  labels: EntryLabels;
}

/** The lines a log query returns, in the query's direction. */
export async function runLogQuery(
  source: LogSource,
  expr: LogExpr,
  window: { startNs: bigint; endNs: bigint; direction: 'forward' | 'backward'; limit: number },
  limits: EngineLimits,
  stats: QueryStats,
): Promise<LogResultEntry[]> {
  const pipeline = compilePipeline(expr.stages);
  const out: LogResultEntry[] = [];
  const selection: LogSelection = {
    matchers: expr.matchers,
    startNs: window.startNs,
    endNs: window.endNs,
    direction: window.direction,
    signal: limits.signal,
    ...hints(expr.stages),
  };
  if (window.limit <= 0) return out;
  for await (const entry of source.select(selection)) {
    checkAbort(limits, ++stats.linesProcessed);
    if (stats.linesProcessed % YIELD_EVERY === 0) await yieldToEventLoop();
    stats.bytesProcessed += entry.line.length;
    if (entry.timeNs < window.startNs || entry.timeNs >= window.endNs) continue;
    const r = pipeline(entry);
    if (!r) continue;
    out.push({ timeNs: entry.timeNs, line: r.line, labels: r.labels });
    if (out.length >= window.limit) break;
  }
  stats.entriesReturned = out.length;
  return out;
}

function checkAbort(limits: EngineLimits, n: number): void {
  if ((n & 255) === 0 && limits.signal?.aborted) throw new QueryAbortedError(limits.timedOut?.() ?? false);
}

/** Lines between two yields to the event loop: a long query does not hold up intake and other requests. */
const YIELD_EVERY = 4096;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * What a source may use to skip data: substrings every line must hold (`|=` filters before any
 * line_format), and a trace id a `| trace_id="…"` filter requires (before any stage that could set
 * trace_id).
 */
export function hints(stages: readonly Stage[]): Pick<LogSelection, 'lineContains' | 'traceId'> {
  const lineContains: string[] = [];
  let traceId: string | undefined;
  let labelsIntact = true;
  for (const s of stages) {
    if (s.kind === 'line_format') break;
    if (s.kind === 'line') {
      if (s.filter.op === '|=' && s.filter.values.length === 1 && s.filter.values[0] !== '') {
        lineContains.push(s.filter.values[0]);
      }
      continue;
    }
    if (s.kind === 'label') {
      if (labelsIntact && traceId === undefined) traceId = requiredTraceId(s.expr);
      continue;
    }
    labelsIntact = false;
  }
  return {
    ...(lineContains.length > 0 ? { lineContains } : {}),
    ...(traceId !== undefined ? { traceId } : {}),
  };
}

function requiredTraceId(e: Stage & { kind: 'label' } extends { expr: infer E } ? E : never): string | undefined {
  if (e.kind === 'string' && e.name === 'trace_id' && e.op === '=' && e.value !== '') return e.value;
  if (e.kind === 'and') return requiredTraceId(e.left) ?? requiredTraceId(e.right);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Metric queries

export interface Series {
  labels: Record<string, string>;
  /** Step indexes with a value, ascending, and the values. */
  steps: number[];
  values: number[];
}

export type MetricValue = { type: 'scalar'; value: number } | { type: 'matrix'; series: Series[] };

export interface Steps {
  startNs: bigint;
  endNs: bigint;
  stepNs: bigint;
  count: number;
}

export function stepsOf(startNs: bigint, endNs: bigint, stepNs: bigint): Steps {
  return { startNs, endNs, stepNs, count: Number((endNs - startNs) / stepNs) + 1 };
}

/** The time of a step, in ns. */
export function stepTime(s: Steps, k: number): bigint {
  return s.startNs + BigInt(k) * s.stepNs;
}

const labelsKey = (labels: Record<string, string>): string =>
  JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );

export async function runMetricQuery(
  source: LogSource,
  expr: MetricExpr,
  steps: Steps,
  limits: EngineLimits,
  stats: QueryStats,
): Promise<MetricValue> {
  const v = await evaluate(source, expr, steps, limits, stats, undefined);
  if (v.type === 'matrix' && v.series.length > limits.maxSeries) throw seriesLimit(limits.maxSeries);
  return v;
}

function seriesLimit(max: number): QueryError {
  return new QueryError(
    `maximum number of series (${max}) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating the series`,
  );
}

type Projection = ((labels: Record<string, string>) => Record<string, string>) & {
  /** The labels kept, for `by (…)` (and none, for no grouping): read straight off a line's labels. */
  by?: string[];
};

function projection(g: { without: boolean; labels: string[] } | undefined): Projection {
  if (!g) return Object.assign(() => ({}), { by: [] as string[] });
  if (g.without) {
    const drop = new Set(g.labels);
    return (labels) => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(labels)) if (!drop.has(k)) out[k] = v;
      return out;
    };
  }
  const by = g.labels;
  const f = (labels: Record<string, string>) => {
    const out: Record<string, string> = {};
    for (const k of by) if (Object.hasOwn(labels, k) && labels[k] !== '') out[k] = labels[k];
    return out;
  };
  return Object.assign(f, { by });
}

async function evaluate(
  source: LogSource,
  expr: MetricExpr,
  steps: Steps,
  limits: EngineLimits,
  stats: QueryStats,
  project: Projection | undefined,
): Promise<MetricValue> {
  switch (expr.kind) {
    case 'literal':
      return { type: 'scalar', value: expr.value };
    case 'vector': {
      const all = Array.from({ length: steps.count }, (_, k) => k);
      return { type: 'matrix', series: [{ labels: {}, steps: all, values: all.map(() => expr.value) }] };
    }
    case 'range':
      return { type: 'matrix', series: await rangeAggregation(source, expr, steps, limits, stats, project) };
    case 'vector_agg': {
      // A sum of counts is the count of the union: group entries by the sum's labels while reading
      // (Loki pushes these down the same way), so a label with a value per line (trace_id) never
      // makes a series of its own.
      const pushdown =
        expr.op === 'sum' && expr.inner.kind === 'range' && expr.inner.fn !== 'absent_over_time'
          ? projection(expr.grouping)
          : undefined;
      const inner = await evaluate(source, expr.inner, steps, limits, stats, pushdown);
      if (inner.type === 'scalar') throw new QueryError(`parse error : ${expr.op} needs a vector, not a scalar`);
      return { type: 'matrix', series: vectorAggregation(expr, inner.series, steps) };
    }
    case 'binary': {
      const left = await evaluate(source, expr.left, steps, limits, stats, undefined);
      const right = await evaluate(source, expr.right, steps, limits, stats, undefined);
      return binary(expr.op, expr.bool, left, right);
    }
  }
}

async function rangeAggregation(
  source: LogSource,
  expr: MetricExpr & { kind: 'range' },
  steps: Steps,
  limits: EngineLimits,
  stats: QueryStats,
  project: Projection | undefined,
): Promise<Series[]> {
  const { rangeNs, offsetNs } = expr;
  // Entries in (first − range, last] (shifted back by the offset), as offsets from `base` in ns.
  const base = steps.startNs - rangeNs - offsetNs;
  const last = steps.endNs - offsetNs;
  if (Number(last - base) > Number.MAX_SAFE_INTEGER) {
    throw new QueryError('the query time range plus the range of its range aggregation is too long');
  }
  const pipeline = compilePipeline(expr.log.stages);
  const lineOnly = compileLineOnly(expr.log.stages);
  const needBytes = expr.fn === 'bytes_over_time' || expr.fn === 'bytes_rate';
  // The log-volume query, `sum by (level, detected_level) (count_over_time({…} | drop __error__ [r]))`:
  // counted by the source from its level index when it has one, without reading entries.
  const by = project?.by;
  if (
    source.countVolume &&
    by &&
    (expr.fn === 'count_over_time' || expr.fn === 'rate') &&
    lineOnly &&
    expr.log.stages.every((s) => s.kind !== 'line') &&
    by.every((name) => source.countVolumeLabels?.includes(name))
  ) {
    const groups = await source.countVolume(
      {
        matchers: expr.log.matchers,
        by,
        baseNs: base,
        rangeNs: Number(rangeNs),
        stepNs: Number(steps.stepNs),
        count: steps.count,
      },
      limits.signal,
    );
    if (groups.length > limits.maxSeries * 10) throw seriesLimit(limits.maxSeries);
    const rangeS = Number(rangeNs) / 1e9;
    for (const g of groups) stats.linesProcessed += g.entries;
    return groups.map((g) => ({
      labels: g.labels,
      steps: g.steps,
      values: expr.fn === 'rate' ? g.values.map((v) => v / rangeS) : g.values,
    }));
  }
  const maxInner = limits.maxSeries * 10;
  const groups = new Map<string, { labels: Record<string, string>; times: number[]; bytes: number[] }>();
  const selection: LogSelection = {
    matchers: expr.log.matchers,
    startNs: base + 1n > 0n ? base + 1n : 0n,
    endNs: last + 1n > 0n ? last + 1n : 0n,
    direction: 'forward',
    signal: limits.signal,
    ...hints(expr.log.stages),
  };
  let sorted = true;
  for await (const entry of source.select(selection)) {
    checkAbort(limits, ++stats.linesProcessed);
    if (stats.linesProcessed % YIELD_EVERY === 0) await yieldToEventLoop();
    stats.bytesProcessed += entry.line.length;
    if (entry.timeNs <= base || entry.timeNs > last) continue;
    let key: string;
    let labels: Record<string, string> | undefined;
    let allLabels: () => Record<string, string>;
    let line = entry.line;
    if (lineOnly && project?.by) {
      allLabels = () => ({ ...entry.stream, ...entry.metadata });
      // Fast path: the stages only filter lines, the grouping labels are the entry's own.
      if (!lineOnly(line)) continue;
      key = '';
      for (const name of project.by) {
        const v = Object.hasOwn(entry.metadata, name)
          ? entry.metadata[name]
          : Object.hasOwn(entry.stream, name)
            ? entry.stream[name]
            : '';
        key += `${v}\u0000`;
      }
    } else {
      const r = pipeline(entry);
      if (!r) continue;
      if (r.labels.error !== undefined) throw pipelineError(r.labels);
      line = r.line;
      allLabels = () => r.labels.all();
      if (project?.by) {
        // Grouping by a few labels: read them off the line, no label set built.
        key = '';
        for (const name of project.by) key += `${r.labels.get(name) ?? ''}\u0000`;
      } else {
        const all = r.labels.all();
        labels = project ? project(all) : all;
        key = labelsKey(labels);
      }
    }
    let g = groups.get(key);
    if (!g) {
      if (groups.size >= maxInner) throw seriesLimit(limits.maxSeries);
      g = { labels: labels ?? project!(allLabels()), times: [], bytes: [] };
      groups.set(key, g);
    }
    const t = Number(entry.timeNs - base);
    if (g.times.length > 0 && t < g.times[g.times.length - 1]) sorted = false;
    g.times.push(t);
    if (needBytes) g.bytes.push(Buffer.byteLength(line));
  }
  const range = Number(rangeNs);
  const rangeS = range / 1e9;
  const out: Series[] = [];
  for (const g of groups.values()) {
    let { times, bytes } = g;
    if (!sorted) {
      const order = times.map((_, i) => i).sort((a, b) => times[a] - times[b]);
      times = order.map((i) => g.times[i]);
      bytes = needBytes ? order.map((i) => g.bytes[i]) : bytes;
    }
    const prefix = new Float64Array(needBytes ? bytes.length + 1 : 0);
    for (let i = 0; i < bytes.length; i++) prefix[i + 1] = prefix[i] + bytes[i];
    const s: Series = { labels: g.labels, steps: [], values: [] };
    let lo = 0;
    let hi = 0;
    for (let k = 0; k < steps.count; k++) {
      // Step k's window is (t − range, t] with t = base + range + k·step (offsets from base).
      const t = range + k * Number(steps.stepNs);
      while (hi < times.length && times[hi] <= t) hi++;
      while (lo < hi && times[lo] <= t - range) lo++;
      const count = hi - lo;
      if (count === 0) continue;
      let v: number;
      switch (expr.fn) {
        case 'count_over_time':
          v = count;
          break;
        case 'rate':
          v = count / rangeS;
          break;
        case 'bytes_over_time':
          v = prefix[hi] - prefix[lo];
          break;
        case 'bytes_rate':
          v = (prefix[hi] - prefix[lo]) / rangeS;
          break;
        default:
          v = 1;
      }
      s.steps.push(k);
      s.values.push(v);
    }
    if (s.steps.length > 0) out.push(s);
  }
  if (expr.fn === 'absent_over_time') return absent(out, expr.log.matchers, steps);
  return out;
}

/** absent_over_time: 1 at the steps where no series has a value, labelled by the selector's `=` matchers. */
function absent(present: Series[], matchers: LabelMatcher[], steps: Steps): Series[] {
  const seen = new Set<number>();
  for (const s of present) for (const k of s.steps) seen.add(k);
  const labels: Record<string, string> = {};
  for (const m of matchers) if (m.op === '=') labels[m.name] = m.value;
  const s: Series = { labels, steps: [], values: [] };
  for (let k = 0; k < steps.count; k++) {
    if (seen.has(k)) continue;
    s.steps.push(k);
    s.values.push(1);
  }
  return s.steps.length > 0 ? [s] : [];
}

function pipelineError(labels: EntryLabels): QueryError {
  const l = labels.all();
  const shown = Object.keys(l)
    .sort()
    .map((k) => `${k}=${JSON.stringify(l[k])}`)
    .join(', ');
  return new QueryError(
    `pipeline error: '${labels.error}' for series: '{${shown}}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!="${labels.error}").\nTo skip all potential errors you can match empty errors.(e.g __error__="")\nThe label filter can also be specified after unwrap. Eg: | unwrap latency | __error__=""\n`,
  );
}

function vectorAggregation(expr: MetricExpr & { kind: 'vector_agg' }, series: Series[], steps: Steps): Series[] {
  const project = projection(expr.grouping);
  if (expr.op === 'sort' || expr.op === 'sort_desc') return series;
  if (expr.op === 'topk' || expr.op === 'bottomk') {
    const k = expr.param ?? 1;
    // Per step and group, the k largest (smallest) series.
    const byStep = new Map<number, { s: number; v: number }[]>();
    series.forEach((s, i) => {
      s.steps.forEach((step, j) => {
        const list = byStep.get(step) ?? [];
        if (list.length === 0) byStep.set(step, list);
        list.push({ s: i, v: s.values[j] });
      });
    });
    const groupOf = series.map((s) => labelsKey(project(s.labels)));
    const out = series.map((s) => ({ labels: s.labels, steps: [] as number[], values: [] as number[] }));
    for (let step = 0; step < steps.count; step++) {
      const list = byStep.get(step);
      if (!list) continue;
      const groups = new Map<string, { s: number; v: number }[]>();
      for (const item of list) {
        const g = groupOf[item.s];
        const l = groups.get(g) ?? [];
        if (l.length === 0) groups.set(g, l);
        l.push(item);
      }
      for (const l of groups.values()) {
        l.sort((a, b) => (expr.op === 'topk' ? b.v - a.v : a.v - b.v));
        for (const item of l.slice(0, k)) {
          out[item.s].steps.push(step);
          out[item.s].values.push(item.v);
        }
      }
    }
    return out.filter((s) => s.steps.length > 0);
  }
  const groups = new Map<string, { labels: Record<string, string>; byStep: Map<number, number[]> }>();
  for (const s of series) {
    const labels = project(s.labels);
    const key = labelsKey(labels);
    const g = groups.get(key) ?? { labels, byStep: new Map<number, number[]>() };
    groups.set(key, g);
    s.steps.forEach((step, j) => {
      const vs = g.byStep.get(step) ?? [];
      if (vs.length === 0) g.byStep.set(step, vs);
      vs.push(s.values[j]);
    });
  }
  const out: Series[] = [];
  for (const g of groups.values()) {
    const stepsSorted = [...g.byStep.keys()].sort((a, b) => a - b);
    out.push({
      labels: g.labels,
      steps: stepsSorted,
      values: stepsSorted.map((k) => aggregate(expr.op, g.byStep.get(k)!)),
    });
  }
  return out;
}

function aggregate(op: string, vs: number[]): number {
  switch (op) {
    case 'sum':
      return vs.reduce((a, b) => a + b, 0);
    case 'count':
      return vs.length;
    case 'min':
      return vs.reduce((a, b) => Math.min(a, b));
    case 'max':
      return vs.reduce((a, b) => Math.max(a, b));
    case 'avg':
      return vs.reduce((a, b) => a + b, 0) / vs.length;
    default: {
      const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
      const variance = vs.reduce((a, b) => a + (b - mean) ** 2, 0) / vs.length;
      return op === 'stddev' ? Math.sqrt(variance) : variance;
    }
  }
}

const COMPARISONS = new Set(['==', '!=', '>', '>=', '<', '<=']);

function apply(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return a / b;
    case '%':
      return a % b;
    case '^':
      return a ** b;
    case '==':
      return a === b ? 1 : 0;
    case '!=':
      return a !== b ? 1 : 0;
    case '>':
      return a > b ? 1 : 0;
    case '>=':
      return a >= b ? 1 : 0;
    case '<':
      return a < b ? 1 : 0;
    default:
      return a <= b ? 1 : 0;
  }
}

function binary(op: BinaryOp, bool: boolean, left: MetricValue, right: MetricValue): MetricValue {
  const cmp = COMPARISONS.has(op);
  if (left.type === 'scalar' && right.type === 'scalar') {
    if (cmp && !bool) throw new QueryError('parse error : comparisons between scalars must use the bool modifier');
    return { type: 'scalar', value: apply(op, left.value, right.value) };
  }
  const point = (a: number, b: number, keep: number): number | undefined => {
    const r = apply(op, a, b);
    if (!cmp || bool) return r;
    return r === 1 ? keep : undefined;
  };
  const mapSeries = (s: Series, f: (v: number, k: number) => number | undefined): Series => {
    const out: Series = { labels: s.labels, steps: [], values: [] };
    s.steps.forEach((k, j) => {
      const v = f(s.values[j], k);
      if (v !== undefined) {
        out.steps.push(k);
        out.values.push(v);
      }
    });
    return out;
  };
  if (left.type === 'matrix' && right.type === 'scalar') {
    return { type: 'matrix', series: nonEmpty(left.series.map((s) => mapSeries(s, (v) => point(v, right.value, v)))) };
  }
  if (left.type === 'scalar' && right.type === 'matrix') {
    return { type: 'matrix', series: nonEmpty(right.series.map((s) => mapSeries(s, (v) => point(left.value, v, v)))) };
  }
  const l = left as { type: 'matrix'; series: Series[] };
  const r = right as { type: 'matrix'; series: Series[] };
  const rightByKey = new Map<string, Series>();
  for (const s of r.series) {
    const key = labelsKey(s.labels);
    if (rightByKey.has(key))
      throw new QueryError('found duplicate series for the match group on the right hand-side of the operation');
    rightByKey.set(key, s);
  }
  const series: Series[] = [];
  for (const s of l.series) {
    const other = rightByKey.get(labelsKey(s.labels));
    if (!other) continue;
    const at = new Map(other.steps.map((k, j) => [k, other.values[j]]));
    const m = mapSeries(s, (v, k) => {
      const b = at.get(k);
      return b === undefined ? undefined : point(v, b, v);
    });
    if (m.steps.length > 0) series.push(m);
  }
  return { type: 'matrix', series };
}

const nonEmpty = (series: Series[]) => series.filter((s) => s.steps.length > 0);

export function isLogQuery(e: Expr): e is LogExpr {
  return e.kind === 'log';
}

export type { LokiEntry };

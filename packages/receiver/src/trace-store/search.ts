/**
 * The reads behind Tempo's search API over the trace store: most recent matching traces first, with
 * up to `spss` matching spans each; and the tag names and values for Grafana's query builder.
 */
import { BLOCK_SPANS, hex, type TraceDb } from './db';
import { type CompiledSpanset, compileSpanset, type SpansetQuery } from './traceql';

export interface SearchOptions {
  /** Span start window, in ns since the epoch. */
  startNs: bigint;
  endNs: bigint;
  limit: number;
  /** Spans per spanset in the result. */
  spss: number;
  /** Trace duration bounds (the legacy minDuration/maxDuration), in ns. */
  minTraceDurationNs?: number;
  maxTraceDurationNs?: number;
}

/** Tempo's TraceSearchMetadata (JSON). */
export interface TraceSearchMetadata {
  traceID: string;
  rootServiceName: string;
  rootTraceName?: string;
  startTimeUnixNano: string;
  durationMs: number;
  spanSets: {
    spans: {
      spanID: string;
      name: string;
      startTimeUnixNano: string;
      durationNanos: string;
      attributes: { key: string; value: { stringValue: string } }[];
    }[];
    matched: number;
  }[];
  spanSet?: TraceSearchMetadata['spanSets'][number];
}

export interface SearchResult {
  traces: TraceSearchMetadata[];
  metrics: {
    inspectedTraces: number;
    inspectedSpans: string;
    inspectedBytes: string;
    completedJobs: number;
    totalJobs: number;
  };
}

interface Found {
  traceId: Uint8Array;
  spans: TraceSearchMetadata['spanSets'][number]['spans'];
  matched: number;
  latest: number;
}

/**
 * How far a span's arrival may be before its start (clock skew) or after the window's end (export
 * delays: batch processors wait seconds) for a time-windowed search to find it.
 */
export const ARRIVAL_SLACK_MS = 5 * 60_000;

/** Fewer candidates than this from the duration index: take them from it (and sort) instead of walking the rows. */
const RARE = 20_000;

export function search(db: TraceDb, query: SpansetQuery, options: SearchOptions): SearchResult {
  const found = new Map<string, Found>();
  let inspectedSpans = 0;
  const inspectedTraces = new Set<string>();
  for (const expr of query) {
    const compiled = compileSpanset(expr);
    inspectedSpans += collect(db, compiled, options, found, inspectedTraces);
  }
  const traces: (TraceSearchMetadata & { latest: number })[] = [];
  for (const [id, f] of found) {
    const t = db.traceSummary(f.traceId);
    if (!t) continue;
    const start = t.startNs;
    const durationNs = Number(t.endNs - start);
    const spanSet = { spans: f.spans, matched: f.matched };
    traces.push({
      traceID: id,
      rootServiceName: t.rootService ?? '<root span not yet received>',
      ...(t.rootName !== null ? { rootTraceName: t.rootName } : {}),
      startTimeUnixNano: start.toString(),
      durationMs: Math.round(durationNs / 1e6),
      spanSet,
      spanSets: [spanSet],
      latest: f.latest,
    });
  }
  traces.sort((a, b) => b.latest - a.latest);
  return {
    traces: traces.slice(0, options.limit).map(({ latest: _, ...t }) => t),
    metrics: {
      inspectedTraces: inspectedTraces.size,
      inspectedSpans: String(inspectedSpans),
      inspectedBytes: '0',
      completedJobs: 1,
      totalJobs: 1,
    },
  };
}

function collect(
  db: TraceDb,
  q: CompiledSpanset,
  o: SearchOptions,
  found: Map<string, Found>,
  inspected: Set<string>,
): number {
  const columns = 's.id, s.trace_id, s.span_id, s.name, s.start_ns, s.duration_ns';
  // Most recent first, so that the scan stops as soon as `limit` traces are found. The time window
  // bounds the row ids (arrival order, see spanIdRange), then is checked row by row.
  const { lo, hi } = db.spanIdRange(Number(o.startNs / 1_000_000n), Number(o.endNs / 1_000_000n), ARRIVAL_SLACK_MS);
  const window = 's.start_ns >= ? AND s.start_ns <= ?';
  // Without an attribute to drive the scan: walk the rows newest first, which stops early when
  // matches are common; but when a duration bound leaves few candidates (long spans are rare), take
  // them from the duration index and sort them, rather than walk every row of the window.
  let from = 'spans s';
  if (!q.driver && q.minDurationClass !== undefined) {
    const candidates = db
      .stmt(
        `SELECT count(*) AS n FROM (SELECT 1 FROM spans INDEXED BY spans_duration WHERE duration_class >= ? AND id > ? AND id <= ? LIMIT ${RARE})`,
      )
      .get(q.minDurationClass, lo, hi);
    if (Number(candidates?.n ?? RARE) < RARE) from = 'spans s INDEXED BY spans_duration';
  }
  // With a driver: the blocks whose postings hold its value, newest first, and in each its rows (no
  // other bound on s.id: SQLite would take it as the start of the rowid range for every block).
  const sql = q.driver
    ? `SELECT ${columns} FROM postings d JOIN blocks b ON b.id = d.block JOIN spans s ON s.id >= d.block AND s.id < d.block + ${BLOCK_SPANS} WHERE d.key = ? AND d.value = ? AND d.block > ? AND d.block <= ? AND b.max_start >= ? AND b.min_start <= ? AND ${window} AND ${q.where} ORDER BY d.block DESC, s.id DESC`
    : `SELECT ${columns} FROM ${from} WHERE s.id > ? AND s.id <= ? AND ${q.where} AND ${window} ORDER BY s.id DESC`;
  const params = q.driver
    ? [q.driver.key, q.driver.value, lo - BLOCK_SPANS, hi, o.startNs, o.endNs, o.startNs, o.endNs, ...q.params]
    : [lo, hi, ...q.params, o.startNs, o.endNs];
  const stmt = db.stmt(sql);
  stmt.setReadBigInts(true);
  const checkTrace = o.minTraceDurationNs !== undefined || o.maxTraceDurationNs !== undefined;
  const rejected = new Set<string>();
  let rows = 0;
  for (const row of stmt.iterate(...params)) {
    rows++;
    const traceId = row.trace_id as Uint8Array;
    const id = hex(traceId);
    inspected.add(id);
    if (rejected.has(id)) continue;
    let f = found.get(id);
    if (!f) {
      if (found.size >= o.limit) break;
      if (checkTrace) {
        const t = db.traceSummary(traceId);
        const d = t ? Number(t.endNs - t.startNs) : 0;
        if (
          (o.minTraceDurationNs !== undefined && d < o.minTraceDurationNs) ||
          (o.maxTraceDurationNs !== undefined && d > o.maxTraceDurationNs)
        ) {
          rejected.add(id);
          continue;
        }
      }
      f = { traceId, spans: [], matched: 0, latest: Number(row.id) };
      found.set(id, f);
    }
    f.matched++;
    if (f.spans.length < o.spss) {
      f.spans.push({
        spanID: hex(row.span_id as Uint8Array),
        name: row.name as string,
        startTimeUnixNano: (row.start_ns as bigint).toString(),
        durationNanos: (row.duration_ns as bigint).toString(),
        attributes: q.attributes.map((a) => ({ key: a.key, value: { stringValue: a.value } })),
      });
    }
  }
  return rows;
}

export const INTRINSIC_TAGS = ['duration', 'kind', 'name', 'status'];
const KEYWORDS: Record<string, string[]> = {
  status: ['error', 'ok', 'unset'],
  kind: ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'],
};

/** Scoped tag names seen in the store: { resource: [...], span: [...] } (service.name always listed). */
export function tagNames(db: TraceDb): { resource: string[]; span: string[] } {
  const resource = new Set<string>(['service.name']);
  const span = new Set<string>();
  // The distinct keys, one index seek each (a skip scan over tag_values' primary key).
  let key: string | undefined = '';
  const nextKey = db.stmt('SELECT key FROM tag_values WHERE key > ? ORDER BY key LIMIT 1');
  for (;;) {
    key = nextKey.get(key)?.key as string | undefined;
    if (key === undefined) break;
    if (key.startsWith('resource.')) resource.add(key.slice(9));
    else if (key.startsWith('span.')) span.add(key.slice(5));
  }
  return { resource: [...resource].sort(), span: [...span].sort() };
}

/**
 * Values of a tag, as Tempo's v2 API types them. `tag` is scoped (resource.x, span.x), unscoped
 * (.x or, for the v1 API, x), or an intrinsic (name, status, kind).
 */
export function tagValues(db: TraceDb, tag: string, limit: number): { type: string; value: string }[] {
  const bare = tag.startsWith('.') ? tag.slice(1) : tag;
  if (bare in KEYWORDS) return KEYWORDS[bare].map((value) => ({ type: 'keyword', value }));
  let keys: string[];
  if (bare === 'name' || bare === 'span:name') keys = ['name'];
  else if (bare === 'service.name' || tag === 'resource.service.name') keys = ['resource.service.name'];
  else if (tag.startsWith('span.') || tag.startsWith('resource.')) keys = [tag];
  else keys = [`span.${bare}`, `resource.${bare}`];
  const values = new Set<string>();
  const stmt = db.stmt('SELECT value FROM tag_values WHERE key = ? ORDER BY value LIMIT ?');
  for (const key of keys) for (const row of stmt.all(key, limit)) values.add(row.value as string);
  return [...values]
    .sort()
    .slice(0, limit)
    .map((value) => ({ type: 'string', value }));
}

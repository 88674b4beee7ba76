/**
 * The reads behind Tempo's search API over the trace store: most recent matching traces first, with
 * up to `spss` matching spans each; and the tag names and values for Grafana's query builder.
 */

import { type Checkpoint, NO_CHECKPOINT } from '../blob-store/reader-protocol';
import { hex, type TraceDb } from './db';
import { scanTraceRequest } from './scan';
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

/** What a search has read so far (Tempo's search metrics). */
interface Inspected {
  spans: number;
  bytes: number;
  traces: Set<string>;
}

/** `checkpoint` is called between steps (blobs, traces) and throws to stop the search (its time budget). */
export function search(
  db: TraceDb,
  query: SpansetQuery,
  options: SearchOptions,
  checkpoint: Checkpoint = NO_CHECKPOINT,
): SearchResult {
  const found = new Map<string, Found>();
  const inspected: Inspected = { spans: 0, bytes: 0, traces: new Set() };
  for (const expr of query) collect(db, compileSpanset(expr), options, found, inspected, checkpoint);
  const traces: (TraceSearchMetadata & { latest: number })[] = [];
  let step = 0;
  for (const [id, f] of found) {
    if ((++step & 63) === 0) checkpoint();
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
      inspectedTraces: inspected.traces.size,
      inspectedSpans: String(inspected.spans),
      inspectedBytes: String(inspected.bytes),
      completedJobs: 1,
      totalJobs: 1,
    },
  };
}

/**
 * Reads the blobs that can hold a match, newest first, and checks their spans newest first, until
 * `limit` traces are found. The blobs: those in the time window (by arrival, see batchIdRange, then
 * by their spans' start extent) that hold the query's driving value (postings; for a regex, any
 * stored value it matches) and a span as long as its duration bound.
 */
function collect(
  db: TraceDb,
  q: CompiledSpanset,
  o: SearchOptions,
  found: Map<string, Found>,
  inspected: Inspected,
  checkpoint: Checkpoint,
) {
  const bounds = 'max_start >= ? AND min_start <= ? AND max_duration >= ?';
  const window = [o.startNs, o.endNs, Math.floor(q.minDurationNs ?? 0)];
  const startMs = Number(o.startNs / 1_000_000n);
  const endMs = Number(o.endNs / 1_000_000n);
  let blobs: Iterable<number>;
  if (q.driver || q.regexDriver) {
    // The batches holding the driving value, or any of the key's stored values the regex matches,
    // and in each the blobs that hold it (the posting's bitmap) and pass the bounds.
    const key = q.driver?.key ?? q.regexDriver?.key ?? '';
    const values = q.driver
      ? [q.driver.value]
      : db
          .stmt('SELECT value FROM tag_values WHERE key = ?')
          .all(key)
          .map((r) => r.value as string)
          .filter((v, i) => {
            if ((i & 1023) === 1023) checkpoint();
            return q.regexDriver?.pattern.test(v);
          });
    const { lo, hi } = db.batchIdRange(startMs, endMs, ARRIVAL_SLACK_MS);
    const postings = db.stmt(
      'SELECT p.batch AS batch, p.blobs AS blobs, b.first_blob AS first FROM postings p JOIN batches b ON b.id = p.batch WHERE p.key = ? AND p.value = ? AND p.batch > ? AND p.batch <= ?',
    );
    const byBatch = new Map<number, { first: number; bits: Uint8Array }>();
    for (const value of values) {
      checkpoint();
      for (const r of postings.all(key, value, lo, hi)) {
        const bits = r.blobs as Uint8Array;
        const seen = byBatch.get(Number(r.batch));
        if (!seen) byBatch.set(Number(r.batch), { first: Number(r.first), bits: Uint8Array.from(bits) });
        else for (let i = 0; i < bits.length; i++) seen.bits[i] |= bits[i];
      }
    }
    const batches = [...byBatch.values()].sort((a, b) => b.first - a.first);
    const passing = db.stmt(`SELECT id FROM blobs WHERE id >= ? AND id < ? AND ${bounds} ORDER BY id DESC`);
    blobs = (function* () {
      for (const { first, bits } of batches) {
        for (const r of passing.all(first, first + bits.length * 8, ...window)) {
          const i = Number(r.id) - first;
          if (bits[i >> 3] & (1 << (i & 7))) yield Number(r.id);
        }
      }
    })();
  } else {
    const { lo, hi } = db.blobIdRange(startMs, endMs, ARRIVAL_SLACK_MS);
    blobs = db
      .stmt(`SELECT id FROM blobs WHERE id > ? AND id <= ? AND ${bounds} ORDER BY id DESC`)
      .all(lo, hi, ...window)
      .map((r) => Number(r.id));
  }
  const checkTrace = o.minTraceDurationNs !== undefined || o.maxTraceDurationNs !== undefined;
  const rejected = new Set<string>();
  const scanOptions = { indexedAttributes: db.indexedAttributes, chunks: false };
  for (const blob of blobs) {
    checkpoint();
    const data = db.blob(blob);
    if (!data) continue;
    inspected.bytes += data.length;
    const spans = scanTraceRequest(data, scanOptions).spans;
    inspected.spans += spans.length;
    for (let i = spans.length - 1; i >= 0; i--) {
      const s = spans[i];
      if (s.startNs < o.startNs || s.startNs > o.endNs || !q.match(s)) continue;
      const id = s.traceHex;
      inspected.traces.add(id);
      if (rejected.has(id)) continue;
      let f = found.get(id);
      if (!f) {
        if (found.size >= o.limit) return;
        if (checkTrace) {
          const t = db.traceSummary(s.traceId);
          const d = t ? Number(t.endNs - t.startNs) : 0;
          if (
            (o.minTraceDurationNs !== undefined && d < o.minTraceDurationNs) ||
            (o.maxTraceDurationNs !== undefined && d > o.maxTraceDurationNs)
          ) {
            rejected.add(id);
            continue;
          }
        }
        f = { traceId: Uint8Array.prototype.slice.call(s.traceId), spans: [], matched: 0, latest: blob * 1e6 + i };
        found.set(id, f);
      }
      f.matched++;
      if (f.spans.length < o.spss) {
        f.spans.push({
          spanID: hex(s.spanId),
          name: s.name,
          startTimeUnixNano: s.startNs.toString(),
          durationNanos: s.durationNs.toString(),
          attributes: q.attributes.map((a) => ({ key: a.key, value: { stringValue: a.value } })),
        });
      }
    }
  }
}

export const INTRINSIC_TAGS = ['duration', 'kind', 'name', 'status'];
const KEYWORDS: Record<string, string[]> = {
  status: ['error', 'ok', 'unset'],
  kind: ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'],
};

/** Scoped tag names seen in the store: { resource: [...], span: [...] } (service.name always listed). */
export function tagNames(db: TraceDb, checkpoint: Checkpoint = NO_CHECKPOINT): { resource: string[]; span: string[] } {
  const resource = new Set<string>(['service.name']);
  const span = new Set<string>();
  // The distinct keys, one index seek each (a skip scan over tag_values' primary key).
  let key: string | undefined = '';
  const nextKey = db.stmt('SELECT key FROM tag_values WHERE key > ? ORDER BY key LIMIT 1');
  for (let step = 1; ; step++) {
    if ((step & 255) === 0) checkpoint();
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
  if (Object.hasOwn(KEYWORDS, bare)) return KEYWORDS[bare].map((value) => ({ type: 'keyword', value }));
  let keys: string[];
  if (bare === 'name' || bare === 'span:name') keys = ['name'];
  else if (bare === 'service.name' || tag === 'resource.service.name') keys = ['resource.service.name'];
  else if (tag.startsWith('span.') || tag.startsWith('resource.')) keys = [tag];
  else keys = [`span.${bare}`, `resource.${bare}`];
  // Typed as Tempo types them (string, int, float, bool: Grafana quotes strings only); a key seen
  // with values of several types takes the latest batch's.
  const values = new Map<string, string>();
  const stmt = db.stmt('SELECT value, type FROM tag_values WHERE key = ? ORDER BY value LIMIT ?');
  for (const key of keys) for (const row of stmt.all(key, limit)) values.set(row.value as string, row.type as string);
  return [...values]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, limit)
    .map(([value, type]) => ({ type, value }));
}

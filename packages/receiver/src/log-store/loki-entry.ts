/**
 * Logs in Loki's terms: how an OTLP log record becomes a Loki entry (stream labels, line, structured
 * metadata), as Loki 3's native OTLP intake maps it, and the interface the LogQL engine and the Loki
 * query API read entries through. The embedded log store writes requests whole and maps them with
 * `toLokiEntries` when it indexes and reads them; the query layer sees only `LogSource`.
 *
 * Mapping (grafana/loki pkg/loghttp/push/otlplabels; shared/reference/loki.md §1):
 * - stream (index) labels: the resource attributes in `INDEX_RESOURCE_ATTRIBUTES`, names normalized as
 *   otlptranslator does (`service.name` → `service_name`); `service_name` falls back to the first of
 *   `SERVICE_NAME_FALLBACKS` present among the index labels, else `unknown_service`;
 * - line: the body as a string (`AnyValue.AsString`: strings as they are, maps and arrays as JSON);
 * - time: `time_unix_nano`, else `observed_time_unix_nano`, else the time the receiver got it;
 * - structured metadata: every record attribute, the other resource attributes, scope attributes with
 *   `scope_name`/`scope_version`, `severity_text`, `severity_number` (unless 0), `trace_id`, `span_id`,
 *   `event_name`, `observed_timestamp` (when both times are set), `flags` and
 *   `dropped_attributes_count` (when not 0), and `detected_level` (below), all names normalized.
 */
import type { KeyValue } from '../model/common';
import type { LogRecord, ResourceLogs } from '../model/logs';
import { labelName, labelValue } from '../series/naming';

/** Resource attributes that become stream labels (Loki's default `otlp_config`). */
export const INDEX_RESOURCE_ATTRIBUTES: readonly string[] = [
  'service.name',
  'service.namespace',
  'service.instance.id',
  'deployment.environment',
  'deployment.environment.name',
  'cloud.region',
  'cloud.availability_zone',
  'k8s.cluster.name',
  'k8s.namespace.name',
  'k8s.pod.name',
  'k8s.container.name',
  'container.name',
  'k8s.replicaset.name',
  'k8s.deployment.name',
  'k8s.statefulset.name',
  'k8s.daemonset.name',
  'k8s.cronjob.name',
  'k8s.job.name',
];

/** Index labels that name the service when `service.name` is absent, in Loki's order. */
export const SERVICE_NAME_FALLBACKS: readonly string[] = [
  'service',
  'app',
  'application',
  'app_name',
  'name',
  'app_kubernetes_io_name',
  'container',
  'container_name',
  'k8s_container_name',
  'component',
  'workload',
  'job',
  'k8s_job_name',
];

/** One log entry as Loki stores and returns it. */
export interface LokiEntry {
  /** Nanoseconds since the Unix epoch. */
  timeNs: bigint;
  line: string;
  /** Index labels; always holds `service_name`. */
  stream: Record<string, string>;
  /** Structured metadata (not indexed as stream labels, but filterable: `| trace_id="…"`). */
  metadata: Record<string, string>;
}

/**
 * The entries of an export request, in request order. `receivedNs` is the arrival time, the entry's
 * time when the record has neither a time nor an observed time.
 */
export function toLokiEntries(resourceLogs: readonly ResourceLogs[], receivedNs: bigint): LokiEntry[] {
  const out: LokiEntry[] = [];
  for (const rl of resourceLogs) {
    const { stream, resourceMetadata } = streamOf(rl.resource.attributes);
    for (const sl of rl.scopeLogs) {
      const scopeMetadata: Record<string, string> = {};
      addAttributes(scopeMetadata, sl.scope.attributes);
      if (sl.scope.name) scopeMetadata.scope_name = sl.scope.name;
      if (sl.scope.version) scopeMetadata.scope_version = sl.scope.version;
      if (sl.scope.droppedAttributesCount) {
        scopeMetadata.scope_dropped_attributes_count = String(sl.scope.droppedAttributesCount);
      }
      for (const record of sl.logRecords) {
        out.push({
          timeNs: record.timeUnixNano || record.observedTimeUnixNano || receivedNs,
          line: labelValue(record.body),
          stream,
          metadata: recordMetadata(record, resourceMetadata, scopeMetadata, stream),
        });
      }
    }
  }
  return out;
}

/** The stream labels of a resource, and its other attributes as structured metadata. */
export function streamOf(attributes: readonly KeyValue[]): {
  stream: Record<string, string>;
  resourceMetadata: Record<string, string>;
} {
  const stream: Record<string, string> = {};
  const resourceMetadata: Record<string, string> = {};
  for (const kv of attributes) {
    const name = labelName(kv.key);
    if (!name) continue;
    const value = labelValue(kv.value);
    if (INDEX_RESOURCE_ATTRIBUTES.includes(kv.key)) {
      if (value !== '') stream[name] = value;
    } else resourceMetadata[name] = value;
  }
  if (!stream.service_name) {
    const fallback = SERVICE_NAME_FALLBACKS.find((l) => stream[l]);
    stream.service_name = fallback ? stream[fallback] : 'unknown_service';
  }
  return { stream, resourceMetadata };
}

function recordMetadata(
  record: LogRecord,
  resourceMetadata: Record<string, string>,
  scopeMetadata: Record<string, string>,
  stream: Record<string, string>,
): Record<string, string> {
  const m: Record<string, string> = { ...resourceMetadata, ...scopeMetadata };
  addAttributes(m, record.attributes);
  if (record.timeUnixNano && record.observedTimeUnixNano) {
    m.observed_timestamp = record.observedTimeUnixNano.toString();
  }
  if (record.severityNumber) m.severity_number = String(record.severityNumber);
  if (record.severityText) m.severity_text = record.severityText;
  if (record.droppedAttributesCount) m.dropped_attributes_count = String(record.droppedAttributesCount);
  if (record.flags) m.flags = String(record.flags);
  if (record.traceId) m.trace_id = record.traceId;
  if (record.spanId) m.span_id = record.spanId;
  if (record.eventName) m.event_name = record.eventName;
  if (m.detected_level === undefined) m.detected_level = detectedLevel(stream, m, record);
  return m;
}

function addAttributes(into: Record<string, string>, attributes: readonly KeyValue[]): void {
  for (const kv of attributes) {
    const name = labelName(kv.key);
    if (name) into[name] = labelValue(kv.value);
  }
}

/** Keys whose value names a level, in the order Loki looks for them (stream labels, then metadata). */
export const LEVEL_KEYS: readonly string[] = [
  'level',
  'LEVEL',
  'Level',
  'log_level',
  'severity',
  'SEVERITY',
  'Severity',
  'SeverityText',
  'lvl',
  'LVL',
  'Lvl',
  'severity_text',
  'Severity_Text',
  'SEVERITY_TEXT',
];

const LEVEL_ALIASES: Record<string, string> = {
  trace: 'trace',
  trc: 'trace',
  debug: 'debug',
  dbg: 'debug',
  info: 'info',
  inf: 'info',
  information: 'info',
  warn: 'warn',
  wrn: 'warn',
  warning: 'warn',
  error: 'error',
  err: 'error',
  critical: 'critical',
  fatal: 'fatal',
};

/**
 * Loki's `detected_level` (pkg/distributor/field_detection.go): a level label or metadata value
 * (aliases folded, others kept verbatim), else the severity number's range, else `unknown`. Loki
 * also looks into the line (JSON, logfmt, keywords); that step is left out: OTLP records carry a
 * severity.
 */
export function detectedLevel(
  stream: Record<string, string>,
  metadata: Record<string, string>,
  record: Pick<LogRecord, 'severityNumber'>,
): string {
  return levelOf(stream) ?? levelOf(metadata) ?? severityLevel(record.severityNumber);
}

/** The first level key with a value in `labels`, its aliases folded; undefined when none has one. */
export function levelOf(labels: Record<string, string>): string | undefined {
  for (const key of LEVEL_KEYS) {
    const v = labels[key];
    if (v) return foldLevel(v);
  }
  return undefined;
}

/** A level's value as `detected_level` gives it (aliases folded, others kept verbatim). */
export function foldLevel(v: string): string {
  return LEVEL_ALIASES[v.toLowerCase()] ?? v;
}

const SEVERITY_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** `detected_level` from an OTLP severity number alone (`unknown` outside 1-24). */
export function severityLevel(n: number): string {
  return n >= 1 && n <= 24 ? SEVERITY_LEVELS[Math.floor((n - 1) / 4)] : 'unknown';
}

/** A stream selector's matcher (`{name op "value"}`); regexes are RE2, fully anchored. */
export interface LabelMatcher {
  name: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

/** What the LogQL engine asks a log source for: the entries of matching streams in a time window. */
export interface LogSelection {
  matchers: LabelMatcher[];
  /** `[startNs, endNs)`, as Loki's logs window. */
  startNs: bigint;
  endNs: bigint;
  direction: 'forward' | 'backward';
  /**
   * Hints a source may use to skip data: every returned entry must still be checked by the engine.
   * `lineContains`: substrings every matching line holds (from `|=` filters); `traceId`: the value a
   * `| trace_id="…"` filter requires.
   */
  lineContains?: string[];
  traceId?: string;
  /** Stop early (the query's budget ran out, or its client left): the engine then answers 504/499. */
  signal?: AbortSignal;
}

/**
 * Entries from a store, for the LogQL engine and the Loki API. `select` yields entries in the
 * selection's direction (by time; ties in arrival order), so that a `limit` can stop reading early.
 */
export interface LogSource {
  select(selection: LogSelection): AsyncIterable<LokiEntry>;
  /** Stream label names seen in the window (of streams matching `matchers`, when given). */
  labelNames(startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): Promise<string[]>;
  /** Values of a stream label seen in the window (of streams matching `matchers`, when given). */
  labelValues(name: string, startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): Promise<string[]>;
  /** Label sets of the streams matching any of the selectors. */
  series(selectors: LabelMatcher[][], startNs: bigint, endNs: bigint): Promise<Record<string, string>[]>;
  /**
   * Optional: counts of the entries of the streams matching `matchers`, grouped by labels among
   * `countVolumeLabels`, in count_over_time's step windows (window k: baseNs + k·stepNs < t ≤ that +
   * rangeNs), without reading the entries: the LogQL engine uses it for `sum by (level,
   * detected_level) (count_over_time({…} [r]))`, the log-volume query.
   */
  countVolume?(
    q: {
      matchers: LabelMatcher[];
      by: string[];
      baseNs: bigint;
      rangeNs: number;
      stepNs: number;
      count: number;
    },
    signal?: AbortSignal,
  ): Promise<{ labels: Record<string, string>; steps: number[]; values: number[]; entries: number }[]>;
  /** The labels `countVolume` can group by. */
  readonly countVolumeLabels?: readonly string[];
  /** Sizes for `/index/stats`: streams, chunks (blobs), bytes of lines, entries. */
  stats(
    matchers: LabelMatcher[],
    startNs: bigint,
    endNs: bigint,
  ): Promise<{ streams: number; chunks: number; bytes: number; entries: number }>;
  /**
   * Line bytes of the streams matching `matchers` (every stream when empty) per interval of `bounds`
   * (interval i is [bounds[i], bounds[i+1]); at least two bounds), for `/index/volume(_range)`: per
   * stream, its labels and its non-zero intervals as [i, bytes]. A store may estimate at its chunk
   * grain (as Loki does).
   */
  volume(matchers: LabelMatcher[], bounds: bigint[], signal?: AbortSignal): Promise<StreamVolume[]>;
}

export interface StreamVolume {
  labels: Record<string, string>;
  bytes: [number, number][];
}

/** The interval of `bounds` (sorted) that holds `t`, or -1 outside [bounds[0], bounds[last]). */
export function intervalOf(bounds: readonly bigint[], t: bigint): number {
  if (t < bounds[0] || t >= bounds[bounds.length - 1]) return -1;
  let lo = 0;
  let hi = bounds.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (bounds[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Loki's query API over a LogSource (mounted on the admin port), what Grafana's Loki datasource and
 * Logs Drilldown call:
 *
 *   GET /loki/api/v1/query_range            streams (log queries) or matrix (metric queries), with stats
 *   GET /loki/api/v1/query                  vector or scalar (metric queries; log queries are a 400, as in Loki)
 *   GET /loki/api/v1/labels, /label/<n>/values        index label names and values
 *   GET|POST /loki/api/v1/series            label sets of the streams matching match[] ({} alone: all)
 *   GET /loki/api/v1/index/stats            {streams, chunks, bytes, entries}
 *   GET|POST /loki/api/v1/index/volume      bytes per label set or label name (a vector, largest first)
 *   GET|POST /loki/api/v1/index/volume_range  the same per step bucket (a matrix)
 *   GET /loki/api/v1/detected_labels, /detected_fields, /detected_field/<n>/values
 *   GET /loki/api/v1/patterns               always empty (no pattern detection)
 *   GET /loki/api/v1/status/buildinfo
 *
 * Parameters as Loki reads them (pkg/loghttp): times in ns, RFC 3339 or (float) seconds, `since`,
 * `step` as a duration or seconds, `limit`, `direction`. Streams carry the structured metadata and
 * parsed labels in a third element of each value when the request has
 * `X-Loki-Response-Encoding-Flags: categorize-labels` (Grafana always sends it), else in the stream's
 * labels. Errors are text/plain: 400 for a query or parameter Loki refuses (with Loki's text), 504 past
 * the time budget, and a bare 500 for anything else (its details go to the log, never the response).
 * Loki's /ready is the admin port's (the trace store's) /ready.
 */
import express from 'express';
import type { Logger } from '../logger';
import type { Expr, LogExpr, MetricExpr } from './logql/ast';
import {
  type EngineLimits,
  type LogResultEntry,
  QueryAbortedError,
  QueryError,
  type QueryStats,
  runLogQuery,
  runMetricQuery,
  type Series,
  stepsOf,
  stepTime,
} from './logql/engine';
import {
  DEFAULT_MAX_QUERY_CHARS,
  ParseError,
  parseBytes,
  parseDurationNs,
  parseDurationValue,
  parseQuery,
  parseSelector,
} from './logql/parser';
import { logfmtPairs, parseNumber, sanitizeKey } from './logql/pipeline';
import type { LabelMatcher, LogSource } from './loki-entry';

export interface LokiApiOptions {
  /** Largest `limit` a log query may ask for (Loki's max_entries_limit_per_query). */
  maxEntriesLimitPerQuery?: number;
  /** Series a metric query may return (Loki's max_query_series). */
  maxQuerySeries?: number;
  /** Longest time range a query may cover, in ns (Loki's max_query_length, 721h). */
  maxQueryLengthNs?: bigint;
  /** Time budget of a query, in ms (Loki's query_timeout). */
  queryTimeoutMs?: number;
  /** Longest query text, in characters. */
  maxQueryChars?: number;
  /** Series (or label names) in one bucket of a volume answer (Loki's volume_max_series). */
  maxVolumeSeries?: number;
  /** Requests answered at once; more are refused 429 (Loki's "too many outstanding requests"). */
  maxConcurrentQueries?: number;
  /** Called with the limit's name each time a request is refused by one (for limit_hits_total). */
  onLimit?: (limit: string) => void;
  logger?: Logger;
  /** The time now, in ns (tests). */
  now?: () => bigint;
}

export const LOKI_API_DEFAULTS = {
  maxEntriesLimitPerQuery: 5000,
  maxQuerySeries: 500,
  maxVolumeSeries: 1000,
  maxQueryLengthNs: 721n * 3_600_000_000_000n,
  queryTimeoutMs: 60_000,
  maxQueryChars: DEFAULT_MAX_QUERY_CHARS,
  maxConcurrentQueries: 8,
};

/** Points per series a query may ask for (Loki's fixed bound). */
export const MAX_STEPS = 11_000;
/** Lines /detected_fields reads by default. */
const DETECTED_FIELDS_LINE_LIMIT = 1000;
const NS_PER_S = 1_000_000_000n;
const HOUR_NS = 3_600n * NS_PER_S;

class BadRequest extends Error {
  constructor(
    message: string,
    readonly limit?: string,
  ) {
    super(message);
  }
}

export function createLokiApi(source: LogSource, options: LokiApiOptions = {}): express.Router {
  const o = { ...LOKI_API_DEFAULTS, ...stripUndefined(options) };
  const now = options.now ?? (() => BigInt(Date.now()) * 1_000_000n);
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '64kb' });

  type Ctx = { signal: AbortSignal; limits: EngineLimits };
  let running = 0;
  const handle =
    (handler: (req: express.Request, res: express.Response, ctx: Ctx) => Promise<void>) =>
    (req: express.Request, res: express.Response) => {
      if (running >= o.maxConcurrentQueries) {
        options.onLimit?.('max_concurrent_queries');
        res.status(429).set('Retry-After', '1').type('text/plain').send('too many outstanding requests\n');
        return;
      }
      running++;
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      const timeout = AbortSignal.timeout(o.queryTimeoutMs);
      const signal = AbortSignal.any([timeout, gone.signal]);
      const limits: EngineLimits = { maxSeries: o.maxQuerySeries, signal, timedOut: () => timeout.aborted };
      const text = (status: number, message: string) => res.status(status).type('text/plain').send(`${message}\n`);
      const done = handler(req, res, { signal, limits });
      done.then(
        () => running--,
        () => running--,
      );
      done.catch((err: unknown) => {
        if (res.headersSent || gone.signal.aborted) return;
        if (err instanceof BadRequest || err instanceof ParseError || err instanceof QueryError) {
          const limit =
            err instanceof BadRequest
              ? err.limit
              : /maximum number of series/.test(err.message)
                ? 'max_query_series'
                : undefined;
          if (limit) options.onLimit?.(limit);
          text(400, err.message);
        } else if ((err instanceof QueryAbortedError && err.timeout) || timeout.aborted) {
          options.onLimit?.('query_timeout');
          text(504, `the query timed out after ${o.queryTimeoutMs} ms (query_timeout)`);
        } else {
          options.logger?.error({ err, path: req.path }, 'the log store could not answer a query');
          text(500, 'the log store could not answer (the error is in the receiver log)');
        }
      });
    };

  const queryOf = (req: express.Request, name = 'query'): string => {
    const q = param(req, name);
    if (q === undefined || q.trim() === '') throw new BadRequest(`invalid parameter "${name}": the query is empty`);
    return q;
  };
  const parse = (text: string): Expr => {
    if (text.length > o.maxQueryChars) {
      throw new BadRequest(
        `the query is ${text.length} characters long, over the limit of ${o.maxQueryChars}`,
        'max_query_chars',
      );
    }
    return parseQuery(text, { maxLength: o.maxQueryChars });
  };
  const limitOf = (req: express.Request, fallback = 100): number => {
    const v = param(req, 'limit');
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new BadRequest(`invalid parameter "limit": cannot parse "${v}" as an integer`);
    if (n <= 0) throw new BadRequest('limit must be a positive value');
    if (n > o.maxEntriesLimitPerQuery) {
      throw new BadRequest(
        `max entries limit per query exceeded, limit > max_entries_limit_per_query (${n} > ${o.maxEntriesLimitPerQuery})`,
        'max_entries_limit_per_query',
      );
    }
    return n;
  };
  const directionOf = (req: express.Request): 'forward' | 'backward' => {
    const v = (param(req, 'direction') ?? 'backward').toLowerCase();
    if (v !== 'forward' && v !== 'backward')
      throw new BadRequest(`invalid parameter "direction": "${v}" is not forward or backward`);
    return v;
  };
  const rangeOf = (req: express.Request): { startNs: bigint; endNs: bigint } => {
    const t = now();
    const endNs = timeParam(req, 'end') ?? t;
    const since = param(req, 'since');
    const sinceNs = since ? durationParam(since, 'since') : HOUR_NS;
    // biome-ignore lint/complexity/useMathMinMax: bigints
    const startNs = timeParam(req, 'start') ?? (endNs < t ? endNs : t) - sinceNs;
    if (endNs < startNs) throw new BadRequest('end timestamp must not be before or equal to start time');
    if (endNs - startNs > o.maxQueryLengthNs) {
      throw new BadRequest(
        `the query time range exceeds the limit (query length: ${goDuration(endNs - startNs)}, limit: ${goDuration(o.maxQueryLengthNs)})`,
        'max_query_length',
      );
    }
    return { startNs, endNs };
  };

  /** `step` as Loki reads it (a duration or seconds; by default (end − start)/250 in whole seconds, at least 1 s), bounded. */
  const stepOf = (req: express.Request, startNs: bigint, endNs: bigint): bigint => {
    const stepParam = param(req, 'step');
    const stepNs = stepParam
      ? durationParam(stepParam, 'step')
      : maxBig(((endNs - startNs) / NS_PER_S / 250n) * NS_PER_S, NS_PER_S);
    if (stepNs <= 0n)
      throw new BadRequest('zero or negative query resolution step widths are not accepted. Try a positive integer');
    if ((endNs - startNs) / stepNs > BigInt(MAX_STEPS)) {
      throw new BadRequest(
        'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)',
        'max_query_steps',
      );
    }
    return stepNs;
  };

  const stats = (s: QueryStats, startedAt: number) => {
    const execTime = (performance.now() - startedAt) / 1000;
    const per = (n: number) => (execTime > 0 ? Math.round(n / execTime) : 0);
    return {
      summary: {
        bytesProcessedPerSecond: per(s.bytesProcessed),
        linesProcessedPerSecond: per(s.linesProcessed),
        totalBytesProcessed: s.bytesProcessed,
        totalLinesProcessed: s.linesProcessed,
        execTime,
        queueTime: 0,
        subqueries: 0,
        totalEntriesReturned: s.entriesReturned,
        splits: 0,
        shards: 0,
        totalPostFilterLines: s.entriesReturned,
        totalStructuredMetadataBytesProcessed: 0,
      },
    };
  };

  router.get(
    '/loki/api/v1/query_range',
    handle(async (req, res, { limits }) => {
      const startedAt = performance.now();
      const text = queryOf(req);
      const { startNs, endNs } = rangeOf(req);
      const limit = limitOf(req);
      const direction = directionOf(req);
      // (Loki's `interval`, a sampling interval for log lines, is not supported and ignored.)
      const stepNs = stepOf(req, startNs, endNs);
      const expr = parse(text);
      const s: QueryStats = { linesProcessed: 0, bytesProcessed: 0, entriesReturned: 0 };
      if (expr.kind === 'log') {
        const entries = await runLogQuery(source, expr, { startNs, endNs, direction, limit }, limits, s);
        const categorize = wantsCategorized(req);
        res.json({
          status: 'success',
          data: {
            resultType: 'streams',
            ...(categorize ? { encodingFlags: ['categorize-labels'] } : {}),
            result: streams(entries, categorize),
            stats: stats(s, startedAt),
          },
        });
        return;
      }
      const steps = stepsOf(startNs, endNs, stepNs);
      const v = await runMetricQuery(source, expr, steps, limits, s);
      const series: Series[] =
        v.type === 'scalar'
          ? [{ labels: {}, steps: [...Array(steps.count).keys()], values: Array(steps.count).fill(v.value) }]
          : v.series;
      res.json({
        status: 'success',
        data: {
          resultType: 'matrix',
          result: sortSeries(series)
            .filter((x) => x.steps.length > 0)
            .map((x) => ({
              metric: x.labels,
              values: x.steps.map((k, j) => [seconds(stepTime(steps, k)), sampleValue(x.values[j])]),
            })),
          stats: stats(s, startedAt),
        },
      });
    }),
  );

  router.get(
    '/loki/api/v1/query',
    handle(async (req, res, { limits }) => {
      const startedAt = performance.now();
      const text = queryOf(req);
      const t = timeParam(req, 'time') ?? now();
      limitOf(req);
      directionOf(req);
      const expr = parse(text);
      if (expr.kind === 'log') {
        throw new BadRequest(
          'log queries are not supported as an instant query type, please change your query to a range query type',
        );
      }
      const s: QueryStats = { linesProcessed: 0, bytesProcessed: 0, entriesReturned: 0 };
      const steps = stepsOf(t, t, 1n);
      const v = await runMetricQuery(source, expr, steps, limits, s);
      if (v.type === 'scalar') {
        res.json({
          status: 'success',
          data: { resultType: 'scalar', result: [seconds(t), sampleValue(v.value)], stats: stats(s, startedAt) },
        });
        return;
      }
      let result = v.series.filter((x) => x.steps.length > 0);
      result =
        outerOp(expr) === 'sort' || outerOp(expr) === 'sort_desc'
          ? result.sort((a, b) => (outerOp(expr) === 'sort' ? a.values[0] - b.values[0] : b.values[0] - a.values[0]))
          : sortSeries(result);
      res.json({
        status: 'success',
        data: {
          resultType: 'vector',
          result: result.map((x) => ({ metric: x.labels, value: [seconds(t), sampleValue(x.values[0])] })),
          stats: stats(s, startedAt),
        },
      });
    }),
  );

  const selectorParam = (req: express.Request): LabelMatcher[] | undefined => {
    const q = param(req, 'query');
    // `{}`: every stream (as no selector).
    if (q === undefined || q.trim() === '' || /^\{\s*\}$/.test(q.trim())) return undefined;
    return matchersOf(parse(q));
  };
  const labelsResponse = (res: express.Response, values: string[]) => {
    // Loki leaves `data` out when there is none (omitempty); Grafana reads that as [].
    res.json(values.length > 0 ? { status: 'success', data: values } : { status: 'success' });
  };

  router.get(
    '/loki/api/v1/labels',
    handle(async (req, res) => {
      const { startNs, endNs } = rangeOf(req);
      labelsResponse(res, (await source.labelNames(startNs, endNs, selectorParam(req))).sort());
    }),
  );
  router.get(
    '/loki/api/v1/label/:name/values',
    handle(async (req, res) => {
      const { startNs, endNs } = rangeOf(req);
      labelsResponse(
        res,
        (await source.labelValues(String(req.params.name), startNs, endNs, selectorParam(req))).sort(),
      );
    }),
  );

  const series = handle(async (req, res) => {
    const { startNs, endNs } = rangeOf(req);
    const raw = [...params(req, 'match[]'), ...params(req, 'match')];
    if (raw.length === 0) throw new BadRequest('at least one match[] selector is required');
    const selectors = raw.map((m) => parseSelector(m, true));
    const data = await source.series(selectors, startNs, endNs);
    res.json({ status: 'success', data });
  });
  router.get('/loki/api/v1/series', series);
  router.post('/loki/api/v1/series', form, series);

  router.get(
    '/loki/api/v1/index/stats',
    handle(async (req, res) => {
      const { startNs, endNs } = rangeOf(req);
      const matchers = matchersOf(parse(queryOf(req)));
      res.json(await source.stats(matchers, startNs, endNs));
    }),
  );

  /**
   * `/index/volume` (a vector at `end`) and `/index/volume_range` (per `step` bucket: a matrix, or a
   * vector when every series has one sample), as Loki's volume middleware (pkg/querier/queryrange/
   * volume.go) answers: buckets aligned to the step, keyed by their end less 1 ms (the last by `end`);
   * per bucket the `limit` largest series; `aggregateBy=series` (default) groups by the selector's
   * label names (or `targetLabels`, which must be present: Loki adds `name=~".+"`; `{}`: whole
   * series), `aggregateBy=labels` by label name (value "").
   */
  const volume = (range: boolean) =>
    handle(async (req, res, { signal }) => {
      const { startNs, endNs } = rangeOf(req);
      const text = queryOf(req).trim();
      const matchAny = /^\{\s*\}$/.test(text);
      const matchers = matchAny ? [] : matchersOf(parse(text));
      const limitText = param(req, 'limit') ?? '';
      const limitNumber = limitText === '' ? 0 : Number(limitText);
      if (!Number.isInteger(limitNumber))
        throw new BadRequest(`invalid parameter "limit": cannot parse "${limitText}" as an integer`);
      if (limitNumber < 0) throw new BadRequest('limit must be a positive value');
      const limit = limitNumber === 0 ? 100 : limitNumber;
      const aggregateBy = param(req, 'aggregateBy') || 'series';
      if (aggregateBy !== 'series' && aggregateBy !== 'labels') throw new BadRequest('invalid aggregation option');
      const targets = (param(req, 'targetLabels') ?? '')
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean);
      const bounds = [startNs];
      const keys: bigint[] = [];
      if (range) {
        const stepNs = stepOf(req, startNs, endNs);
        // util.ForInterval: intervals aligned to the step; the first starts at `start`, the last ends at `end`.
        for (let s = startNs - (startNs % stepNs); s < endNs; s += stepNs) {
          const e = s + stepNs;
          if (e >= endNs) break;
          bounds.push(e);
          keys.push(e - 1_000_000n);
        }
      }
      bounds.push(endNs);
      keys.push(endNs);
      if (endNs <= startNs) {
        res.json({ status: 'success', data: { resultType: 'vector', result: [] } });
        return;
      }
      const selection = [...matchers];
      const names = new Set(matchers.map((m) => m.name));
      for (const t of targets) if (!names.has(t)) selection.push({ name: t, op: '=~', value: '.+' });
      const by = new Set(targets.length > 0 ? targets : names);
      const streams = await source.volume(selection, bounds, signal);
      // Per bucket: name → volume, then the `limit` largest (seriesvolume.MapToVolumeResponse).
      const buckets = keys.map(() => new Map<string, number>());
      const metrics = new Map<string, Record<string, string>>();
      for (const s of streams) {
        if (signal.aborted) throw new QueryAbortedError(false);
        const groups: [string, Record<string, string>][] = [];
        if (aggregateBy === 'series') {
          const metric: Record<string, string> = {};
          for (const n of Object.keys(s.labels).sort()) if (matchAny || by.has(n)) metric[n] = s.labels[n];
          groups.push([seriesName(metric), metric]);
        } else {
          for (const n of Object.keys(s.labels)) if (targets.length === 0 || by.has(n)) groups.push([n, { [n]: '' }]);
        }
        for (const [i, bytes] of s.bytes) {
          const bucket = buckets[i];
          for (const [name, metric] of groups) {
            metrics.set(name, metric);
            bucket.set(name, (bucket.get(name) ?? 0) + bytes);
            if (bucket.size > o.maxVolumeSeries) {
              throw new BadRequest(
                `the query hit the max number of series limit (limit: ${o.maxVolumeSeries} series)`,
                'max_volume_series',
              );
            }
          }
        }
      }
      const samples = new Map<string, [bigint, number][]>();
      buckets.forEach((bucket, i) => {
        const top = [...bucket]
          .map(([name, v]) => [name, Math.round(v)] as [string, number])
          .filter(([, v]) => v > 0)
          .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
          .slice(0, limit);
        for (const [name, v] of top) {
          const list = samples.get(name) ?? [];
          samples.set(name, list);
          list.push([keys[i], v]);
        }
      });
      const series = [...samples].sort(([an, a], [bn, b]) => b[0][1] - a[0][1] || (an < bn ? -1 : an > bn ? 1 : 0));
      const matrix = series.some(([, list]) => list.length > 1);
      const result = series.map(([name, list]) =>
        matrix
          ? { metric: metrics.get(name), values: list.map(([t, v]) => [seconds(t), String(v)]) }
          : { metric: metrics.get(name), value: [seconds(list[0][0]), String(list[0][1])] },
      );
      res.json({ status: 'success', data: { resultType: matrix ? 'matrix' : 'vector', result } });
    });
  router.get('/loki/api/v1/index/volume', volume(false));
  router.post('/loki/api/v1/index/volume', form, volume(false));
  router.get('/loki/api/v1/index/volume_range', volume(true));
  router.post('/loki/api/v1/index/volume_range', form, volume(true));

  router.get(
    '/loki/api/v1/detected_labels',
    handle(async (req, res) => {
      const { startNs, endNs } = rangeOf(req);
      const q = param(req, 'query');
      const matchers = q && q.trim() !== '' && q.trim() !== '{}' ? matchersOf(parse(q)) : undefined;
      const names = await source.labelNames(startNs, endNs, matchers);
      const detectedLabels: { label: string; cardinality: number }[] = [];
      for (const label of names.sort()) {
        detectedLabels.push({ label, cardinality: (await source.labelValues(label, startNs, endNs, matchers)).length });
      }
      res.json({ detectedLabels });
    }),
  );

  const detectFields = async (req: express.Request, limits: EngineLimits) => {
    const { startNs, endNs } = rangeOf(req);
    const expr = parse(queryOf(req));
    const log = expr.kind === 'log' ? expr : firstLog(expr);
    if (!log) throw new BadRequest('detected fields need a query with a stream selector');
    const lineLimit = optionalPositiveInt(param(req, 'line_limit'), 'line_limit') ?? DETECTED_FIELDS_LINE_LIMIT;
    const limit = optionalPositiveInt(param(req, 'limit'), 'limit') ?? 1000;
    const s: QueryStats = { linesProcessed: 0, bytesProcessed: 0, entriesReturned: 0 };
    const entries = await runLogQuery(
      source,
      log,
      { startNs, endNs, direction: 'backward', limit: Math.min(lineLimit, o.maxEntriesLimitPerQuery) },
      limits,
      s,
    );
    const parser = log.stages.find((st) => st.kind === 'json' || st.kind === 'logfmt' || st.kind === 'regexp')?.kind;
    return { fields: detectedFields(entries, parser ?? 'label_format'), limit };
  };
  router.get(
    '/loki/api/v1/detected_fields',
    handle(async (req, res, { limits }) => {
      const { fields, limit } = await detectFields(req, limits);
      res.json({
        fields: [...fields.values()].slice(0, limit).map((f) => ({
          label: f.label,
          type: f.type(),
          cardinality: f.values.size,
          parsers: f.parsers.size > 0 ? [...f.parsers].sort() : null,
          ...(f.jsonPath ? { jsonPath: f.jsonPath } : {}),
        })),
        limit,
      });
    }),
  );
  router.get(
    '/loki/api/v1/detected_field/:name/values',
    handle(async (req, res, { limits }) => {
      const { fields, limit } = await detectFields(req, limits);
      const f = fields.get(String(req.params.name));
      res.json({ values: f ? [...f.values].slice(0, limit) : [], limit });
    }),
  );

  router.get('/loki/api/v1/patterns', (_req, res) => {
    res.json({ status: 'success', data: [] });
  });
  router.get('/loki/api/v1/status/buildinfo', (_req, res) => {
    res.json({
      version: LOKI_API_VERSION,
      revision: 'sonde-receiver',
      branch: '',
      buildUser: '',
      buildDate: '',
      goVersion: '',
    });
  });
  return router;
}

/** The Loki version whose API this one answers as (Grafana and Logs Drilldown check features by it). */
export const LOKI_API_VERSION = '3.5.0';

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function wantsCategorized(req: express.Request): boolean {
  return (req.get('x-loki-response-encoding-flags') ?? '').split(',').some((f) => f.trim() === 'categorize-labels');
}

/** A query or form parameter as one string (the first when repeated). */
function param(req: express.Request, name: string): string | undefined {
  const all = params(req, name);
  return all[0];
}

function params(req: express.Request, name: string): string[] {
  const out: string[] = [];
  for (const src of [req.query, req.body]) {
    if (!src || typeof src !== 'object') continue;
    const v = (src as Record<string, unknown>)[name];
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') out.push(x);
  }
  return out;
}

/** Loki's time parameter: ≤ 10 digits are seconds, more are ns, a `.` makes float seconds, else RFC 3339. */
function timeParam(req: express.Request, name: string): bigint | undefined {
  const ns = parseTimeParam(req, name);
  if (ns !== undefined && (ns < 0n || ns > MAX_NS)) {
    throw new BadRequest(`invalid parameter "${name}": ${param(req, name)} is outside 1970 to 2262`);
  }
  return ns;
}

/** The largest time a store holds (int64 ns). */
const MAX_NS = 2n ** 63n - 1n;

function parseTimeParam(req: express.Request, name: string): bigint | undefined {
  const v = param(req, name);
  if (v === undefined || v === '') return undefined;
  const bad = () => new BadRequest(`invalid parameter "${name}": cannot parse "${v}" to a valid timestamp`);
  if (/^-?\d+$/.test(v)) {
    const digits = v.replace('-', '').length;
    return digits <= 10 ? BigInt(v) * NS_PER_S : BigInt(v);
  }
  if (/^-?\d*\.\d*$/.test(v) && v !== '.') return floatSecondsNs(v);
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(v);
  if (!m) throw bad();
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[8].toUpperCase()}`);
  if (Number.isNaN(ms)) throw bad();
  return BigInt(ms) * 1_000_000n + BigInt((m[7] ?? '').padEnd(9, '0') || '0');
}

function floatSecondsNs(v: string): bigint {
  const neg = v.startsWith('-');
  const [whole, frac = ''] = v.replace('-', '').split('.');
  const ns = BigInt(whole || '0') * NS_PER_S + BigInt(frac.slice(0, 9).padEnd(9, '0'));
  return neg ? -ns : ns;
}

/** A duration parameter (`step`, `since`): a Prometheus duration (`15s`, `1m30s`, `100ms`) or (float) seconds. */
function durationParam(v: string, name: string): bigint {
  if (/^-?\d+(\.\d*)?$/.test(v)) return floatSecondsNs(v);
  try {
    return parseDurationNs(v);
  } catch {
    throw new BadRequest(`invalid parameter "${name}": cannot parse "${v}" to a valid duration`);
  }
}

function optionalPositiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new BadRequest(`invalid parameter "${name}": must be a positive integer (got "${v}")`);
  return n;
}

const maxBig = (a: bigint, b: bigint) => (a > b ? a : b);

/** Seconds as Loki writes sample times: a number with millisecond precision. */
function seconds(ns: bigint): number {
  return Number(ns / 1_000_000n) / 1000;
}

/** A sample value as Prometheus formats it (strconv.FormatFloat 'f', -1). */
function sampleValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Math.abs(v) >= 1e21) return BigInt(Math.round(v)).toString();
  const s = String(v);
  if (!s.includes('e')) return s;
  return v.toFixed(20).replace(/\.?0+$/, '');
}

/** A duration as Go prints one (`721h0m0s`). */
function goDuration(ns: bigint): string {
  const total = ns / NS_PER_S;
  const h = total / 3600n;
  const m = (total % 3600n) / 60n;
  const s = total % 60n;
  return `${h}h${m}m${s}s`;
}

/** A label set as Prometheus prints one (`{a="x", b="y"}`), the name Loki sorts volume series by. */
function seriesName(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ')}}`;
}

const labelsKey = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort());

function sortSeries(series: Series[]): Series[] {
  return series
    .map((s) => ({ s, k: labelsKey(s.labels) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.s);
}

function outerOp(e: Expr): string | undefined {
  return e.kind === 'vector_agg' ? e.op : undefined;
}

function firstLog(e: MetricExpr): LogExpr | undefined {
  switch (e.kind) {
    case 'range':
      return e.log;
    case 'vector_agg':
      return firstLog(e.inner);
    case 'binary':
      return firstLog(e.left) ?? firstLog(e.right);
    default:
      return undefined;
  }
}

/** The stream selector of a query (the first range aggregation's, for a metric query). */
function matchersOf(e: Expr): LabelMatcher[] {
  const log = e.kind === 'log' ? e : firstLog(e);
  if (!log) throw new BadRequest('the query has no stream selector');
  return log.matchers;
}

/** Entries grouped into Loki streams: by index labels (categorized) or by every label (plain). */
function streams(entries: LogResultEntry[], categorize: boolean): unknown[] {
  const out = new Map<string, { stream: Record<string, string>; values: unknown[] }>();
  for (const e of entries) {
    const stream = categorize ? e.labels.stream : e.labels.all();
    const key = labelsKey(stream);
    const s = out.get(key) ?? { stream, values: [] };
    out.set(key, s);
    if (!categorize) {
      s.values.push([e.timeNs.toString(), e.line]);
      continue;
    }
    const meta = e.labels.meta;
    const parsed = e.labels.parsedWithErrors();
    const extra: Record<string, Record<string, string>> = {};
    if (Object.keys(meta).length > 0) extra.structuredMetadata = meta;
    if (Object.keys(parsed).length > 0) extra.parsed = parsed;
    s.values.push([e.timeNs.toString(), e.line, extra]);
  }
  return [...out.values()];
}

class Field {
  values = new Set<string>();
  parsers = new Set<string>();
  jsonPath?: string[];
  constructor(readonly label: string) {}
  type(): string {
    const vs = [...this.values];
    if (vs.length === 0) return 'string';
    if (vs.every((v) => /^[+-]?\d+$/.test(v))) return 'int';
    if (vs.every((v) => !Number.isNaN(parseNumber(v)))) return 'float';
    if (vs.every((v) => v === 'true' || v === 'false')) return 'boolean';
    if (vs.every((v) => !Number.isNaN(parseDurationValue(v)))) return 'duration';
    if (vs.every((v) => /[a-zA-Z]/.test(v) && !Number.isNaN(parseBytes(v)))) return 'bytes';
    return 'string';
  }
}

const MAX_FIELD_VALUES = 1000;

/** Fields of the lines (structured metadata, parsed labels, and what JSON or logfmt lines hold), as Loki detects them. */
function detectedFields(entries: LogResultEntry[], queryParser: string): Map<string, Field> {
  const fields = new Map<string, Field>();
  const add = (label: string, value: string, parser?: string, jsonPath?: string[]) => {
    const f = fields.get(label) ?? new Field(label);
    fields.set(label, f);
    if (f.values.size < MAX_FIELD_VALUES) f.values.add(value);
    if (parser) f.parsers.add(parser);
    if (jsonPath && !f.jsonPath) f.jsonPath = jsonPath;
  };
  for (const e of entries) {
    for (const [k, v] of Object.entries(e.labels.meta)) add(k, v);
    for (const [k, v] of Object.entries(e.labels.parsed)) add(k, v, queryParser);
    const line = e.line.trimStart();
    if (line.startsWith('{')) {
      let doc: unknown;
      try {
        doc = JSON.parse(line);
      } catch {
        continue;
      }
      const walk = (obj: unknown, prefix: string, path: string[], depth: number) => {
        if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || depth > 8) return;
        for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
          const key = prefix ? `${prefix}_${sanitizeKey(k)}` : sanitizeKey(k);
          if (v !== null && typeof v === 'object') walk(v, key, [...path, k], depth + 1);
          else if (v !== null)
            add(Object.hasOwn(e.labels.stream, key) ? `${key}_extracted` : key, String(v), 'json', [...path, k]);
        }
      };
      walk(doc, '', [], 0);
    } else {
      const { pairs, error } = logfmtPairs(e.line);
      if (error || pairs.length === 0 || pairs.every(([, v]) => v === '')) continue;
      for (const [k, v] of pairs) if (v !== '') add(sanitizeKey(k), v, 'logfmt');
    }
  }
  return fields;
}

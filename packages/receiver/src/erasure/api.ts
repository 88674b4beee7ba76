/**
 * The erasure call on the admin port (behind the admin token; refused when no admin token is
 * configured, since it changes what every reader sees):
 *
 *   POST /api/admin/erase   {"subject": "<pseudonymous id>"}                 under every erasure.subject_keys
 *                           {"attribute": "<key>", "value": "<value>"}       under one key
 *
 * 200 {"traces": n, "keys": [...], ...}: the traces found are tombstoned, log records carrying the
 * subject are hidden from then on (see erasure.ts). 400 for a bad body, 403 without admin tokens, 422
 * when more than erasure.max_traces traces carry the subject, 504/503 as the trace store's queries.
 */
import express from 'express';
import type { Registry } from 'prom-client';
import type { LabelMatcher, LogSelection, LogSource, LokiEntry } from '../log-store/loki-entry';
import type { Logger } from '../logger';
import { registerMetrics } from '../metrics/define';
import { labelName } from '../series/naming';
import { QueryTimeoutError, ReaderUnavailableError } from '../trace-store/reader-protocol';
import type { TraceStore } from '../trace-store/trace-store';
import { parseTraceQL, type SpansetQuery } from '../trace-store/traceql';
import type { Erasure } from './erasure';
import { ERASURE_METRICS } from './metrics';

const MAX_NS = 2n ** 63n - 1n;
const MAX_VALUE_LENGTH = 1024;

export interface ErasureApiOptions {
  /** Whether admin bearer tokens are configured (erasure is refused without them). */
  tokensConfigured: boolean;
  registry: Registry;
  logger?: Logger;
}

export function createErasureApi(
  erasure: Erasure,
  traceStore: TraceStore | undefined,
  options: ErasureApiOptions,
): express.Router {
  const router = express.Router();
  const { requests } = registerMetrics(options.registry, ERASURE_METRICS, {
    tombstones() {
      const t = erasure.tombstones;
      this.set({ kind: 'subjects' }, t.subjects);
      this.set({ kind: 'traces' }, t.traces);
    },
  });
  router.post('/api/admin/erase', express.json({ limit: '16kb', strict: true }), async (req, res) => {
    const fail = (status: number, outcome: string, error: string) => {
      requests.inc({ outcome });
      res.status(status).json({ error });
    };
    if (!options.tokensConfigured) {
      fail(
        403,
        'forbidden',
        'erasure changes what every reader of the stores sees: it needs admin.auth.bearer_tokens_file (and the call its token)',
      );
      return;
    }
    const body = req.body as { subject?: unknown; attribute?: unknown; value?: unknown } | undefined;
    let value: unknown;
    let keys: string[] | undefined;
    if (body && typeof body === 'object' && 'subject' in body && !('attribute' in body) && !('value' in body)) {
      value = body.subject;
    } else if (body && typeof body === 'object' && 'attribute' in body && 'value' in body && !('subject' in body)) {
      if (typeof body.attribute !== 'string' || body.attribute === '' || body.attribute.length > 256) {
        fail(400, 'bad_request', '"attribute" must be a non-empty attribute key (at most 256 characters)');
        return;
      }
      keys = [body.attribute];
      value = body.value;
    } else {
      fail(
        400,
        'bad_request',
        'the body must be a JSON object {"subject": "<pseudonymous id>"} or {"attribute": "<key>", "value": "<value>"}',
      );
      return;
    }
    if (typeof value !== 'string' || value === '' || value.length > MAX_VALUE_LENGTH) {
      fail(400, 'bad_request', `the subject must be a non-empty string of at most ${MAX_VALUE_LENGTH} characters`);
      return;
    }
    const subject = value;
    const searchKeys = keys ?? erasure.options.subjectKeys;
    let traceIds: string[] = [];
    if (traceStore) {
      const indexed = new Set(traceStore.options.indexedAttributes);
      const missing = searchKeys.filter((k) => !indexed.has(k));
      if (keys && missing.length > 0) {
        fail(
          400,
          'bad_request',
          `"${keys[0]}" is not indexed by the trace store, so its traces cannot be found: add it to erasure.subject_keys`,
        );
        return;
      }
      const quoted = JSON.stringify(subject);
      let query: SpansetQuery;
      try {
        query = searchKeys
          .filter((k) => indexed.has(k))
          .flatMap((k) => parseTraceQL(`{ .${k} = ${quoted} }`, { indexedAttributes: indexed }));
      } catch (err) {
        fail(400, 'bad_request', `cannot search the trace store for this key: ${(err as Error).message}`);
        return;
      }
      try {
        const max = erasure.options.maxTraces;
        const found = await traceStore.search(query, { startNs: 0n, endNs: MAX_NS, limit: max + 1, spss: 1 });
        if (found.traces.length > max) {
          fail(
            422,
            'too_many_traces',
            `more than erasure.max_traces (${max}) traces carry this subject: nothing was erased; raise erasure.max_traces`,
          );
          return;
        }
        traceIds = found.traces.map((t) => t.traceID);
      } catch (err) {
        if (err instanceof QueryTimeoutError) fail(504, 'timeout', `${err.message}; nothing was erased`);
        else if (err instanceof ReaderUnavailableError) fail(503, 'unavailable', `${err.message}; nothing was erased`);
        else {
          options.logger?.error({ err }, 'erasure: the trace store search failed');
          fail(
            500,
            'error',
            'the trace store could not be searched (the error is in the receiver log); nothing was erased',
          );
        }
        return;
      }
    }
    erasure.record(subject, keys, traceIds);
    requests.inc({ outcome: 'erased' });
    // The subject is not logged: it is the one thing this call is about not keeping.
    options.logger?.info({ traces: traceIds.length, keys: searchKeys }, 'erasure: a subject was erased');
    res.json({
      erased: true,
      keys: searchKeys,
      traces: traceIds.length,
      logs: 'log records carrying the subject up to now, and those of these traces, are hidden from every query',
      not_erased:
        'Prometheus aggregates (they hold no subject), data already forwarded to Tempo or Loki, /debug/recent (a bounded in-memory window)',
    });
  });
  return router;
}

/** The log store as the Loki API reads it, without the erased records. */
export class ErasedLogSource implements LogSource {
  constructor(
    private readonly inner: LogSource,
    private readonly erasure: Erasure,
  ) {}

  async *select(selection: LogSelection): AsyncIterable<LokiEntry> {
    for await (const e of this.inner.select(selection)) {
      if (this.erasure.active && this.erasure.isRecordErased(e.metadata, Number(e.timeNs / 1_000_000n), labelName))
        continue;
      yield e;
    }
  }

  labelNames(startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): Promise<string[]> {
    return this.inner.labelNames(startNs, endNs, matchers);
  }

  labelValues(name: string, startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): Promise<string[]> {
    return this.inner.labelValues(name, startNs, endNs, matchers);
  }

  series(selectors: LabelMatcher[][], startNs: bigint, endNs: bigint): Promise<Record<string, string>[]> {
    return this.inner.series(selectors, startNs, endNs);
  }

  stats(matchers: LabelMatcher[], startNs: bigint, endNs: bigint) {
    return this.inner.stats(matchers, startNs, endNs);
  }

  /**
   * The level index's counts (the log-volume query) while nothing is erased; once something is, the
   * LogQL engine counts the entries this source yields instead, so that erased records are not counted.
   */
  get countVolume(): LogSource['countVolume'] {
    return this.erasure.active ? undefined : this.inner.countVolume?.bind(this.inner);
  }

  get countVolumeLabels(): LogSource['countVolumeLabels'] {
    return this.inner.countVolumeLabels;
  }

  /** Volumes are counts per stream, like stats: they hold no subject and are not filtered. */
  volume(matchers: LabelMatcher[], bounds: bigint[], signal?: AbortSignal) {
    return this.inner.volume(matchers, bounds, signal);
  }
}

/**
 * The part of Tempo's HTTP API that Grafana's Tempo datasource calls, answered from the trace store
 * (mounted on the admin server):
 *
 *   GET /api/echo                               "echo" (Grafana's health check)
 *   GET /ready                                  "ready" once the store is open
 *   GET /api/v2/traces/<id>[?start=&end=]       TraceByIDResponse: protobuf with Accept: application/protobuf, else JSON
 *   GET /api/traces/<id>[?start=&end=]          Trace: protobuf with Accept: application/protobuf, else JSON ({batches})
 *   GET /api/search?q=|tags=&minDuration=&maxDuration=&limit=&spss=&start=&end=
 *   GET /api/v2/search/tags[?scope=]            {scopes:[{name, tags}]}
 *   GET /api/v2/search/tag/<tag>/values         {tagValues:[{type, value}]}
 *   GET /api/search/tags, /api/search/tag/<tag>/values   the v1 forms ({tagNames}, {tagValues:[string]})
 *
 * start/end are Unix seconds, as Tempo takes them. Errors are plain text, as Tempo's are: 400 for a
 * query the store cannot answer, 504 past trace_store.query_timeout (as Tempo answers a deadline), 503
 * when no reader thread runs, and a bare 500 for anything else (its details are logged, not answered).
 * A query whose client leaves is stopped.
 */
import express from 'express';
import type { Logger } from '../logger';
import { encodeJsonRequest } from '../otlp/json/encode';
import { decodeTraceRequest } from '../otlp/protobuf/decode-traces';
import { QueryCancelledError, QueryTimeoutError, ReaderUnavailableError } from './reader-protocol';
import { lengthPrefix } from './scan';
import { INTRINSIC_TAGS } from './search';
import type { TraceStore } from './trace-store';
import { parseGoDuration, parseLogfmtTags, parseTraceQL, type SpansetQuery, UnsupportedQueryError } from './traceql';

const PROTOBUF = 'application/protobuf';
const MAX_NS = 2n ** 63n - 1n;

class BadRequest extends Error {}

/** What the API leaves out: erased traces and subjects (src/erasure). */
export interface TempoApiErasure {
  isTraceErased(traceIdHex: string): boolean;
  isErasedValue(value: string): boolean;
  readonly tombstones: { traces: number };
}

export function createTempoApi(store: TraceStore, logger?: Logger, erasure?: TempoApiErasure): express.Router {
  const router = express.Router();
  const indexed = { indexedAttributes: new Set(store.options.indexedAttributes) };

  const timed =
    (
      endpoint: string,
      handler: (req: express.Request, res: express.Response, signal: AbortSignal) => void | Promise<void>,
    ) =>
    (req: express.Request, res: express.Response) => {
      const end = store.queryDuration.startTimer({ endpoint });
      // The client leaving stops its query.
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      const fail = (err: unknown) => {
        if (res.headersSent || err instanceof QueryCancelledError) return;
        const text = (status: number, message: string) => res.status(status).type('text/plain').send(`${message}\n`);
        if (err instanceof BadRequest || err instanceof UnsupportedQueryError) text(400, (err as Error).message);
        else if (err instanceof QueryTimeoutError) {
          store.queryTimeouts.inc({ endpoint });
          text(504, err.message);
        } else if (err instanceof ReaderUnavailableError) {
          res.setHeader('Retry-After', '1');
          text(503, err.message);
        } else {
          logger?.error({ err, endpoint }, 'the trace store could not answer a query');
          text(500, 'the trace store could not answer (the error is in the receiver log)');
        }
      };
      try {
        const done = handler(req, res, gone.signal);
        if (done instanceof Promise) {
          done.catch(fail).finally(end);
          return;
        }
      } catch (err) {
        fail(err);
      }
      end();
    };

  router.get('/api/echo', (_req, res) => {
    res.type('text/plain').send('echo');
  });
  router.get('/ready', (_req, res) => {
    res.type('text/plain').send('ready');
  });

  const traceById = (v2: boolean) =>
    timed(v2 ? 'trace_by_id_v2' : 'trace_by_id', async (req, res, signal) => {
      const id = traceIdParam(String(req.params.id));
      const { startNs, endNs } = window(req.query);
      const erased = erasure?.isTraceErased(id.toString('hex')) ?? false;
      const chunks = erased ? [] : await store.traceChunks(id, startNs, endNs, signal);
      if (chunks.length === 0) {
        res.status(404).type('text/plain').send('trace not found\n');
        return;
      }
      // Each chunk is a ResourceSpans; as field 1 of Trace they form it (and also an ExportTraceServiceRequest).
      const trace = Buffer.concat(chunks.flatMap((c) => [lengthPrefix(1, c.length), c]));
      if (wantsProtobuf(req)) {
        const body = v2 ? Buffer.concat([lengthPrefix(1, trace.length), trace]) : trace;
        res.type(PROTOBUF).send(body);
        return;
      }
      const json = encodeJsonRequest('traces', decodeTraceRequest(trace, { maxAnyValueDepth: 64 })) as {
        resourceSpans: unknown[];
      };
      res.json(v2 ? { trace: { resourceSpans: json.resourceSpans } } : { batches: json.resourceSpans });
    });
  router.get('/api/v2/traces/:id', traceById(true));
  router.get('/api/traces/:id', traceById(false));

  router.get(
    '/api/search',
    timed('search', async (req, res, signal) => {
      const q = req.query;
      const limit = positiveInt(q.limit, 'limit', 20);
      const spss = positiveInt(q.spss, 'spss', 3);
      const { startNs, endNs } = window(q);
      let query: SpansetQuery;
      const text = typeof q.q === 'string' ? q.q.trim() : '';
      if (text !== '') query = parseTraceQL(text, indexed);
      else query = [parseLogfmtTags(typeof q.tags === 'string' ? q.tags : '', indexed)];
      const minDuration = typeof q.minDuration === 'string' && q.minDuration !== '' ? q.minDuration : undefined;
      const maxDuration = typeof q.maxDuration === 'string' && q.maxDuration !== '' ? q.maxDuration : undefined;
      // Erased traces are left out: ask for as many more as there are tombstones (up to 1000).
      const extra = Math.min(erasure?.tombstones.traces ?? 0, 1000);
      const result = await store.search(
        query,
        {
          startNs: startNs ?? 0n,
          endNs: endNs ?? MAX_NS,
          limit: limit + extra,
          spss,
          minTraceDurationNs: minDuration ? parseGoDuration(minDuration, 'minDuration') : undefined,
          maxTraceDurationNs: maxDuration ? parseGoDuration(maxDuration, 'maxDuration') : undefined,
        },
        signal,
      );
      if (erasure) result.traces = result.traces.filter((t) => !erasure.isTraceErased(t.traceID)).slice(0, limit);
      res.json(result);
    }),
  );

  router.get(
    '/api/v2/search/tags',
    timed('search_tags_v2', async (req, res, signal) => {
      const scope = typeof req.query.scope === 'string' ? req.query.scope : '';
      const names = await store.tagNames(signal);
      const scopes = [
        { name: 'resource', tags: names.resource },
        { name: 'span', tags: names.span },
        { name: 'intrinsic', tags: INTRINSIC_TAGS },
      ];
      const wanted =
        scope === '' || scope === 'all' || scope === 'none' ? scopes : scopes.filter((s) => s.name === scope);
      if (wanted.length === 0)
        throw new BadRequest(`scope must be one of resource, span, intrinsic, all (got "${scope}")`);
      res.json({ scopes: wanted });
    }),
  );
  router.get(
    '/api/search/tags',
    timed('search_tags', async (_req, res, signal) => {
      const names = await store.tagNames(signal);
      res.json({ tagNames: [...new Set([...names.resource, ...names.span])].sort() });
    }),
  );
  router.get(
    '/api/v2/search/tag/:tag/values',
    timed('search_tag_values_v2', async (req, res, signal) => {
      const limit = positiveInt(req.query.limit, 'limit', 1000);
      const values = await store.tagValues(String(req.params.tag), limit, signal);
      res.json({ tagValues: erasure ? values.filter((v) => !erasure.isErasedValue(v.value)) : values });
    }),
  );
  router.get(
    '/api/search/tag/:tag/values',
    timed('search_tag_values', async (req, res, signal) => {
      const limit = positiveInt(req.query.limit, 'limit', 1000);
      const values = (await store.tagValues(String(req.params.tag), limit, signal)).map((v) => v.value);
      res.json({ tagValues: erasure ? values.filter((v) => !erasure.isErasedValue(v)) : values });
    }),
  );
  return router;
}

function wantsProtobuf(req: express.Request): boolean {
  return (req.get('accept') ?? '').includes(PROTOBUF);
}

/** A trace id in hex (up to 32 digits; shorter ids are left-padded with zeros, as Tempo does). */
function traceIdParam(text: string): Buffer {
  if (!/^[0-9a-fA-F]{1,32}$/.test(text)) {
    throw new BadRequest(`invalid trace id "${text}": expected up to 32 hex digits`);
  }
  return Buffer.from(text.toLowerCase().padStart(32, '0'), 'hex');
}

function window(q: express.Request['query']): { startNs: bigint | undefined; endNs: bigint | undefined } {
  const seconds = (v: unknown, what: string): bigint | undefined => {
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new BadRequest(`${what} must be Unix seconds (got "${v}")`);
    return BigInt(v) * 1_000_000_000n;
  };
  // The store's times stop at MAX_NS (SQLite's integers): a window past it is cut there.
  const atMost = (ns: bigint | undefined) => (ns !== undefined && ns > MAX_NS ? MAX_NS : ns);
  const startNs = atMost(seconds(q.start, 'start'));
  const end = seconds(q.end, 'end');
  // end is a whole second: spans that start within it count.
  const endNs = atMost(end === undefined ? undefined : end + 999_999_999n);
  if (startNs !== undefined && endNs !== undefined && startNs > endNs)
    throw new BadRequest('start must not be after end');
  return { startNs, endNs };
}

function positiveInt(v: unknown, what: string, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new BadRequest(`${what} must be a positive integer (got "${String(v)}")`);
  return n;
}

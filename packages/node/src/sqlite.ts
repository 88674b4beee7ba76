/**
 * Instrumentation of `node:sqlite` (no upstream one exists): `DatabaseSync#exec` and the statement
 * methods `run`, `get`, `all` and `iterate` become database client spans, named by their query
 * summary (`SELECT cart_items`), with `db.system.name=sqlite`, `db.namespace` (the database file's
 * name), `db.operation.name`, `db.collection.name` and `db.query.text` with literals replaced by `?`
 * (parameters are never recorded). A built-in module is the same object for `require` and `import`,
 * so patching the prototypes covers CommonJS and ESM alike, whatever the load order.
 */
import * as path from 'node:path';
import { context, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';

const PATCHED = Symbol.for('sonde.sqlite.patched');
const SQLITE_METHODS = ['run', 'get', 'all', 'iterate'] as const;
const DESCRIBED_MAX = 1024;

/** Replaces string, number and blob literals with `?` and squeezes white space. */
export function sanitizeSql(sql: string): string {
  return sql
    .replace(/\bx'[0-9a-f]*'/gi, '?')
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/\b\d+(?:\.\d+)?\b/g, '?')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 2048);
}

/** `{ operation, collection }` of the first statement, e.g. `SELECT` and `cart_items`. */
export function summarizeSql(sql: string): { operation: string; collection?: string } {
  const text = sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' ').trim();
  const op = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'SQL';
  let m: RegExpExecArray | null = null;
  if (op === 'SELECT' || op === 'DELETE') m = /\bfrom\s+["`[]?([\w.]+)/i.exec(text);
  else if (op === 'INSERT' || op === 'REPLACE') m = /\binto\s+["`[]?([\w.]+)/i.exec(text);
  else if (op === 'UPDATE') m = /^\s*update\s+(?:or\s+\w+\s+)?["`[]?([\w.]+)/i.exec(text);
  else if (op === 'CREATE' || op === 'DROP')
    m = /\b(?:table|index|view)\s+(?:if\s+(?:not\s+)?exists\s+)?["`[]?([\w.]+)/i.exec(text);
  return m ? { operation: op, collection: m[1] } : { operation: op };
}

interface SqliteModule {
  DatabaseSync: { prototype: Record<string | symbol, unknown> };
  StatementSync: { prototype: Record<string | symbol, unknown> };
}

type AnyFn = (this: unknown, ...args: unknown[]) => unknown;

/** Patches node:sqlite once per process. Returns false where node:sqlite does not exist. */
export function instrumentSqlite(getTracer: () => Tracer): boolean {
  let sqlite: SqliteModule;
  try {
    sqlite = require('node:sqlite') as SqliteModule;
  } catch {
    return false;
  }
  const dbProto = sqlite.DatabaseSync.prototype;
  if (dbProto[PATCHED]) return true;
  dbProto[PATCHED] = true;
  const namespaceOf = new WeakMap<object, string>();
  // The same few statements run again and again: their span name and query attributes are computed
  // once per distinct SQL text (bounded; cleared when full).
  const described = new Map<string, { name: string; attributes: Record<string, string> }>();
  function describe(sql: string): { name: string; attributes: Record<string, string> } {
    let d = described.get(sql);
    if (d === undefined) {
      const { operation, collection } = summarizeSql(sql);
      d = {
        name: collection ? `${operation} ${collection}` : operation,
        attributes: {
          'db.operation.name': operation,
          ...(collection ? { 'db.collection.name': collection } : {}),
          'db.query.text': sanitizeSql(sql),
        },
      };
      if (described.size >= DESCRIBED_MAX) described.clear();
      described.set(sql, d);
    }
    return d;
  }
  const dbOfStatement = new WeakMap<object, object>();

  function namespace(db: object): string {
    let ns = namespaceOf.get(db);
    if (ns === undefined) {
      let location: string | null = null;
      try {
        location = (db as { location(): string | null }).location();
      } catch {
        location = null;
      }
      ns = location ? path.basename(location).replace(/\.(sqlite3?|db)$/i, '') : 'memory';
      namespaceOf.set(db, ns);
    }
    return ns;
  }

  function traced(db: object | undefined, sql: string, fn: () => unknown): unknown {
    const tracer = getTracer();
    const parent = context.active();
    // No parent trace (start-up schema work, timers): no span, so it costs nothing.
    if (!trace.getSpan(parent)) return fn();
    const d = describe(sql);
    const span = tracer.startSpan(
      d.name,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'sqlite',
          ...(db ? { 'db.namespace': namespace(db) } : {}),
          ...d.attributes,
        },
      },
      parent,
    );
    try {
      const result = context.with(trace.setSpan(parent, span), fn);
      span.end();
      return result;
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      span.setAttribute('error.type', (err as { code?: string }).code ?? (err as Error).name ?? 'Error');
      span.end();
      throw err;
    }
  }

  const origPrepare = dbProto.prepare as AnyFn;
  dbProto.prepare = function prepare(this: object, ...args: unknown[]) {
    const stmt = origPrepare.apply(this, args);
    if (stmt && typeof stmt === 'object') dbOfStatement.set(stmt, this);
    return stmt;
  };
  const origExec = dbProto.exec as AnyFn;
  dbProto.exec = function exec(this: object, ...args: unknown[]) {
    return traced(this, String(args[0] ?? ''), () => origExec.apply(this, args));
  };
  const stProto = sqlite.StatementSync.prototype;
  for (const method of SQLITE_METHODS) {
    const orig = stProto[method] as AnyFn | undefined;
    if (typeof orig !== 'function') continue;
    stProto[method] = function patched(this: { sourceSQL?: string }, ...args: unknown[]) {
      return traced(dbOfStatement.get(this), String(this.sourceSQL ?? ''), () => orig.apply(this, args));
    };
  }
  return true;
}

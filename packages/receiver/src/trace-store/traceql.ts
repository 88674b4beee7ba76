/**
 * The part of TraceQL the trace store answers, compiled to a predicate over the spans a search reads
 * (and the postings that choose which blobs it reads):
 *
 *   { }                                  every span
 *   { resource.service.name = "cart" }   service (also .service.name)
 *   { name = "GET /cart" }               span name (also span:name)
 *   { status = error }                   error | ok | unset (also span:status)
 *   { kind = server }                    unspecified | internal | server | client | producer | consumer
 *   { duration > 500ms }                 span duration (also span:duration); units ns us µs ms s m h
 *   { span.http.route = "/a" }           an indexed attribute on the span (resource.x: on the resource,
 *                                        .x: on either)
 *   operators = != > >= < <= =~ !~, conditions combined with && || and parentheses inside a spanset,
 *   and spansets combined with ||.
 *
 * Regular expressions are RE2's (Go's syntax, as Tempo's), matched in linear time (re2js: no pattern
 * and value can make a match backtrack), and fully anchored with `.` matching a newline, as Tempo ≥ 2.7
 * compiles them (`^(?s:re)$`). Patterns RE2 has no linear-time match for (backreferences, lookaround)
 * are refused.
 *
 * Anything else (pipelines, aggregates, structural operators, spanset &&, attributes that are not
 * indexed, trace-level intrinsics) is refused with an UnsupportedQueryError naming the part.
 * The legacy search's `tags` (logfmt) and `minDuration`/`maxDuration` compile through the same path.
 */

import { RE2JS } from 're2js';
import { NAME_KEY, SERVICE_KEY, STATUS_KEY } from './blob-index';
import type { SpanRow } from './scan';

export class UnsupportedQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedQueryError';
  }
}

type Op = '=' | '!=' | '>' | '>=' | '<' | '<=' | '=~' | '!~';

type Field =
  | { type: 'service' }
  | { type: 'name' }
  | { type: 'status' }
  | { type: 'kind' }
  | { type: 'duration' }
  /** Scoped tag keys as stored ("span.http.route", "resource.deployment.environment"). */
  | { type: 'tag'; keys: string[]; label: string };

type Value = { type: 'string'; value: string } | { type: 'number'; value: number } | { type: 'keyword'; value: string };

export type SpanExpr =
  | { kind: 'cond'; field: Field; op: Op; value: Value }
  | { kind: 'and' | 'or'; left: SpanExpr; right: SpanExpr }
  | { kind: 'all' };

/** A query: spansets combined with ||: a trace matches when a span matches any of them. */
export type SpansetQuery = SpanExpr[];

export interface CompiledSpanset {
  /** Whether a span matches. */
  match: (span: SpanRow) => boolean;
  /** A posting (key, value) that every match has (chooses the blobs a search reads), if any. */
  driver: { key: string; value: string } | undefined;
  /**
   * Without a driver: a posting key whose value every match has matching this regex (the blobs a
   * search reads are those of the key's values that match), if any.
   */
  regexDriver: { key: string; pattern: Matcher } | undefined;
  /** Attribute equalities every match has, echoed in the result's spans. */
  attributes: { key: string; value: string }[];
  /** The shortest duration every match has (a `duration >`/`>=` condition), in ns, if any. */
  minDurationNs: number | undefined;
}

const STATUS: Record<string, number> = { unset: 0, ok: 1, error: 2 };
const KIND: Record<string, number> = {
  unspecified: 0,
  internal: 1,
  server: 2,
  client: 3,
  producer: 4,
  consumer: 5,
};
const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

// ---------------------------------------------------------------------------------------------
// Tokens

type Token =
  | { t: 'punct'; v: string; at: number }
  | { t: 'string'; v: string; at: number }
  | { t: 'number'; v: number; at: number }
  | { t: 'ident'; v: string; at: number }
  | { t: 'end'; at: number };

const PUNCT = [
  '&&',
  '||',
  '!=',
  '>=',
  '<=',
  '=~',
  '!~',
  '>>',
  '<<',
  '!>>',
  '!<<',
  '{',
  '}',
  '(',
  ')',
  '=',
  '>',
  '<',
  '|',
  '~',
  '!',
  ',',
];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === '`') {
      const quote = c;
      let j = i + 1;
      let v = '';
      while (j < src.length && src[j] !== quote) {
        if (src[j] === '\\' && quote === '"' && j + 1 < src.length) {
          const n = src[j + 1];
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          j += 2;
        } else v += src[j++];
      }
      if (j >= src.length) throw new UnsupportedQueryError(`unterminated string at offset ${i}`);
      out.push({ t: 'string', v, at: i });
      i = j + 1;
      continue;
    }
    const num = /^-?\d+(\.\d+)?(ns|us|µs|ms|s|m|h)?(?![\w.])/.exec(src.slice(i));
    if (num) {
      const unit = num[2];
      const n = Number(unit ? num[0].slice(0, -unit.length) : num[0]);
      out.push({ t: 'number', v: unit ? n * DURATION_UNITS[unit] : n, at: i });
      i += num[0].length;
      continue;
    }
    const ident = /^[A-Za-z_.:][\w.:\-/]*/.exec(src.slice(i));
    if (ident) {
      let v = ident[0];
      let len = v.length;
      // span."quoted name"
      if (v.endsWith('.') && src[i + len] === '"') {
        const close = src.indexOf('"', i + len + 1);
        if (close < 0) throw new UnsupportedQueryError(`unterminated attribute name at offset ${i}`);
        v += src.slice(i + len + 1, close);
        len = close + 1 - i;
      }
      out.push({ t: 'ident', v, at: i });
      i += len;
      continue;
    }
    const p = [...PUNCT].sort((a, b) => b.length - a.length).find((x) => src.startsWith(x, i));
    if (!p) throw new UnsupportedQueryError(`unexpected character "${c}" at offset ${i}`);
    out.push({ t: 'punct', v: p, at: i });
    i += p.length;
  }
  out.push({ t: 'end', at: src.length });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parser

export interface ParseOptions {
  /** Attribute keys (unscoped) that the store indexes. */
  indexedAttributes: ReadonlySet<string>;
}

export function parseTraceQL(src: string, options: ParseOptions): SpansetQuery {
  const p = new Parser(tokenize(src), src, options);
  const q = p.spansets();
  p.expectEnd();
  return q;
}

class Parser {
  private i = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly src: string,
    private readonly options: ParseOptions,
  ) {}

  private peek(): Token {
    return this.tokens[this.i];
  }

  private next(): Token {
    return this.tokens[this.i++];
  }

  private isPunct(v: string): boolean {
    const t = this.peek();
    return t.t === 'punct' && t.v === v;
  }

  private expect(v: string): void {
    const t = this.next();
    if (t.t !== 'punct' || t.v !== v) throw this.unexpected(t, `"${v}"`);
  }

  private unexpected(t: Token, wanted: string): UnsupportedQueryError {
    const got = t.t === 'end' ? 'the end of the query' : `"${this.src.slice(t.at, t.at + 20)}"`;
    return new UnsupportedQueryError(`expected ${wanted} at offset ${t.at}, found ${got}`);
  }

  expectEnd(): void {
    const t = this.peek();
    if (t.t === 'end') return;
    if (t.t === 'punct' && t.v === '|') {
      throw new UnsupportedQueryError(
        `pipelines ("${this.src.slice(t.at).trim()}") are not supported by the embedded trace store`,
      );
    }
    if (t.t === 'punct' && t.v === '&&') {
      throw new UnsupportedQueryError(
        'spanset && ("{ ... } && { ... }") is not supported by the embedded trace store; put the conditions in one spanset',
      );
    }
    if (t.t === 'punct' && ['>>', '<<', '>', '<', '~', '!>>', '!<<'].includes(t.v)) {
      throw new UnsupportedQueryError(
        `structural operator "${t.v}" is not supported by the embedded trace store (only ||, && inside a spanset)`,
      );
    }
    throw this.unexpected(t, 'the end of the query');
  }

  spansets(): SpansetQuery {
    const out = this.spansetTerm();
    while (this.isPunct('||')) {
      this.next();
      out.push(...this.spansetTerm());
    }
    return out;
  }

  private spansetTerm(): SpansetQuery {
    if (this.isPunct('(')) {
      this.next();
      const q = this.spansets();
      this.expect(')');
      return q;
    }
    this.expect('{');
    if (this.isPunct('}')) {
      this.next();
      return [{ kind: 'all' }];
    }
    const e = this.or();
    this.expect('}');
    return [e];
  }

  private or(): SpanExpr {
    let left = this.and();
    while (this.isPunct('||')) {
      this.next();
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): SpanExpr {
    let left = this.unary();
    while (this.isPunct('&&')) {
      this.next();
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }

  private unary(): SpanExpr {
    if (this.isPunct('(')) {
      this.next();
      const e = this.or();
      this.expect(')');
      return e;
    }
    return this.condition();
  }

  private condition(): SpanExpr {
    const t = this.next();
    if (t.t !== 'ident') throw this.unexpected(t, 'an attribute or intrinsic (e.g. resource.service.name, name)');
    const field = fieldFor(t.v, this.options);
    const opTok = this.next();
    const ops: Op[] = ['=', '!=', '>', '>=', '<', '<=', '=~', '!~'];
    if (opTok.t !== 'punct' || !ops.includes(opTok.v as Op)) throw this.unexpected(opTok, 'a comparison operator');
    const op = opTok.v as Op;
    const vt = this.next();
    let value: Value;
    if (vt.t === 'string') value = { type: 'string', value: vt.v };
    else if (vt.t === 'number') value = { type: 'number', value: vt.v };
    else if (vt.t === 'ident') value = { type: 'keyword', value: vt.v };
    else throw this.unexpected(vt, 'a value');
    checkCondition(t.v, field, op, value);
    return { kind: 'cond', field, op, value };
  }
}

function fieldFor(name: string, options: ParseOptions): Field {
  switch (name) {
    case 'resource.service.name':
    case '.service.name':
      return { type: 'service' };
    case 'name':
    case 'span:name':
      return { type: 'name' };
    case 'status':
    case 'span:status':
      return { type: 'status' };
    case 'kind':
    case 'span:kind':
      return { type: 'kind' };
    case 'duration':
    case 'span:duration':
      return { type: 'duration' };
  }
  let scope: 'span' | 'resource' | undefined;
  let key: string;
  if (name.startsWith('span.')) {
    scope = 'span';
    key = name.slice(5);
  } else if (name.startsWith('resource.')) {
    scope = 'resource';
    key = name.slice(9);
  } else if (name.startsWith('.')) key = name.slice(1);
  else {
    throw new UnsupportedQueryError(
      `"${name}" is not supported by the embedded trace store: use resource.service.name, name, status, kind, duration, or span./resource. with an indexed attribute`,
    );
  }
  if (!options.indexedAttributes.has(key)) {
    const indexed = [...options.indexedAttributes].join(', ') || 'none';
    throw new UnsupportedQueryError(
      `attribute "${key}" is not indexed by the embedded trace store (trace_store.indexed_attributes: ${indexed})`,
    );
  }
  const keys = scope ? [`${scope}.${key}`] : [`span.${key}`, `resource.${key}`];
  return { type: 'tag', keys, label: key };
}

function checkCondition(name: string, field: Field, op: Op, value: Value): void {
  const fail = (why: string) => new UnsupportedQueryError(`${name} ${op} ...: ${why}`);
  if (field.type === 'status' || field.type === 'kind') {
    const table = field.type === 'status' ? STATUS : KIND;
    if (value.type !== 'keyword' || !Object.hasOwn(table, value.value)) {
      throw fail(`the value must be one of ${Object.keys(table).join(', ')}`);
    }
    if (op !== '=' && op !== '!=') throw fail('only = and != compare a status or kind');
  } else if (field.type === 'duration') {
    if (value.type !== 'number') throw fail('the value must be a duration such as 500ms');
    if (op === '=~' || op === '!~') throw fail('a duration cannot be matched with a regular expression');
  } else {
    if (value.type === 'keyword' && value.value !== 'true' && value.value !== 'false' && value.value !== 'nil') {
      throw fail(`unknown value "${value.value}" (quote strings: "${value.value}")`);
    }
    if (value.type === 'keyword' && value.value === 'nil') throw fail('nil comparisons are not supported');
    if ((op === '=~' || op === '!~') && value.type !== 'string') throw fail('a regular expression must be a string');
    if (op === '=~' || op === '!~') {
      try {
        regexFor(value.value as string);
      } catch (err) {
        throw fail(
          `invalid regular expression: ${(err as Error).message} (TraceQL regexes are RE2's syntax, matched in linear time: no backreferences or lookaround)`,
        );
      }
    }
    if (field.type !== 'tag' && value.type === 'number') throw fail('the value must be a string');
  }
}

// ---------------------------------------------------------------------------------------------
// Legacy search parameters

/** `tags` (logfmt: `key=value key2="v 2"`) as spanset conditions, all of which must hold. */
export function parseLogfmtTags(tags: string, options: ParseOptions): SpanExpr {
  const re = /\s*([^\s=]+)=("((?:[^"\\]|\\.)*)"|\S*)/y;
  let e: SpanExpr = { kind: 'all' };
  let pos = 0;
  re.lastIndex = 0;
  while (pos < tags.length) {
    const m = re.exec(tags);
    if (m === null) break;
    pos = re.lastIndex;
    const key = m[1];
    const value = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
    let field: Field;
    if (key === 'service.name') field = { type: 'service' };
    else if (key === 'name') field = { type: 'name' };
    else if (key === 'status' || key === 'status.code') {
      if (!Object.hasOwn(STATUS, value))
        throw new UnsupportedQueryError(`tags: status must be one of error, ok, unset`);
      const cond: SpanExpr = { kind: 'cond', field: { type: 'status' }, op: '=', value: { type: 'keyword', value } };
      e = e.kind === 'all' ? cond : { kind: 'and', left: e, right: cond };
      continue;
    } else field = fieldFor(`.${key}`, options);
    const cond: SpanExpr = { kind: 'cond', field, op: '=', value: { type: 'string', value } };
    e = e.kind === 'all' ? cond : { kind: 'and', left: e, right: cond };
  }
  if (tags.slice(pos).trim() !== '') {
    throw new UnsupportedQueryError(`tags: cannot read "${tags.slice(pos).trim()}" (logfmt: key=value key2="v 2")`);
  }
  return e;
}

/** A Go-style duration ("1.5s", "100ms", "2m30s") in nanoseconds. */
export function parseGoDuration(text: string, what: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    pos = re.lastIndex;
  }
  if (pos !== text.length || text === '') {
    throw new UnsupportedQueryError(`${what}: "${text}" is not a duration (e.g. 100ms, 1.5s)`);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Compiled to a predicate

export function compileSpanset(e: SpanExpr): CompiledSpanset {
  const match = predicate(e);
  const attributes: { key: string; value: string }[] = [];
  let driver: CompiledSpanset['driver'];
  for (const c of conjuncts(e)) {
    if (c.kind !== 'cond' || c.op !== '=' || c.field.type !== 'tag') continue;
    const value = textOf(c.value);
    attributes.push({ key: c.field.label, value });
    if (!driver && c.field.keys.length === 1) driver = { key: c.field.keys[0], value };
  }
  // Without an attribute equality: a span name, service or status equality chooses the blobs through
  // the postings (in that order: names are the most selective of them).
  for (const type of ['name', 'service', 'status'] as const) {
    for (const c of conjuncts(e)) {
      if (driver || c.kind !== 'cond' || c.op !== '=' || c.field.type !== type) continue;
      if (type === 'name') driver = { key: NAME_KEY, value: textOf(c.value) };
      else if (type === 'service') driver = { key: SERVICE_KEY, value: textOf(c.value) };
      else driver = { key: STATUS_KEY, value: String(STATUS[c.value.value as string]) };
    }
  }
  for (const c of conjuncts(e)) {
    if (c.kind === 'cond' && c.op === '=' && c.field.type === 'service') {
      attributes.push({ key: 'service.name', value: textOf(c.value) });
    }
  }
  let regexDriver: CompiledSpanset['regexDriver'];
  for (const c of conjuncts(e)) {
    if (driver || regexDriver || c.kind !== 'cond' || c.op !== '=~') continue;
    const pattern = regexFor(textOf(c.value));
    if (c.field.type === 'tag' && c.field.keys.length === 1) regexDriver = { key: c.field.keys[0], pattern };
    else if (c.field.type === 'name') regexDriver = { key: NAME_KEY, pattern };
    else if (c.field.type === 'service') regexDriver = { key: SERVICE_KEY, pattern };
  }
  let minDurationNs: number | undefined;
  for (const c of conjuncts(e)) {
    if (c.kind === 'cond' && c.field.type === 'duration' && (c.op === '>' || c.op === '>=')) {
      minDurationNs = Math.max(minDurationNs ?? 0, c.value.value as number);
    }
  }
  return { match, driver, regexDriver, attributes, minDurationNs };
}

function conjuncts(e: SpanExpr): SpanExpr[] {
  return e.kind === 'and' ? [...conjuncts(e.left), ...conjuncts(e.right)] : [e];
}

function textOf(v: Value): string {
  return v.type === 'number' ? String(v.value) : v.value;
}

type Compare<T> = (a: T) => boolean;

function comparison<T extends string | number | bigint>(op: Op, b: T): Compare<T> {
  switch (op) {
    case '=':
      return (a) => a === b;
    case '!=':
      return (a) => a !== b;
    case '>':
      return (a) => a > b;
    case '>=':
      return (a) => a >= b;
    case '<':
      return (a) => a < b;
    case '<=':
      return (a) => a <= b;
    case '=~':
    case '!~': {
      const re = regexFor(String(b));
      const want = op === '=~';
      return (a) => re.test(String(a)) === want;
    }
  }
}

function predicate(e: SpanExpr): (span: SpanRow) => boolean {
  switch (e.kind) {
    case 'all':
      return () => true;
    case 'and': {
      const l = predicate(e.left);
      const r = predicate(e.right);
      return (s) => l(s) && r(s);
    }
    case 'or': {
      const l = predicate(e.left);
      const r = predicate(e.right);
      return (s) => l(s) || r(s);
    }
    case 'cond':
      break;
  }
  const { field, op, value } = e;
  switch (field.type) {
    case 'service': {
      const test = comparison(op, textOf(value));
      return (s) => test(s.service);
    }
    case 'name': {
      const test = comparison(op, textOf(value));
      return (s) => test(s.name);
    }
    case 'status': {
      const test = comparison(op, STATUS[value.value as string]);
      return (s) => test(s.status);
    }
    case 'kind': {
      const test = comparison(op, KIND[value.value as string]);
      return (s) => test(s.kind);
    }
    case 'duration': {
      const test = comparison(op, BigInt(Math.round(value.value as number)));
      return (s) => test(s.durationNs);
    }
    case 'tag': {
      // Attribute values are kept as text: a number compares as a number (the text's numeric prefix,
      // as SQLite's CAST AS REAL), except for = and != which compare the text.
      const keys = field.keys;
      const numeric = value.type === 'number' && op !== '=' && op !== '!=';
      const test: Compare<string> = numeric
        ? (
            (n) => (v: string) =>
              n(asReal(v))
          )(comparison(op, value.value as number))
        : comparison(op, textOf(value));
      return (s) => {
        for (const [k, v] of s.tags) if (keys.includes(k) && test(v)) return true;
        return false;
      };
    }
  }
}

/** Numbers as SQLite's CAST(text AS REAL): the longest numeric prefix, else 0. */
function asReal(text: string): number {
  const n = Number.parseFloat(text);
  return Number.isNaN(n) ? 0 : n;
}

/** A compiled TraceQL regex: whether a whole value matches. */
export interface Matcher {
  test(text: string): boolean;
}

const regexCache = new Map<string, Matcher>();
/** Values up to this length have their answer remembered (attribute values repeat: routes, names). */
const MEMO_VALUE_LENGTH = 256;
const MEMO_ENTRIES = 1024;

/**
 * TraceQL regexes match the whole value, `.` included newlines (Tempo's `^(?s:re)$`), on RE2's
 * linear-time engine. Throws re2js's syntax error for a pattern RE2 does not take.
 */
function regexFor(pattern: string): Matcher {
  let re = regexCache.get(pattern);
  if (!re) {
    const compiled = RE2JS.compile(pattern, RE2JS.DOTALL);
    const memo = new Map<string, boolean>();
    re = {
      test(text: string): boolean {
        if (text.length > MEMO_VALUE_LENGTH) return compiled.testExact(text);
        let hit = memo.get(text);
        if (hit === undefined) {
          hit = compiled.testExact(text);
          if (memo.size >= MEMO_ENTRIES) memo.clear();
          memo.set(text, hit);
        }
        return hit;
      },
    };
    if (regexCache.size >= 64) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

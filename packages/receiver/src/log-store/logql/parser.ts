/**
 * A parser for the LogQL subset this receiver answers (grafana/loki pkg/logql/syntax/syntax.y is the
 * reference). What it takes:
 *
 *   log queries     {a="x", b!="y", c=~"re", d!~"re"} followed by stages:
 *                   |= "s"  != "s"  |~ "re"  !~ "re"   (chained; `|= "a" or "b"`)
 *                   | json [k="a.b[0]", …]   | logfmt [--strict] [--keep-empty] [k="key", …]   | regexp "(?P<n>…)"
 *                   | <label filter>: name = != =~ !~ "s", name == != > >= < <= 5 | 250ms | 20MB, combined with
 *                     and , (or a space), or, parentheses
 *                   | drop a, b="v"   | keep a, b   | line_format "{{.a}}"   | label_format a=b, c="{{.d}}"
 *   metric queries  count_over_time | rate | bytes_over_time | bytes_rate | absent_over_time ( <log query> [5m] [offset 1h] )
 *                   sum | avg | min | max | count | stddev | stdvar [by|without (…)] ( … ) [by|without (…)]
 *                   topk | bottomk (k, …), sort, sort_desc
 *                   + - * / % ^ == != > >= < <= [bool] between metric queries and numbers; vector(n); (…)
 *
 * Everything else (unwrap and the *_over_time of unwrapped values, pattern, ip(), unpack, decolorize,
 * distinct, label_replace, on/ignoring/group_left, and/or/unless between vectors, offset on
 * selectors…) is a ParseError naming the construct, answered 400 as Loki answers a syntax error:
 * `parse error at line 1, col N: syntax error: …`.
 */
import type { LabelMatcher } from '../loki-entry';
import type {
  BinaryOp,
  CompareOp,
  Expr,
  LabelFilterExpr,
  LabelItem,
  LogExpr,
  MetricExpr,
  Stage,
  VectorOp,
} from './ast';
import { regex } from './regex';
import { parseTemplate, TemplateError } from './template';

export class ParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParseError';
  }
}

type TokKind = 'ident' | 'string' | 'number' | 'duration' | 'bytes' | 'op' | 'eof';
interface Token {
  kind: TokKind;
  text: string;
  /** Decoded string value, for strings. */
  value?: string;
  line: number;
  col: number;
}

const OPS = [
  '--strict',
  '--keep-empty',
  '|=',
  '|~',
  '|>',
  '!=',
  '!~',
  '!>',
  '=~',
  '==',
  '>=',
  '<=',
  '|',
  '=',
  '>',
  '<',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  ',',
  '+',
  '-',
  '*',
  '/',
  '%',
  '^',
  '@',
];

const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+(?![\w.])/;
const BYTES_RE =
  /^\d+(?:\.\d+)?(?:b|kib|kb|mib|mb|gib|gb|tib|tb|pib|pb|eib|eb|ki|k|mi|m|gi|g|ti|t|pi|p|ei|e)(?![\w.])/i;
const NUMBER_RE = /^(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)(?![\w.])/;

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const err = (at: number, msg: string) =>
    new ParseError(`parse error at line ${line}, col ${at - lineStart + 1}: ${msg}`);
  while (i < src.length) {
    const c = src[i];
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    const col = i - lineStart + 1;
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\n') break;
        j += src[j] === '\\' ? 2 : 1;
      }
      if (j >= src.length || src[j] !== '"') throw err(i, 'syntax error: unterminated string literal');
      const text = src.slice(i, j + 1);
      let value: string;
      try {
        value = unquote(text.slice(1, -1));
      } catch {
        throw err(i, `syntax error: invalid escape in string ${text}`);
      }
      out.push({ kind: 'string', text, value, line, col });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw err(i, 'syntax error: unterminated raw string literal');
      const text = src.slice(i, j + 1);
      out.push({ kind: 'string', text, value: text.slice(1, -1), line, col });
      for (let k = i; k < j; k++) {
        if (src[k] === '\n') {
          line++;
          lineStart = k + 1;
        }
      }
      i = j + 1;
      continue;
    }
    const rest = src.slice(i, i + 64);
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const d = DURATION_RE.exec(rest);
      const b = d ? null : BYTES_RE.exec(rest);
      const n = d || b ? null : NUMBER_RE.exec(rest);
      const m = d ?? b ?? n;
      if (!m) throw err(i, `syntax error: unexpected "${/^[\w.]+/.exec(rest)?.[0] ?? c}"`);
      out.push({ kind: d ? 'duration' : b ? 'bytes' : 'number', text: m[0], line, col });
      i += m[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i, i + 1024))!;
      out.push({ kind: 'ident', text: m[0], line, col });
      i += m[0].length;
      continue;
    }
    if (c === '$')
      throw err(i, `syntax error: unexpected "$": substitute the variable "${/^\$\{?\w*\}?/.exec(rest)?.[0]}" first`);
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw err(i, `syntax error: unexpected character "${c}"`);
    out.push({ kind: 'op', text: op, line, col });
    i += op.length;
  }
  out.push({ kind: 'eof', text: '', line, col: i - lineStart + 1 });
  return out;
}

/** Go's strconv.Unquote for the body of a double-quoted string. */
function unquote(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = body[++i];
    const simple: Record<string, string> = {
      a: '\x07',
      b: '\b',
      f: '\f',
      n: '\n',
      r: '\r',
      t: '\t',
      v: '\v',
      '\\': '\\',
      '"': '"',
      "'": "'",
    };
    if (n !== undefined && Object.hasOwn(simple, n)) out += simple[n];
    else if (n === 'x' || n === 'u' || n === 'U') {
      const len = n === 'x' ? 2 : n === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw new Error('bad escape');
      out += n === 'x' ? String.fromCharCode(Number.parseInt(hex, 16)) : String.fromCodePoint(Number.parseInt(hex, 16));
      i += len;
    } else if (n !== undefined && /[0-7]/.test(n)) {
      const oct = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct)) throw new Error('bad escape');
      out += String.fromCharCode(Number.parseInt(oct, 8));
      i += 2;
    } else throw new Error('bad escape');
  }
  return out;
}

const RANGE_FUNCTIONS = new Set(['count_over_time', 'rate', 'bytes_over_time', 'bytes_rate', 'absent_over_time']);
const UNWRAP_FUNCTIONS = new Set([
  'sum_over_time',
  'avg_over_time',
  'min_over_time',
  'max_over_time',
  'first_over_time',
  'last_over_time',
  'stddev_over_time',
  'stdvar_over_time',
  'quantile_over_time',
  'rate_counter',
]);
const VECTOR_OPS = new Set([
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'sort',
  'sort_desc',
]);
const UNSUPPORTED_FUNCTIONS = new Set(['label_replace', 'approx_topk', 'absent', 'scalar', 'vector_of']);
const UNSUPPORTED_STAGES: Record<string, string> = {
  unwrap: 'unwrap',
  pattern: 'the pattern parser',
  unpack: 'unpack',
  decolorize: 'decolorize',
  distinct: 'distinct',
};

/** Query text and nesting bounds: a query is data from the network. */
export interface ParseLimits {
  /** Longest query text, in characters. */
  maxLength?: number;
  /** Deepest nesting of parentheses and operators. */
  maxDepth?: number;
}

export const DEFAULT_MAX_QUERY_CHARS = 16_384;
const DEFAULT_MAX_DEPTH = 64;

/** Parses a LogQL query: a log query or a metric query. */
export function parseQuery(text: string, limits: ParseLimits = {}): Expr {
  const maxLength = limits.maxLength ?? DEFAULT_MAX_QUERY_CHARS;
  if (text.length > maxLength) {
    throw new ParseError(`parse error : the query is ${text.length} characters long, over the limit of ${maxLength}`);
  }
  if (text.trim() === '') throw new ParseError('parse error : syntax error: the query is empty');
  const p = new Parser(lex(text), limits.maxDepth ?? DEFAULT_MAX_DEPTH);
  const expr = p.parseTop();
  checkSelectors(expr);
  return expr;
}

/** Parses a stream selector alone (`/series`' match[], `/index/stats`' query); `{}` is taken when `allowEmpty`. */
export function parseSelector(text: string, allowEmpty = false): LabelMatcher[] {
  if (text.length > DEFAULT_MAX_QUERY_CHARS) {
    throw new ParseError(
      `parse error : the selector is ${text.length} characters long, over the limit of ${DEFAULT_MAX_QUERY_CHARS}`,
    );
  }
  const p = new Parser(lex(text), DEFAULT_MAX_DEPTH);
  const matchers = p.parseSelectorOnly();
  if (!(allowEmpty && matchers.length === 0)) checkMatchers(matchers);
  return matchers;
}

const EMPTY_COMPATIBLE =
  'parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will';

function checkMatchers(matchers: LabelMatcher[]): void {
  const ok = matchers.some((m) => {
    if (m.op === '=') return m.value !== '';
    if (m.op === '=~') return !regex(m.value).full('');
    return false;
  });
  if (!ok) throw new ParseError(EMPTY_COMPATIBLE);
}

function checkSelectors(e: Expr): void {
  switch (e.kind) {
    case 'log':
      checkMatchers(e.matchers);
      return;
    case 'range':
      checkMatchers(e.log.matchers);
      return;
    case 'vector_agg':
      checkSelectors(e.inner);
      return;
    case 'binary':
      checkSelectors(e.left);
      checkSelectors(e.right);
      return;
    default:
      return;
  }
}

/** Binary operator precedence (PromQL's): higher binds tighter. */
const PRECEDENCE: Record<string, number> = {
  or: 1,
  and: 2,
  unless: 2,
  '==': 3,
  '!=': 3,
  '>': 3,
  '>=': 3,
  '<': 3,
  '<=': 3,
  '+': 4,
  '-': 4,
  '*': 5,
  '/': 5,
  '%': 5,
  '^': 6,
};

class Parser {
  private i = 0;
  private depth = 0;
  constructor(
    private readonly toks: Token[],
    private readonly maxDepth: number,
  ) {}

  private peek(k = 0): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)];
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  private is(text: string, k = 0): boolean {
    const t = this.peek(k);
    return (t.kind === 'op' || t.kind === 'ident') && t.text === text;
  }
  private fail(t: Token, message: string): ParseError {
    return new ParseError(`parse error at line ${t.line}, col ${t.col}: syntax error: ${message}`);
  }
  private unexpected(t: Token, expecting?: string): ParseError {
    const what =
      t.kind === 'eof' ? 'end of input' : t.kind === 'op' ? `"${t.text}"` : `${t.kind.toUpperCase()} ${t.text}`;
    return this.fail(t, `unexpected ${what}${expecting ? `, expecting ${expecting}` : ''}`);
  }
  private unsupported(t: Token, what: string): ParseError {
    return this.fail(
      t,
      `${what} is not supported by this receiver's LogQL (see the receiver README, "Loki query API")`,
    );
  }
  private expect(text: string): Token {
    const t = this.next();
    if (!((t.kind === 'op' || t.kind === 'ident') && t.text === text)) throw this.unexpected(t, `"${text}"`);
    return t;
  }
  private enter(t: Token) {
    if (++this.depth > this.maxDepth) throw this.fail(t, `the query nests deeper than ${this.maxDepth} levels`);
  }
  private leave() {
    this.depth--;
  }

  parseTop(): Expr {
    const e = this.expr(0);
    const t = this.peek();
    if (t.kind !== 'eof') throw this.unexpected(t);
    return e;
  }

  parseSelectorOnly(): LabelMatcher[] {
    const m = this.selector();
    const t = this.peek();
    if (t.kind !== 'eof') throw this.unexpected(t);
    return m;
  }

  /** A log query or a metric expression with binary operators of precedence ≥ minPrec. */
  private expr(minPrec: number): Expr {
    let left: Expr = this.unary();
    for (;;) {
      const t = this.peek();
      const op = t.kind === 'op' || t.kind === 'ident' ? t.text : '';
      const prec = PRECEDENCE[op];
      if (prec === undefined || prec < minPrec) break;
      if (op === 'and' || op === 'or' || op === 'unless') throw this.unsupported(t, `the set operator "${op}"`);
      this.next();
      this.enter(t);
      let bool = false;
      if (this.is('bool')) {
        if (!['==', '!=', '>', '>=', '<', '<='].includes(op)) throw this.unexpected(this.peek());
        this.next();
        bool = true;
      }
      if (this.is('on') || this.is('ignoring'))
        throw this.unsupported(this.peek(), `vector matching "${this.peek().text}"`);
      // ^ is right-associative.
      const right = this.expr(op === '^' ? prec : prec + 1);
      this.leave();
      if (left.kind === 'log' || right.kind === 'log') {
        throw this.fail(t, `unexpected "${op}": binary operators apply to metric queries, not to log queries`);
      }
      left = { kind: 'binary', op: op as BinaryOp, bool, left, right };
    }
    return left;
  }

  private unary(): Expr {
    const t = this.peek();
    if (t.kind === 'op' && (t.text === '-' || t.text === '+')) {
      this.next();
      this.enter(t);
      const e = this.unary();
      this.leave();
      if (e.kind === 'log') throw this.unexpected(t);
      if (t.text === '+') return e;
      if (e.kind === 'literal') return { kind: 'literal', value: -e.value };
      return { kind: 'binary', op: '*', bool: false, left: { kind: 'literal', value: -1 }, right: e };
    }
    return this.primary();
  }

  private primary(): Expr {
    const t = this.peek();
    if (t.kind === 'op' && t.text === '{') return this.logExpr();
    if (t.kind === 'op' && t.text === '(') {
      this.next();
      this.enter(t);
      const e = this.expr(0);
      this.leave();
      this.expect(')');
      return e;
    }
    if (t.kind === 'number') {
      this.next();
      return { kind: 'literal', value: Number(t.text) };
    }
    if (t.kind === 'ident') {
      const name = t.text;
      if (RANGE_FUNCTIONS.has(name)) return this.rangeAgg();
      if (VECTOR_OPS.has(name)) return this.vectorAgg();
      if (name === 'vector') {
        this.next();
        this.expect('(');
        const n = this.next();
        if (n.kind !== 'number') throw this.unexpected(n, 'a number');
        this.expect(')');
        return { kind: 'vector', value: Number(n.text) };
      }
      if (UNWRAP_FUNCTIONS.has(name)) throw this.unsupported(t, `"${name}" (range aggregations of unwrapped values)`);
      if (UNSUPPORTED_FUNCTIONS.has(name)) throw this.unsupported(t, `"${name}"`);
      if (name === 'NaN' || name === 'Inf') {
        this.next();
        return { kind: 'literal', value: name === 'NaN' ? Number.NaN : Number.POSITIVE_INFINITY };
      }
    }
    throw this.unexpected(t);
  }

  private logExpr(): LogExpr {
    const matchers = this.selector();
    return { kind: 'log', matchers, stages: this.stages() };
  }

  private selector(): LabelMatcher[] {
    this.expect('{');
    const matchers: LabelMatcher[] = [];
    while (!this.is('}')) {
      if (matchers.length > 0) this.expect(',');
      const name = this.next();
      if (name.kind !== 'ident') throw this.unexpected(name, 'IDENTIFIER');
      const opTok = this.next();
      if (!(opTok.kind === 'op' && ['=', '!=', '=~', '!~'].includes(opTok.text))) {
        throw this.unexpected(opTok, '"=", "!=", "=~" or "!~"');
      }
      const v = this.next();
      if (v.kind !== 'string') throw this.unexpected(v, 'STRING');
      const op = opTok.text as LabelMatcher['op'];
      if (op === '=~' || op === '!~') this.checkRegex(v);
      matchers.push({ name: name.text, op, value: v.value! });
    }
    this.expect('}');
    return matchers;
  }

  private checkRegex(t: Token): void {
    try {
      regex(t.value!);
    } catch (err) {
      throw new ParseError(
        `parse error at line ${t.line}, col ${t.col}: error parsing regexp: ${(err as Error).message.replace(/^error parsing regexp: /, '')} (RE2 syntax: no backreferences or lookaround)`,
      );
    }
  }

  private stages(): Stage[] {
    const stages: Stage[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op') return stages;
      if (['|=', '!=', '|~', '!~'].includes(t.text)) {
        // `!=` after a selector or a stage is a line filter.
        this.next();
        stages.push({ kind: 'line', filter: this.lineFilter(t.text as '|=' | '!=' | '|~' | '!~') });
        continue;
      }
      if (t.text === '|>' || t.text === '!>') throw this.unsupported(t, `the pattern line filter "${t.text}"`);
      if (t.text !== '|') return stages;
      this.next();
      stages.push(this.stage());
    }
  }

  private lineFilter(op: '|=' | '!=' | '|~' | '!~'): { op: typeof op; values: string[] } {
    const values: string[] = [];
    for (;;) {
      const v = this.next();
      if (v.kind === 'ident' && v.text === 'ip') throw this.unsupported(v, 'the ip() line filter');
      if (v.kind !== 'string') throw this.unexpected(v, 'STRING');
      if (op === '|~' || op === '!~') this.checkRegex(v);
      values.push(v.value!);
      if (!this.is('or') || this.peek(1).kind !== 'string') return { op, values };
      this.next();
    }
  }

  private stage(): Stage {
    const t = this.peek();
    if (t.kind === 'ident') {
      if (Object.hasOwn(UNSUPPORTED_STAGES, t.text) && !this.isLabelFilterStart()) {
        throw this.unsupported(t, UNSUPPORTED_STAGES[t.text]);
      }
      switch (t.text) {
        case 'json':
          if (this.isLabelFilterStart()) break;
          this.next();
          return { kind: 'json', fields: this.jsonFields() };
        case 'logfmt': {
          if (this.isLabelFilterStart()) break;
          this.next();
          let strict = false;
          let keepEmpty = false;
          while (this.is('--strict') || this.is('--keep-empty')) {
            if (this.next().text === '--strict') strict = true;
            else keepEmpty = true;
          }
          const fields = this.extractionFields();
          return {
            kind: 'logfmt',
            strict,
            keepEmpty,
            fields: fields?.map((f) => ({ name: f.name, key: f.expr })),
          };
        }
        case 'regexp': {
          if (this.isLabelFilterStart()) break;
          this.next();
          const v = this.next();
          if (v.kind !== 'string') throw this.unexpected(v, 'STRING');
          this.checkRegex(v);
          if (Object.keys(regex(v.value!).compiled.namedGroups()).length === 0) {
            throw this.fail(v, 'the regexp parser needs at least one named capture group (?P<name>…)');
          }
          return { kind: 'regexp', pattern: v.value! };
        }
        case 'line_format': {
          if (this.isLabelFilterStart()) break;
          this.next();
          const v = this.next();
          if (v.kind !== 'string') throw this.unexpected(v, 'STRING');
          return { kind: 'line_format', template: this.template(v, 'line') };
        }
        case 'label_format': {
          if (this.isLabelFilterStart()) break;
          this.next();
          const ops: { dst: string; src?: string; template?: ReturnType<typeof parseTemplate> }[] = [];
          do {
            if (ops.length > 0) this.next();
            const dst = this.next();
            if (dst.kind !== 'ident') throw this.unexpected(dst, 'IDENTIFIER');
            this.expect('=');
            const v = this.next();
            if (v.kind === 'ident') ops.push({ dst: dst.text, src: v.text });
            else if (v.kind === 'string') ops.push({ dst: dst.text, template: this.template(v, 'label') });
            else throw this.unexpected(v, 'IDENTIFIER or STRING');
          } while (this.is(','));
          return { kind: 'label_format', ops };
        }
        case 'drop':
        case 'keep': {
          if (this.isLabelFilterStart()) break;
          this.next();
          return { kind: t.text, items: this.labelItems() };
        }
        default:
          break;
      }
    }
    if (t.kind === 'ident' || (t.kind === 'op' && t.text === '(')) {
      return { kind: 'label', expr: this.labelFilterOr() };
    }
    throw this.unexpected(t);
  }

  /** Whether the next tokens read `name <op>`: a label filter on a label named like a keyword. */
  private isLabelFilterStart(): boolean {
    const n = this.peek(1);
    return n.kind === 'op' && ['=', '!=', '=~', '!~', '==', '>', '>=', '<', '<='].includes(n.text);
  }

  private template(t: Token, what: 'line' | 'label') {
    try {
      return parseTemplate(t.value!);
    } catch (err) {
      if (err instanceof TemplateError) throw this.fail(t, `invalid ${what} template: ${err.message}`);
      throw err;
    }
  }

  /** `name="expr", …` after a parser, when present. */
  private extractionFields(): { name: string; expr: string }[] | undefined {
    const out: { name: string; expr: string }[] = [];
    while (this.peek().kind === 'ident' && !this.isKeywordAfterStage()) {
      const name = this.next();
      if (this.is('=')) {
        this.next();
        const v = this.next();
        if (v.kind !== 'string') throw this.unexpected(v, 'STRING');
        out.push({ name: name.text, expr: v.value! });
      } else out.push({ name: name.text, expr: name.text });
      if (!this.is(',')) break;
      this.next();
    }
    return out.length > 0 ? out : undefined;
  }

  private isKeywordAfterStage(): boolean {
    return this.is('or') || this.is('offset') || this.is('by') || this.is('without');
  }

  private jsonFields(): { name: string; path: (string | number)[] }[] | undefined {
    const fields = this.extractionFields();
    return fields?.map((f) => ({
      name: f.name,
      path: jsonPath(f.expr, () => this.fail(this.peek(), `invalid JSON path "${f.expr}"`)),
    }));
  }

  private labelItems(): LabelItem[] {
    const items: LabelItem[] = [];
    do {
      if (items.length > 0) this.next();
      const name = this.next();
      if (name.kind !== 'ident') throw this.unexpected(name, 'IDENTIFIER');
      const op = this.peek();
      if (op.kind === 'op' && ['=', '!=', '=~', '!~'].includes(op.text)) {
        this.next();
        const v = this.next();
        if (v.kind !== 'string') throw this.unexpected(v, 'STRING');
        if (op.text === '=~' || op.text === '!~') this.checkRegex(v);
        items.push({
          name: name.text,
          matcher: { name: name.text, op: op.text as LabelMatcher['op'], value: v.value! },
        });
      } else items.push({ name: name.text });
    } while (this.is(','));
    return items;
  }

  private labelFilterOr(): LabelFilterExpr {
    let left = this.labelFilterAnd();
    while (this.is('or')) {
      const t = this.next();
      this.enter(t);
      left = { kind: 'or', left, right: this.labelFilterAnd() };
      this.leave();
    }
    return left;
  }

  private labelFilterAnd(): LabelFilterExpr {
    let left = this.labelFilterUnary();
    for (;;) {
      const t = this.peek();
      let joined = false;
      if (this.is('and') || this.is(',')) {
        this.next();
        joined = true;
      } else if (
        (t.kind === 'ident' && !this.isKeywordAfterStage() && this.isLabelFilterStart()) ||
        (t.kind === 'op' && t.text === '(')
      ) {
        joined = true;
      }
      if (!joined) return left;
      this.enter(t);
      left = { kind: 'and', left, right: this.labelFilterUnary() };
      this.leave();
    }
  }

  private labelFilterUnary(): LabelFilterExpr {
    const t = this.peek();
    if (t.kind === 'op' && t.text === '(') {
      this.next();
      this.enter(t);
      const e = this.labelFilterOr();
      this.leave();
      this.expect(')');
      return e;
    }
    const name = this.next();
    if (name.kind !== 'ident') throw this.unexpected(name, 'IDENTIFIER');
    const opTok = this.next();
    if (opTok.kind !== 'op' || !['=', '!=', '=~', '!~', '==', '>', '>=', '<', '<='].includes(opTok.text)) {
      throw this.unexpected(opTok, 'a comparison operator');
    }
    const v = this.next();
    if (v.kind === 'ident' && v.text === 'ip') throw this.unsupported(v, 'the ip() label filter');
    if (v.kind === 'string') {
      const op = opTok.text === '==' ? '=' : opTok.text;
      if (!['=', '!=', '=~', '!~'].includes(op)) throw this.unexpected(v, 'a number, duration or bytes value');
      if (op === '=~' || op === '!~') this.checkRegex(v);
      return { kind: 'string', name: name.text, op: op as LabelMatcher['op'], value: v.value! };
    }
    if (opTok.text === '=~' || opTok.text === '!~') throw this.unexpected(v, 'STRING');
    const op = (opTok.text === '=' ? '==' : opTok.text) as CompareOp;
    let sign = 1;
    let num = v;
    if (v.kind === 'op' && v.text === '-') {
      sign = -1;
      num = this.next();
    }
    if (num.kind === 'number')
      return { kind: 'number', name: name.text, op, value: sign * Number(num.text), unit: 'number' };
    if (num.kind === 'duration') {
      return { kind: 'number', name: name.text, op, value: sign * parseDurationSeconds(num.text), unit: 'duration' };
    }
    if (num.kind === 'bytes')
      return { kind: 'number', name: name.text, op, value: sign * parseBytes(num.text), unit: 'bytes' };
    throw this.unexpected(num, 'STRING, NUMBER, DURATION or BYTES');
  }

  private grouping(): { without: boolean; labels: string[] } | undefined {
    if (!this.is('by') && !this.is('without')) return undefined;
    const without = this.next().text === 'without';
    this.expect('(');
    const labels: string[] = [];
    while (!this.is(')')) {
      if (labels.length > 0) this.expect(',');
      const l = this.next();
      if (l.kind !== 'ident') throw this.unexpected(l, 'IDENTIFIER');
      labels.push(l.text);
    }
    this.expect(')');
    return { without, labels };
  }

  private rangeAgg(): MetricExpr {
    const fnTok = this.next();
    this.enter(fnTok);
    this.expect('(');
    let log: LogExpr;
    let parens = 0;
    while (this.is('(')) {
      this.next();
      parens++;
    }
    log = this.logExpr();
    for (; parens > 0; parens--) this.expect(')');
    const open = this.expect('[');
    const d = this.next();
    if (d.kind !== 'duration' && !(d.kind === 'number' && d.text === '0'))
      throw this.unexpected(d, 'a DURATION such as 5m');
    const rangeNs = parseDurationNs(d.text);
    if (rangeNs <= 0n) throw this.fail(open, 'the range must be positive');
    this.expect(']');
    // `{…}[5m] |= "x"`: stages after the range (older syntax) apply too.
    const after = this.stages();
    if (after.length > 0) log = { ...log, stages: [...log.stages, ...after] };
    let offsetNs = 0n;
    if (this.is('offset')) {
      this.next();
      const o = this.next();
      if (o.kind !== 'duration') throw this.unexpected(o, 'DURATION');
      offsetNs = parseDurationNs(o.text);
    }
    if (this.is('by') || this.is('without'))
      throw this.unsupported(this.peek(), `"${this.peek().text}" on a range aggregation`);
    this.expect(')');
    if (this.is('by') || this.is('without'))
      throw this.unsupported(this.peek(), `"${this.peek().text}" on a range aggregation`);
    this.leave();
    return { kind: 'range', fn: fnTok.text as 'rate', log, rangeNs, offsetNs };
  }

  private vectorAgg(): MetricExpr {
    const opTok = this.next();
    const op = opTok.text as VectorOp;
    this.enter(opTok);
    let grouping = this.grouping();
    this.expect('(');
    let param: number | undefined;
    if (op === 'topk' || op === 'bottomk') {
      const n = this.next();
      if (n.kind !== 'number') throw this.unexpected(n, 'NUMBER');
      param = Number(n.text);
      if (!Number.isInteger(param) || param < 1)
        throw this.fail(n, `invalid parameter for ${op}: ${n.text} (a positive integer)`);
      this.expect(',');
    }
    const inner = this.expr(0);
    if (inner.kind === 'log') throw this.fail(opTok, `${op} needs a metric query inside, not a log query`);
    this.expect(')');
    const after = this.grouping();
    if (after) {
      if (grouping) throw this.unexpected(this.peek());
      grouping = after;
    }
    if ((op === 'sort' || op === 'sort_desc') && grouping) throw this.fail(opTok, `${op} takes no grouping`);
    this.leave();
    return { kind: 'vector_agg', op, param, grouping, inner };
  }
}

/** A JSON path as Loki's `json k="a.b[0]"` takes it: names joined by dots, [n] indexes, ["name"]. */
function jsonPath(expr: string, fail: () => Error): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /\.?([A-Za-z_][\w-]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/y;
  let pos = 0;
  while (pos < expr.length) {
    re.lastIndex = pos;
    const m = re.exec(expr);
    if (!m || (m[0].startsWith('.') && pos === 0)) throw fail();
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else out.push(JSON.parse(`"${m[3]}"`) as string);
    pos = re.lastIndex;
  }
  if (out.length === 0) throw fail();
  return out;
}

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
  w: 604_800_000_000_000n,
  y: 31_536_000_000_000_000n,
};

/** A Prometheus/Go duration (`1h30m`, `250ms`, `1.5s`) in ns; throws on anything else. */
export function parseDurationNs(text: string): bigint {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)/y;
  let pos = 0;
  let total = 0n;
  if (text === '0') return 0n;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new Error(`invalid duration "${text}"`);
    const [whole, frac = ''] = m[1].split('.');
    const unit = UNIT_NS[m[2]];
    total += BigInt(whole) * unit;
    if (frac) total += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    pos = re.lastIndex;
  }
  if (pos === 0) throw new Error(`invalid duration "${text}"`);
  return total;
}

function parseDurationSeconds(text: string): number {
  return Number(parseDurationNs(text)) / 1e9;
}

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  k: 1e3,
  kb: 1e3,
  ki: 1024,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1e12,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
  p: 1e15,
  pb: 1e15,
  pi: 1024 ** 5,
  pib: 1024 ** 5,
  e: 1e18,
  eb: 1e18,
  ei: 1024 ** 6,
  eib: 1024 ** 6,
};

/** A humanized byte size (`20MB`, `1.5KiB`, `300`) as a number of bytes; NaN when it is not one. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return Number.NaN;
  const unit = m[2].toLowerCase();
  if (unit === '') return Number(m[1]);
  const f = BYTE_UNITS[unit];
  return f === undefined ? Number.NaN : Number(m[1]) * f;
}

/** A Go duration in a label value (`250ms`, `1h2m`, `-1.5s`) in seconds; NaN when it is not one. */
export function parseDurationValue(text: string): number {
  const t = text.trim();
  const neg = t.startsWith('-');
  const body = neg || t.startsWith('+') ? t.slice(1) : t;
  if (body === '0') return 0;
  if (!/^(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+$/.test(body)) return Number.NaN;
  let total = 0;
  const scale: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  for (const m of body.matchAll(/(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * scale[m[2]];
  return neg ? -total : total;
}

/**
 * The part of Go's text/template that LogQL's `line_format` and `label_format` take, as Grafana and
 * people write them: text with `{{ … }}` actions (`{{-`/`-}}` trim), pipelines `a | f x`, operands
 * `.label`, `__line__`, `__timestamp__`, strings ("…" or `…`), numbers and parenthesized pipelines, and
 * the functions in FUNCTIONS (Loki's names, sprig's argument order: the piped value comes last).
 * Control structures (`if`, `range`, `with`, `define`…) and variables are refused.
 */
import { RE2JS } from 're2js';

export class TemplateError extends Error {}

type Value = string | number | boolean | Date;

type Operand =
  | { kind: 'field'; name: string }
  | { kind: 'line' }
  | { kind: 'timestamp' }
  | { kind: 'literal'; value: Value }
  | { kind: 'call'; fn: string }
  | { kind: 'pipe'; pipe: Command[] };
type Command = Operand[];
type Part = { kind: 'text'; text: string } | { kind: 'action'; pipe: Command[] };

export interface Template {
  source: string;
  parts: Part[];
}

export interface TemplateData {
  get(name: string): string | undefined;
  line: string;
  timeNs: bigint;
}

const str = (v: Value): string => {
  if (v instanceof Date) return goTime(v);
  return String(v);
};

function goTime(d: Date): string {
  // Go's time.Time String(): 2006-01-02 15:04:05.999999999 +0000 UTC
  const iso = d.toISOString();
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''} +0000 UTC`;
}

const FUNCTIONS: Record<string, { min: number; max: number; fn: (...a: Value[]) => Value }> = {
  contains: { min: 2, max: 2, fn: (sub, s) => str(s).includes(str(sub)) },
  hasPrefix: { min: 2, max: 2, fn: (s, p) => str(s).startsWith(str(p)) },
  hasSuffix: { min: 2, max: 2, fn: (s, p) => str(s).endsWith(str(p)) },
  lower: { min: 1, max: 1, fn: (s) => str(s).toLowerCase() },
  upper: { min: 1, max: 1, fn: (s) => str(s).toUpperCase() },
  ToLower: { min: 1, max: 1, fn: (s) => str(s).toLowerCase() },
  ToUpper: { min: 1, max: 1, fn: (s) => str(s).toUpperCase() },
  title: { min: 1, max: 1, fn: (s) => str(s).replace(/\b\w/g, (c) => c.toUpperCase()) },
  trim: { min: 1, max: 1, fn: (s) => str(s).trim() },
  TrimSpace: { min: 1, max: 1, fn: (s) => str(s).trim() },
  trimPrefix: { min: 2, max: 2, fn: (p, s) => (str(s).startsWith(str(p)) ? str(s).slice(str(p).length) : str(s)) },
  trimSuffix: {
    min: 2,
    max: 2,
    fn: (p, s) => (str(p) !== '' && str(s).endsWith(str(p)) ? str(s).slice(0, -str(p).length) : str(s)),
  },
  default: { min: 2, max: 2, fn: (d, v) => (v === '' || v === 0 || v === false ? d : v) },
  replace: { min: 3, max: 3, fn: (o, n, s) => str(s).split(str(o)).join(str(n)) },
  Replace: { min: 4, max: 4, fn: (s, o, n, c) => replaceN(str(s), str(o), str(n), Number(c)) },
  regexReplaceAll: { min: 3, max: 3, fn: (re, s, r) => compile(str(re)).matcher(str(s)).replaceAll(str(r)) },
  regexReplaceAllLiteral: {
    min: 3,
    max: 3,
    fn: (re, s, r) =>
      compile(str(re))
        .matcher(str(s))
        .replaceAll(RE2JS.quoteReplacement(str(r))),
  },
  len: { min: 1, max: 1, fn: (s) => str(s).length },
  printf: { min: 1, max: 32, fn: (f, ...a) => printf(str(f), a) },
  eq: { min: 2, max: 2, fn: (a, b) => str(a) === str(b) },
  ne: { min: 2, max: 2, fn: (a, b) => str(a) !== str(b) },
  not: { min: 1, max: 1, fn: (a) => !truthy(a) },
  and: { min: 2, max: 2, fn: (a, b) => (truthy(a) ? b : a) },
  or: { min: 2, max: 2, fn: (a, b) => (truthy(a) ? a : b) },
};

const truthy = (v: Value) => !(v === '' || v === 0 || v === false);

function replaceN(s: string, o: string, n: string, count: number): string {
  if (count < 0) return s.split(o).join(n);
  let out = s;
  let from = 0;
  for (let i = 0; i < count; i++) {
    const at = out.indexOf(o, from);
    if (at < 0) break;
    out = out.slice(0, at) + n + out.slice(at + o.length);
    from = at + n.length;
  }
  return out;
}

const regexes = new Map<string, RE2JS>();
function compile(re: string): RE2JS {
  let c = regexes.get(re);
  if (!c) {
    try {
      c = RE2JS.compile(re);
    } catch (err) {
      throw new TemplateError(`invalid regular expression ${JSON.stringify(re)}: ${(err as Error).message}`);
    }
    if (regexes.size > 64) regexes.clear();
    regexes.set(re, c);
  }
  return c;
}

/** Go's fmt for the common verbs: %s %v %q %d %f (with width/precision), %x, %%. */
function printf(format: string, args: Value[]): string {
  let i = 0;
  return format.replace(/%([-+ 0#]*)(\d+)?(?:\.(\d+))?([svqdfgxXt%])/g, (_m, flags: string, width, prec, verb) => {
    if (verb === '%') return '%';
    if (i >= args.length) return `%!${verb}(MISSING)`;
    const a = args[i++];
    let out: string;
    switch (verb) {
      case 'd':
        out = typeof a === 'number' ? String(Math.trunc(a)) : `%!d(string=${str(a)})`;
        break;
      case 'f':
        out = typeof a === 'number' ? a.toFixed(prec === undefined ? 6 : Number(prec)) : `%!f(string=${str(a)})`;
        break;
      case 'g':
        out = typeof a === 'number' ? String(a) : `%!g(string=${str(a)})`;
        break;
      case 'q':
        out = JSON.stringify(str(a));
        break;
      case 'x':
      case 'X': {
        const s = typeof a === 'number' ? Math.trunc(a).toString(16) : Buffer.from(str(a)).toString('hex');
        out = verb === 'X' ? s.toUpperCase() : s;
        break;
      }
      default:
        out = str(a);
        if (verb === 's' && prec !== undefined) out = out.slice(0, Number(prec));
    }
    if (width !== undefined && out.length < Number(width)) {
      const pad = (flags.includes('0') && verb !== 's' ? '0' : ' ').repeat(Number(width) - out.length);
      out = flags.includes('-') ? out + pad : pad + out;
    }
    return out;
  });
}

/** Parses a template; throws TemplateError naming what it does not take. */
export function parseTemplate(source: string): Template {
  const parts: Part[] = [];
  let pos = 0;
  let trimNext = false;
  while (pos < source.length) {
    const open = source.indexOf('{{', pos);
    let text = open < 0 ? source.slice(pos) : source.slice(pos, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text) parts.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (source.startsWith('- ', start) || source.startsWith('-\t', start) || source.startsWith('-\n', start)) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) parts.push({ kind: 'text', text });
    const close = findClose(source, start);
    if (close < 0) throw new TemplateError('unclosed action');
    let end = close;
    trimNext = false;
    if (/\s-$/.test(source.slice(start, close))) {
      end = close - 1;
      trimNext = true;
    }
    const body = source.slice(start, end).trim();
    if (body.startsWith('/*')) {
      pos = close + 2;
      continue;
    }
    parts.push({ kind: 'action', pipe: new ActionParser(body).parseAction() });
    pos = close + 2;
  }
  return { source, parts };
}

function findClose(s: string, from: number): number {
  let i = from;
  while (i < s.length) {
    const c = s[i];
    if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
    } else if (c === '`') {
      i = s.indexOf('`', i + 1);
      if (i < 0) return -1;
    } else if (c === '}' && s[i + 1] === '}') return i;
    i++;
  }
  return -1;
}

const UNSUPPORTED_KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break']);

class ActionParser {
  private pos = 0;
  constructor(private readonly s: string) {}

  parseAction(): Command[] {
    const first = /^[A-Za-z_]\w*/.exec(this.s)?.[0];
    if (first && UNSUPPORTED_KEYWORDS.has(first)) {
      throw new TemplateError(`"{{${first}}}" is not supported (only pipelines of fields and functions)`);
    }
    if (this.s.startsWith('$')) throw new TemplateError('template variables ($x) are not supported');
    const pipe = this.pipeline();
    this.ws();
    if (this.pos < this.s.length) throw new TemplateError(`unexpected "${this.s.slice(this.pos)}" in action`);
    return pipe;
  }

  private ws() {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos])) this.pos++;
  }

  private pipeline(): Command[] {
    const cmds: Command[] = [this.command()];
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '|') return cmds;
      this.pos++;
      cmds.push(this.command());
    }
  }

  private command(): Command {
    const ops: Operand[] = [];
    for (;;) {
      this.ws();
      const c = this.s[this.pos];
      if (c === undefined || c === '|' || c === ')') break;
      ops.push(this.operand());
    }
    if (ops.length === 0) throw new TemplateError('missing value for command');
    return ops;
  }

  private operand(): Operand {
    const s = this.s;
    const c = s[this.pos];
    if (c === '(') {
      this.pos++;
      const pipe = this.pipeline();
      this.ws();
      if (s[this.pos] !== ')') throw new TemplateError('unclosed parenthesis');
      this.pos++;
      return { kind: 'pipe', pipe };
    }
    if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(s.slice(this.pos));
      if (!m) throw new TemplateError('unterminated quoted string');
      this.pos += m[0].length;
      return { kind: 'literal', value: JSON.parse(m[0]) as string };
    }
    if (c === '`') {
      const end = s.indexOf('`', this.pos + 1);
      if (end < 0) throw new TemplateError('unterminated raw quoted string');
      const value = s.slice(this.pos + 1, end);
      this.pos = end + 1;
      return { kind: 'literal', value };
    }
    if (c === '.') {
      const m = /^\.([A-Za-z_]\w*)?/.exec(s.slice(this.pos))!;
      this.pos += m[0].length;
      if (!m[1]) throw new TemplateError('"." alone is not supported: name a label (.label)');
      if (s[this.pos] === '.') throw new TemplateError('nested fields (.a.b) are not supported');
      return { kind: 'field', name: m[1] };
    }
    const num = /^-?\d+(\.\d+)?/.exec(s.slice(this.pos));
    if (num) {
      this.pos += num[0].length;
      return { kind: 'literal', value: Number(num[0]) };
    }
    const id = /^[A-Za-z_]\w*/.exec(s.slice(this.pos));
    if (id) {
      this.pos += id[0].length;
      const name = id[0];
      if (name === '__line__') return { kind: 'line' };
      if (name === '__timestamp__') return { kind: 'timestamp' };
      if (name === 'true' || name === 'false') return { kind: 'literal', value: name === 'true' };
      if (!Object.hasOwn(FUNCTIONS, name)) {
        throw new TemplateError(
          `function "${name}" not defined (supported: ${Object.keys(FUNCTIONS).join(', ')}, __line__, __timestamp__)`,
        );
      }
      return { kind: 'call', fn: name };
    }
    throw new TemplateError(`unexpected "${c}" in operand`);
  }
}

/** Renders the template; throws TemplateError when a function fails (the line gets TemplateFormatErr). */
export function renderTemplate(t: Template, data: TemplateData): string {
  let out = '';
  for (const p of t.parts) {
    if (p.kind === 'text') out += p.text;
    else out += str(runPipe(p.pipe, data));
  }
  return out;
}

function runPipe(pipe: Command[], data: TemplateData): Value {
  let piped: Value | undefined;
  for (const cmd of pipe) piped = runCommand(cmd, data, piped);
  return piped as Value;
}

function runCommand(cmd: Command, data: TemplateData, piped: Value | undefined): Value {
  const [head, ...rest] = cmd;
  if (head.kind === 'call') {
    const f = FUNCTIONS[head.fn];
    const args = rest.map((o) => operandValue(o, data));
    if (piped !== undefined) args.push(piped);
    if (args.length < f.min || args.length > f.max) {
      throw new TemplateError(`wrong number of args for ${head.fn}: want ${f.min}, got ${args.length}`);
    }
    return f.fn(...args);
  }
  if (rest.length > 0 || piped !== undefined) throw new TemplateError("can't give argument to non-function");
  return operandValue(head, data);
}

function operandValue(o: Operand, data: TemplateData): Value {
  switch (o.kind) {
    case 'field':
      return data.get(o.name) ?? '';
    case 'line':
      return data.line;
    case 'timestamp':
      return new Date(Number(data.timeNs / 1_000_000n));
    case 'literal':
      return o.value;
    case 'pipe':
      return runPipe(o.pipe, data);
    case 'call': {
      const f = FUNCTIONS[o.fn];
      if (f.min > 0) throw new TemplateError(`wrong number of args for ${o.fn}: want ${f.min}, got 0`);
      return f.fn();
    }
  }
}

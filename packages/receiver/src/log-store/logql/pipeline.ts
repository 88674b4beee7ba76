/**
 * A log query's stages run on one entry: line filters, parsers (json, logfmt, regexp), label filters,
 * drop/keep, line_format and label_format, over the entry's labels in Loki's three categories (stream
 * labels, structured metadata, parsed labels). A stage that fails on a line (a line that is not JSON,
 * a label that is not a number…) keeps it and sets `__error__`, as Loki does.
 */
import type { LokiEntry } from '../loki-entry';
import type { LabelFilterExpr, LineFilter, Stage } from './ast';
import { parseBytes, parseDurationValue } from './parser';
import { matchesValue, regex } from './regex';
import { renderTemplate } from './template';

export const ERROR_LABEL = '__error__';
export const ERROR_DETAILS_LABEL = '__error_details__';

/** The labels of an entry going through a pipeline; stream and metadata are copied only when changed. */
export class EntryLabels {
  stream: Record<string, string>;
  meta: Record<string, string>;
  parsed: Record<string, string> = {};
  error?: string;
  errorDetails?: string;
  private ownStream = false;
  private ownMeta = false;

  constructor(entry: LokiEntry) {
    this.stream = entry.stream;
    this.meta = entry.metadata;
  }

  get(name: string): string | undefined {
    if (name === ERROR_LABEL) return this.error;
    if (name === ERROR_DETAILS_LABEL) return this.errorDetails;
    if (Object.hasOwn(this.parsed, name)) return this.parsed[name];
    if (Object.hasOwn(this.meta, name)) return this.meta[name];
    if (Object.hasOwn(this.stream, name)) return this.stream[name];
    return undefined;
  }

  /** Sets a parsed label (it leaves the other categories). */
  set(name: string, value: string): void {
    if (name === ERROR_LABEL) {
      this.error = value;
      return;
    }
    this.removeFromBase(name);
    this.parsed[name] = value;
  }

  delete(name: string): void {
    if (name === ERROR_LABEL) {
      this.error = undefined;
      this.errorDetails = undefined;
    } else if (name === ERROR_DETAILS_LABEL) this.errorDetails = undefined;
    else {
      delete this.parsed[name];
      this.removeFromBase(name);
    }
  }

  private removeFromBase(name: string): void {
    if (Object.hasOwn(this.meta, name)) {
      if (!this.ownMeta) {
        this.meta = { ...this.meta };
        this.ownMeta = true;
      }
      delete this.meta[name];
    }
    if (Object.hasOwn(this.stream, name)) {
      if (!this.ownStream) {
        this.stream = { ...this.stream };
        this.ownStream = true;
      }
      delete this.stream[name];
    }
  }

  setError(error: string, details: string): void {
    if (this.error !== undefined) return;
    this.error = error;
    this.errorDetails = details;
  }

  /** Every label name present (error labels included). */
  names(): string[] {
    const names = new Set([...Object.keys(this.stream), ...Object.keys(this.meta), ...Object.keys(this.parsed)]);
    if (this.error !== undefined) names.add(ERROR_LABEL);
    if (this.errorDetails !== undefined) names.add(ERROR_DETAILS_LABEL);
    return [...names];
  }

  /** Parsed labels plus the error labels, as Loki returns them in the "parsed" category. */
  parsedWithErrors(): Record<string, string> {
    if (this.error === undefined && this.errorDetails === undefined) return this.parsed;
    const out = { ...this.parsed };
    if (this.error !== undefined) out[ERROR_LABEL] = this.error;
    if (this.errorDetails !== undefined) out[ERROR_DETAILS_LABEL] = this.errorDetails;
    return out;
  }

  /** All labels in one set (stream, then metadata, then parsed, later ones winning). */
  all(): Record<string, string> {
    return { ...this.stream, ...this.meta, ...this.parsedWithErrors() };
  }
}

export interface PipelineResult {
  line: string;
  labels: EntryLabels;
}

export type Pipeline = (entry: LokiEntry) => PipelineResult | null;

/** Compiles stages into a function over entries: null when the entry is filtered out. */
export function compilePipeline(stages: readonly Stage[]): Pipeline {
  const steps = stages.map(compileStage);
  return (entry) => {
    const labels = new EntryLabels(entry);
    let line = entry.line;
    for (const step of steps) {
      const out = step(line, labels, entry.timeNs);
      if (out === null) return null;
      line = out;
    }
    return { line, labels };
  };
}

/**
 * For stages that change neither the line nor the labels (line filters, and `drop __error__`, which
 * has nothing to drop without a parser), a test of the line alone: the fast path of metric queries
 * (no label set is built per line). Undefined when a stage needs the full pipeline.
 */
export function compileLineOnly(stages: readonly Stage[]): ((line: string) => boolean) | undefined {
  const tests: ((line: string) => boolean)[] = [];
  for (const stage of stages) {
    if (stage.kind === 'line') {
      const f = lineFilter(stage.filter);
      tests.push((line) => f(line, undefined as unknown as EntryLabels, 0n) !== null);
    } else if (
      !(
        stage.kind === 'drop' &&
        stage.items.every((i) => !i.matcher && (i.name === ERROR_LABEL || i.name === ERROR_DETAILS_LABEL))
      )
    ) {
      return undefined;
    }
  }
  return (line) => tests.every((t) => t(line));
}

type Step = (line: string, labels: EntryLabels, timeNs: bigint) => string | null;

function compileStage(stage: Stage): Step {
  switch (stage.kind) {
    case 'line':
      return lineFilter(stage.filter);
    case 'label': {
      const test = labelFilter(stage.expr);
      return (line, labels) => (test(labels) ? line : null);
    }
    case 'json':
      return jsonParser(stage.fields);
    case 'logfmt':
      return logfmtParser(stage.strict, stage.keepEmpty, stage.fields);
    case 'regexp': {
      const re = regex(stage.pattern).compiled;
      const groups = Object.entries(re.namedGroups());
      return (line, labels) => {
        const m = re.matcher(line);
        if (m.find()) {
          for (const [name, index] of groups) {
            const v = m.group(index);
            if (v !== null && v !== undefined) labels.set(extractedName(name, labels), v);
          }
        }
        return line;
      };
    }
    case 'drop':
      return (line, labels) => {
        for (const item of stage.items) {
          const v = labels.get(item.name);
          if (v === undefined) continue;
          if (!item.matcher || matchesValue(item.matcher, v)) labels.delete(item.name);
        }
        return line;
      };
    case 'keep':
      return (line, labels) => {
        for (const name of labels.names()) {
          if (name === ERROR_LABEL || name === ERROR_DETAILS_LABEL) continue;
          const keep = stage.items.some(
            (item) => item.name === name && (!item.matcher || matchesValue(item.matcher, labels.get(name) ?? '')),
          );
          if (!keep) labels.delete(name);
        }
        return line;
      };
    case 'line_format':
      return (line, labels, timeNs) => {
        try {
          return renderTemplate(stage.template, { get: (n) => labels.get(n), line, timeNs });
        } catch (err) {
          labels.setError('TemplateFormatErr', (err as Error).message);
          return line;
        }
      };
    case 'label_format':
      return (line, labels, timeNs) => {
        const data = { get: (n: string) => labels.get(n), line, timeNs };
        const results: [string, string | undefined, string | undefined][] = [];
        for (const op of stage.ops) {
          if (op.src !== undefined) results.push([op.dst, labels.get(op.src), op.src]);
          else {
            try {
              results.push([op.dst, renderTemplate(op.template!, data), undefined]);
            } catch (err) {
              labels.setError('TemplateFormatErr', (err as Error).message);
            }
          }
        }
        for (const [dst, value, src] of results) {
          if (value === undefined) continue;
          if (src !== undefined && src !== dst) labels.delete(src);
          labels.set(dst, value);
        }
        return line;
      };
  }
}

function lineFilter(f: LineFilter): Step {
  const { op, values } = f;
  if (op === '|=') return (line) => (values.some((v) => line.includes(v)) ? line : null);
  if (op === '!=') return (line) => (values.some((v) => line.includes(v)) ? null : line);
  const res = values.map((v) => regex(v));
  if (op === '|~') return (line) => (res.some((r) => r.find(line)) ? line : null);
  return (line) => (res.some((r) => r.find(line)) ? null : line);
}

function labelFilter(e: LabelFilterExpr): (labels: EntryLabels) => boolean {
  switch (e.kind) {
    case 'and': {
      const l = labelFilter(e.left);
      const r = labelFilter(e.right);
      return (labels) => l(labels) && r(labels);
    }
    case 'or': {
      const l = labelFilter(e.left);
      const r = labelFilter(e.right);
      return (labels) => l(labels) || r(labels);
    }
    case 'string': {
      const m = { name: e.name, op: e.op, value: e.value };
      return (labels) => matchesValue(m, labels.get(e.name) ?? '');
    }
    case 'number': {
      const convert = e.unit === 'duration' ? parseDurationValue : e.unit === 'bytes' ? parseBytes : parseNumber;
      const cmp = compare(e.op);
      return (labels) => {
        if (labels.error !== undefined) return true;
        const v = labels.get(e.name);
        if (v === undefined) return false;
        const n = convert(v);
        if (Number.isNaN(n)) {
          labels.setError('LabelFilterErr', `cannot convert ${JSON.stringify(v)} to a ${e.unit}`);
          return true;
        }
        return cmp(n, e.value);
      };
    }
  }
}

/** Go's strconv.ParseFloat for the usual forms: NaN when the text is not a number. */
export function parseNumber(text: string): number {
  const t = text.trim();
  if (t === '' || t !== text) return Number.NaN;
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(t)) return Number.NaN;
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t) && !/^[+-]?0x[0-9a-f]+$/i.test(t)) return Number.NaN;
  return Number(t);
}

function compare(op: string): (a: number, b: number) => boolean {
  switch (op) {
    case '==':
      return (a, b) => a === b;
    case '!=':
      return (a, b) => a !== b;
    case '>':
      return (a, b) => a > b;
    case '>=':
      return (a, b) => a >= b;
    case '<':
      return (a, b) => a < b;
    default:
      return (a, b) => a <= b;
  }
}

/** A parsed key as a label name (Loki's sanitizeLabelKey): other characters become `_`. */
export function sanitizeKey(key: string): string {
  let out = key.replace(/[^A-Za-z0-9_]/g, '_');
  if (/^[0-9]/.test(out)) out = `_${out}`;
  return out;
}

/** A parsed key that is already a stream label gets `_extracted` (Loki's duplicate suffix). */
function extractedName(name: string, labels: EntryLabels): string {
  return Object.hasOwn(labels.stream, name) ? `${name}_extracted` : name;
}

function jsonScalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function jsonParser(fields: { name: string; path: (string | number)[] }[] | undefined): Step {
  return (line, labels) => {
    const trimmed = line.trimStart();
    let doc: unknown;
    if (!trimmed.startsWith('{')) {
      labels.setError('JSONParserErr', "Value looks like object, but can't find closing '}' symbol");
      return line;
    }
    try {
      doc = JSON.parse(line);
    } catch (err) {
      labels.setError('JSONParserErr', (err as Error).message);
      return line;
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      labels.setError('JSONParserErr', 'the line is not a JSON object');
      return line;
    }
    if (fields) {
      for (const f of fields) {
        let v: unknown = doc;
        for (const step of f.path) {
          if (v === null || typeof v !== 'object') {
            v = undefined;
            break;
          }
          v = (v as Record<string, unknown>)[step as string];
        }
        if (v === undefined || v === null) continue;
        const s = jsonScalar(v) ?? JSON.stringify(v);
        labels.set(extractedName(f.name, labels), s);
      }
      return line;
    }
    const walk = (obj: Record<string, unknown>, prefix: string, depth: number) => {
      for (const [k, v] of Object.entries(obj)) {
        const key = prefix ? `${prefix}_${sanitizeKey(k)}` : sanitizeKey(k);
        if (v !== null && typeof v === 'object') {
          if (!Array.isArray(v) && depth < 32) walk(v as Record<string, unknown>, key, depth + 1);
          continue;
        }
        const s = jsonScalar(v);
        if (s !== undefined) labels.set(extractedName(key, labels), s);
      }
    };
    walk(doc as Record<string, unknown>, '', 0);
    return line;
  };
}

/** Pairs of a logfmt line (go-logfmt's decoder); `error` when it is malformed. */
export function logfmtPairs(line: string): { pairs: [string, string][]; error?: string } {
  const pairs: [string, string][] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && line.charCodeAt(i) <= 32) i++;
    if (i >= n) break;
    const ks = i;
    while (i < n && line[i] !== '=' && line.charCodeAt(i) > 32 && line[i] !== '"') i++;
    if (i === ks) return { pairs, error: `unexpected '${line[i]}' at ${i + 1}` };
    const key = line.slice(ks, i);
    if (i >= n || line[i] !== '=') {
      if (i < n && line[i] === '"') return { pairs, error: `unexpected '"' at ${i + 1}` };
      pairs.push([key, '']);
      continue;
    }
    i++;
    if (line[i] === '"') {
      let j = i + 1;
      let value = '';
      let closed = false;
      while (j < n) {
        const c = line[j];
        if (c === '\\' && j + 1 < n) {
          const e = line[j + 1];
          value += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
          j += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          break;
        }
        value += c;
        j++;
      }
      if (!closed) return { pairs, error: `unterminated quoted value at ${i + 1}` };
      pairs.push([key, value]);
      i = j + 1;
    } else {
      const vs = i;
      while (i < n && line.charCodeAt(i) > 32) {
        if (line[i] === '"' || line[i] === '=') return { pairs, error: `unexpected '${line[i]}' at ${i + 1}` };
        i++;
      }
      pairs.push([key, line.slice(vs, i)]);
    }
  }
  return { pairs };
}

function logfmtParser(strict: boolean, keepEmpty: boolean, fields: { name: string; key: string }[] | undefined): Step {
  return (line, labels) => {
    const { pairs, error } = logfmtPairs(line);
    if (error && strict) {
      labels.setError('LogfmtParserErr', `logfmt syntax error: ${error}`);
      return line;
    }
    if (fields) {
      const byKey = new Map(pairs);
      for (const f of fields) {
        const v = byKey.get(f.key);
        if (v !== undefined && (v !== '' || keepEmpty)) labels.set(extractedName(f.name, labels), v);
      }
      return line;
    }
    for (const [k, v] of pairs) {
      if (v === '' && !keepEmpty) continue;
      const key = sanitizeKey(k);
      if (key === '' || key === '_') continue;
      labels.set(extractedName(key, labels), v);
    }
    return line;
  };
}

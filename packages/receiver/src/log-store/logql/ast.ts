/** The LogQL subset's syntax tree (see parser.ts for the grammar and what is refused). */
import type { LabelMatcher } from '../loki-entry';
import type { Template } from './template';

export type CompareOp = '==' | '!=' | '>' | '>=' | '<' | '<=';

/** One line filter: the line must (or must not) contain / match any of `values` (`|= "a" or "b"`). */
export interface LineFilter {
  op: '|=' | '!=' | '|~' | '!~';
  values: string[];
}

export type LabelFilterExpr =
  | { kind: 'and' | 'or'; left: LabelFilterExpr; right: LabelFilterExpr }
  | { kind: 'string'; name: string; op: LabelMatcher['op']; value: string }
  /** Numbers, durations (in seconds) and bytes, compared as numbers after converting the label. */
  | { kind: 'number'; name: string; op: CompareOp; value: number; unit: 'number' | 'duration' | 'bytes' };

/** A `drop`/`keep` item: a name (always), or a matcher (when the label's value matches). */
export interface LabelItem {
  name: string;
  matcher?: LabelMatcher;
}

export type Stage =
  | { kind: 'line'; filter: LineFilter }
  | { kind: 'label'; expr: LabelFilterExpr }
  | { kind: 'json'; fields?: { name: string; path: (string | number)[] }[] }
  | { kind: 'logfmt'; strict: boolean; keepEmpty: boolean; fields?: { name: string; key: string }[] }
  | { kind: 'regexp'; pattern: string }
  | { kind: 'drop'; items: LabelItem[] }
  | { kind: 'keep'; items: LabelItem[] }
  | { kind: 'line_format'; template: Template }
  | { kind: 'label_format'; ops: { dst: string; src?: string; template?: Template }[] };

export interface LogExpr {
  kind: 'log';
  matchers: LabelMatcher[];
  stages: Stage[];
}

export type RangeFunction = 'count_over_time' | 'rate' | 'bytes_over_time' | 'bytes_rate' | 'absent_over_time';
export type VectorOp =
  | 'sum'
  | 'avg'
  | 'min'
  | 'max'
  | 'count'
  | 'stddev'
  | 'stdvar'
  | 'topk'
  | 'bottomk'
  | 'sort'
  | 'sort_desc';
export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '^' | CompareOp;

export type MetricExpr =
  | { kind: 'range'; fn: RangeFunction; log: LogExpr; rangeNs: bigint; offsetNs: bigint }
  | {
      kind: 'vector_agg';
      op: VectorOp;
      param?: number;
      grouping?: { without: boolean; labels: string[] };
      inner: MetricExpr;
    }
  | { kind: 'binary'; op: BinaryOp; bool: boolean; left: MetricExpr; right: MetricExpr }
  | { kind: 'literal'; value: number }
  | { kind: 'vector'; value: number };

export type Expr = LogExpr | MetricExpr;

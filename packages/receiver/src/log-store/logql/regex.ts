/**
 * Regular expressions in LogQL, on RE2's linear-time engine (re2js: no pattern and input can make a
 * match backtrack), with Go's syntax as Loki's:
 * - label matchers (`{a=~"re"}`, `| a=~"re"`) match the whole value, `.` matching a newline too
 *   (Prometheus's `^(?s:re)$`);
 * - line filters (`|~ "re"`) match anywhere in the line.
 */
import { RE2JS } from 're2js';
import type { LabelMatcher } from '../loki-entry';

export interface Regex {
  /** Whether the whole text matches (label matchers). */
  full(text: string): boolean;
  /** Whether the text contains a match (line filters). */
  find(text: string): boolean;
  compiled: RE2JS;
}

const cache = new Map<string, Regex>();
const MEMO_VALUE_LENGTH = 256;
const MEMO_ENTRIES = 1024;

/** Compiles (cached) a Go/RE2 pattern; throws re2js's error for a pattern RE2 does not take. */
export function regex(pattern: string): Regex {
  let r = cache.get(pattern);
  if (r) return r;
  const anchored = RE2JS.compile(pattern, RE2JS.DOTALL);
  const compiled = RE2JS.compile(pattern);
  const memo = new Map<string, boolean>();
  r = {
    compiled,
    full(text: string): boolean {
      if (text.length > MEMO_VALUE_LENGTH) return anchored.testExact(text);
      let hit = memo.get(text);
      if (hit === undefined) {
        hit = anchored.testExact(text);
        if (memo.size >= MEMO_ENTRIES) memo.clear();
        memo.set(text, hit);
      }
      return hit;
    },
    find: (text: string) => compiled.test(text),
  };
  if (cache.size >= 256) cache.clear();
  cache.set(pattern, r);
  return r;
}

/** Whether a label value (`""` when absent) satisfies a matcher. */
export function matchesValue(m: LabelMatcher, value: string): boolean {
  switch (m.op) {
    case '=':
      return value === m.value;
    case '!=':
      return value !== m.value;
    case '=~':
      return regex(m.value).full(value);
    case '!~':
      return !regex(m.value).full(value);
  }
}

/** Whether a label set satisfies every matcher (an absent label is the empty value). */
export function matchesAll(matchers: readonly LabelMatcher[], labels: Readonly<Record<string, string>>): boolean {
  for (const m of matchers) {
    if (!matchesValue(m, Object.hasOwn(labels, m.name) ? labels[m.name] : '')) return false;
  }
  return true;
}

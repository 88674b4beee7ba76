/**
 * Stream selector matchers (`{name op "value"}`) over a stream's labels, as Loki (Prometheus' label
 * matchers) evaluates them: a missing label is the empty string; regexes are RE2's (re2js: linear
 * time, no backreferences or lookaround), fully anchored, `.` matching newlines too.
 */
import { RE2JS } from 're2js';
import type { LabelMatcher } from './loki-entry';

/** A matcher's regex is not RE2 syntax (answered 400 by the API). */
export class InvalidMatcherError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidMatcherError';
  }
}

const cache = new Map<string, RE2JS>();

function regex(pattern: string): RE2JS {
  let re = cache.get(pattern);
  if (!re) {
    try {
      re = RE2JS.compile(pattern, RE2JS.DOTALL);
    } catch (err) {
      throw new InvalidMatcherError(
        `invalid regular expression ${JSON.stringify(pattern)}: ${(err as Error).message} (RE2 syntax: no backreferences or lookaround)`,
      );
    }
    if (cache.size >= 256) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

/** Compiles the matchers' regexes now, so that a bad one fails before any data is read. */
export function checkMatchers(matchers: readonly LabelMatcher[]): void {
  for (const m of matchers) if (m.op === '=~' || m.op === '!~') regex(m.value);
}

export function matches(labels: Record<string, string>, matchers: readonly LabelMatcher[]): boolean {
  for (const m of matchers) {
    const v = labels[m.name] ?? '';
    switch (m.op) {
      case '=':
        if (v !== m.value) return false;
        break;
      case '!=':
        if (v === m.value) return false;
        break;
      case '=~':
        if (!regex(m.value).testExact(v)) return false;
        break;
      case '!~':
        if (regex(m.value).testExact(v)) return false;
        break;
    }
  }
  return true;
}

/** A stream's identity: its labels, sorted by name, as JSON (the streams table's key). */
export function streamKey(labels: Record<string, string>): string {
  const names = Object.keys(labels).sort();
  const sorted: Record<string, string> = {};
  for (const n of names) sorted[n] = labels[n];
  return JSON.stringify(sorted);
}

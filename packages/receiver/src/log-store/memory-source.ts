/**
 * A LogSource over entries held in memory (tests, and a reference for stores): entries made by
 * toLokiEntries from decoded OTLP requests, returned as LogSource requires (by time in the
 * selection's direction, ties in arrival order), honouring the selection's window and its abort
 * signal. Unbounded: not for production data.
 */
import type { ResourceLogs } from '../model/logs';
import { matchesAll } from './logql/regex';
import {
  intervalOf,
  type LabelMatcher,
  type LogSelection,
  type LogSource,
  type LokiEntry,
  type StreamVolume,
  toLokiEntries,
} from './loki-entry';

export class MemoryLogSource implements LogSource {
  readonly entries: LokiEntry[] = [];
  /** The selections asked for, in order (tests check the hints and windows). */
  readonly selections: LogSelection[] = [];

  add(resourceLogs: readonly ResourceLogs[], receivedNs = 0n): this {
    for (const e of toLokiEntries(resourceLogs, receivedNs)) this.entries.push(e);
    this.entries.sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : 0));
    return this;
  }

  addEntries(entries: LokiEntry[]): this {
    for (const e of entries) this.entries.push(e);
    this.entries.sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : 0));
    return this;
  }

  async *select(selection: LogSelection): AsyncIterable<LokiEntry> {
    this.selections.push(selection);
    const inWindow = this.entries.filter(
      (e) => e.timeNs >= selection.startNs && e.timeNs < selection.endNs && matchesAll(selection.matchers, e.stream),
    );
    if (selection.direction === 'backward') inWindow.reverse();
    for (const e of inWindow) {
      selection.signal?.throwIfAborted();
      yield e;
    }
  }

  private streams(startNs: bigint, endNs: bigint, matchers: LabelMatcher[] = []): Record<string, string>[] {
    const seen = new Map<string, Record<string, string>>();
    for (const e of this.entries) {
      if (e.timeNs < startNs || e.timeNs >= endNs || !matchesAll(matchers, e.stream)) continue;
      seen.set(JSON.stringify(Object.entries(e.stream).sort()), e.stream);
    }
    return [...seen.values()];
  }

  async labelNames(startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): Promise<string[]> {
    return [...new Set(this.streams(startNs, endNs, matchers).flatMap((s) => Object.keys(s)))].sort();
  }

  async labelValues(name: string, startNs: bigint, endNs: bigint, matchers?: LabelMatcher[]): Promise<string[]> {
    const values = this.streams(startNs, endNs, matchers)
      .map((s) => s[name])
      .filter((v) => v !== undefined);
    return [...new Set(values)].sort();
  }

  async series(selectors: LabelMatcher[][], startNs: bigint, endNs: bigint): Promise<Record<string, string>[]> {
    const seen = new Map<string, Record<string, string>>();
    for (const m of selectors) {
      for (const s of this.streams(startNs, endNs, m)) seen.set(JSON.stringify(Object.entries(s).sort()), s);
    }
    return [...seen.values()];
  }

  async stats(matchers: LabelMatcher[], startNs: bigint, endNs: bigint) {
    const hits = this.entries.filter((e) => e.timeNs >= startNs && e.timeNs < endNs && matchesAll(matchers, e.stream));
    return {
      streams: this.streams(startNs, endNs, matchers).length,
      chunks: hits.length > 0 ? 1 : 0,
      bytes: hits.reduce((n, e) => n + Buffer.byteLength(e.line), 0),
      entries: hits.length,
    };
  }

  async volume(matchers: LabelMatcher[], bounds: bigint[], signal?: AbortSignal): Promise<StreamVolume[]> {
    signal?.throwIfAborted();
    const out = new Map<string, { labels: Record<string, string>; bytes: Map<number, number> }>();
    for (const e of this.entries) {
      const i = intervalOf(bounds, e.timeNs);
      if (i < 0 || !matchesAll(matchers, e.stream)) continue;
      const key = JSON.stringify(Object.entries(e.stream).sort());
      const v = out.get(key) ?? { labels: e.stream, bytes: new Map<number, number>() };
      out.set(key, v);
      v.bytes.set(i, (v.bytes.get(i) ?? 0) + Buffer.byteLength(e.line));
    }
    return [...out.values()].map((v) => ({ labels: v.labels, bytes: [...v.bytes].sort((a, b) => a[0] - b[0]) }));
  }
}

/**
 * Renders the metric store in the Prometheus text format (0.0.4) or, when the scraper asks for it,
 * OpenMetrics 1.0 with exemplars on counters and histogram buckets.
 *
 * Each family's rendering is cached as bytes and redone only after the family changed, so a scrape
 * of an unchanged store writes the cached buffers without formatting or allocating per series.
 * Families are written in slices of at most SLICE_MS of work, yielding to the event loop between
 * them, so a scrape of 100,000 series never holds up intake for more than a few milliseconds.
 *
 * Exponential histograms are written as classic histograms: one bucket per exponential bucket from
 * the lowest to the highest populated index, `le` being the bucket's upper boundary
 * (base^(index+1), base = 2^(2^-scale); negative buckets -base^index), the zero bucket as
 * `le` = zero_threshold, then +Inf.
 */
import { counterFamilyName, escapeHelp, escapeLabelValue } from './naming';
import type { Exemplar, ExponentialState, Family, MetricStore, Series } from './store';

const SLICE_MS = 2;

export type Format = 'text' | 'openmetrics';

export const FORMAT_CONTENT_TYPE: Record<Format, string> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

/** The format to answer with, from the scrape request's Accept header. */
export function negotiateFormat(accept: string | undefined): Format {
  return accept?.includes('application/openmetrics-text') ? 'openmetrics' : 'text';
}

/** Where the rendered families go: a response, or anything else that takes buffers. */
export interface Sink {
  write(chunk: Buffer): void;
  cork?(): void;
  uncork?(): void;
}

/** Writes every family of the stores to `sink`, yielding between slices. Returns the bytes written. */
export async function writeFamilies(stores: MetricStore | MetricStore[], format: Format, sink: Sink): Promise<number> {
  let bytes = 0;
  let sliceStart = performance.now();
  sink.cork?.();
  for (const family of familiesOf(stores)) {
    const rendered = renderedFamily(family, format);
    if (rendered.length > 0) {
      sink.write(rendered);
      bytes += rendered.length;
    }
    if (performance.now() - sliceStart > SLICE_MS) {
      sink.uncork?.();
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
      sink.cork?.();
    }
  }
  sink.uncork?.();
  return bytes;
}

function* familiesOf(stores: MetricStore | MetricStore[]): Iterable<Family> {
  for (const store of Array.isArray(stores) ? stores : [stores]) yield* store.families.values();
}

function renderedFamily(family: Family, format: Format): Buffer {
  const cached = format === 'text' ? family.text : family.openMetrics;
  if (cached !== undefined) return cached;
  const rendered = Buffer.from(renderFamily(family, format), 'utf8');
  if (format === 'text') family.text = rendered;
  else family.openMetrics = rendered;
  return rendered;
}

export function renderFamily(family: Family, format: Format): string {
  const om = format === 'openmetrics';
  const familyName = om && family.type === 'counter' ? counterFamilyName(family.name) : family.name;
  let out = '';
  if (family.series.size === 0 && !family.overflow) return out;
  if (family.help) out += `# HELP ${familyName} ${om ? escapeLabelValue(family.help) : escapeHelp(family.help)}\n`;
  out += `# TYPE ${familyName} ${family.type}\n`;
  for (const series of family.series.values()) out += renderSeries(family, series, om);
  if (family.overflow) out += renderSeries(family, family.overflow, om);
  return out;
}

function renderSeries(family: Family, s: Series, om: boolean): string {
  const name = family.name;
  switch (family.type) {
    case 'counter':
      return `${name}${braces(s.labels)} ${num(s.value)}${om && s.exemplar ? exemplar(family, s.exemplar) : ''}\n`;
    case 'gauge':
      return `${name}${braces(s.labels)} ${num(s.value)}\n`;
    case 'summary': {
      let out = '';
      for (const [q, v] of s.quantiles ?? [])
        out += `${name}${braces(withLabel(s.labels, 'quantile', num(q)))} ${num(v)}\n`;
      return `${out}${name}_sum${braces(s.labels)} ${num(s.value)}\n${name}_count${braces(s.labels)} ${num(s.count)}\n`;
    }
    default:
      return s.exponential ? renderExponential(name, s.labels, s.exponential) : renderHistogram(family, s, om);
  }
}

function renderHistogram(family: Family, s: Series, om: boolean): string {
  const name = family.name;
  const h = s.histogram;
  if (!h) return '';
  let out = '';
  let cumulative = 0;
  for (let i = 0; i < h.counts.length; i++) {
    cumulative += h.counts[i];
    const le = i < h.bounds.length ? num(h.bounds[i]) : '+Inf';
    const ex = om ? h.exemplars[i] : undefined;
    out += `${name}_bucket${braces(withLabel(s.labels, 'le', le))} ${num(cumulative)}${ex ? exemplar(family, ex) : ''}\n`;
  }
  return `${out}${name}_sum${braces(s.labels)} ${num(h.sum)}\n${name}_count${braces(s.labels)} ${num(h.count)}\n`;
}

/**
 * Classic buckets for an exponential histogram (layout in the file's header): one per populated
 * exponential bucket, in increasing order. A boundary that is not finite or not above the previous
 * one (an extreme index at a fine scale) folds into the bucket before it, so `le` values stay
 * distinct and finite; +Inf is added by the caller.
 */
export function exponentialBuckets(e: ExponentialState): [number, number][] {
  const base = 2 ** (2 ** -e.scale);
  const raw: [number, number][] = [];
  for (const i of [...e.negative.keys()].sort((a, b) => b - a)) raw.push([-(base ** i), e.negative.get(i) ?? 0]);
  raw.push([e.zeroThreshold, e.zeroCount]);
  for (const i of [...e.positive.keys()].sort((a, b) => a - b)) raw.push([base ** (i + 1), e.positive.get(i) ?? 0]);
  const buckets: [number, number][] = [];
  for (const [upper, count] of raw) {
    const last = buckets[buckets.length - 1];
    if (!Number.isFinite(upper) || (last && upper <= last[0])) {
      if (last) last[1] += count;
      else if (Number.isFinite(upper)) buckets.push([upper, count]);
      continue;
    }
    buckets.push([upper, count]);
  }
  return buckets;
}

function renderExponential(name: string, labels: string, e: ExponentialState): string {
  let out = '';
  let cumulative = 0;
  for (const [upper, count] of exponentialBuckets(e)) {
    cumulative += count;
    out += `${name}_bucket${braces(withLabel(labels, 'le', num(upper)))} ${num(cumulative)}\n`;
  }
  out += `${name}_bucket${braces(withLabel(labels, 'le', '+Inf'))} ${num(e.count)}\n`;
  return `${out}${name}_sum${braces(labels)} ${num(e.sum)}\n${name}_count${braces(labels)} ${num(e.count)}\n`;
}

function braces(labels: string): string {
  return labels ? `{${labels}}` : '';
}

function withLabel(labels: string, name: string, value: string): string {
  return labels ? `${labels},${name}="${value}"` : `${name}="${value}"`;
}

/** A sample value as Prometheus writes it. */
export function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** An OpenMetrics exemplar: ` # {trace_id="…",span_id="…"} value timestamp` (label names per family). */
function exemplar(family: Family, e: Exemplar): string {
  const l = family.exemplarLabels;
  return ` # {${l.trace}="${e.traceId}",${l.span}="${e.spanId}"} ${num(e.value)} ${e.timestamp.toFixed(3)}`;
}

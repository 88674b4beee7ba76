/**
 * Renders the metric store in the Prometheus text format (0.0.4) or, when the scraper asks for it,
 * OpenMetrics 1.0 with exemplars on counters and histogram buckets.
 *
 * Each family's rendering is cached as bytes and redone only after the family changed, so a scrape
 * of an unchanged store writes the cached buffers without formatting or allocating per series.
 * Families are written in slices of at most SLICE_MS of work, yielding to the event loop between
 * them, so a scrape of 100,000 series never holds up intake for more than a few milliseconds.
 *
 * No string longer than about CHUNK_CHARS plus one line is ever built: a family is rendered line by
 * line into chunks of bytes, and the chunks are written one at a time, waiting for the sink to drain
 * when it asks to (back-pressure), so neither V8's maximum string length nor a scraper that does not
 * read can turn a large family into a failed scrape or unbounded memory. A family whose rendering
 * still fails is left out (reported to `onSkipped`) and the rest of the scrape is written.
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

/** Characters of rendered lines gathered into one chunk of bytes. */
const CHUNK_CHARS = 64 * 1024;

/** Where the rendered families go: a response, or anything else that takes buffers. */
export interface Sink {
  /** False when the sink holds more than it wants (back-pressure): writing waits for `drained`. */
  write(chunk: Buffer): unknown;
  /** Resolves once the sink takes more, or is closed. */
  drained?(): Promise<void>;
  /** True once the sink is gone (the scraper went away): writing stops. */
  readonly closed?: boolean;
  cork?(): void;
  uncork?(): void;
}

/** The rendering of a family that failed: written as nothing, and reported to `onSkipped` at each scrape. */
const SKIPPED: Buffer[] = [];

/**
 * Writes every family of the stores to `sink`, yielding between slices and waiting for the sink to
 * drain when it asks to. A family that cannot be rendered is left out and reported to `onSkipped`.
 * Returns the bytes written.
 */
export async function writeFamilies(
  stores: MetricStore | MetricStore[],
  format: Format,
  sink: Sink,
  onSkipped?: (family: Family, err: unknown) => void,
): Promise<number> {
  let bytes = 0;
  let sliceStart = performance.now();
  let corked = false;
  const cork = () => {
    if (!corked && sink.cork) {
      sink.cork();
      corked = true;
    }
  };
  const uncork = () => {
    if (corked) {
      sink.uncork?.();
      corked = false;
    }
  };
  try {
    cork();
    for (const family of familiesOf(stores)) {
      if (sink.closed) break;
      const chunks = renderedFamily(family, format);
      if (chunks === SKIPPED) onSkipped?.(family, family.renderError);
      for (const chunk of chunks) {
        bytes += chunk.length;
        if (sink.write(chunk) === false && sink.drained) {
          uncork();
          await sink.drained();
          if (sink.closed) return bytes;
          sliceStart = performance.now();
          cork();
        }
      }
      if (performance.now() - sliceStart > SLICE_MS) {
        uncork();
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
        cork();
      }
    }
  } finally {
    uncork();
  }
  return bytes;
}

function* familiesOf(stores: MetricStore | MetricStore[]): Iterable<Family> {
  for (const store of Array.isArray(stores) ? stores : [stores]) yield* store.families.values();
}

/** The family's rendering as chunks of bytes, from the cache or rendered (and cached) now; SKIPPED when it fails. */
function renderedFamily(family: Family, format: Format): Buffer[] {
  const cached = format === 'text' ? family.text : family.openMetrics;
  if (cached !== undefined) return cached;
  let rendered: Buffer[];
  try {
    rendered = renderFamilyChunks(family, format);
  } catch (err) {
    // V8's maximum string length, or no memory for the bytes: the family is left out until it changes.
    family.renderError = err;
    rendered = SKIPPED;
  }
  if (format === 'text') family.text = rendered;
  else family.openMetrics = rendered;
  return rendered;
}

/** Lines gathered into chunks of bytes of about CHUNK_CHARS characters. */
class Chunks {
  readonly parts: Buffer[] = [];
  private text = '';

  add(line: string): void {
    this.text += line;
    if (this.text.length >= CHUNK_CHARS) this.flush();
  }

  flush(): Buffer[] {
    if (this.text !== '') this.parts.push(Buffer.from(this.text, 'utf8'));
    this.text = '';
    return this.parts;
  }
}

/** The family in the given format, as one string (for tests and small families). */
export function renderFamily(family: Family, format: Format): string {
  return Buffer.concat(renderFamilyChunks(family, format)).toString('utf8');
}

/** The family in the given format, as chunks of bytes; no string built is longer than a chunk and a line. */
export function renderFamilyChunks(family: Family, format: Format): Buffer[] {
  const om = format === 'openmetrics';
  const familyName = om && family.type === 'counter' ? counterFamilyName(family.name) : family.name;
  const out = new Chunks();
  if (family.series.size === 0 && !family.overflow) return out.flush();
  if (family.help) out.add(`# HELP ${familyName} ${om ? escapeLabelValue(family.help) : escapeHelp(family.help)}\n`);
  out.add(`# TYPE ${familyName} ${family.type}\n`);
  for (const series of family.series.values()) renderSeries(family, series, om, out);
  if (family.overflow) renderSeries(family, family.overflow, om, out);
  return out.flush();
}

function renderSeries(family: Family, s: Series, om: boolean, out: Chunks): void {
  const name = family.name;
  switch (family.type) {
    case 'counter':
      out.add(`${name}${braces(s.labels)} ${num(s.value)}${om && s.exemplar ? exemplar(family, s.exemplar) : ''}\n`);
      return;
    case 'gauge':
      out.add(`${name}${braces(s.labels)} ${num(s.value)}\n`);
      return;
    case 'summary': {
      for (const [q, v] of s.quantiles ?? [])
        out.add(`${name}${braces(withLabel(s.labels, 'quantile', num(q)))} ${num(v)}\n`);
      out.add(`${name}_sum${braces(s.labels)} ${num(s.value)}\n`);
      out.add(`${name}_count${braces(s.labels)} ${num(s.count)}\n`);
      return;
    }
    default:
      if (s.exponential) renderExponential(name, s.labels, s.exponential, out);
      else renderHistogram(family, s, om, out);
  }
}

function renderHistogram(family: Family, s: Series, om: boolean, out: Chunks): void {
  const name = family.name;
  const h = s.histogram;
  if (!h) return;
  let cumulative = 0;
  for (let i = 0; i < h.counts.length; i++) {
    cumulative += h.counts[i];
    // A bound of +Inf (OpenTelemetry JS 0.27 sends [Infinity]) is the le="+Inf" bucket written last.
    if (h.bounds[i] === Number.POSITIVE_INFINITY) continue;
    const le = i < h.bounds.length ? num(h.bounds[i]) : '+Inf';
    const ex = om ? h.exemplars[i] : undefined;
    out.add(
      `${name}_bucket${braces(withLabel(s.labels, 'le', le))} ${num(cumulative)}${ex ? exemplar(family, ex) : ''}\n`,
    );
  }
  out.add(`${name}_sum${braces(s.labels)} ${num(h.sum)}\n`);
  out.add(`${name}_count${braces(s.labels)} ${num(h.count)}\n`);
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

function renderExponential(name: string, labels: string, e: ExponentialState, out: Chunks): void {
  let cumulative = 0;
  for (const [upper, count] of exponentialBuckets(e)) {
    cumulative += count;
    out.add(`${name}_bucket${braces(withLabel(labels, 'le', num(upper)))} ${num(cumulative)}\n`);
  }
  out.add(`${name}_bucket${braces(withLabel(labels, 'le', '+Inf'))} ${num(e.count)}\n`);
  out.add(`${name}_sum${braces(labels)} ${num(e.sum)}\n`);
  out.add(`${name}_count${braces(labels)} ${num(e.count)}\n`);
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

/** An OpenMetrics exemplar: ` # {trace_id="…",span_id="…",…} value timestamp` (label names per family). */
function exemplar(family: Family, e: Exemplar): string {
  const l = family.exemplarLabels;
  return ` # {${l.trace}="${e.traceId}",${l.span}="${e.spanId}"${e.labels ?? ''}} ${num(e.value)} ${e.timestamp.toFixed(3)}`;
}

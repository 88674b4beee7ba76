/**
 * Distinct people per consent category and choice, from consent choice records (CONSENT-WIRE: log
 * records named `sonde.consent.choice`, as `@sonde/node`'s `consent.record()` and `@sonde/web` send
 * them), over the last 24 hours and the last 7 days:
 *
 * - `sonde_consent_people{category, choice, window}`: the estimate, a gauge (window `24h` or `7d`);
 * - `sonde_consent_choice_records_total{category, choice}`: records taken (what the "consent records
 *   stopped arriving" alert watches);
 * - `sonde_consent_choice_records_rejected_total{reason}`: records not counted (unknown category or
 *   choice, a subject that is not a string, older than the 7-day window);
 * - `sonde_consent_sketch_bytes`: memory held by the sketches now (at most
 *   `sonde_consent_sketch_max_bytes`, fixed by the precision).
 *
 * Each (category, choice) has one rolling HyperLogLog per window (24 h in 1-hour buckets, 7 d in
 * 12-hour buckets), so one person counts once however many records they send, and the subject
 * (already a keyed HMAC pseudonym) is hashed into the registers and never kept. A record without a
 * subject counts as one person of its own. A person who changed their choice within a window counts
 * under both choices there.
 *
 * The sketches live in memory: a restart empties them, and the windows fill again as people make
 * choices. Several receivers each count the people whose records they took: do not add their figures.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Counter, Registry } from 'prom-client';
import { registerMetrics } from '../metrics/define';
import { attributeValue } from '../model';
import type { Batch, Consumer } from '../pipeline/pipeline';
import { hash64 } from './hll';
import { consentMetrics } from './metrics';
import { RollingSketch } from './rolling';

export const CONSENT_CHOICE_EVENT = 'sonde.consent.choice';
export const CONSENT_CATEGORIES = ['diagnostics', 'performance', 'product'] as const;
export const CONSENT_CHOICES = ['granted', 'denied', 'default'] as const;
const HOUR = 3_600_000;
export const WINDOWS = [
  { label: '24h', windowMs: 24 * HOUR, bucketMs: HOUR },
  { label: '7d', windowMs: 7 * 24 * HOUR, bucketMs: 12 * HOUR },
] as const;

export interface ConsentPeopleOptions {
  /** HyperLogLog precision: 2^precision one-byte registers per sketch, standard error 1.04/√(2^precision). */
  precision: number;
}

type Key = `${string}|${string}`;

export class ConsentPeopleConsumer implements Consumer<'logs'> {
  readonly name = 'consent_people';
  private readonly sketches = new Map<Key, RollingSketch[]>();
  private readonly records: Counter<'category' | 'choice'>;
  private readonly rejected: Counter<'reason'>;

  constructor(
    readonly options: ConsentPeopleOptions,
    registry: Registry,
    _logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    for (const category of CONSENT_CATEGORIES)
      for (const choice of CONSENT_CHOICES)
        this.sketches.set(
          `${category}|${choice}`,
          WINDOWS.map((w) => new RollingSketch(w.windowMs, w.bucketMs, options.precision)),
        );
    const sketches = this.sketches;
    const clock = this.now;
    const m = registerMetrics(registry, consentMetrics(options.precision), {
      people() {
        const t = clock();
        for (const [key, rolling] of sketches) {
          const [category, choice] = key.split('|');
          WINDOWS.forEach((w, i) => {
            this.set({ category, choice, window: w.label }, Math.round(rolling[i].estimate(t)));
          });
        }
      },
      sketchBytes() {
        let bytes = 0;
        for (const rolling of sketches.values()) for (const r of rolling) bytes += r.bytes;
        this.set(bytes);
      },
    });
    this.records = m.records;
    this.rejected = m.rejected;
    // Every series from the start (at 0), so that "records stopped arriving" can be told after a restart.
    for (const category of CONSENT_CATEGORIES)
      for (const choice of CONSENT_CHOICES) this.records.inc({ category, choice }, 0);
    m.sketchMaxBytes.set(this.maxBytes);
  }

  /** The most bytes the sketches ever hold: fixed by the precision. */
  get maxBytes(): number {
    let bytes = 0;
    for (const rolling of this.sketches.values()) for (const r of rolling) bytes += r.maxBytes;
    return bytes;
  }

  /** The bytes held now. */
  get bytes(): number {
    let bytes = 0;
    for (const rolling of this.sketches.values()) for (const r of rolling) bytes += r.bytes;
    return bytes;
  }

  /** The estimate of one (category, choice, window) now. */
  estimate(category: string, choice: string, window: '24h' | '7d'): number {
    const rolling = this.sketches.get(`${category}|${choice}`);
    const i = WINDOWS.findIndex((w) => w.label === window);
    return rolling && i >= 0 ? Math.round(rolling[i].estimate(this.now())) : 0;
  }

  consume(batch: Batch<'logs'>): void {
    const now = this.now();
    for (const rl of batch.data)
      for (const sl of rl.scopeLogs)
        for (const record of sl.logRecords) {
          if (!isConsentChoice(record.eventName, record.attributes)) continue;
          const category = attributeValue(record.attributes, 'sonde.consent.category');
          const choice = attributeValue(record.attributes, 'sonde.consent.choice');
          const subject = attributeValue(record.attributes, 'sonde.consent.subject');
          const rolling =
            typeof category === 'string' && typeof choice === 'string'
              ? this.sketches.get(`${category}|${choice}`)
              : undefined;
          if (!rolling) {
            const knownCategory = (CONSENT_CATEGORIES as readonly unknown[]).includes(category);
            this.rejected.inc({ reason: knownCategory ? 'unknown_choice' : 'unknown_category' });
            continue;
          }
          if (subject !== undefined && (typeof subject !== 'string' || subject === '')) {
            this.rejected.inc({ reason: 'bad_subject' });
            continue;
          }
          const nanos = record.timeUnixNano || record.observedTimeUnixNano;
          const time = nanos > 0n ? Number(nanos / 1_000_000n) : now;
          // No subject: one person of their own (a random hash, never seen again).
          const value = subject === undefined ? randomHash() : hash64(subject as string);
          let added = false;
          for (const r of rolling) added = r.add(value, time, now) || added;
          if (added) this.records.inc({ category: category as string, choice: choice as string });
          else this.rejected.inc({ reason: 'too_old' });
        }
  }
}

/** Whether a log record is a consent choice record (eventName, or the `event.name` attribute of older SDKs). */
export function isConsentChoice(eventName: string, attributes: Parameters<typeof attributeValue>[0]): boolean {
  if (eventName !== '') return eventName === CONSENT_CHOICE_EVENT;
  return attributeValue(attributes, 'event.name') === CONSENT_CHOICE_EVENT;
}

function randomHash(): [number, number] {
  const b = randomBytes(8);
  return [b.readUInt32BE(0), b.readUInt32BE(4)];
}

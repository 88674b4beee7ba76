/**
 * Distinct people per consent category and choice: the HyperLogLog's error bound (100,000 distinct
 * subjects within 3%; standard error 0.81% at precision 14), its fixed memory, the rolling windows,
 * and the consumer at a real receiver: consent choice records (OTLP/JSON, as any SDK sends them) are
 * counted as people on /metrics, not as business events, and bad records are counted as rejected.
 */

import pino from 'pino';
import { Registry } from 'prom-client';
import { HyperLogLog, standardError } from '../src/consent/hll';
import { ConsentPeopleConsumer } from '../src/consent/people';
import { RollingSketch } from '../src/consent/rolling';
import { JSON_TYPE, post, startTestReceiver, type TestReceiver } from './helpers';

const HOUR = 3_600_000;

describe('HyperLogLog', () => {
  test('100,000 distinct subjects are estimated within 3%, whatever the duplicates; memory is fixed', () => {
    const hll = new HyperLogLog(14);
    const bytes = hll.bytes;
    expect(bytes).toBe(16384);
    expect(standardError(14)).toBeCloseTo(0.008125, 6);
    for (let i = 0; i < 100_000; i++) hll.add(`subject-${i}`);
    const once = hll.estimate();
    expect(Math.abs(once - 100_000) / 100_000).toBeLessThan(0.03);
    for (let i = 0; i < 100_000; i += 3) hll.add(`subject-${i}`); // the same people again
    expect(hll.estimate()).toBe(once);
    expect(hll.bytes).toBe(bytes);
  });

  test('several independent sets of 100,000: every estimate within 3%, the mean error near the standard error', () => {
    const errors: number[] = [];
    for (let run = 0; run < 5; run++) {
      const hll = new HyperLogLog(14);
      for (let i = 0; i < 100_000; i++) hll.add(`run${run}-${i}`);
      errors.push(hll.estimate() / 100_000 - 1);
    }
    for (const e of errors) expect(Math.abs(e)).toBeLessThan(0.03);
    const rms = Math.sqrt(errors.reduce((a, e) => a + e * e, 0) / errors.length);
    expect(rms).toBeLessThan(3 * standardError(14));
  });

  test('small counts are (nearly) exact: 0, 1, 10, 300, 1000', () => {
    for (const n of [0, 1, 10, 300, 1000]) {
      const hll = new HyperLogLog(14);
      for (let i = 0; i < n; i++) hll.add(`p-${n}-${i}`);
      expect(Math.abs(hll.estimate() - n)).toBeLessThanOrEqual(Math.max(1, n * 0.01));
    }
  });

  test('merge is the union; bad precisions are refused', () => {
    const a = new HyperLogLog(12);
    const b = new HyperLogLog(12);
    for (let i = 0; i < 5000; i++) a.add(`x${i}`);
    for (let i = 2500; i < 7500; i++) b.add(`x${i}`);
    a.merge(b);
    expect(Math.abs(a.estimate() - 7500) / 7500).toBeLessThan(0.05);
    expect(() => a.merge(new HyperLogLog(13))).toThrow(/different precisions/);
    expect(() => new HyperLogLog(3)).toThrow(RangeError);
    expect(() => new HyperLogLog(19)).toThrow(RangeError);
  });
});

describe('rolling windows', () => {
  test('people leave the window as it moves; memory stays within its bound', () => {
    const r = new RollingSketch(24 * HOUR, HOUR, 10);
    const t0 = 1_000 * 24 * HOUR;
    for (let i = 0; i < 100; i++) expect(r.add(`early-${i}`, t0, t0)).toBe(true);
    for (let i = 0; i < 50; i++) r.add(`late-${i}`, t0 + 12 * HOUR, t0 + 12 * HOUR);
    expect(r.estimate(t0 + 12 * HOUR)).toBeCloseTo(150, -1);
    // 24 hours after the first bucket, only the later people are in the window.
    expect(r.estimate(t0 + 24 * HOUR)).toBeCloseTo(50, -1);
    expect(r.estimate(t0 + 40 * HOUR)).toBe(0);
    // A record older than the window is not counted; one from the future counts as now.
    expect(r.add('old', t0, t0 + 30 * HOUR)).toBe(false);
    expect(r.add('future', t0 + 99 * HOUR, t0 + 30 * HOUR)).toBe(true);
    expect(r.estimate(t0 + 30 * HOUR)).toBeCloseTo(51, -1);
    // A month of hourly records: never more than the bound.
    for (let h = 0; h < 24 * 30; h++) r.add(`h${h}`, t0 + h * HOUR, t0 + h * HOUR);
    expect(r.bytes).toBeLessThanOrEqual(r.maxBytes);
    expect(r.maxBytes).toBe(25 * 1024);
  });

  test('the consumer keeps fixed memory: 9 (category, choice) × (24 + 14 buckets + 2 merge buffers)', () => {
    const consumer = new ConsentPeopleConsumer({ precision: 14 }, new Registry(), pino({ level: 'silent' }));
    expect(consumer.maxBytes).toBe(9 * 40 * 16384);
  });
});

describe('at the receiver', () => {
  let rx: TestReceiver;
  beforeAll(async () => {
    rx = await startTestReceiver();
  });
  afterAll(() => rx.close());

  const choiceRecord = (attrs: Record<string, string>, eventName = 'sonde.consent.choice') => ({
    timeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
    eventName,
    severityNumber: 9,
    attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } })),
  });
  const send = (records: unknown[]) =>
    post(
      `${rx.http}/v1/logs`,
      JSON.stringify({
        resourceLogs: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'web-shop' } }] },
            scopeLogs: [{ scope: { name: 'consent' }, logRecords: records }],
          },
        ],
      }),
      JSON_TYPE,
    );
  const metricsText = async () => (await fetch(`${rx.admin}/metrics`)).text();
  const value = (text: string, series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  test('people, not records: one person sending many records counts once; anonymous records count one each', async () => {
    const records = [];
    for (let p = 0; p < 40; p++)
      for (let r = 0; r < 5; r++)
        records.push(
          choiceRecord({
            'sonde.consent.category': 'product',
            'sonde.consent.choice': p < 10 ? 'denied' : 'granted',
            'sonde.consent.source': 'user',
            'sonde.consent.subject': `pseudo${p.toString(16).padStart(10, '0')}`,
          }),
        );
    // Three anonymous opt-outs (no subject), the older SDK spelling (event.name attribute), and rejects.
    for (let i = 0; i < 3; i++)
      records.push(choiceRecord({ 'sonde.consent.category': 'performance', 'sonde.consent.choice': 'denied' }));
    records.push(
      choiceRecord(
        {
          'event.name': 'sonde.consent.choice',
          'sonde.consent.category': 'diagnostics',
          'sonde.consent.choice': 'default',
          'sonde.consent.subject': 'someone',
        },
        '',
      ),
    );
    records.push(choiceRecord({ 'sonde.consent.category': 'marketing', 'sonde.consent.choice': 'denied' }));
    records.push(choiceRecord({ 'sonde.consent.category': 'product', 'sonde.consent.choice': 'maybe' }));
    expect((await send(records)).status).toBe(200);

    const text = await metricsText();
    const people = (category: string, choice: string, window: string) =>
      value(text, `sonde_consent_people{category="${category}",choice="${choice}",window="${window}"}`);
    for (const window of ['24h', '7d']) {
      expect(people('product', 'denied', window)).toBe(10);
      expect(people('product', 'granted', window)).toBe(30);
      expect(people('product', 'default', window)).toBe(0);
      // One person each: 3, unless two of their random hashes share one of the sketch's 16,384
      // registers (about 1 run in 5,500), which the estimate then reads as 2. Counted as one person,
      // they would read 1.
      expect([2, 3]).toContain(people('performance', 'denied', window));
      expect(people('diagnostics', 'default', window)).toBe(1);
    }
    expect(value(text, 'sonde_consent_choice_records_total{category="product",choice="denied"}')).toBe(50);
    expect(value(text, 'sonde_consent_choice_records_rejected_total{reason="unknown_category"}')).toBe(1);
    expect(value(text, 'sonde_consent_choice_records_rejected_total{reason="unknown_choice"}')).toBe(1);
    // Not business events, and no subject anywhere on /metrics.
    expect(text).not.toMatch(/sonde_events_total\{[^}]*sonde\.consent\.choice/);
    expect(text).not.toContain('pseudo0000000001');
    expect(text).not.toContain('someone');
    const sketchBytes = value(text, 'sonde_consent_sketch_bytes')!;
    expect(sketchBytes).toBeGreaterThan(0);
    expect(sketchBytes).toBeLessThanOrEqual(value(text, 'sonde_consent_sketch_max_bytes')!);
  });
});

/**
 * Two writers of one cumulative series (two processes of a service that send no service.instance.id,
 * so share job and instance) are never mixed into one garbage counter: the points of the writer that
 * started earlier are dropped and counted in sonde_receiver_metric_writer_conflicts_total, and a
 * warning is logged; a single writer's restart is still a plain reset.
 */
import { JSON_TYPE, post, startTestReceiver, type TestReceiver } from './helpers';

const START_A = 1_700_000_000_000_000_000n;
const START_B = 1_700_000_005_000_000_000n;
const str = (v: string) => ({ stringValue: v });

/** A cumulative counter point and a cumulative histogram point of `shop` (no service.instance.id). */
function request(start: bigint, time: bigint, value: number, count = value): string {
  return JSON.stringify({
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: str('shop') }] },
        scopeMetrics: [
          {
            scope: { name: 'app' },
            metrics: [
              {
                name: 'requests',
                sum: {
                  isMonotonic: true,
                  aggregationTemporality: 2,
                  dataPoints: [{ asInt: String(value), startTimeUnixNano: String(start), timeUnixNano: String(time) }],
                },
              },
              {
                name: 'latency',
                unit: 's',
                histogram: {
                  aggregationTemporality: 2,
                  dataPoints: [
                    {
                      count: String(count),
                      sum: count,
                      bucketCounts: [String(count)],
                      explicitBounds: [],
                      startTimeUnixNano: String(start),
                      timeUnixNano: String(time),
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
  });
}

async function scrape(t: TestReceiver): Promise<Map<string, number>> {
  const text = await (await fetch(`${t.admin}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m =
      /^(requests_total|latency_seconds_count|sonde_receiver_metric_writer_conflicts_total|sonde_prometheus_series_resets_total)(\{[^}]*\})? (\S+)/.exec(
        line,
      );
    if (m) out.set(m[1], Number(m[3]));
  }
  return out;
}

describe('two writers of one cumulative series', () => {
  let t: TestReceiver;
  beforeEach(async () => {
    t = await startTestReceiver();
  });
  afterEach(() => t.close());
  const send = async (body: string) => expect((await post(`${t.http}/v1/metrics`, body, JSON_TYPE)).status).toBe(200);
  const at = (s: number) => START_B + BigInt(s) * 1_000_000_000n;

  test('start times going back and forth: the writer that started last is kept, the other counted', async () => {
    // A (started first) and B (started later) report alternately, each its own growing count.
    await send(request(START_A, at(1), 100));
    await send(request(START_B, at(2), 3)); // B appears: taken as a restart (one reset)
    await send(request(START_A, at(3), 110)); // A again: its start time went back
    await send(request(START_B, at(4), 5));
    await send(request(START_A, at(5), 120));
    await send(request(START_B, at(6), 8));
    const m = await scrape(t);
    expect(m.get('requests_total')).toBe(8); // B's own count, never A's
    expect(m.get('latency_seconds_count')).toBe(8);
    expect(m.get('sonde_receiver_metric_writer_conflicts_total')).toBe(4); // A's last two points, both metrics
  });

  test('the same start time with a count going down is a second writer too; a start time of 0 is not', async () => {
    await send(request(START_A, at(1), 50));
    await send(request(START_A, at(2), 20)); // another writer with the same start time
    await send(request(START_A, at(3), 60));
    let m = await scrape(t);
    expect(m.get('requests_total')).toBe(60);
    expect(m.get('sonde_receiver_metric_writer_conflicts_total')).toBe(2);
    // Without start times, a lower count is a restart, as Prometheus takes it.
    await send(request(0n, at(4), 70));
    await send(request(0n, at(5), 2));
    m = await scrape(t);
    expect(m.get('requests_total')).toBe(2);
    expect(m.get('sonde_receiver_metric_writer_conflicts_total')).toBe(2);
  });

  test('one writer restarting (a later start time, a lower count) is a reset, not a conflict', async () => {
    await send(request(START_A, at(1), 50));
    await send(request(START_B, at(2), 4));
    await send(request(START_B, at(3), 9));
    const m = await scrape(t);
    expect(m.get('requests_total')).toBe(9);
    expect(m.get('sonde_receiver_metric_writer_conflicts_total')).toBe(0);
    expect(m.get('sonde_prometheus_series_resets_total')).toBe(2);
  });
});

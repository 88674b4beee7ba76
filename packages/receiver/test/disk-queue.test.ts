/** The persistent export queue: an append-only segment log with an acknowledged position. */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DiskQueue, DiskQueueFullError, HEADER_BYTES } from '../src/export/disk-queue';

let dir: string;
const open: DiskQueue[] = [];

function openQueue(options: { maxBytes?: number; segmentBytes?: number } = {}): DiskQueue {
  const q = DiskQueue.open(dir, { maxBytes: options.maxBytes ?? 1 << 20, segmentBytes: options.segmentBytes });
  open.push(q);
  return q;
}

const payload = (i: number, size = 20) => Buffer.alloc(size, i);
const segments = () =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort();
const contents = (q: DiskQueue) => q.peek(Number.POSITIVE_INFINITY).map((r) => [r.payload[0], r.spanCount]);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(tmpdir(), 'sonde-disk-queue-'));
});

afterEach(() => {
  for (const q of open.splice(0)) q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('append, peek and ack across segment rotation; acknowledged segments are deleted', () => {
  // 32 bytes a record: three per 100-byte segment.
  const q = openQueue({ segmentBytes: 100 });
  for (let i = 1; i <= 7; i++) q.append(payload(i), i);
  expect(segments()).toHaveLength(3);
  expect(q.bytes).toBe(140);
  expect(q.length).toBe(7);
  expect(q.spans).toBe(28);

  // peek: the oldest, up to maxBytes, at least one; nothing leaves the queue.
  expect(q.peek(50).map((r) => r.payload[0])).toEqual([1, 2]);
  expect(q.peek(1).map((r) => r.payload[0])).toEqual([1]);
  expect(q.peek(40, 5).map((r) => r.payload[0])).toEqual([6, 7]);
  expect(q.peek(1)[0].payload).toEqual(payload(1));
  expect(q.length).toBe(7);

  expect(q.ack(4)).toEqual({ records: 4, bytes: 80, spans: 10 });
  expect(q.bytes).toBe(60);
  expect(contents(q)).toEqual([
    [5, 5],
    [6, 6],
    [7, 7],
  ]);
  // The first segment (records 1-3) is gone; the second still holds record 5.
  expect(segments()).toHaveLength(2);
  q.ack(3);
  expect(q.bytes).toBe(0);
  expect(q.peek(100)).toEqual([]);
  expect(segments()).toHaveLength(1);
});

test('reopening after close keeps the unacknowledged records, not the acknowledged ones', () => {
  const q = openQueue({ segmentBytes: 100 });
  for (let i = 1; i <= 5; i++) q.append(payload(i), 1);
  q.ack(2);
  q.close();

  const again = openQueue({ segmentBytes: 100 });
  expect(again.recovery).toMatchObject({ records: 3, bytes: 60, spans: 3, truncatedBytes: 0 });
  expect(contents(again).map(([p]) => p)).toEqual([3, 4, 5]);
  // Appends after a restart go after the recovered records.
  again.append(payload(6), 1);
  again.ack(1);
  again.close();

  const third = openQueue({ segmentBytes: 100 });
  expect(contents(third).map(([p]) => p)).toEqual([4, 5, 6]);
  third.ack(3);
  third.close();
  expect(openQueue().length).toBe(0);
});

test('reopening without close (a killed process) keeps every appended record', () => {
  const q = openQueue();
  q.append(payload(1), 1);
  q.append(payload(2), 1);
  q.ack(1);
  // No close(): the files are as a kill -9 leaves them (written, maybe not fsynced).
  const again = openQueue();
  expect(contents(again).map(([p]) => p)).toEqual([2]);
});

test('out-of-order ack (skip): the position waits for the records before, which survive a restart', () => {
  const q = openQueue();
  for (let i = 1; i <= 3; i++) q.append(payload(i), 1);
  expect(q.ack(1, 1)).toMatchObject({ records: 1 }); // drops record 2, record 1 is in flight
  expect(contents(q).map(([p]) => p)).toEqual([1, 3]);
  q.close();
  // Record 1 was never acknowledged: 1, 2 and 3 come back (at least once).
  const again = openQueue();
  expect(contents(again).map(([p]) => p)).toEqual([1, 2, 3]);
  again.ack(1);
  again.ack(1, 1);
  again.ack(1);
  again.close();
  expect(openQueue().length).toBe(0);
});

test('a torn last record is cut off at recovery; the records before it survive', () => {
  const q = openQueue();
  for (let i = 1; i <= 3; i++) q.append(payload(i), 1);
  q.close();
  const [file] = segments();
  const size = fs.statSync(path.join(dir, file)).size;
  fs.truncateSync(path.join(dir, file), size - 5);

  const again = openQueue();
  expect(again.recovery).toMatchObject({ records: 2, truncatedBytes: HEADER_BYTES + 20 - 5 });
  expect(contents(again).map(([p]) => p)).toEqual([1, 2]);
  expect(fs.statSync(path.join(dir, file)).size).toBe(2 * (HEADER_BYTES + 20));
  again.append(payload(4), 1);
  again.close();
  expect(contents(openQueue()).map(([p]) => p)).toEqual([1, 2, 4]);
});

test('a torn header (fewer than 12 bytes) is cut off too', () => {
  const q = openQueue();
  q.append(payload(1), 1);
  q.close();
  const file = path.join(dir, segments()[0]);
  fs.appendFileSync(file, Buffer.from([7, 0, 0]));
  const again = openQueue();
  expect(again.recovery.truncatedBytes).toBe(3);
  expect(contents(again).map(([p]) => p)).toEqual([1]);
});

test('a flipped byte in the last segment fails the CRC: that record and what follows are cut', () => {
  const q = openQueue();
  for (let i = 1; i <= 3; i++) q.append(payload(i), 1);
  q.close();
  const file = path.join(dir, segments()[0]);
  const data = fs.readFileSync(file);
  data[HEADER_BYTES + 20 + HEADER_BYTES + 3] ^= 0xff; // inside record 2's payload
  fs.writeFileSync(file, data);

  const again = openQueue();
  expect(again.recovery).toMatchObject({ records: 1, truncatedBytes: 2 * (HEADER_BYTES + 20) });
  expect(contents(again).map(([p]) => p)).toEqual([1]);
});

test('maxBytes: an append that would pass it throws DiskQueueFullError; acknowledging makes room', () => {
  const q = openQueue({ maxBytes: 50 });
  q.append(payload(1), 1);
  q.append(payload(2), 1);
  expect(() => q.append(payload(3), 1)).toThrow(DiskQueueFullError);
  expect(q.length).toBe(2);
  q.ack(1);
  q.append(payload(3), 1);
  expect(contents(q).map(([p]) => p)).toEqual([2, 3]);
});

test('an unreadable ack file means nothing is acknowledged (records are sent again)', () => {
  const q = openQueue();
  q.append(payload(1), 1);
  q.append(payload(2), 1);
  q.ack(1);
  q.close();
  fs.writeFileSync(path.join(dir, 'ack'), '{"segm');
  expect(contents(openQueue()).map(([p]) => p)).toEqual([1, 2]);
});

test('a tenant is kept with its record across a restart; peek stops before another tenant; older records have none', () => {
  const q = openQueue();
  q.append(payload(1), 1);
  q.append(payload(2), 2, 'team-a');
  q.append(payload(3), 3, 'team-a');
  q.append(payload(4), 4, 'team-b');
  // Payload bytes count the export request only.
  expect(q.bytes).toBe(80);
  const batches = () => {
    const out: [string | undefined, number[]][] = [];
    let skip = 0;
    for (;;) {
      const rs = q2.peek(Number.POSITIVE_INFINITY, skip);
      if (rs.length === 0) return out;
      out.push([rs[0].tenant, rs.map((r) => r.payload[0])]);
      expect(rs.every((r) => r.tenant === rs[0].tenant && r.payload.equals(payload(r.payload[0])))).toBe(true);
      skip += rs.length;
    }
  };
  let q2 = q;
  expect(batches()).toStrictEqual([
    [undefined, [1]],
    ['team-a', [2, 3]],
    ['team-b', [4]],
  ]);
  q.close();
  q2 = openQueue();
  expect(q2.recovery).toMatchObject({ records: 4, bytes: 80, spans: 10 });
  expect(batches()).toStrictEqual([
    [undefined, [1]],
    ['team-a', [2, 3]],
    ['team-b', [4]],
  ]);
  expect(q2.peek(Number.POSITIVE_INFINITY, 1).map((r) => r.spanCount)).toStrictEqual([2, 3]);
});

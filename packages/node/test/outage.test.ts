/**
 * Deferred sending and outages: the receiver down at start-up then up (the app keeps serving, what
 * was held arrives, shutdown flushes), a closed transmission gate holding telemetry on disk until it
 * opens, and the byte bound of the buffer (oldest dropped, counted; files survive a restart).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RequestBuffer } from '../src/buffer';
import { attr, ESM, freePort, startApp, startTestReceiver, type TestReceiver, waitFor } from './harness';

const receivers: TestReceiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.close();
});

test('receiver down at start-up, then up: the app keeps serving, held telemetry arrives, shutdown flushes', async () => {
  const port = await freePort();
  const app = await startApp('express-app.mjs', ESM, {
    OTEL_SERVICE_NAME: 'outage',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
  });
  try {
    for (let i = 0; i < 5; i++) expect((await fetch(`${app.url}/users/before-${i}`)).status).toBe(200);
    await waitFor('the warning about the unreachable receiver', () => app.stderr.join('').includes('cannot send'));
    expect(app.stderr.join('')).toContain('Start the receiver');

    const rx = await startTestReceiver(`127.0.0.1:${port}`);
    receivers.push(rx);
    const paths = () => new Set(rx.spans().map((s) => attr(s.span.attributes, 'url.path')));
    await waitFor(
      'the spans held during the outage',
      () => [0, 1, 2, 3, 4].every((i) => paths().has(`/users/before-${i}`)),
      30000,
    );
    expect(rx.logs().filter((l) => l.record.body === 'user looked up').length).toBeGreaterThanOrEqual(5);

    expect((await fetch(`${app.url}/users/last`)).status).toBe(200);
    const exit = await app.stop('SIGTERM');
    expect(exit.signal).toBe('SIGTERM');
    expect(paths().has('/users/last')).toBe(true);
  } finally {
    await app.stop('SIGKILL');
  }
});

test('a closed gate holds telemetry on disk, across a restart; it is sent when the gate opens', async () => {
  const rx = await startTestReceiver();
  receivers.push(rx);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-gate-'));
  const gateFile = path.join(dir, 'open');
  const bufferDir = path.join(dir, 'buffer');
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint, GATE_FILE: gateFile, BUFFER_DIR: bufferDir };
  const first = await startApp('gated-app.cjs', [], env);
  let second: Awaited<ReturnType<typeof startApp>> | undefined;
  try {
    for (let i = 0; i < 3; i++) expect((await fetch(`${first.url}/items/${i}`)).status).toBe(200);
    await waitFor('requests held on disk', () => fs.readdirSync(bufferDir).some((f) => f.includes('-traces-')));
    // Shut down with the gate still closed: nothing is sent, the files stay for the next run.
    const exit = await first.stop('SIGTERM');
    expect(exit.signal).toBe('SIGTERM');
    expect(rx.spans().some((s) => s.service === 'gated')).toBe(false);
    expect(rx.logs().some((l) => l.service === 'gated')).toBe(false);
    const held = fs.readdirSync(bufferDir);
    expect(held.some((f) => f.includes('-logs-'))).toBe(true);

    // The next run, with the gate open, sends what the previous one held, before any new request.
    fs.writeFileSync(gateFile, '');
    second = await startApp('gated-app.cjs', [], env);
    await waitFor('the held spans and events', () =>
      [0, 1, 2].every(
        (i) =>
          rx.spans().some((s) => s.service === 'gated' && attr(s.span.attributes, 'url.path') === `/items/${i}`) &&
          rx
            .logs()
            .some((l) => l.record.eventName === 'item.viewed' && attr(l.record.attributes, 'item.id') === String(i)),
      ),
    );
    await waitFor('the buffer emptied', () => held.every((f) => !fs.existsSync(path.join(bufferDir, f))));
  } finally {
    await first.stop('SIGKILL');
    await second?.stop('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the buffer is bounded in bytes: oldest dropped and counted; files survive a restart', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-buffer-'));
  try {
    const drops: [string, number][] = [];
    const buffer = new RequestBuffer(250, (signal, items) => drops.push([signal, items]), dir);
    buffer.push('traces', Buffer.alloc(100, 1), 3);
    buffer.push('logs', Buffer.alloc(100, 2), 4);
    buffer.push('metrics', Buffer.alloc(100, 3), 5); // 300 > 250: the oldest (traces) goes
    expect(drops).toEqual([['traces', 3]]);
    expect(buffer.bytes).toBe(200);
    expect(fs.readdirSync(dir)).toHaveLength(2);
    buffer.push('traces', Buffer.alloc(300), 7); // larger than the whole bound: dropped at once
    expect(drops).toEqual([
      ['traces', 3],
      ['traces', 7],
    ]);

    // A new process finds the files, in order.
    const again = new RequestBuffer(250, () => {}, dir);
    expect(again.length).toBe(2);
    expect(again.peek()?.signal).toBe('logs');
    expect(again.read(again.peek()!)![0]).toBe(2);
    again.shift();
    expect(again.peek()?.signal).toBe('metrics');
    again.push('logs', Buffer.alloc(10), 1);
    expect(fs.readdirSync(dir).sort().at(-1)).toMatch(/-logs-1\.otlp$/); // numbered after the old ones
    // An in-memory buffer loses what it holds at shutdown, and says so.
    const mem = new RequestBuffer(1000, () => {});
    mem.push('logs', Buffer.alloc(10), 2);
    expect(mem.dropMemory()).toEqual([{ signal: 'logs', items: 2 }]);
    expect(mem.bytes).toBe(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

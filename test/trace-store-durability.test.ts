/**
 * The embedded trace store across process lifetimes, with `sonde-receiver` as a child process: what
 * was stored is still served after a clean restart, and a receiver killed with SIGKILL while it
 * writes leaves a database that passes SQLite's integrity check and still serves every trace that
 * was searchable before the kill.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { type CliProcess, startCli } from './cli';

const running: CliProcess[] = [];
let work: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-store-durability-'));
});

afterAll(async () => {
  for (const cli of running) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }
  }
  rmSync(work, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function start(dataDir: string): Promise<{ cli: CliProcess; otlp: string; admin: string }> {
  const cli = startCli([], {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: 'off',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: dataDir,
    SONDE_LOG_LEVEL: 'info',
    SONDE_TRACE_STORE: 'auto', // on: no Tempo endpoint
  });
  running.push(cli);
  const line = await cli.waitForLine((l) => l.msg === 'sonde-receiver listening', 15_000);
  expect(line.traceStore).toBe(path.join(dataDir, 'traces.db'));
  return { cli, otlp: `http://${line.otlpHttp as string}`, admin: `http://${line.admin as string}` };
}

/** A request of `n` spans in one trace (`traceId`), as OTLP/JSON. */
function request(traceId: string, n: number, from = 0): string {
  const startNs = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'durability' } }] },
        scopeSpans: [
          {
            scope: { name: 'e2e' },
            spans: Array.from({ length: n }, (_, i) => ({
              traceId,
              spanId: (from + i + 1).toString(16).padStart(16, '0'),
              name: `op-${i % 7}`,
              kind: 2,
              startTimeUnixNano: String(startNs),
              endTimeUnixNano: String(startNs + 1_000_000n),
              attributes: [
                { key: 'http.route', value: { stringValue: `/r/${i % 5}` } },
                { key: 'payload', value: { stringValue: 'x'.repeat(200) } },
              ],
            })),
          },
        ],
      },
    ],
  });
}

async function post(otlp: string, body: string): Promise<number> {
  const res = await fetch(`${otlp}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

async function spanCount(admin: string, traceId: string): Promise<number> {
  const res = await fetch(`${admin}/api/v2/traces/${traceId}`);
  if (res.status === 404) return 0;
  const body = (await res.json()) as { trace: { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] } };
  return body.trace.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)).length;
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

test('a clean restart keeps the stored traces', async () => {
  const dataDir = path.join(work, 'restart');
  const traceId = 'aaaabbbbccccddddeeeeffff00001111';
  const first = await start(dataDir);
  expect(await post(first.otlp, request(traceId, 12))).toBe(200);
  await until('the trace to be stored', async () => (await spanCount(first.admin, traceId)) === 12);
  first.cli.child.kill('SIGTERM');
  expect(await first.cli.exited).toStrictEqual({ code: 0, signal: null });

  const second = await start(dataDir);
  expect(await spanCount(second.admin, traceId)).toBe(12);
  const search = await fetch(`${second.admin}/api/search?q=${encodeURIComponent('{ span.http.route = "/r/3" }')}`);
  expect(((await search.json()) as { traces: { traceID: string }[] }).traces.map((t) => t.traceID)).toStrictEqual([
    traceId,
  ]);
  second.cli.child.kill('SIGTERM');
  await second.cli.exited;
}, 30_000);

test('SIGKILL while writing leaves a store that passes the integrity check and keeps what was stored', async () => {
  const dataDir = path.join(work, 'kill');
  const first = await start(dataDir);
  const stored = 'bbbbccccddddeeeeffff000011112222';
  expect(await post(first.otlp, request(stored, 50))).toBe(200);
  await until('the first trace to be stored', async () => (await spanCount(first.admin, stored)) === 50);

  // Keep the writer busy: requests in flight, one trace each, then kill -9 in the middle of it.
  let sent = 0;
  const inFlight: Promise<number | undefined>[] = [];
  for (let i = 0; i < 40; i++) {
    const traceId = (0xc0000000 + i).toString(16).padStart(32, '0');
    inFlight.push(post(first.otlp, request(traceId, 500, i * 1000)).catch(() => undefined));
    sent++;
  }
  // Kill once the writer has taken some of them (written spans grow), while the rest are pending.
  await until('some writes', async () => {
    const text = await (await fetch(`${first.admin}/metrics`)).text();
    return Number(/^sonde_trace_store_spans_written_total (\d+)/m.exec(text)?.[1] ?? 0) > 1000;
  });
  first.cli.child.kill('SIGKILL');
  expect(await first.cli.exited).toStrictEqual({ code: null, signal: 'SIGKILL' });
  await Promise.all(inFlight);
  expect(sent).toBe(40);

  // The file is a consistent SQLite database (WAL replayed on open).
  const db = new DatabaseSync(path.join(dataDir, 'traces.db'));
  expect(
    db
      .prepare('PRAGMA integrity_check')
      .all()
      .map((r) => r.integrity_check),
  ).toStrictEqual(['ok']);
  const written = Number(db.prepare('SELECT sum(spans) AS spans FROM blobs').get()?.spans);
  // At least the first trace; at most everything sent, in whole requests.
  expect(written).toBeGreaterThan(50);
  expect((written - 50) % 500).toBe(0);
  db.close();

  // A new receiver opens it and serves what was stored before the kill, and takes new traces.
  const second = await start(dataDir);
  expect(await spanCount(second.admin, stored)).toBe(50);
  const after = 'ccccddddeeeeffff0000111122223333';
  expect(await post(second.otlp, request(after, 3))).toBe(200);
  await until('a trace after the restart', async () => (await spanCount(second.admin, after)) === 3);
  second.cli.child.kill('SIGTERM');
  await second.cli.exited;
}, 60_000);

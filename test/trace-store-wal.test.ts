/**
 * "Acknowledged means kept": `sonde-receiver` as a child process with the trace store on, driven at
 * saturation (its write queue full, so some requests are refused with 503) by concurrent OTLP/HTTP
 * requests of one trace each, then killed with SIGKILL mid-stream. Restarted on the same data
 * directory, it must serve every trace it had answered 200 for.
 *
 * The store holds requests in memory for up to a second before writing them (batch_timeout: 1s), so
 * without the write-ahead log most of the acknowledged traces would be lost. Set
 * SONDE_E2E_DURABILITY=memory to run the same test with `trace_store.durability: memory` and see it
 * fail (the loss it shows is that durability's documented window).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type CliProcess, startCli } from './cli';

const DURABILITY = process.env.SONDE_E2E_DURABILITY; // unset: the default (wal)

const running: CliProcess[] = [];
let work: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-store-wal-'));
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

async function start(dataDir: string, configFile: string): Promise<{ cli: CliProcess; otlp: string; admin: string }> {
  const cli = startCli(['--config', configFile], {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: 'off',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: dataDir,
    SONDE_LOG_LEVEL: 'info',
    SONDE_TRACE_STORE: 'true',
  });
  running.push(cli);
  const line = await cli.waitForLine((l) => l.msg === 'sonde-receiver listening', 20_000);
  return { cli, otlp: `http://${line.otlpHttp as string}`, admin: `http://${line.admin as string}` };
}

/** A request of `n` spans in one trace, as OTLP/JSON. */
function request(traceId: string, n: number): string {
  const startNs = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'wal-e2e' } }] },
        scopeSpans: [
          {
            scope: { name: 'e2e' },
            spans: Array.from({ length: n }, (_, i) => ({
              traceId,
              spanId: (i + 1).toString(16).padStart(16, '0'),
              name: `op-${i % 7}`,
              kind: 2,
              startTimeUnixNano: String(startNs),
              endTimeUnixNano: String(startNs + 1_000_000n),
              attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(300) } }],
            })),
          },
        ],
      },
    ],
  });
}

test('kill -9 at saturation loses no acknowledged trace: every trace answered 200 is found by id after a restart', async () => {
  const dataDir = path.join(work, 'data');
  const configFile = path.join(work, 'sonde.yaml');
  writeFileSync(
    configFile,
    [
      'trace_store:',
      // A small write queue (saturated: requests past it are refused with 503), and acknowledged
      // requests held in memory for a second before the writer takes them.
      '  queue_size: 1MiB',
      '  batch_timeout: 1s',
      '  batch_max_size: 64MiB',
      ...(DURABILITY ? [`  durability: ${DURABILITY}`] : []),
      '',
    ].join('\n'),
  );
  const first = await start(dataDir, configFile);

  const acknowledged: string[] = [];
  let refused = 0;
  let killed = false;
  let next = 0;
  const client = async () => {
    while (!killed) {
      const traceId = (0xa0000000 + next++).toString(16).padStart(32, '0');
      try {
        const res = await fetch(`${first.otlp}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: request(traceId, 20),
        });
        await res.arrayBuffer();
        if (res.status === 200) acknowledged.push(traceId);
        else if (res.status === 503) {
          refused++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        } else throw new Error(`unexpected status ${res.status}`);
      } catch (err) {
        if (!killed) throw err;
      }
    }
  };
  const clients = Array.from({ length: 16 }, client);
  // Mid-stream: once enough requests were acknowledged and the queue has refused some (saturation).
  const deadline = Date.now() + 20_000;
  while (acknowledged.length < 200 || refused === 0) {
    if (Date.now() > deadline)
      throw new Error(`no saturation: ${acknowledged.length} acknowledged, ${refused} refused`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  killed = true;
  first.cli.child.kill('SIGKILL');
  expect(await first.cli.exited).toStrictEqual({ code: null, signal: 'SIGKILL' });
  await Promise.all(clients);
  const acked = [...acknowledged];

  const second = await start(dataDir, configFile);
  const missing: string[] = [];
  for (const id of acked) {
    const res = await fetch(`${second.admin}/api/traces/${id}`);
    await res.arrayBuffer();
    if (res.status !== 200) missing.push(id);
  }
  process.stdout.write(
    `durability ${DURABILITY ?? 'wal (default)'}: ${acked.length} acknowledged, ${refused} refused, ${missing.length} acknowledged traces missing after kill -9\n`,
  );
  expect({ acknowledged: acked.length, missing }).toStrictEqual({ acknowledged: acked.length, missing: [] });
  second.cli.child.kill('SIGTERM');
  expect(await second.cli.exited).toStrictEqual({ code: 0, signal: null });
}, 60_000);

/**
 * The idle and steady-state footprint of the `sonde-receiver` command.
 *
 * Memory: the command caps V8's young generation (bin/sonde-receiver.js re-executes itself
 * with --max-semi-space-size): V8's own default, sized from the machine's memory, keeps up to 64 MiB
 * of semi-spaces resident under load. Read from the receiver's own /metrics (prom-client's heap
 * space gauges), in the process that was started (same pid, so signals and supervisors still work).
 *
 * Timers: an idle receiver's main thread wakes a few times per second (the 1 s checks of its
 * components, a 100 ms event-loop-delay sampler), not the 100 times per second of prom-client's
 * default 10 ms sampler. Counted from Linux's voluntary context switches of the main thread.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type CliProcess, startCli } from './cli';

let dataDir: string;
const started: CliProcess[] = [];

beforeAll(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-memory-'));
});

afterAll(async () => {
  for (const cli of started) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    await cli.exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts the CLI with `env`, returns the new space's size (bytes) from its /metrics, and stops it with SIGTERM. */
async function newSpaceBytes(env: Record<string, string>): Promise<number> {
  const cli = startCli([], {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: dataDir,
    SONDE_LOG_LEVEL: 'info',
    ...env,
  });
  started.push(cli);
  const first = await cli.waitForLine((l) => l.msg === 'sonde-receiver listening', 15_000);
  const text = await (await fetch(`http://${first.admin as string}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('sonde_nodejs_heap_space_size_total_bytes{space="new"}'));
  if (!line) throw new Error(`no new-space gauge in /metrics:\n${text.slice(0, 2000)}`);
  cli.child.kill('SIGTERM');
  expect(await cli.exited).toStrictEqual({ code: 0, signal: null });
  return Number(line.split(' ')[1]);
}

const MiB = 2 ** 20;

test('the command runs with an 8 MiB semi-space by default (new space at most 16 MiB), in the process it started', async () => {
  const bytes = await newSpaceBytes({});
  expect(bytes).toBeGreaterThan(0);
  expect(bytes).toBeLessThanOrEqual(16 * MiB);
});

test('SONDE_MAX_SEMI_SPACE_MB sets another size', async () => {
  const bytes = await newSpaceBytes({ SONDE_MAX_SEMI_SPACE_MB: '1' });
  expect(bytes).toBeGreaterThan(0);
  expect(bytes).toBeLessThanOrEqual(2 * MiB);
});

/** Voluntary context switches of `pid`'s main thread so far (each sleep of the thread is one). */
function mainThreadWakeups(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const match = /voluntary_ctxt_switches:\s*(\d+)/.exec(status);
  if (!match) throw new Error(`no voluntary_ctxt_switches in /proc/${pid}/task/${pid}/status`);
  return Number(match[1]);
}

const linux = process.platform === 'linux' ? test : test.skip;

linux('an idle receiver wakes its main thread at most 30 times per second', async () => {
  const cli = startCli([], {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: dataDir,
    SONDE_LOG_LEVEL: 'info',
  });
  started.push(cli);
  await cli.waitForLine((l) => l.msg === 'sonde-receiver listening', 15_000);
  const pid = cli.child.pid as number;
  // Start-up work (module loading, store threads) settles first.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const before = mainThreadWakeups(pid);
  const seconds = 4;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const perSecond = (mainThreadWakeups(pid) - before) / seconds;
  cli.child.kill('SIGTERM');
  expect(await cli.exited).toStrictEqual({ code: 0, signal: null });
  expect(perSecond).toBeLessThanOrEqual(30);
});

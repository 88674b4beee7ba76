/**
 * The `sonde-receiver` command caps V8's young generation (bin/sonde-receiver.js re-executes itself
 * with --max-semi-space-size): V8's own default, sized from the machine's memory, keeps up to 64 MiB
 * of semi-spaces resident under load. Read from the receiver's own /metrics (prom-client's heap
 * space gauges), in the process that was started (same pid, so signals and supervisors still work).
 */
import { mkdtempSync, rmSync } from 'node:fs';
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

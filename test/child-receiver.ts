/**
 * A `sonde-receiver` child process with an explicit configuration file, for the fuzz and abuse
 * tests: its addresses, its resident memory (current and peak, from /proc), a /healthz probe with a
 * deadline, and a kill that always runs (call `stop()` from afterAll).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { type CliProcess, startCli } from './cli';

export interface ChildReceiver {
  cli: CliProcess;
  pid: number;
  /** host:port of each listener. */
  otlpHttp: string;
  otlpGrpc: string;
  admin: string;
  dataDir: string;
  /** Still running? (A process that is aborting counts as running until it is gone.) */
  alive(): boolean;
  /** Whether it still runs, and the fatal lines of its stderr: for failure messages. */
  state(): string;
  /**
   * Resident memory in bytes: all of it now (VmRSS), the anonymous part now (RssAnon: heap, buffers,
   * threads; not the trace store's memory-mapped database file, which the kernel can drop), and the
   * peak of all of it since start (VmHWM).
   */
  memory(): { rss: number; anon: number; peak: number };
  /** Kills the child (SIGKILL) if it still runs, waits for it, and removes its data directory. */
  stop(): Promise<void>;
}

export async function startChildReceiver(
  config: Record<string, unknown>,
  options: { nodeOptions?: string; startTimeoutMs?: number } = {},
): Promise<ChildReceiver> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sonde-child-'));
  const file = path.join(dataDir, 'sonde.yaml');
  const full = {
    ...config,
    otlp: {
      http: { address: '127.0.0.1:0' },
      grpc: { address: '127.0.0.1:0' },
      ...(config.otlp as object | undefined),
    },
    admin: { address: '127.0.0.1:0', ...(config.admin as object | undefined) },
    log: { level: 'info', summary_interval: 0, ...(config.log as object | undefined) },
    data_dir: dataDir,
  };
  writeFileSync(file, stringify(full));
  const env: Record<string, string> = {};
  if (options.nodeOptions) env.NODE_OPTIONS = options.nodeOptions;
  const cli = startCli(['--config', file], env);
  const stop = async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  let first: Awaited<ReturnType<CliProcess['waitForLine']>>;
  try {
    first = await cli.waitForLine((l) => l.msg === 'sonde-receiver listening', options.startTimeoutMs ?? 20_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const pid = cli.child.pid as number;
  return {
    cli,
    pid,
    otlpHttp: first.otlpHttp as string,
    otlpGrpc: first.otlpGrpc as string,
    admin: first.admin as string,
    dataDir,
    alive: () => cli.child.exitCode === null && cli.child.signalCode === null,
    state: () => {
      const running = cli.child.exitCode === null && cli.child.signalCode === null;
      const fatal = cli.stderr
        .join('')
        .split('\n')
        .filter((l) => /FATAL|Error|error/.test(l))
        .slice(0, 3);
      return `receiver ${running ? 'running' : `exited (${cli.child.exitCode ?? cli.child.signalCode})`}${fatal.length > 0 ? `; stderr: ${fatal.join(' | ')}` : ''}`;
    },
    memory: () => procMemory(pid),
    stop,
  };
}

/** VmRSS, RssAnon and VmHWM of a process, in bytes (Linux). */
export function procMemory(pid: number): { rss: number; anon: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), peak: kb('VmHWM') };
}

/** GET `url` with a deadline; resolves with the status and body, rejects on timeout. */
export async function getWithin(url: string, ms: number): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(ms) });
  return { status: res.status, body: await res.text() };
}

/** /healthz answers 200 "ok" within `ms`; the time it took, or an error saying what happened. */
export async function healthz(admin: string, ms = 5_000): Promise<number> {
  const started = performance.now();
  const { status, body } = await getWithin(`http://${admin}/healthz`, ms).catch((err: Error) => {
    throw new Error(`/healthz did not answer within ${ms} ms: ${err.message}`);
  });
  if (status !== 200 || body !== 'ok\n') throw new Error(`/healthz answered ${status} ${JSON.stringify(body)}`);
  return performance.now() - started;
}

export const MiB = 1024 * 1024;

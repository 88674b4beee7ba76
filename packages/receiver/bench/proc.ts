/**
 * The servers under test as child processes, and what /proc tells about them: CPU time
 * (utime + stime of /proc/<pid>/stat) and resident memory (VmRSS, VmHWM of /proc/<pid>/status).
 * Every child started here is killed when the bench ends, on success, error or signal.
 */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const RECEIVER_BIN = join(HERE, '..', 'bin', 'sonde-receiver.js');
const SINK_SCRIPT = join(HERE, 'sink.ts');

/**
 * CPU pinning: when on, every server runs on CPU 1 only and the bench process (the client) on CPU 0
 * only, so that the server gets exactly one core and the scheduler does not move them around.
 */
let pinning = false;
const SERVER_CPU = '1';
const CLIENT_CPU = '0';

/** Turns pinning on if this machine has 2 CPUs or more and `taskset`; returns whether it is on. */
export function enablePinning(): boolean {
  if (availableParallelism() < 2) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });
  } catch {
    return false;
  }
  pinning = true;
  return true;
}

/**
 * Starts `node args...`, pinned to the server's CPU when pinning is on and `pin` is not false
 * (taskset execs node: same pid). With pinning on and `pin` false, on every CPU of the machine: a
 * child inherits its parent's affinity, and the bench process (the client) is then on CPU 0 only.
 */
function spawnNode(args: string[], options: SpawnOptions, pin = true): ChildProcess {
  if (!pinning) return spawn(process.execPath, args, options);
  const cpus = pin ? SERVER_CPU : `0-${availableCpus() - 1}`;
  return spawn('taskset', ['-c', cpus, process.execPath, ...args], options);
}

/** The machine's CPUs, not this process's (under pinning, os.availableParallelism() is 1 here). */
function availableCpus(): number {
  try {
    return Number(execFileSync('nproc', ['--all'], { encoding: 'utf8' }).trim()) || availableParallelism();
  } catch {
    return availableParallelism();
  }
}

const CLOCK_TICKS = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Every child still running; killed on exit. */
const children = new Set<ChildProcess>();

/** Kills (SIGKILL) every child still running. Synchronous, so it also works from an 'exit' handler. */
export function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

process.on('exit', killAll);

export interface Server {
  name: string;
  pid: number;
  port: number;
  child: ChildProcess;
  /** The last lines the child wrote (for error messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

function track(name: string, child: ChildProcess): { output: () => string; exited: Promise<void> } {
  children.add(child);
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      tail += `\n[${name}] spawn error: ${err.message}`;
      children.delete(child);
      resolve();
    });
  });
  return { output: () => tail, exited };
}

function makeServer(
  name: string,
  child: ChildProcess,
  port: number,
  output: () => string,
  exited: Promise<void>,
): Server {
  return {
    name,
    pid: child.pid ?? -1,
    port,
    child,
    output,
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A port free now on 127.0.0.1 (the receiver is started with it, since at log level warn it does not print its addresses). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(500, () => done(false));
  });
}

/** `--config FILE` when SONDE_BENCH_CONFIG names one (the receiver's own SONDE_CONFIG is not passed on). */
export function configArgs(): string[] {
  const file = process.env.SONDE_BENCH_CONFIG;
  return file ? ['--config', file] : [];
}

export interface ReceiverOptions {
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  dataDir: string;
  /** Extra environment (e.g. SONDE_TEMPO_ENDPOINT). */
  env?: Record<string, string>;
  /** Arguments of sonde-receiver (e.g. --config file). */
  args?: string[];
  /** Another build's bin/sonde-receiver.js (to compare two builds in one run); this package's by default. */
  bin?: string;
  /** False: runs on every CPU even when pinning is on (a receiver with intake workers). */
  pin?: boolean;
}

/**
 * Starts the receiver through its CLI (bin/sonde-receiver.js, the built dist/) with
 * SONDE_LOG_LEVEL=warn and the default configuration except the trace store (off unless `env` turns it
 * on), every listener on 127.0.0.1.
 */
export async function startReceiver(options: ReceiverOptions): Promise<Server> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SONDE_OTLP_HTTP_ADDR: `127.0.0.1:${port}`,
      SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
      SONDE_ADMIN_ADDR: '127.0.0.1:0',
      SONDE_LOG_LEVEL: 'warn',
      SONDE_DATA_DIR: options.dataDir,
      // The embedded trace store is on by default (no Tempo endpoint); the intake sections measure
      // intake without it, and the store section (store-bench.ts) turns it on and compares.
      SONDE_TRACE_STORE: 'false',
      // Likewise the log store (log-store-bench.ts turns it on).
      SONDE_LOG_STORE: 'false',
      ...options.env,
    };
    delete env.SONDE_CONFIG;
    const child = spawnNode(
      [...(options.nodeArgs ?? []), options.bin ?? RECEIVER_BIN, ...(options.args ?? [])],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
      options.pin,
    );
    const { output, exited } = track('receiver', child);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
      if (await canConnect(port)) return makeServer('receiver', child, port, output, exited);
      await sleep(50);
    }
    child.kill('SIGKILL');
    await exited;
    lastError = output();
    if (!/EADDRINUSE/.test(lastError)) break;
  }
  throw new Error(`the receiver did not start listening:\n${lastError}`);
}

/** What the sink does with each body besides reading it (bench/sink.ts): nothing, decode, or decode and redact. */
export type SinkWork = '' | 'decode' | 'redact';

/**
 * glibc's malloc thresholds for the sinks, fixed where they would otherwise move. glibc gives back the
 * top of its heap once more than the trim threshold (128 KiB at first) is free there, and the sinks
 * free each request's body, so they kept shrinking and growing their heap: under `strace -c`, at 100
 * spans/request, `brk` 0.06 times a request for the bare sink, 0.42 for the one that decodes and 0.64
 * for the one that also redacts, each growth paid again in page faults; the system time per request
 * (`/proc/<pid>/stat`) came to 21, 60 and 78 µs, and the receiver's to 32 (it called `brk` once in
 * 8,000 requests: presumably something in its start frees a block large enough to raise glibc's
 * dynamic thresholds). With these values: 16, 24 and 22 µs (those figures from throwaway scripts,
 * 2026-12-05), and the bare sink took 1.46× the spans/s at 100 spans/request and 1.03× at 500
 * (`node bench/throughput-ab.ts --pin --spans 100 'sink:env=MALLOC_TRIM_THRESHOLD_=;MALLOC_MMAP_THRESHOLD_=' sink`).
 * The mmap threshold keeps even 500-span bodies (279 KiB) on the heap, where the receiver's dynamic
 * threshold has them. An entry of `env` in startSink set to '' removes one.
 */
const SINK_MALLOC_ENV: Record<string, string> = {
  MALLOC_MMAP_THRESHOLD_: String(4 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(16 * 1024 * 1024),
};

/**
 * Starts the bare sink and waits for its {"port":N} line. bench/sink.ts holds no type syntax and is
 * run as plain JavaScript, so that the sink process does not load Node's TypeScript stripper.
 */
export async function startSink(
  work: SinkWork = '',
  options: { nodeArgs?: string[]; env?: Record<string, string> } = {},
): Promise<Server> {
  const source = readFileSync(SINK_SCRIPT, 'utf8');
  const env: NodeJS.ProcessEnv = { ...process.env, ...SINK_MALLOC_ENV, ...options.env };
  for (const [key, value] of Object.entries(env)) if (value === '') delete env[key];
  const child = spawnNode([...(options.nodeArgs ?? []), '--input-type=module', '--eval', source], {
    env: { ...env, SINK_PORT: '0', SINK_WORK: work, SINK_RECEIVER_DIST: join(HERE, '..', 'dist') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const name = work === '' ? 'sink' : `${work}-sink`;
  const { output, exited } = track(name, child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the sink did not start within 10 s:\n${output()}`)), 10_000);
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      try {
        resolve((JSON.parse(buffered.slice(0, nl)) as { port: number }).port);
      } catch {
        reject(new Error(`the sink printed an unexpected first line: ${buffered.slice(0, nl)}`));
      }
    };
    child.stdout?.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the sink exited before listening:\n${output()}`));
    });
  });
  return makeServer(name, child, port, output, exited);
}

/** CPU seconds (user + system) the process has used since it started. */
export function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq) and stolen by the hypervisor, from /proc/stat. */
export function machineCpuSeconds(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user).
  return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / CLOCK_TICKS, steal: (f[7] ?? 0) / CLOCK_TICKS };
}

export interface CpuWindowResult {
  wallSec: number;
  /** In cores (1 = one core busy all the time). */
  server: number;
  /** The server's main thread (its JavaScript thread; the rest are V8's and libuv's helpers, and intake workers). */
  serverMain: number;
  /** The bench process itself (the client). */
  client: number;
  /** Everything else on the machine: other processes, kernel threads. */
  other: number;
  steal: number;
}

/** Measures CPU use over a window: the server process, the bench process, and the rest of the machine. */
export class CpuWindow {
  private readonly pid: number | undefined;
  private readonly t0 = performance.now();
  private readonly server0: number;
  private readonly main0: number;
  private readonly client0 = process.cpuUsage();
  private readonly machine0 = machineCpuSeconds();

  constructor(pid: number | undefined) {
    this.pid = pid;
    this.server0 = pid === undefined ? 0 : cpuSeconds(pid);
    this.main0 = pid === undefined ? 0 : cpuSeconds(pid, pid);
  }

  end(): CpuWindowResult {
    const wallSec = (performance.now() - this.t0) / 1000;
    const server = this.pid === undefined ? 0 : cpuSeconds(this.pid) - this.server0;
    const main = this.pid === undefined ? 0 : cpuSeconds(this.pid, this.pid) - this.main0;
    const c = process.cpuUsage(this.client0);
    const client = (c.user + c.system) / 1e6;
    const m = machineCpuSeconds();
    const other = Math.max(0, m.busy - this.machine0.busy - server - client);
    return {
      wallSec,
      server: server / wallSec,
      serverMain: main / wallSec,
      client: client / wallSec,
      other: other / wallSec,
      steal: (m.steal - this.machine0.steal) / wallSec,
    };
  }
}

export interface Memory {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size since the process started (VmHWM), bytes. */
  hwm: number;
}

export function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Samples a process's RSS every `everyMs` until stopped; bounded by `maxSamples`. */
export class RssSampler {
  readonly pid: number;
  private readonly samples: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(pid: number, everyMs = 200, maxSamples = 10_000) {
    this.pid = pid;
    this.timer = setInterval(() => {
      if (this.samples.length >= maxSamples) return;
      try {
        this.samples.push(memory(pid).rss);
      } catch {
        // the process is gone
      }
    }, everyMs);
    this.timer.unref();
  }

  stop(): { avg: number; max: number; count: number } {
    clearInterval(this.timer);
    const n = this.samples.length;
    if (n === 0) return { avg: 0, max: 0, count: 0 };
    let sum = 0;
    let max = 0;
    for (const s of this.samples) {
      sum += s;
      if (s > max) max = s;
    }
    return { avg: sum / n, max, count: n };
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ). */
const TICKS_PER_SEC = 100;

/**
 * The CPU time (user + system, seconds) of each thread of process `pid`, by thread id, with the
 * thread's name (/proc/<pid>/task/<tid>/stat); the main thread's id is `pid`. Threads that exit while
 * read are left out.
 */
export function threadCpu(pid: number): Map<number, { name: string; cpu: number }> {
  const out = new Map<number, { name: string; cpu: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const f = stat.slice(close + 2).split(' ');
      out.set(Number(tid), {
        name: stat.slice(stat.indexOf('(') + 1, close),
        cpu: (Number(f[11]) + Number(f[12])) / TICKS_PER_SEC,
      });
    } catch {
      // exited
    }
  }
  return out;
}

/** The kinds of a receiver's threads that the A/B scripts tell apart. */
export const THREAD_KINDS = ['main', 'workers', 'v8', 'other'] as const;
export type ThreadKind = (typeof THREAD_KINDS)[number];

/**
 * threadCpu summed by kind: the main thread; the worker_threads Workers (`WorkerThread`: the intake
 * workers, and the stores' threads when they are on); V8's helper threads (`V8Worker`: concurrent
 * marking, parallel scavenges, background compilation); any other (libuv's pool, the inspector).
 */
export function threadCpuByKind(pid: number): Record<ThreadKind | 'all', number> {
  const out = { all: 0, main: 0, workers: 0, v8: 0, other: 0 };
  for (const [tid, t] of threadCpu(pid)) {
    out.all += t.cpu;
    const kind: ThreadKind =
      tid === pid ? 'main' : t.name === 'WorkerThread' ? 'workers' : t.name === 'V8Worker' ? 'v8' : 'other';
    out[kind] += t.cpu;
  }
  return out;
}

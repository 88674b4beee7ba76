/**
 * Test harness: a real @sonde/receiver in this process (capturing every batch and the raw request
 * bytes it received), and instrumented applications as child processes (`--import` / `--require`
 * @sonde/node/register), exactly as a user runs them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import {
  type Batch,
  type LogRecord,
  type Metric,
  type Receiver,
  type Signal,
  type Span,
  startReceiver,
  validateConfig,
} from '@sonde/receiver';

export const FIXTURES = path.join(__dirname, 'fixtures');

export interface TestReceiver {
  receiver: Receiver;
  endpoint: string;
  /** host:port of OTLP/gRPC, when started with grpc on. */
  grpc?: string;
  admin: string;
  batches: { [S in Signal]: Batch<S>[] };
  /** Every request body received (decompressed), to assert that a value never arrived in clear. */
  raw: Buffer[];
  spans(): { span: Span; service: string; scope: string }[];
  logs(): { record: LogRecord; service: string; scope: string }[];
  metrics(): { metric: Metric; service: string; scope: string }[];
  close(): Promise<void>;
}

function serviceOf(attrs: { key: string; value: unknown }[]): string {
  const a = attrs.find((x) => x.key === 'service.name');
  return a ? String(a.value) : '';
}

export async function startTestReceiver(httpAddress = '127.0.0.1:0', grpc = false): Promise<TestReceiver> {
  const receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: httpAddress }, grpc: { address: grpc ? '127.0.0.1:0' : 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
    }),
    { defaultMetrics: false },
  );
  const batches = { traces: [], metrics: [], logs: [] } as TestReceiver['batches'];
  const raw: Buffer[] = [];
  for (const signal of ['traces', 'metrics', 'logs'] as const) {
    receiver.pipeline[signal].addConsumer({
      name: 'capture',
      consume: (b: Batch<typeof signal>) => {
        (batches[signal] as Batch<typeof signal>[]).push(b);
        if (b.context.raw) raw.push(b.context.raw);
      },
    } as never);
  }
  return {
    receiver,
    endpoint: `http://${receiver.addresses.otlpHttp}`,
    grpc: receiver.addresses.otlpGrpc,
    admin: `http://${receiver.addresses.admin}`,
    batches,
    raw,
    spans: () =>
      batches.traces.flatMap((b) =>
        b.data.flatMap((rs) =>
          rs.scopeSpans.flatMap((ss) =>
            ss.spans.map((span) => ({ span, service: serviceOf(rs.resource.attributes), scope: ss.scope.name })),
          ),
        ),
      ),
    logs: () =>
      batches.logs.flatMap((b) =>
        b.data.flatMap((rl) =>
          rl.scopeLogs.flatMap((sl) =>
            sl.logRecords.map((record) => ({
              record,
              service: serviceOf(rl.resource.attributes),
              scope: sl.scope.name,
            })),
          ),
        ),
      ),
    metrics: () =>
      batches.metrics.flatMap((b) =>
        b.data.flatMap((rm) =>
          rm.scopeMetrics.flatMap((sm) =>
            sm.metrics.map((metric) => ({ metric, service: serviceOf(rm.resource.attributes), scope: sm.scope.name })),
          ),
        ),
      ),
    close: () => receiver.close(),
  };
}

/** The value of an attribute in the receiver's model. */
export function attr(attrs: { key: string; value: unknown }[], key: string): unknown {
  const a = attrs.find((x) => x.key === key);
  return a === undefined ? undefined : typeof a.value === 'bigint' ? Number(a.value) : a.value;
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function waitForAsync<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface App {
  child: ChildProcess;
  port: number;
  url: string;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a fixture app; resolves once it printed `{"listening": port}`. */
export async function startApp(
  file: string,
  nodeArgs: string[],
  env: Record<string, string>,
  timeoutMs = 30000,
): Promise<App> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('OTEL_') && !k.startsWith('SONDE_') && k !== 'DO_NOT_TRACK',
    ),
  );
  const child = spawn(process.execPath, [...nodeArgs, path.join(FIXTURES, file)], {
    cwd: path.join(__dirname, '..'),
    env: {
      ...inherited,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BLRP_SCHEDULE_DELAY: '200',
      OTEL_METRIC_EXPORT_INTERVAL: '500',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stderr?.on('data', (c: Buffer) => stderr.push(c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${stderr.join('')}`)), timeoutMs);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      stdout.push(line);
      try {
        const parsed = JSON.parse(line) as { listening?: number };
        if (parsed.listening) {
          clearTimeout(timer);
          resolve(parsed.listening);
        }
      } catch {
        // not JSON
      }
    });
    void exited.then(({ code }) => reject(new Error(`${file} exited with ${code}: ${stderr.join('')}`)));
  });
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    stdout,
    stderr,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A free loopback port (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export const ESM = ['--import', '@sonde/node/register'];
export const CJS = ['--require', '@sonde/node/register'];

/**
 * The `sonde-receiver` CLI as a child process for end-to-end tests: its JSON log lines parsed as they
 * come, its stderr, its exit, and a wait for a given log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

const BIN = path.resolve(__dirname, '../packages/receiver/bin/sonde-receiver.js');

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A running `sonde-receiver`: its parsed stdout lines as they come, its stderr, and its exit. */
export interface CliProcess {
  child: ChildProcess;
  lines: LogLine[];
  stderr: string[];
  /** Resolves with the first line matching `predicate` (already seen or still to come). */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(args: string[], env: Record<string, string>): CliProcess {
  // No SONDE_* setting of the environment running the tests may leak in.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SONDE_')));
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const stderr: string[] = [];
  const waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { level: 0, msg: `(not JSON) ${text}` };
    }
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.predicate(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': by then stdout and stderr are read to the end, so the last log lines are in.
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    stderr,
    exited,
    waitForLine(predicate, timeoutMs) {
      const seen = lines.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `no such log line within ${timeoutMs} ms; stdout: ${JSON.stringify(lines)}; stderr: ${stderr.join('')}`,
            ),
          );
        }, timeoutMs);
        waiters.push({
          predicate,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(
            new Error(`sonde-receiver exited first; stdout: ${JSON.stringify(lines)}; stderr: ${stderr.join('')}`),
          );
        });
      });
    },
  };
}

/** Starts CLIs and kills (SIGKILL) whichever still run at `killAll`: for afterEach/afterAll. */
export function cliTracker(): {
  start(args: string[], env: Record<string, string>): CliProcess;
  killAll(): Promise<void>;
} {
  const running: CliProcess[] = [];
  return {
    start(args, env) {
      const cli = startCli(args, env);
      running.push(cli);
      return cli;
    },
    async killAll() {
      for (const cli of running.splice(0)) {
        if (cli.child.exitCode === null && cli.child.signalCode === null) {
          cli.child.kill('SIGKILL');
          await cli.exited;
        }
      }
    },
  };
}

/** Polls `cond` until it holds; fails with the receiver's output after `timeoutMs` or if `cli` exits first. */
export async function untilCli(what: string, cond: () => boolean, cli: CliProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    const state = `stdout: ${JSON.stringify(cli.lines)}; stderr: ${cli.stderr.join('')}`;
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) {
      throw new Error(`sonde-receiver exited before ${what}; ${state}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${state}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

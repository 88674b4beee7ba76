/**
 * Crashes leave a trace: an uncaught exception or an unhandled rejection is recorded as a log record
 * (severity FATAL, `exception.type`, `exception.message`, `exception.stacktrace`, and
 * `sonde.crash.origin`), and as an `exception` event on the active span (status ERROR) when there is
 * one; what the SDK holds is flushed, bounded by `flushTimeoutMs`; then the process dies as it would
 * have without Sonde.
 *
 * "As it would have":
 * - The application's own handlers win. With another `uncaughtException` listener (or, for a
 *   rejection, another `unhandledRejection` listener), Sonde records and flushes in the background and
 *   does nothing else: the application decides whether the process lives.
 * - Uncaught exception, no other listener: after the flush, Sonde removes its listeners and throws the
 *   same error again, so Node reports it (stderr, exit code 1, `exit` listeners) as usual. Node's
 *   report starts with the source line of the throw; Sonde writes that header itself from the error's
 *   first stack frame (a `throw` on that line gets the caret, as Node puts it), since Node would
 *   otherwise point at Sonde's re-throw. Not reproducible: the header for values that are not errors
 *   (no stack) and for errors thrown inside Node's own modules (no source to read).
 * - Unhandled rejection: Node's `--unhandled-rejections` mode (from the command line or NODE_OPTIONS)
 *   is respected. `throw` (the default): after the flush, the same reason is rejected again with
 *   Sonde's listeners removed, and Node reports it itself (same stderr, exit code 1).
 *   `warn-with-error-code`: recorded, then re-rejected at once so Node warns and sets exit code 1.
 *   `warn`, `none`: recorded only (Sonde's listener changes nothing in these modes). `strict`: Node
 *   raises it as an uncaught exception, handled as above.
 *
 * While the flush runs (at most `flushTimeoutMs`), the process goes on running: timers fire and
 * servers accept connections, as they do during a graceful shutdown.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Exception, type Logger, SeverityNumber, SpanStatusCode, trace } from '@opentelemetry/api';

export interface CrashOptions {
  /** Where the record goes (the SDK's logger). */
  logger: Logger;
  /** Flushes the SDK (spans, logs, buffer), bounded by the given time. */
  flush(timeoutMs: number): Promise<void>;
  /** Upper bound of the flush before the process is let die, ms. */
  flushTimeoutMs: number;
  /** process.execArgv and NODE_OPTIONS, for --unhandled-rejections (default: this process's). */
  execArgv?: string[];
  nodeOptions?: string;
}

export type UnhandledRejectionsMode = 'throw' | 'strict' | 'warn' | 'none' | 'warn-with-error-code';

/** The --unhandled-rejections mode in effect: the command line wins over NODE_OPTIONS; default `throw`. */
export function unhandledRejectionsMode(execArgv: string[], nodeOptions = ''): UnhandledRejectionsMode {
  const find = (args: string[]) => {
    let mode: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const m = /^--unhandled-rejections(?:=(.*))?$/.exec(args[i]);
      if (m) mode = m[1] ?? args[i + 1];
    }
    return mode;
  };
  const mode = find(execArgv) ?? find(nodeOptions.split(/\s+/).filter(Boolean));
  return mode === 'strict' || mode === 'warn' || mode === 'none' || mode === 'warn-with-error-code' ? mode : 'throw';
}

/** exception.* attributes of a thrown value, as the semantic conventions name them. */
export function exceptionAttributes(value: unknown): Record<string, string> {
  if (value instanceof Error || (typeof value === 'object' && value !== null && 'message' in value)) {
    const e = value as Error;
    const type = e.name || e.constructor?.name || 'Error';
    return {
      'exception.type': type,
      'exception.message': String(e.message),
      ...(typeof e.stack === 'string' ? { 'exception.stacktrace': e.stack } : {}),
    };
  }
  return { 'exception.type': value === null ? 'null' : typeof value, 'exception.message': String(value) };
}

/**
 * The first lines of Node's report of a fatal error: "<file>:<line>", the source line, a caret under
 * the throw, and a blank line; '' when the error has no readable first frame.
 */
export function fatalHeader(err: unknown, caretAtThrow = true): string {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return '';
  const frame = err.stack
    .split('\n')
    .slice(1)
    .map((l) => /^\s+at (?:.*? \()?(.+?):(\d+):(\d+)\)?$/.exec(l))
    .find((m) => m !== null);
  if (!frame) return '';
  const [, file, lineText, colText] = frame;
  if (file.startsWith('node:')) return '';
  let source: string;
  try {
    source = fs.readFileSync(file.startsWith('file://') ? fileURLToPath(file) : file, 'utf8');
  } catch {
    return '';
  }
  const line = source.split(/\r?\n/)[Number(lineText) - 1];
  if (line === undefined) return '';
  let start = Number(colText) - 1;
  const before = caretAtThrow ? /\bthrow\s+$/.exec(line.slice(0, start)) : null;
  if (before) start = before.index;
  const pad = [...line.slice(0, start)].map((c) => (c === '\t' ? '\t' : ' ')).join('');
  return `${file}:${lineText}\n${line}\n${pad}^\n\n`;
}

/** Installs the handlers; returns a function that removes them. */
export function installCrashHandlers(options: CrashOptions): () => void {
  const mode = unhandledRejectionsMode(
    options.execArgv ?? process.execArgv,
    options.nodeOptions ?? process.env.NODE_OPTIONS,
  );
  const recorded = new WeakSet<object>();
  let lastPrimitive: { value: unknown } | undefined;
  let dying = false;

  /** `fatal`: the process is about to die of it (the span is then ended, so that it is exported). */
  const record = (value: unknown, origin: 'uncaughtException' | 'unhandledRejection', fatal: boolean) => {
    // strict mode: Node emits uncaughtException, then unhandledRejection for the same reason.
    if (typeof value === 'object' && value !== null) {
      if (recorded.has(value)) return;
      recorded.add(value);
    } else {
      if (lastPrimitive && Object.is(lastPrimitive.value, value)) return;
      lastPrimitive = { value };
    }
    try {
      const attributes = exceptionAttributes(value);
      const span = trace.getActiveSpan();
      if (span?.isRecording()) {
        span.recordException(value instanceof Error ? value : (attributes['exception.message'] as Exception));
        span.setStatus({ code: SpanStatusCode.ERROR, message: attributes['exception.message'] });
        // The process ends before the span would have: end it, so that it is exported.
        if (fatal) span.end();
      }
      options.logger.emit({
        severityNumber: SeverityNumber.FATAL,
        severityText: 'FATAL',
        body: `${origin}: ${attributes['exception.type']}: ${attributes['exception.message']}`,
        attributes: { ...attributes, 'sonde.crash.origin': origin },
      });
    } catch {
      // Recording must never stand in the way of the crash.
    }
  };

  /** The application's own listeners of `event` (all but Sonde's). */
  const countOthers = (event: 'uncaughtException' | 'unhandledRejection') => {
    const listeners: unknown[] =
      event === 'uncaughtException' ? process.listeners('uncaughtException') : process.listeners('unhandledRejection');
    return listeners.filter((l) => l !== onException && l !== onRejection).length;
  };

  /** Flushes, bounded; then `then` (once), even if the flush hangs. */
  const flushThen = (then: () => void) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      then();
    };
    // A referenced timer: the process must not end quietly (exit code 0) while it waits.
    const timer = setTimeout(finish, options.flushTimeoutMs + 100);
    options.flush(options.flushTimeoutMs).then(finish, finish);
  };

  const onException = (err: unknown, origin: string) => {
    if (dying) return;
    const fatal = countOthers('uncaughtException') === 0;
    record(err, origin === 'unhandledRejection' ? 'unhandledRejection' : 'uncaughtException', fatal);
    if (!fatal) {
      // The application handles it: flush in the background, nothing else.
      options.flush(options.flushTimeoutMs).catch(() => {});
      return;
    }
    dying = true;
    flushThen(() => die(err, true));
  };

  /**
   * Throws `err` again with Sonde's listeners removed, so that Node reports it and exits, with the
   * header Node would have written: for a throw, the caret under it; for a rejection, Node takes the
   * place from the error's stack (which V8 no longer has once the stack was read for the record).
   */
  const die = (err: unknown, caretAtThrow: boolean) => {
    uninstall();
    const header = fatalHeader(err, caretAtThrow);
    if (header) {
      try {
        fs.writeSync(2, header);
      } catch {
        // stderr closed
      }
    }
    process.nextTick(() => {
      throw err; // node-do-not-add-exception-line
    });
  };

  const onRejection = (reason: unknown) => {
    if (dying) return;
    const handled = countOthers('unhandledRejection') > 0 || mode === 'warn' || mode === 'none';
    const fatal = !handled && mode === 'throw' && countOthers('uncaughtException') === 0;
    record(reason, 'unhandledRejection', fatal);
    if (handled) {
      options.flush(options.flushTimeoutMs).catch(() => {});
      return;
    }
    // throw (and warn-with-error-code): hand the rejection back to Node, without Sonde's listeners,
    // so that Node does what it does by default (for throw: after the flush).
    const reemit = () => {
      uninstall();
      Promise.reject(reason);
      setImmediate(install);
    };
    if (mode === 'warn-with-error-code') {
      reemit();
      options.flush(options.flushTimeoutMs).catch(() => {});
      return;
    }
    dying = true;
    flushThen(() => {
      // An error with no other uncaughtException listener: Node would report it and exit (1), as below.
      if (reason instanceof Error && countOthers('uncaughtException') === 0) return die(reason, false);
      dying = false;
      reemit();
    });
  };

  let installed = false;
  let removed = false;
  function install() {
    if (installed || removed) return;
    installed = true;
    process.on('uncaughtException', onException);
    process.on('unhandledRejection', onRejection);
  }
  function uninstall() {
    if (!installed) return;
    installed = false;
    process.removeListener('uncaughtException', onException);
    process.removeListener('unhandledRejection', onRejection);
  }
  install();
  return () => {
    removed = true;
    uninstall();
  };
}

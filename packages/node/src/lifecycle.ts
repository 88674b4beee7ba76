/**
 * Flush and shutdown, bounded in time, and the process hooks that call them: on SIGTERM or SIGINT
 * with no handler of the application's, flush everything and die of the same signal, as Node would
 * have without Sonde; with the application's own handler, flush and leave the exit to it; on
 * `beforeExit`, shut down.
 */
import { logs, metrics, trace } from '@opentelemetry/api';
import { consentState } from './consent';
import { setEventsActive } from './events';
import { type State, sdkState } from './state';

function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => {
        clearTimeout(t);
        resolve();
      },
    );
  });
}

/** Sends everything the SDK holds now (spans, logs, a metrics collection, the buffer), bounded in time. */
export async function flush(timeoutMs?: number): Promise<void> {
  const s = sdkState.current;
  if (!s) return;
  const ms = timeoutMs ?? s.shutdownTimeoutMs;
  const deadline = Date.now() + ms;
  const providers = [trace.getTracerProvider(), logs.getLoggerProvider(), metrics.getMeterProvider()] as unknown as {
    forceFlush?(): Promise<void>;
    getDelegate?(): { forceFlush?(): Promise<void> };
  }[];
  await withTimeout(
    Promise.all(
      providers.map((p) => {
        const target = p.forceFlush ? p : p.getDelegate?.();
        return target?.forceFlush?.();
      }),
    ),
    ms,
  );
  await s.shipper?.flush(Math.max(0, deadline - Date.now()));
}

/** Flushes and stops the SDK (bounded by shutdownTimeoutMs). Telemetry after it is not sent. */
export function shutdown(): Promise<void> {
  const s = sdkState.current;
  if (!s) return Promise.resolve();
  if (s.shuttingDown) return s.shuttingDown;
  s.shuttingDown = (async () => {
    const deadline = Date.now() + s.shutdownTimeoutMs;
    setEventsActive(false);
    consentState.attachRecorder(undefined);
    await withTimeout(Promise.all([s.sdk.shutdown(), s.choicesProvider?.shutdown()]), s.shutdownTimeoutMs);
    await s.shipper?.shutdown(Math.max(0, deadline - Date.now()));
  })();
  return s.shuttingDown;
}

/** SIGTERM, SIGINT and beforeExit (see the module comment); the listeners are kept in `s.listeners`. */
export function installSignalHandlers(s: State): void {
  const onSignal = (signal: NodeJS.Signals) => {
    // The application has its own handler: it decides when and how to exit; send what we have now,
    // the rest goes at beforeExit (or is lost if the app exits synchronously).
    if (process.listenerCount(signal) > 1) {
      void flush();
      return;
    }
    // Nobody else handles it: flush, then die of the same signal, as Node would have without us.
    void shutdown().finally(() => {
      for (const [name, fn] of s.listeners) process.removeListener(name, fn);
      process.kill(process.pid, signal);
    });
  };
  const onBeforeExit = () => {
    if (!s.shuttingDown) void shutdown();
  };
  const add = (name: string, fn: (...args: unknown[]) => void) => {
    process.on(name as NodeJS.Signals, fn);
    s.listeners.push([name, fn]);
  };
  add('SIGTERM', () => onSignal('SIGTERM'));
  add('SIGINT', () => onSignal('SIGINT'));
  add('beforeExit', onBeforeExit);
}

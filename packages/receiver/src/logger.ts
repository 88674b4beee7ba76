/** Structured logging (pino, JSON lines on stdout). */
import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Writes go to stdout synchronously (pino.destination's default). The receiver logs little (start-up,
 * summaries, warnings), and an asynchronous stdout loses the last lines ("stopped", the reason of a
 * failure) when the process exits while a write is still in the thread pool: sonic-boom's flush()
 * answers at once when it does not buffer.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { name: 'sonde-receiver', level, base: { pid: process.pid } },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

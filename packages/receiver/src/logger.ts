/** Structured logging (pino, JSON lines on stdout). */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ name: 'sonde-receiver', level, base: { pid: process.pid } }, destination);
}

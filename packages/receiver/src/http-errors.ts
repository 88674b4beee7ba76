/**
 * The last error handler of the receiver's express apps (the OTLP/HTTP intake, the admin port): an
 * error that reaches it is answered without its details, so that no stack trace, file path or
 * internal message leaves the process (express's own handler answers an HTML page with the stack).
 * A client error raised with a 4xx status by express or a middleware keeps its status, with a message
 * of our own (a malformed %-escape in a path parameter is a URIError with status 400); anything else
 * is a 500, and the error is logged with its stack.
 */
import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from './logger';

interface HttpError {
  status?: unknown;
  statusCode?: unknown;
}

/** The status and message to answer an error with: never the error's own message or stack. */
export function errorAnswer(err: unknown): { status: number; message: string; unexpected: boolean } {
  const e = (err ?? {}) as HttpError;
  const status = Number(e.status ?? e.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    const message =
      (err as Error).name === 'URIError'
        ? 'malformed percent-encoding in the URL path'
        : (STATUS_CODES[status] ?? 'bad request').toLowerCase();
    return { status, message, unexpected: false };
  }
  return { status: 500, message: 'internal error (logged by the receiver)', unexpected: true };
}

/**
 * An express error handler that answers through `send` (each app has its body format), and logs
 * unexpected errors. A response already under way is cut off (its connection closed).
 */
export function errorHandler(
  logger: Logger | undefined,
  send: (res: Response, status: number, message: string) => void,
): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const answer = errorAnswer(err);
    if (answer.unexpected) logger?.error({ err, method: req.method, path: req.path }, 'unexpected error in a request');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    send(res, answer.status, answer.message);
  };
}

/**
 * The bare sink the receiver is compared with: a plain node:http server that reads each request's
 * whole body into one Buffer (the least any receiver must do) and answers 200 with an empty body.
 * Listens on 127.0.0.1, on the port in SINK_PORT (0 for any), and prints {"port":N} once listening.
 *
 * Keep this file free of type syntax: the bench runs it as plain JavaScript (`node --input-type=module
 * --eval`), so that the sink does not pay for Node's TypeScript stripping (about 30 MiB of RSS) while
 * the receiver, built to JavaScript, does not either.
 */
import { createServer } from 'node:http';

let requests = 0;
let bytes = 0;

const server = createServer((req, res) => {
  const chunks = new Array(0); // any[], as no type annotation may be written here
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    requests++;
    bytes += body.length;
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  });
  req.on('error', () => res.destroy());
});
server.keepAliveTimeout = 30_000;

server.listen(Number(process.env.SINK_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = address !== null && typeof address === 'object' ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});

const stop = () => {
  process.stderr.write(`${JSON.stringify({ requests, bytes })}\n`);
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

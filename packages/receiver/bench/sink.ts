/**
 * The bare sink the receiver is compared with: a plain node:http server that reads each request's
 * whole body into one Buffer (the least any receiver must do) and answers 200 with an empty body;
 * with SINK_WORK (below) it also decodes, or decodes and redacts, and answers 400 to what does not decode.
 * Listens on 127.0.0.1, on the port in SINK_PORT (0 for any), and prints {"port":N} once listening.
 *
 * Keep this file free of type syntax: the bench runs it as plain JavaScript (`node --input-type=module
 * --eval`), so that the sink does not pay for Node's TypeScript stripping (about 30 MiB of RSS) while
 * the receiver, built to JavaScript, does not either.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

let requests = 0;
let bytes = 0;

/**
 * SINK_WORK=decode also decodes each body with the receiver's protobuf decoder (its built dist/, in
 * SINK_RECEIVER_DIST); SINK_WORK=redact decodes and runs the default redaction over the spans. These
 * are the floors of the comparison: the least a receiver must do with each request before it derives
 * anything, with redaction (the default) and without.
 */
const work = process.env.SINK_WORK ?? '';
const receiverWork = (() => {
  if (work === '') return undefined;
  if (work !== 'decode' && work !== 'redact') throw new Error(`SINK_WORK=${work}: expected decode or redact`);
  const require = createRequire(`${process.env.SINK_RECEIVER_DIST}/`);
  const { decodeTraceRequest } = require('./otlp/protobuf/decode-traces.js');
  const { DEFAULT_DECODE_LIMITS } = require('./otlp/limits.js');
  const { configSchema, toRedactionConfig } = require('./config/schema.js');
  const { Redaction } = require('./pipeline/redaction.js');
  const { Registry } = require('prom-client');
  const redaction =
    work === 'redact' ? new Redaction(toRedactionConfig(configSchema.parse({}).redaction), new Registry()) : undefined;
  return { decode: decodeTraceRequest, limits: DEFAULT_DECODE_LIMITS, processor: redaction?.processor() };
})();

const server = createServer((req, res) => {
  const chunks = new Array(0); // any[], as no type annotation may be written here
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    requests++;
    bytes += body.length;
    try {
      if (receiverWork) {
        const data = receiverWork.decode(body, receiverWork.limits, { longestString: 0, mostAttributes: 0 });
        receiverWork.processor?.process({ signal: 'traces', data, context: { modified: false }, warnings: [] });
      }
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(String(err));
      return;
    }
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

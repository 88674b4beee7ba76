/**
 * A stand-in for Tempo's OTLP/HTTP intake that is flaky the way a real backend under trouble is: of
 * every 10 export requests it answers 2 with 503 (the receiver retries them) and 1 with 400 (the
 * receiver drops that batch, counted as rejected_4xx), and accepts the rest. It decodes nothing: the
 * receiver's exporter is what is being observed.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FlakyTempo {
  /** Base URL, for tempo.endpoint. */
  url: string;
  requests: number;
  close(): Promise<void>;
}

export async function startFlakyTempo(): Promise<FlakyTempo> {
  const tempo: FlakyTempo = { url: '', requests: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const n = tempo.requests++ % 10;
      if (n === 3 || n === 7) res.writeHead(503, { 'retry-after': '0' }).end('ingester unavailable');
      else if (n === 5) res.writeHead(400, { 'content-type': 'text/plain' }).end('trace too large for tenant');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tempo.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tempo.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return tempo;
}

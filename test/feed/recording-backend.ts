/**
 * A stand-in for an OTLP/HTTP backend (Tempo's or Loki's intake) that records every request and
 * answers with the status the test sets: down (503) for a while, then up, as a real backend that
 * fails and recovers. Decodes nothing: the receiver's exporter is what is being observed.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  /** The status it was answered with. */
  status: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RecordingBackend {
  /** Base URL, for tempo.endpoint / loki.endpoint. */
  url: string;
  /** The status the next requests get (503 at first). */
  status: number;
  received: RecordedRequest[];
  close(): Promise<void>;
}

/** `okStatus`: how success is answered (Tempo 200 with an empty protobuf body, Loki 204). */
export async function startRecordingBackend(okStatus: 200 | 204): Promise<RecordingBackend> {
  const backend: RecordingBackend = { url: '', status: 503, received: [], close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = backend.status;
      backend.received.push({ status, path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      if (status === okStatus) {
        if (status === 204) res.writeHead(204).end();
        else res.writeHead(status, { 'content-type': 'application/x-protobuf' }).end();
      } else {
        res
          .writeHead(status, { 'content-type': 'text/plain' })
          .end('at least 1 live replicas required, could only find 0');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  backend.close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return backend;
}

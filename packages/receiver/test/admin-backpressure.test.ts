/**
 * Greedy readers cannot grow the receiver's memory (issue 11, finding 3): connections that pipeline
 * many `GET /debug/recent` and never read their responses get no more rendered than their sockets
 * take; the receiver's memory stays bounded and /healthz answers meanwhile.
 */
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type Field, kv, PROTOBUF, post, span, startTestReceiver, type TestReceiver, traceRequest } from './helpers';

setFlagsFromString('--expose-gc');

let r: TestReceiver;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await r?.close();
});

const SPANS = 2000;

/** SPANS spans, each with a 300-character attribute: /debug/recent renders about a megabyte. */
function bigRequest(): Buffer {
  const spans: Field[][] = [];
  for (let i = 0; i < SPANS; i++) {
    const id = (i + 1).toString(16).padStart(32, '0');
    spans.push(span([[9, 'message', kv('note', [[1, 'bytes', `${i}`.padEnd(300, 'x')]])]], id, id.slice(16)));
  }
  return traceRequest(spans);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function startWithData(): Promise<void> {
  r = await startTestReceiver({ debug: { recent_items: SPANS } });
  expect((await post(`${r.http}/v1/traces`, bigRequest(), PROTOBUF)).status).toBe(200);
  const one = await post(`${r.admin}/debug/recent?signal=traces`, '', {}, 'GET');
  expect(one.status).toBe(200);
  expect(one.body.length).toBeGreaterThan(800_000);
  // Rendered in pieces, it is still one JSON document, as before.
  const json = JSON.parse(one.body.toString());
  expect(json).toMatchObject({ signal: 'traces', retainedItems: SPANS, maxItems: SPANS });
  expect(json.entries).toHaveLength(1);
  expect(json.entries[0]).toMatchObject({ transport: 'http', items: SPANS });
  expect(json.entries[0].request.resourceSpans[0].scopeSpans[0].spans).toHaveLength(SPANS);
}

/**
 * Opens `connections` sockets that each pipeline `pipelined` GET /debug/recent and never read; checks
 * /healthz for 1.5 s meanwhile; returns the growth of the process's RSS (MiB) at its peak.
 */
async function greedyReaders(connections: number, pipelined: number): Promise<number> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const sample = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const { port } = new URL(r.admin);
    const requests = Buffer.from(
      'GET /debug/recent?signal=traces HTTP/1.1\r\nHost: sonde\r\n\r\n'.repeat(pipelined),
      'latin1',
    );
    for (let c = 0; c < connections; c++) {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      // Never read: the socket stays paused, and the receiver's writes back up.
      socket.pause();
      socket.write(requests);
      sockets.push(socket);
    }
    for (let i = 0; i < 10; i++) {
      await sleep(150);
      // 5 s: the same process parses the greedy connections' requests, on a machine that CI may share.
      const health = await fetch(`${r.admin}/healthz`, { signal: AbortSignal.timeout(5000) });
      expect(health.status).toBe(200);
    }
  } finally {
    clearInterval(sample);
  }
  return (peak - before) / 2 ** 20;
}

const limitHits = async (labels: string) => {
  const text = await (await fetch(`${r.admin}/metrics`)).text();
  const m = new RegExp(`sonde_receiver_limit_hits_total\\{${labels}\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
};

test('connections pipelining /debug/recent without reading keep memory bounded; /healthz answers', async () => {
  await startWithData();
  // 12 connections × 48 requests (within admin.max_pipelined_requests): without back-pressure every
  // one is rendered at once, about 12 × 48 × 1 MB.
  const grown = await greedyReaders(12, 48);
  expect(grown).toBeLessThan(150);
  // More greedy connections than debug.max_concurrent_renders (4): the others were told to retry.
  expect(await limitHits('signal="traces",limit="max_concurrent_renders"')).toBeGreaterThan(0);
}, 30_000);

test('a connection that pipelines more than admin.max_pipelined_requests is closed, and its requests freed', async () => {
  await startWithData();
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  // Node parses a whole read of pipelined requests (about 1,200 here) before any handler can refuse
  // them: the peak is bounded by connections, and what they hold is freed once they are closed.
  const grown = await greedyReaders(40, 3000);
  expect(grown).toBeLessThan(400);
  expect(await limitHits('signal="",limit="max_pipelined_requests"')).toBe(40);
  // What the parsed requests held is freed (40 connections holding theirs: about 40 MB).
  gc();
  expect((process.memoryUsage().heapUsed - before) / 2 ** 20).toBeLessThan(20);
  // Each was closed by the receiver: read, each ends (or is reset) at once.
  const closed = await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 5000);
          socket.once('close', () => {
            clearTimeout(timer);
            resolve(true);
          });
          socket.resume();
        }),
    ),
  );
  expect(closed.every(Boolean)).toBe(true);
}, 30_000);

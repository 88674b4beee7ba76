/**
 * Greedy readers cannot grow the receiver's memory (issue 11, finding 3): connections that pipeline
 * many `GET /debug/recent` and never read their responses get no more rendered than their sockets
 * take; the receiver's memory stays bounded and /healthz answers meanwhile.
 */
import { connect, type Socket } from 'node:net';
import { type Field, kv, PROTOBUF, post, span, startTestReceiver, type TestReceiver, traceRequest } from './helpers';

let r: TestReceiver;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await r?.close();
});

const SPANS = 1000;
const CONNECTIONS = 8;
const PIPELINED = 200;

/** SPANS spans, each with a 300-character attribute: /debug/recent renders about half a megabyte. */
function bigRequest(): Buffer {
  const spans: Field[][] = [];
  for (let i = 0; i < SPANS; i++) {
    const id = (i + 1).toString(16).padStart(32, '0');
    spans.push(span([[9, 'message', kv('note', [[1, 'bytes', `${i}`.padEnd(300, 'x')]])]], id, id.slice(16)));
  }
  return traceRequest(spans);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('connections pipelining /debug/recent without reading keep memory bounded; /healthz answers', async () => {
  r = await startTestReceiver();
  expect((await post(`${r.http}/v1/traces`, bigRequest(), PROTOBUF)).status).toBe(200);
  const one = await post(`${r.admin}/debug/recent?signal=traces`, '', {}, 'GET');
  expect(one.status).toBe(200);
  expect(one.body.length).toBeGreaterThan(400_000);
  const json = JSON.parse(one.body.toString());
  expect(json).toMatchObject({ signal: 'traces', retainedItems: SPANS, maxItems: 1000 });
  expect(json.entries).toHaveLength(1);
  expect(json.entries[0]).toMatchObject({ transport: 'http', items: SPANS });
  expect(json.entries[0].request.resourceSpans[0].scopeSpans[0].spans).toHaveLength(SPANS);

  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sample = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const { port } = new URL(r.admin);
    const requests = Buffer.from(
      'GET /debug/recent?signal=traces HTTP/1.1\r\nHost: sonde\r\n\r\n'.repeat(PIPELINED),
      'latin1',
    );
    for (let c = 0; c < CONNECTIONS; c++) {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      // Never read: the socket stays paused, and the receiver's writes back up.
      socket.pause();
      socket.write(requests);
      sockets.push(socket);
    }
    for (let i = 0; i < 10; i++) {
      await sleep(150);
      const health = await fetch(`${r.admin}/healthz`, { signal: AbortSignal.timeout(2000) });
      expect(health.status).toBe(200);
    }
  } finally {
    clearInterval(sample);
  }
  // More greedy connections than debug.max_concurrent_renders (4): the others were told to retry.
  const metrics = await (await fetch(`${r.admin}/metrics`)).text();
  expect(metrics).toMatch(/sonde_receiver_limit_hits_total\{signal="traces",limit="max_concurrent_renders"\} [1-9]/);
  const grown = (peak - before) / 2 ** 20;
  // Without back-pressure: every pipelined request rendered at once, about 8 × 200 × 0.5 MB.
  expect(grown).toBeLessThan(150);
}, 30_000);

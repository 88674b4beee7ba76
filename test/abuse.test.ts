/**
 * The abuse cases of issue 11 ("Safe to expose"), against the `sonde-receiver` CLI as a child
 * process with an explicit configuration: decode bombs, greedy readers, stalled uploads, and a
 * metric that makes the exposition too long. Each asserts what a receiver that is safe to expose
 * does: a 4xx or a refusal instead of a crash, resident memory bounded, /healthz answering, and
 * /metrics still rendering the receiver's own metrics. Counts are scaled down from the issue's so the
 * file stays under about 90 s; the bounds keep a wide margin for a loaded machine.
 *
 * The child runs with a capped V8 heap (--max-old-space-size), so that a receiver that does blow up
 * dies at 2 GiB instead of taking the machine's memory; a safe receiver never gets near it.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as zlib from 'node:zlib';
import { type ChildReceiver, getWithin, healthz, MiB, startChildReceiver } from './child-receiver';

type Signal = 'traces' | 'metrics' | 'logs';
const SIGNALS: Signal[] = ['traces', 'metrics', 'logs'];
const RESOURCE_KEY: Record<Signal, string> = {
  traces: 'resourceSpans',
  metrics: 'resourceMetrics',
  logs: 'resourceLogs',
};
const GRPC_PATH: Record<Signal, string> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};
const NODE_OPTIONS = '--max-old-space-size=2048';

let receiver: ChildReceiver | undefined;

/** A fresh child with `config` for each test: one that blew up must not spill into the next. */
async function freshReceiver(config: Record<string, unknown>): Promise<ChildReceiver> {
  await receiver?.stop();
  receiver = undefined;
  receiver = await startChildReceiver(config, { nodeOptions: NODE_OPTIONS });
  return receiver;
}

afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});

afterAll(async () => {
  await receiver?.stop();
  receiver = undefined;
});

/** Runs `step`; on failure, says what it was and what state the receiver is in. */
async function step<T>(r: ChildReceiver, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    throw new Error(`${what}: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}; ${r.state()}`);
  }
}

/** POST a raw body with a deadline; the status, or the error text if there was no answer. */
async function post(
  url: string,
  body: Buffer,
  headers: Record<string, string>,
  ms: number,
): Promise<{ status?: number; error?: string }> {
  try {
    const res = await fetch(url, { method: 'POST', body, headers, signal: AbortSignal.timeout(ms) });
    await res.arrayBuffer();
    return { status: res.status };
  } catch (err) {
    return { error: `${(err as Error).message} ${((err as Error).cause as Error | undefined)?.message ?? ''}`.trim() };
  }
}

/** One unary gRPC call with a raw frame; the grpc-status, or an error text. */
function grpcCall(
  address: string,
  path: string,
  frame: Buffer,
  headers: Record<string, string>,
  ms: number,
): Promise<{ grpcStatus?: number; error?: string }> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', (err) => resolve({ error: err.message }));
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let grpcStatus: number | undefined;
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) grpcStatus = Number(h['grpc-status']);
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('data', () => {});
    stream.on('error', () => {});
    const timer = setTimeout(() => {
      session.destroy();
      resolve({ error: `no gRPC status within ${ms} ms` });
    }, ms);
    stream.on('close', () => {
      clearTimeout(timer);
      session.close();
      resolve(
        grpcStatus === undefined ? { error: `stream closed without a status (RST ${stream.rstCode})` } : { grpcStatus },
      );
    });
    stream.end(frame);
  });
}

/** The receiver still runs, answers /healthz, and its peak resident memory stayed under `bound`. */
async function expectHealthy(r: ChildReceiver, bound: number): Promise<void> {
  if (!r.alive()) throw new Error(`the receiver exited; ${r.state()}`);
  await step(r, 'after the request', () => healthz(r.admin, 5_000));
  const { peak } = r.memory();
  if (peak > bound)
    throw new Error(`the receiver's peak RSS was ${(peak / MiB).toFixed(0)} MiB, over ${bound / MiB} MiB`);
}

// ---------------------------------------------------------------------------------------------
// 1. Decode bombs: tens of millions of empty resources in a 63 KB gzipped request

describe('a small gzipped request that decodes into millions of empty resources', () => {
  const config = { overload: { memory_limit: '1GiB' }, trace_store: { enabled: true } };
  /** The memory_limit the operator set: a bomb must not take the process past it. */
  const bound = 1024 * MiB;
  // 62 MiB of `0a 00`: field 1 (ResourceSpans, ResourceMetrics, ResourceLogs), length 0, 32 million times.
  const protobufBomb = zlib.gzipSync(Buffer.alloc(62 * MiB, Buffer.from([0x0a, 0x00])), { level: 9 });
  // 63 MiB of `{}` elements in the resource array of the signal.
  const jsonBomb = (signal: Signal) => {
    const head = `{"${RESOURCE_KEY[signal]}":[{}`;
    const elements = Math.floor((63 * MiB - head.length - 2) / 3);
    return zlib.gzipSync(Buffer.from(`${head}${',{}'.repeat(elements)}]}`), { level: 9 });
  };

  test('the bombs are small on the wire and within max_request_body_size decompressed', () => {
    expect(protobufBomb.length).toBeLessThan(100 * 1024);
    expect(zlib.gunzipSync(protobufBomb).length).toBe(62 * MiB);
  });

  test.each(SIGNALS.flatMap((s) => [[s, 'protobuf'] as const, [s, 'json'] as const]))(
    'HTTP %s %s: a 4xx, no exit, RSS under the memory limit, /healthz answers',
    async (signal, encoding) => {
      const r = await freshReceiver(config);
      const body = encoding === 'protobuf' ? protobufBomb : jsonBomb(signal);
      const res = await post(
        `http://${r.otlpHttp}/v1/${signal}`,
        body,
        {
          'content-type': encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json',
          'content-encoding': 'gzip',
        },
        60_000,
      );
      if (res.status === undefined) throw new Error(`no answer: ${res.error}; ${r.state()}`);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      await expectHealthy(r, bound);
    },
    90_000,
  );

  test.each(SIGNALS)(
    'gRPC %s, gzip-compressed message: refused (INVALID_ARGUMENT or RESOURCE_EXHAUSTED), no exit, RSS under the memory limit',
    async (signal) => {
      const r = await freshReceiver(config);
      const frame = Buffer.alloc(5 + protobufBomb.length);
      frame[0] = 1;
      frame.writeUInt32BE(protobufBomb.length, 1);
      protobufBomb.copy(frame, 5);
      const res = await grpcCall(r.otlpGrpc, GRPC_PATH[signal], frame, { 'grpc-encoding': 'gzip' }, 60_000);
      if (res.grpcStatus === undefined) throw new Error(`no status: ${res.error}; ${r.state()}`);
      expect([3, 8]).toContain(res.grpcStatus);
      await expectHealthy(r, bound);
    },
    90_000,
  );
});

// ---------------------------------------------------------------------------------------------
// 3. Greedy readers: pipelined GET /debug/recent on connections that never read

test('40 connections pipelining GET /debug/recent without reading: RSS stays bounded and /healthz answers', async () => {
  const r = await freshReceiver({ trace_store: { enabled: false } });
  // 1,000 recent spans of about 1.3 KB each: every /debug/recent answer is over a MB of JSON.
  const spans = (batch: number) =>
    Array.from({ length: 100 }, (_, i) => ({
      traceId: (batch * 100 + i + 1).toString(16).padStart(32, '0'),
      spanId: (i + 1).toString(16).padStart(16, '0'),
      name: `span ${batch}-${i}`,
      startTimeUnixNano: '1700000000000000000',
      endTimeUnixNano: '1700000001000000000',
      attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(1000) } }],
    }));
  for (let batch = 0; batch < 10; batch++) {
    const res = await post(
      `http://${r.otlpHttp}/v1/traces`,
      Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: spans(batch) }] }] })),
      { 'content-type': 'application/json' },
      10_000,
    );
    expect(res.status).toBe(200);
  }
  const before = r.memory().rss;
  const bound = before + 512 * MiB;
  const [host, port] = hostPort(r.admin);
  const request = `GET /debug/recent?signal=traces HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const sockets: net.Socket[] = [];
  let peak = before;
  const probes: Promise<number | Error>[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      const s = net.connect(port, host);
      s.on('error', () => {});
      s.pause(); // never read: the answers pile up wherever the server keeps them
      s.write(request.repeat(50));
      sockets.push(s);
    }
    // Keep asking for 10 s (the issue's run took 50 s to reach 6 GB), checking memory and /healthz.
    const until = Date.now() + 10_000;
    for (let tick = 0; Date.now() < until; tick++) {
      for (const s of sockets) if (!s.destroyed && s.writableLength < 64 * 1024) s.write(request.repeat(10));
      await new Promise((resolve) => setTimeout(resolve, 250));
      if (!r.alive()) throw new Error(`the receiver exited; ${r.state()}`);
      peak = Math.max(peak, r.memory().rss);
      if (peak > bound) break; // over already: stop before it takes the machine's memory
      // A probe a second, not waited for here, so that memory is still watched while one hangs.
      if (tick % 4 === 0) probes.push(healthz(r.admin, 5_000).catch((err: Error) => err));
    }
  } finally {
    for (const s of sockets) s.destroy();
  }
  const answers = await Promise.all(probes);
  const missed = answers.filter((a) => a instanceof Error);
  const slowest = Math.max(0, ...answers.filter((a) => typeof a === 'number'));
  console.log(
    `greedy readers: RSS ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB; ` +
      `/healthz missed ${missed.length} of ${answers.length} probes, slowest answer ${slowest.toFixed(0)} ms`,
  );
  expect(peak).toBeLessThan(bound);
  expect(missed.map((e) => (e as Error).message)).toStrictEqual([]);
  expect(r.alive()).toBe(true);
}, 60_000);

// ---------------------------------------------------------------------------------------------
// 4. Stalled uploads: declared 51 MiB, a few MiB sent, then nothing

test('60 stalled uploads of a declared 51 MiB: later ones get 429, in-flight bytes are counted, /healthz answers', async () => {
  const r = await freshReceiver({ trace_store: { enabled: false } });
  const before = r.memory().rss;
  const bound = before + 768 * MiB;
  const [host, port] = hostPort(r.otlpHttp);
  const declared = 51 * MiB;
  // Scaled down from the issue's 50 MiB per connection; 60 × 8 MiB is still over max_in_flight_bytes.
  const chunk = Buffer.alloc(8 * MiB, 0x0a);
  const sockets: net.Socket[] = [];
  const statuses: (number | undefined)[] = [];
  try {
    for (let i = 0; i < 60; i++) {
      const s = net.connect(port, host);
      s.on('error', () => {});
      let received = '';
      s.on('data', (d: Buffer) => {
        received += d.toString('latin1');
        const m = /^HTTP\/1\.1 (\d{3})/.exec(received);
        if (m) statuses[i] = Number(m[1]);
      });
      s.write(
        `POST /v1/traces HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${declared}\r\n\r\n`,
      );
      sockets.push(s);
      // The headers first, as a client does; then part of the body, unless it was refused already.
      await new Promise((resolve) => setTimeout(resolve, 30));
      if (statuses[i] === undefined) s.write(chunk);
    }
    // Let the refusals arrive and the uploads stall.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await step(r, 'while the uploads stall', () => healthz(r.admin, 5_000));
    const metrics = await step(r, 'GET /metrics while the uploads stall', () =>
      getWithin(`http://${r.admin}/metrics`, 10_000),
    );
    const inFlight = Number(/^sonde_receiver_in_flight_bytes (\S+)$/m.exec(metrics.body)?.[1] ?? Number.NaN);
    const refused = statuses.filter((s) => s === 429).length;
    console.log(
      `stalled uploads: ${refused} answered 429, ${statuses.filter((s) => s !== undefined && s !== 429).length} answered otherwise, in_flight_bytes ${inFlight}, RSS ${(r.memory().rss / MiB).toFixed(0)} MiB`,
    );
    // The default 256 MiB of max_in_flight_bytes holds five declared 51 MiB bodies, so 55 should be
    // refused on their headers; a receiver that counts bytes as they arrive instead still refuses the
    // 28 past 256 MiB of 8 MiB each. At least 25, either way.
    expect(refused).toBeGreaterThanOrEqual(25);
    expect(statuses.filter((s) => s !== undefined && s < 300)).toStrictEqual([]);
    expect(inFlight).toBeGreaterThan(0);
    expect(r.memory().peak).toBeLessThan(bound);
    expect(r.alive()).toBe(true);
  } finally {
    for (const s of sockets) s.destroy();
  }
}, 60_000);

// ---------------------------------------------------------------------------------------------
// 5. One histogram whose exposition would exceed V8's longest string

test('a histogram of 700 bounds and 100 attributes of 8,000 characters: /metrics still renders sonde_receiver_ metrics', async () => {
  const r = await freshReceiver({ trace_store: { enabled: false } });
  const bounds = Array.from({ length: 700 }, (_, i) => i + 1);
  const request = {
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'abuse' } }] },
        scopeMetrics: [
          {
            metrics: [
              {
                name: 'wide_histogram',
                unit: 's',
                histogram: {
                  aggregationTemporality: 2,
                  dataPoints: [
                    {
                      startTimeUnixNano: '1700000000000000000',
                      timeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
                      count: '701',
                      sum: 1000,
                      explicitBounds: bounds,
                      bucketCounts: Array.from({ length: 701 }, () => '1'),
                      attributes: Array.from({ length: 100 }, (_, i) => ({
                        key: `label_${i}`,
                        value: { stringValue: String.fromCharCode(97 + (i % 26)).repeat(8000) },
                      })),
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
  };
  const body = Buffer.from(JSON.stringify(request));
  const res = await post(`http://${r.otlpHttp}/v1/metrics`, body, { 'content-type': 'application/json' }, 30_000);
  // Accepted, cut down, or refused: any of them is fine, as long as the scrape still renders.
  if (res.status === undefined) throw new Error(`no answer to the POST: ${res.error}; ${r.state()}`);
  expect(res.status).toBeLessThan(500);
  const scrape = await step(r, 'GET /metrics after the wide histogram', () =>
    getWithin(`http://${r.admin}/metrics`, 30_000),
  );
  expect(scrape.status).toBe(200);
  expect(scrape.body).toMatch(/^sonde_receiver_requests_total\{/m);
  expect(r.alive()).toBe(true);
  await step(r, 'after the scrape', () => healthz(r.admin, 5_000));
}, 60_000);

function hostPort(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

/**
 * Issue 11, finding 1: a small compressed request must not decode into gigabytes. 62 MiB of empty
 * ResourceSpans (`0a 00` repeated) gzips to 63 KB; 63 MiB of `{}` in JSON is as small gzipped. Each
 * empty message used to become several objects, uncounted, until the heap ran out. The receiver runs
 * here as the real CLI in a child process with its heap capped at 384 MiB (before the fix, the first
 * request killed it): every such request, for the three signals, over OTLP/HTTP protobuf and JSON and
 * over OTLP/gRPC, must be refused at once with a 400 naming limits.max_decoded_structures (counted),
 * while the process lives and answers, with default limits.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { type CliProcess, startCli } from './cli';

const SIGNALS = ['traces', 'metrics', 'logs'] as const;
type Signal = (typeof SIGNALS)[number];
const ROOT_KEY: Record<Signal, string> = { traces: 'resourceSpans', metrics: 'resourceMetrics', logs: 'resourceLogs' };
const SERVICE: Record<Signal, string> = {
  traces: 'opentelemetry.proto.collector.trace.v1.TraceService',
  metrics: 'opentelemetry.proto.collector.metrics.v1.MetricsService',
  logs: 'opentelemetry.proto.collector.logs.v1.LogsService',
};

/** The protobuf repro: 62 MiB of `0a 00`, i.e. 32.5 million empty resources of any signal. */
const PROTOBUF_BOMB = Buffer.alloc(65_011_712).fill(Buffer.from([0x0a, 0x00]));
const GZIPPED_PROTOBUF_BOMB = gzipSync(PROTOBUF_BOMB, { level: 9 });

/** 63 MiB of `{},` inside the signal's resource list. */
function jsonBomb(signal: Signal): Buffer {
  const head = Buffer.from(`{"${ROOT_KEY[signal]}":[{}`);
  const items = Buffer.alloc(3 * 22_000_000).fill(',{}');
  return gzipSync(Buffer.concat([head, items, Buffer.from(']}')]), { level: 9 });
}

interface Answer {
  status: number;
  body: string;
  ms: number;
}

function postHttp(base: string, signal: Signal, contentType: string, gzipped: Buffer): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/v1/${signal}`,
      { method: 'POST', headers: { 'content-type': contentType, 'content-encoding': 'gzip' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - started,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(gzipped);
  });
}

/** One gRPC unary call over a raw HTTP/2 stream: a gzip-compressed message frame. */
function postGrpc(address: string, signal: Signal, gzipped: Buffer): Promise<Answer & { grpcStatus: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': `/${SERVICE[signal]}/Export`,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-encoding': 'gzip',
      'grpc-accept-encoding': 'identity',
    });
    let headers: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('trailers', (t) => {
      headers = { ...headers, ...t };
    });
    stream.on('data', () => {});
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      resolve({
        status: Number(headers[':status'] ?? 0),
        grpcStatus: String(headers['grpc-status'] ?? ''),
        body: decodeURIComponent(String(headers['grpc-message'] ?? '')),
        ms: performance.now() - started,
      });
    });
    const prefix = Buffer.alloc(5);
    prefix[0] = 1; // compressed
    prefix.writeUInt32BE(gzipped.length, 1);
    stream.end(Buffer.concat([prefix, gzipped]));
  });
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    })
      .on('error', reject)
      .end();
  });
}

/** The process's peak resident set (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]) * 1024;
}

let cli: CliProcess | undefined;
let dataDir: string;
let http: string;
let grpc: string;
let admin: string;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-bounds-'));
  cli = startCli([], {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: '127.0.0.1:0',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: dataDir,
    SONDE_LOG_LEVEL: 'info',
    NODE_OPTIONS: '--max-old-space-size=384',
  });
  const first = await cli.waitForLine((l) => l.msg === 'sonde-receiver listening', 10_000);
  http = `http://${first.otlpHttp as string}`;
  grpc = first.otlpGrpc as string;
  admin = `http://${first.admin as string}`;
}, 15_000);

afterAll(async () => {
  if (cli && cli.child.exitCode === null && cli.child.signalCode === null) {
    cli.child.kill('SIGKILL');
    await cli.exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

const REFUSAL = /limits\.max_decoded_structures/;

test.each(SIGNALS)('%s: 63 KB of gzipped empty resources over OTLP/HTTP protobuf → 400 at once', async (signal) => {
  const answer = await postHttp(http, signal, 'application/x-protobuf', GZIPPED_PROTOBUF_BOMB);
  expect(answer.status).toBe(400);
  expect(answer.body).toMatch(REFUSAL);
  expect(answer.ms).toBeLessThan(10_000);
});

test.each(SIGNALS)('%s: 63 MiB of `{}` (gzipped) over OTLP/HTTP JSON → 400 at once', async (signal) => {
  const answer = await postHttp(http, signal, 'application/json', jsonBomb(signal));
  expect(answer.status).toBe(400);
  expect(answer.body).toMatch(REFUSAL);
  expect(answer.ms).toBeLessThan(10_000);
});

test.each(SIGNALS)('%s: the same gzipped message over OTLP/gRPC → INVALID_ARGUMENT at once', async (signal) => {
  const answer = await postGrpc(grpc, signal, GZIPPED_PROTOBUF_BOMB);
  expect(answer.grpcStatus).toBe('3');
  expect(answer.body).toMatch(REFUSAL);
  expect(answer.ms).toBeLessThan(10_000);
});

test('the receiver is alive and answering, counted every refusal, and its memory stayed bounded', async () => {
  const running = cli as CliProcess;
  expect(running.child.exitCode).toBeNull();
  expect((await get(`${admin}/healthz`)).status).toBe(200);
  const metrics = (await get(`${admin}/metrics`)).body;
  for (const signal of SIGNALS) {
    expect(metrics).toContain(`sonde_receiver_limit_hits_total{signal="${signal}",limit="max_decoded_structures"} 3`);
    for (const transport of ['http', 'grpc']) {
      expect(metrics).toMatch(
        new RegExp(
          `sonde_receiver_refused_requests_total\\{signal="${signal}",transport="${transport}",reason="too_many_structures"\\} ${transport === 'http' ? 2 : 1}`,
        ),
      );
    }
  }
  // Heap capped at 384 MiB; the rest is the bodies (62-66 MiB each once decompressed), code and buffers.
  expect(peakRss(running.child.pid as number)).toBeLessThan(768 * 1024 * 1024);
});

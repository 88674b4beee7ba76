/**
 * A seeded mutation fuzzer against a real `sonde-receiver` child process: OTLP protobuf and JSON
 * bodies of the three signals over HTTP (some compressed, some with broken compression), and OTLP
 * protobuf over gRPC in mutated length-prefixed frames sent with node:http2, starting from requests the
 * OpenTelemetry JS SDK serialized.
 *
 * Asserted throughout: no 5xx (a 503 with Retry-After is overload, not a bug), no stack trace or
 * file path in a response, a gRPC status on every call (never UNKNOWN, never INTERNAL for a
 * well-formed frame), the process never exits, its resident memory stays bounded, /healthz answers
 * within seconds, and the admin endpoints that render what was accepted (/debug/recent, /metrics,
 * Tempo's search) still answer without a 5xx.
 *
 * `npm test` runs a bounded count with a fixed seed. Longer runs and replays:
 *   SONDE_FUZZ_ITERATIONS=200000 SONDE_FUZZ_SEED=12345 npx jest fuzz/fuzz   (HTTP cases; gRPC gets a quarter)
 *   SONDE_FUZZ_SEED=12345 SONDE_FUZZ_CASE=http:4711 npx jest fuzz/fuzz      (one case, as printed on failure)
 */

import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { type ChildReceiver, getWithin, healthz, MiB, startChildReceiver } from '../child-receiver';
import { buildCorpus, type Corpus, SIGNALS, type Signal } from './corpus';
import { mutateJson, mutateProtobuf, Rng } from './mutator';

const SEED = Number(process.env.SONDE_FUZZ_SEED ?? 20261205) >>> 0;
const HTTP_CASES = Number(process.env.SONDE_FUZZ_ITERATIONS ?? 4000);
const GRPC_CASES = Math.ceil(HTTP_CASES / 4);
/** `http:N` or `grpc:N`: run that one case only. */
const ONLY = process.env.SONDE_FUZZ_CASE;
const CONCURRENCY = 4;
/**
 * Anonymous resident memory the receiver may reach while fuzzed. Measured (seed 20261205, trace store
 * on): about 300 MiB after the default 4,000 + 1,000 cases; 500 MiB after 40,000 HTTP cases and 590 MiB
 * after 10,000 more over gRPC (still creeping up slowly; without the trace store it levels off at
 * about 335 MiB). 768 MiB leaves room for a loaded machine and long runs, and is far below what a
 * decode bomb or a leak per request reaches (gigabytes).
 */
const RSS_BOUND = Number(process.env.SONDE_FUZZ_RSS_BOUND ?? 768 * MiB);
/** /healthz must answer within this while fuzzed. */
const HEALTHZ_DEADLINE_MS = 5_000;
/** A stack frame (`    at f (file.js:1:2)`) or an install path in a response means internals leaked. */
const LEAK = /\n\s+at \S|node_modules|\/packages\/receiver\/|\.[cm]?js:\d+:\d+/;

const GRPC_PATH: Record<Signal, string> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

let corpus: Corpus;
let receiver: ChildReceiver | undefined;
const failures: string[] = [];
const statuses = new Map<string, number>();
let peakHealthzMs = 0;
/** RSS in MiB at each periodic check, for the summary. */
const rssSamples: number[] = [];

const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);

beforeAll(async () => {
  corpus = await buildCorpus();
  receiver = await startChildReceiver({
    // The trace store is on (no Tempo endpoint), so accepted mutants also go through its writer's
    // index pass and the search's scan.
    trace_store: { enabled: true },
  });
}, 60_000);

afterAll(async () => {
  agent.destroy();
  session?.destroy();
  await receiver?.stop();
  if (statuses.size > 0) {
    const summary = [...statuses].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`);
    console.log(
      `fuzz seed ${SEED}; answers:\n  ${summary.join('\n  ')}\npeak /healthz latency ${peakHealthzMs.toFixed(0)} ms\nanonymous RSS (MiB) at each check: ${rssSamples.join(' ')}`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Cases

interface HttpCase {
  id: string;
  signal: Signal;
  encoding: 'protobuf' | 'json';
  contentEncoding?: string;
  /** The Content-Type sent: the body's own, or now and then the other one. */
  contentType: string;
  /** The mutated body before compression, for the report. */
  plain: Buffer;
  /** What is sent. */
  wire: Buffer;
  steps: string[];
}

function httpCase(index: number): HttpCase {
  const rng = Rng.forCase(SEED, index);
  const signal = rng.pick(SIGNALS);
  const encoding = rng.chance(0.6) ? 'protobuf' : 'json';
  const entries = corpus[encoding][signal];
  const base = rng.pick(entries);
  // Splice donors come from any signal, so that one signal's messages land in another's.
  const donor = rng.pick(corpus[encoding][rng.pick(SIGNALS)]);
  const { body, steps } = encoding === 'protobuf' ? mutateProtobuf(rng, base, donor) : mutateJson(rng, base, donor);
  let wire = body;
  let contentEncoding: string | undefined;
  const c = rng.next();
  if (c < 0.12) {
    contentEncoding = 'gzip';
    wire = zlib.gzipSync(body);
  } else if (c < 0.15) {
    contentEncoding = 'deflate';
    wire = zlib.deflateSync(body);
  } else if (c < 0.18) {
    contentEncoding = 'br';
    wire = zlib.brotliCompressSync(body);
  } else if (c < 0.22) {
    // Broken compression: a gzip stream with damage in it, or cut short.
    contentEncoding = 'gzip';
    wire = Buffer.from(zlib.gzipSync(body));
    if (rng.chance(0.5)) wire = wire.subarray(0, rng.int(wire.length));
    else for (let n = 1 + rng.int(4); n > 0; n--) wire[rng.int(wire.length)] ^= 1 << rng.int(8);
    steps.push('brokenGzip');
  }
  // Now and then a body labelled as the other encoding: protobuf read as JSON and the other way round.
  const swapped = rng.chance(0.03);
  if (swapped) steps.push('otherContentType');
  const contentType = (encoding === 'protobuf') !== swapped ? 'application/x-protobuf' : 'application/json';
  return { id: `http:${index}`, signal, encoding, contentEncoding, contentType, plain: body, wire, steps };
}

type FrameKind =
  | 'message'
  | 'gzip'
  | 'flagWithoutEncoding'
  | 'flagButNotCompressed'
  | 'brokenGzip'
  | 'lengthLong'
  | 'lengthShort'
  | 'twoFrames'
  | 'empty'
  | 'partialPrefix'
  | 'hugeLength';

interface GrpcCase {
  id: string;
  signal: Signal;
  kind: FrameKind;
  grpcEncoding?: string;
  plain: Buffer;
  wire: Buffer;
  steps: string[];
}

function frame(flag: number, payload: Buffer, declared = payload.length): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(declared >>> 0, 1);
  return Buffer.concat([prefix, payload]);
}

function grpcCase(index: number): GrpcCase {
  const rng = Rng.forCase(SEED ^ 0x67727063, index);
  const signal = rng.pick(SIGNALS);
  const base = rng.pick(corpus.protobuf[signal]);
  const mutated = rng.chance(0.25)
    ? { body: base, steps: [] }
    : mutateProtobuf(rng, base, rng.pick(corpus.protobuf[signal]));
  const body = mutated.body;
  const kinds: [FrameKind, number][] = [
    ['message', 55],
    ['gzip', 10],
    ['flagWithoutEncoding', 4],
    ['flagButNotCompressed', 4],
    ['brokenGzip', 5],
    ['lengthLong', 5],
    ['lengthShort', 5],
    ['twoFrames', 4],
    ['empty', 3],
    ['partialPrefix', 3],
    ['hugeLength', 2],
  ];
  let r = rng.int(100);
  let kind: FrameKind = 'message';
  for (const [k, weight] of kinds) {
    if (r < weight) {
      kind = k;
      break;
    }
    r -= weight;
  }
  let wire: Buffer;
  let grpcEncoding: string | undefined;
  switch (kind) {
    case 'message':
      wire = frame(0, body);
      break;
    case 'gzip':
      grpcEncoding = 'gzip';
      wire = frame(1, zlib.gzipSync(body));
      break;
    case 'flagWithoutEncoding':
      wire = frame(1, body);
      break;
    case 'flagButNotCompressed':
      grpcEncoding = 'gzip';
      wire = frame(1, body);
      break;
    case 'brokenGzip': {
      grpcEncoding = 'gzip';
      const gz = Buffer.from(zlib.gzipSync(body));
      const damaged = rng.chance(0.5) ? gz.subarray(0, rng.int(gz.length)) : gz;
      if (damaged === gz) gz[rng.int(gz.length)] ^= 1 << rng.int(8);
      wire = frame(1, damaged);
      break;
    }
    case 'lengthLong':
      wire = frame(0, body, body.length + 1 + rng.int(1000));
      break;
    case 'lengthShort':
      wire = frame(0, body, rng.int(body.length));
      break;
    case 'twoFrames':
      wire = Buffer.concat([frame(0, body), frame(0, rng.pick(corpus.protobuf[signal]))]);
      break;
    case 'empty':
      wire = Buffer.alloc(0);
      break;
    case 'partialPrefix':
      wire = frame(0, body).subarray(0, 1 + rng.int(4));
      break;
    case 'hugeLength':
      wire = frame(0, body, rng.pick([0xffffffff, 0x80000000, 64 * MiB + 1]));
      break;
  }
  return { id: `grpc:${index}`, signal, kind, grpcEncoding, plain: body, wire, steps: mutated.steps };
}

// ---------------------------------------------------------------------------------------------
// Sending

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function post(
  c: HttpCase,
  retried = false,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const [host, port] = splitHostPort(required(receiver).otlpHttp);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host,
        port,
        agent,
        method: 'POST',
        path: `/v1/${c.signal}`,
        headers: {
          'content-type': c.contentType,
          'content-length': c.wire.length,
          ...(c.contentEncoding ? { 'content-encoding': c.contentEncoding } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('latin1'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A keep-alive socket the server closed just as it was reused: send once more on a new one.
      if (req.reusedSocket && err.code === 'ECONNRESET' && !retried) post(c, true).then(resolve, reject);
      else reject(err);
    });
    req.end(c.wire);
  });
}

let session: http2.ClientHttp2Session | undefined;

function grpcSession(): http2.ClientHttp2Session {
  if (!session || session.closed || session.destroyed) {
    session = http2.connect(`http://${required(receiver).otlpGrpc}`);
    session.on('error', () => {}); // a failing call reports it; a new session is made for the next
  }
  return session;
}

function call(c: GrpcCase): Promise<{ grpcStatus?: number; message?: string; rstCode?: number; httpStatus?: number }> {
  return new Promise((resolve, reject) => {
    const stream = grpcSession().request({
      ':method': 'POST',
      ':path': GRPC_PATH[c.signal],
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(c.grpcEncoding ? { 'grpc-encoding': c.grpcEncoding } : {}),
    });
    let grpcStatus: number | undefined;
    let message: string | undefined;
    let httpStatus: number | undefined;
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) grpcStatus = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
    };
    stream.on('response', (h) => {
      httpStatus = Number(h[':status']);
      take(h);
    });
    stream.on('trailers', take);
    stream.on('data', () => {});
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error('no gRPC status within 15 s'));
    }, 15_000);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ grpcStatus, message, httpStatus, rstCode: stream.rstCode });
    });
    stream.on('error', () => {}); // the close event reports what happened
    stream.end(c.wire);
  });
}

// ---------------------------------------------------------------------------------------------
// Checks

function report(c: HttpCase | GrpcCase, problem: string): void {
  const file = path.join(tmpdir(), `sonde-fuzz-${SEED}-${c.id.replace(':', '-')}.bin`);
  writeFileSync(file, c.wire);
  const hex = c.plain.length <= 16_384 ? c.plain.toString('hex') : `${c.plain.subarray(0, 16_384).toString('hex')}...`;
  const what =
    'encoding' in c
      ? `POST /v1/${c.signal} ${c.encoding} body, Content-Type: ${c.contentType}${c.contentEncoding ? ` Content-Encoding: ${c.contentEncoding}` : ''}`
      : `gRPC ${GRPC_PATH[c.signal]} frame=${c.kind}${c.grpcEncoding ? ` grpc-encoding: ${c.grpcEncoding}` : ''}`;
  failures.push(
    `${problem}\n  replay: SONDE_FUZZ_SEED=${SEED} SONDE_FUZZ_CASE=${c.id} npx jest fuzz/fuzz\n  ${what}; mutations: ${c.steps.join(', ') || 'none'}\n` +
      `  body sent (${c.wire.length} bytes) written to ${file}\n  body before compression/framing (${c.plain.length} bytes, hex): ${hex}`,
  );
}

function checkHttp(c: HttpCase, res: { status: number; headers: http.IncomingHttpHeaders; body: string }): void {
  count(`http ${c.encoding} ${res.status}`);
  const overload = res.status === 503 && res.headers['retry-after'] !== undefined;
  if (res.status >= 500 && !overload) report(c, `HTTP ${res.status}: ${res.body.slice(0, 500)}`);
  else if (res.status < 200) report(c, `HTTP ${res.status}`);
  if (LEAK.test(res.body)) report(c, `the response shows internals: ${res.body.slice(0, 500)}`);
}

/** Codes a well-formed frame may get: OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE (overload). */
const MESSAGE_CODES = new Set([0, 3, 8, 14]);

const MAY_BE_ACCEPTED = new Set<FrameKind>(['flagWithoutEncoding', 'lengthShort', 'brokenGzip']);

function checkGrpc(c: GrpcCase, res: Awaited<ReturnType<typeof call>>): void {
  count(`grpc ${c.kind} ${res.grpcStatus ?? `no status (HTTP ${res.httpStatus}, RST ${res.rstCode})`}`);
  if (res.grpcStatus === undefined) {
    report(c, `no grpc-status (HTTP ${res.httpStatus}, RST_STREAM code ${res.rstCode})`);
    return;
  }
  if (res.grpcStatus === 2) report(c, `gRPC UNKNOWN: ${res.message}`);
  const wellFormed = c.kind === 'message' || c.kind === 'gzip';
  if (wellFormed && !MESSAGE_CODES.has(res.grpcStatus)) report(c, `gRPC status ${res.grpcStatus}: ${res.message}`);
  // grpc-js reads a frame flagged compressed with no grpc-encoding as identity, a frame shorter than
  // the bytes sent as the whole message (the rest is ignored), and a gzip stream damaged only in
  // bytes that gunzip does not check (header time, flags); any other broken frame must be refused.
  if (!wellFormed && !MAY_BE_ACCEPTED.has(c.kind) && res.grpcStatus === 0) {
    report(c, `a malformed frame (${c.kind}) was accepted`);
  }
  if (res.message && LEAK.test(res.message)) report(c, `the status message shows internals: ${res.message}`);
}

/** The receiver runs, /healthz answers in time, and its memory is under the bound. */
async function checkAlive(after: string): Promise<void> {
  const r = required(receiver);
  if (!r.alive()) {
    throw new Error(`the receiver exited after ${after} (seed ${SEED}); stderr: ${r.cli.stderr.join('').slice(-2000)}`);
  }
  const ms = await healthz(r.admin, HEALTHZ_DEADLINE_MS).catch((err: Error) => {
    throw new Error(`${err.message} (after ${after}, seed ${SEED})`);
  });
  peakHealthzMs = Math.max(peakHealthzMs, ms);
  // Anonymous memory: the trace store maps its database file (up to 1 GiB), and those pages count in
  // VmRSS as the database grows, without being memory the process holds on to.
  const { anon } = r.memory();
  rssSamples.push(Math.round(anon / MiB));
  if (anon > RSS_BOUND) {
    throw new Error(
      `the receiver's anonymous RSS is ${(anon / MiB).toFixed(0)} MiB after ${after}, over ${RSS_BOUND / MiB} MiB`,
    );
  }
}

/** The admin endpoints that render accepted data answer without a 5xx. */
async function checkAdminViews(after: string): Promise<void> {
  const admin = `http://${required(receiver).admin}`;
  const urls = [
    ...SIGNALS.map((s) => `${admin}/debug/recent?signal=${s}&limit=50`),
    `${admin}/metrics`,
    `${admin}/api/search?q=${encodeURIComponent('{ }')}&limit=20`,
    `${admin}/api/search?q=${encodeURIComponent('{ span.http.route =~ "/cart.*" }')}&limit=20`,
    `${admin}/api/v2/search/tags`,
    `${admin}/api/v2/search/tag/name/values`,
  ];
  for (const url of urls) {
    const { status, body } = await getWithin(url, 20_000);
    if (status >= 500)
      failures.push(`GET ${url} answered ${status} after ${after} (seed ${SEED}): ${body.slice(0, 500)}`);
    if (LEAK.test(body) && status !== 200)
      failures.push(`GET ${url} shows internals after ${after}: ${body.slice(0, 500)}`);
  }
}

/** Runs `run(i)` for i in [0, n) with CONCURRENCY at once, and the periodic checks between. */
async function drive(n: number, run: (i: number) => Promise<void>, label: string): Promise<void> {
  let next = 0;
  let sinceCheck = 0;
  let checking: Promise<void> | undefined;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await run(i);
      if (++sinceCheck >= 200 && !checking) {
        sinceCheck = 0;
        checking = (async () => {
          await checkAlive(`${label} case ${i}`);
          if (i % 1000 < 200) await checkAdminViews(`${label} case ${i}`);
        })().finally(() => {
          checking = undefined;
        });
        await checking;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

function only(prefix: string): number | undefined {
  if (!ONLY) return undefined;
  return ONLY.startsWith(`${prefix}:`) ? Number(ONLY.slice(prefix.length + 1)) : -1;
}

function splitHostPort(hostPort: string): [string, number] {
  const colon = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, colon), Number(hostPort.slice(colon + 1))];
}

function required<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the receiver did not start');
  return value;
}

function expectNoFailures(): void {
  const shown = failures.slice(0, 5);
  if (failures.length > 0) {
    throw new Error(
      `${failures.length} failing cases (seed ${SEED}), the first ${shown.length}:\n\n${shown.join('\n\n')}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

test('the corpus is the same every time (so that a seed replays), and the mutator is a function of (seed, case)', async () => {
  const again = await buildCorpus();
  expect(again).toStrictEqual(corpus);
  for (const i of [0, 1, 77]) {
    expect(httpCase(i)).toStrictEqual(httpCase(i));
    expect(grpcCase(i)).toStrictEqual(grpcCase(i));
  }
  expect(httpCase(0).plain.equals(httpCase(1).plain)).toBe(false);
});

test(`mutated OTLP/HTTP protobuf and JSON bodies (${HTTP_CASES} cases, seed ${SEED}): no 5xx, no exit, bounded memory`, async () => {
  const one = only('http');
  if (one === -1) return;
  failures.length = 0;
  await checkAlive('start');
  const runOne = async (i: number) => {
    const c = httpCase(i);
    try {
      checkHttp(c, await post(c));
    } catch (err) {
      report(c, `no HTTP answer: ${(err as Error).message}`);
    }
  };
  if (one !== undefined) await runOne(one);
  else await drive(HTTP_CASES, runOne, 'HTTP');
  await checkAlive('the HTTP cases');
  await checkAdminViews('the HTTP cases');
  expectNoFailures();
}, 600_000);

test(`mutated OTLP/gRPC messages and frames (${GRPC_CASES} cases, seed ${SEED}): a status for each, no exit, bounded memory`, async () => {
  const one = only('grpc');
  if (one === -1) return;
  failures.length = 0;
  const runOne = async (i: number) => {
    const c = grpcCase(i);
    try {
      checkGrpc(c, await call(c));
    } catch (err) {
      report(c, `no gRPC answer: ${(err as Error).message}`);
    }
  };
  try {
    if (one !== undefined) await runOne(one);
    else await drive(GRPC_CASES, runOne, 'gRPC');
  } finally {
    session?.close();
  }
  await checkAlive('the gRPC cases');
  await checkAdminViews('the gRPC cases');
  expectNoFailures();
}, 600_000);

test('the receiver is still running, its peak memory was bounded, and it drains and exits 0 on SIGTERM', async () => {
  const r = required(receiver);
  await checkAlive('all cases');
  const { peak } = r.memory();
  const anonPeak = Math.max(...rssSamples);
  console.log(
    `receiver: peak RSS ${(peak / MiB).toFixed(0)} MiB (mapped database included); highest anonymous RSS seen ${anonPeak} MiB (bound ${RSS_BOUND / MiB} MiB)`,
  );
  expect(anonPeak * MiB).toBeLessThan(RSS_BOUND);
  agent.destroy();
  r.cli.child.kill('SIGTERM');
  expect(await r.cli.exited).toStrictEqual({ code: 0, signal: null });
}, 60_000);

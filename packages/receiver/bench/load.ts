/**
 * The client side: autocannon for the maximum-throughput runs (the same settings and payloads for
 * the sink and the receiver), and a paced node:http client for the steady-rate run.
 */

import { Agent, request } from 'node:http';
import autocannon, { type Result } from 'autocannon';
import type { Payload } from './payloads.ts';
import { CpuWindow, memory, RssSampler, type Server } from './proc.ts';

/**
 * POSTs one protobuf body to 127.0.0.1:`port` on `agent`, reads the answer, and resolves with its
 * status code (0 when the request failed or took longer than `timeoutMs`).
 */
export function postProtobuf(
  port: number,
  agent: Agent,
  path: string,
  body: Buffer,
  timeoutMs?: number,
): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        agent,
        headers: { 'content-type': 'application/x-protobuf', 'content-length': String(body.length) },
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

export interface MaxThroughputSettings {
  connections: number;
  warmupSec: number;
  /** Measured time per server, split into `rounds` alternating slices. */
  durationSec: number;
  rounds: number;
}

export interface ThroughputResult {
  server: string;
  spansPerRequest: number;
  requestBytes: number;
  /** 2xx responses in the measured slices. */
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSec: number;
  requestsPerSec: number;
  spansPerSec: number;
  /** Server CPU over the measured window, in cores (1 = one core busy all the time). */
  serverCores: number;
  /** The server's main thread alone, in cores. */
  serverMainCores: number;
  /** The bench process's own CPU (autocannon) over the same window, in cores. */
  clientCores: number;
  /** CPU used by everything else on the machine over the same window, in cores (should be near 0). */
  otherCores: number;
  stealCores: number;
  /** Server RSS sampled during the measured window, and its VmHWM at the end (bytes). */
  rssAvg: number;
  rssPeak: number;
  /** spans/s of the slowest and the fastest slice. */
  sliceMinSpansPerSec: number;
  sliceMaxSpansPerSec: number;
  /** Mean of the slices' medians, and the worst of their 99th percentiles. */
  latencyP50Ms: number;
  latencyP99Ms: number;
}

function cannon(url: string, payload: Payload, connections: number, durationSec: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        connections,
        pipelining: 1,
        duration: durationSec,
        timeout: 10,
        requests: payload.bodies.map((body) => ({
          method: 'POST',
          path: payload.path ?? '/v1/traces',
          headers: { 'content-type': 'application/x-protobuf' },
          body,
        })),
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

interface Slice {
  result: Result;
  wallSec: number;
  server: number;
  serverMain: number;
  client: number;
  other: number;
  steal: number;
  rss: { avg: number; max: number; count: number };
}

/**
 * The maximum-throughput comparison: each server is warmed up (just before its first slice), then measured in `rounds` slices of
 * durationSec / rounds, alternating between servers (A B A B...), so that a slow patch of the
 * machine does not fall on one server only. CPU from /proc over each slice; RSS sampled during the
 * slices, peak from VmHWM.
 */
export async function compareMaxThroughput(
  servers: Server[],
  payload: Payload,
  settings: MaxThroughputSettings,
  log: (line: string) => void,
  hooks: {
    /** Before each slice (for example: wait until a server's background work is done). */
    beforeSlice?: (server: Server) => Promise<void>;
    /** After each slice, with its measured seconds. */
    afterSlice?: (server: Server, seconds: number) => Promise<void>;
  } = {},
): Promise<ThroughputResult[]> {
  const url = (server: Server) => `http://127.0.0.1:${server.port}`;
  const slices: Slice[][] = servers.map(() => []);
  const sliceSec = settings.durationSec / settings.rounds;
  for (let round = 0; round < settings.rounds; round++) {
    for (let k = 0; k < servers.length; k++) {
      const server = servers[k];
      // Each server's warm-up comes right before its first slice.
      if (round === 0) await cannon(url(server), payload, settings.connections, settings.warmupSec);
      await hooks.beforeSlice?.(server);
      const sampler = new RssSampler(server.pid);
      const window = new CpuWindow(server.pid);
      const result = await cannon(url(server), payload, settings.connections, sliceSec);
      const cpu = window.end();
      slices[k].push({ result, ...cpu, rss: sampler.stop() });
      await hooks.afterSlice?.(server, result.duration || cpu.wallSec);
      log(
        `    round ${round + 1}/${settings.rounds} ${server.name}: ${Math.round((result['2xx'] * payload.spansPerRequest) / (result.duration || cpu.wallSec)).toLocaleString('en-US')} spans/s`,
      );
    }
  }
  const requestBytes = Math.round(payload.bodies.reduce((n, b) => n + b.length, 0) / payload.bodies.length);
  return servers.map((server, k) => {
    const ss = slices[k];
    const sum = (f: (x: Slice) => number) => ss.reduce((n, x) => n + f(x), 0);
    const wall = sum((x) => x.wallSec);
    const durationSec = sum((x) => x.result.duration || x.wallSec);
    const ok = sum((x) => x.result['2xx']);
    const samples = sum((x) => x.rss.count);
    const perSlice = ss.map((x) => (x.result['2xx'] * payload.spansPerRequest) / (x.result.duration || x.wallSec));
    return {
      server: server.name,
      spansPerRequest: payload.spansPerRequest,
      requestBytes,
      ok,
      non2xx: sum((x) => x.result.non2xx),
      errors: sum((x) => x.result.errors),
      timeouts: sum((x) => x.result.timeouts),
      durationSec,
      requestsPerSec: ok / durationSec,
      spansPerSec: (ok * payload.spansPerRequest) / durationSec,
      serverCores: sum((x) => x.server * x.wallSec) / wall,
      serverMainCores: sum((x) => x.serverMain * x.wallSec) / wall,
      clientCores: sum((x) => x.client * x.wallSec) / wall,
      otherCores: sum((x) => x.other * x.wallSec) / wall,
      stealCores: sum((x) => x.steal * x.wallSec) / wall,
      sliceMinSpansPerSec: Math.min(...perSlice),
      sliceMaxSpansPerSec: Math.max(...perSlice),
      rssAvg: samples > 0 ? sum((x) => x.rss.avg * x.rss.count) / samples : 0,
      rssPeak: Math.max(memory(server.pid).hwm, ...ss.map((x) => x.rss.max)),
      latencyP50Ms: sum((x) => x.result.latency.p50) / ss.length,
      latencyP99Ms: Math.max(...ss.map((x) => x.result.latency.p99)),
    };
  });
}

export interface SteadySettings {
  requestsPerSec: number;
  warmupSec: number;
  durationSec: number;
}

export interface SteadyResult {
  spansPerRequest: number;
  targetSpansPerSec: number;
  sent: number;
  ok: number;
  failed: number;
  durationSec: number;
  achievedSpansPerSec: number;
  /** Server CPU over the measured window, in cores. */
  serverCores: number;
  /** CPU used by everything else on the machine (not the server, not the bench), in cores. */
  otherCores: number;
  rssAvg: number;
  rssPeak: number;
  /** VmHWM at the end: the peak since the receiver started (it was started fresh for this run). */
  hwm: number;
  /** The receiver's own account of its memory right after the window (receiverMemory); none for the sink. */
  memory?: ReceiverMemory;
}

/** A receiver's memory by its own /metrics (prom-client's process and V8 heap metrics), in bytes. */
export interface ReceiverMemory {
  rss: number;
  /** V8's heap: committed and used, and committed by space (new, old, code, large_object, ...). */
  heapTotal: number;
  heapUsed: number;
  spaces: Record<string, number>;
  /** Memory outside the heap that V8 is told about (Buffers). */
  external: number;
}

/** A receiver's /metrics, from its admin listener. */
export async function scrapeMetrics(adminPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
}

/** The series of metric `name` in an exposition: each one's labels (`{...}`, or '') and value. */
export function metricSeries(text: string, name: string): { labels: string; value: number }[] {
  const out: { labels: string; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue;
    const space = line.lastIndexOf(' ');
    out.push({ labels: line.slice(name.length, space).trim(), value: Number(line.slice(space + 1)) });
  }
  return out;
}

/** The sum of a metric's series in a receiver's /metrics (0 when it has none). */
export async function scrape(adminPort: number, name: string): Promise<number> {
  return metricSeries(await scrapeMetrics(adminPort), name).reduce((sum, s) => sum + s.value, 0);
}

/**
 * Reads a receiver's memory from the /metrics of its admin listener: where an RSS above the usual
 * sits (the young or old generation, Buffers, or outside V8's account: native allocations).
 */
export async function receiverMemory(adminPort: number): Promise<ReceiverMemory | undefined> {
  try {
    const text = await scrapeMetrics(adminPort);
    const value = (name: string) => metricSeries(text, name)[0]?.value ?? Number.NaN;
    const spaces: Record<string, number> = {};
    for (const s of metricSeries(text, 'sonde_nodejs_heap_space_size_total_bytes')) {
      const space = s.labels.match(/space="(\w+)"/)?.[1];
      if (space && s.value > 0) spaces[space] = s.value;
    }
    return {
      rss: value('sonde_process_resident_memory_bytes'),
      heapTotal: value('sonde_nodejs_heap_size_total_bytes'),
      heapUsed: value('sonde_nodejs_heap_size_used_bytes'),
      spaces,
      external: value('sonde_nodejs_external_memory_bytes'),
    };
  } catch {
    return undefined;
  }
}

/** One line for a log or a page: RSS, the heap by space, external memory. */
export function describeMemory(m: ReceiverMemory): string {
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  const spaces = Object.entries(m.spaces)
    .sort((a, b) => b[1] - a[1])
    .map(([space, bytes]) => `${space} ${mb(bytes)}`)
    .join(', ');
  return `RSS ${mb(m.rss)} MiB; V8 heap ${mb(m.heapTotal)} MiB committed (${spaces}), ${mb(m.heapUsed)} MiB used; external (Buffers) ${mb(m.external)} MiB`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Sends `requestsPerSec` requests a second, evenly spaced (not in bursts), over keep-alive
 * connections: first `warmupSec` unmeasured, then `durationSec` measured. Every request has a 5 s
 * timeout; the run is bounded by its request count and by a deadline.
 */
export async function steady(server: Server, payload: Payload, settings: SteadySettings): Promise<SteadyResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const bodies = payload.bodies;
  let ok = 0;
  let failed = 0;
  let sent = 0;
  const send = async (body: Buffer) => {
    sent++;
    const status = await postProtobuf(server.port, agent, '/v1/traces', body, 5000);
    if (status >= 200 && status < 300) ok++;
    else failed++;
  };

  const pace = async (seconds: number): Promise<number> => {
    const count = Math.round(seconds * settings.requestsPerSec);
    const interval = 1000 / settings.requestsPerSec;
    const start = performance.now();
    const deadline = start + seconds * 1000 + 10_000;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const wait = start + i * interval - performance.now();
      if (wait > 1) await sleep(wait);
      pending.push(send(bodies[i % bodies.length]));
    }
    await Promise.race([Promise.all(pending), sleep(10_000)]);
    return (performance.now() - start) / 1000;
  };

  try {
    await pace(settings.warmupSec);
    ok = 0;
    failed = 0;
    sent = 0;
    const sampler = new RssSampler(server.pid, 100);
    const window = new CpuWindow(server.pid);
    const wall = await pace(settings.durationSec);
    const cpu = window.end();
    const rss = sampler.stop();
    const mem = memory(server.pid);
    return {
      spansPerRequest: payload.spansPerRequest,
      targetSpansPerSec: settings.requestsPerSec * payload.spansPerRequest,
      sent,
      ok,
      failed,
      durationSec: wall,
      achievedSpansPerSec: (ok * payload.spansPerRequest) / wall,
      serverCores: cpu.server,
      otherCores: cpu.other,
      rssAvg: rss.avg,
      rssPeak: Math.max(rss.max, mem.rss),
      hwm: mem.hwm,
    };
  } finally {
    agent.destroy();
  }
}

export interface OutageSlice {
  /** Seconds since the outage load began, at the end of the slice. */
  atSec: number;
  ok: number;
  non2xx: number;
  rssMax: number;
}

/**
 * Maximum load against a receiver whose export endpoint is down: the export queue fills, then intake
 * refuses (503 + Retry-After). Returns each slice's 2xx/non-2xx counts and RSS peak, to show that
 * memory stays flat once the queue is full.
 */
export async function outage(
  server: Server,
  payload: Payload,
  connections: number,
  slices: number,
  sliceSec: number,
): Promise<OutageSlice[]> {
  const out: OutageSlice[] = [];
  const url = `http://127.0.0.1:${server.port}`;
  for (let i = 0; i < slices; i++) {
    const sampler = new RssSampler(server.pid, 100);
    const result = await cannon(url, payload, connections, sliceSec);
    const rss = sampler.stop();
    out.push({ atSec: (i + 1) * sliceSec, ok: result['2xx'], non2xx: result.non2xx, rssMax: rss.max });
  }
  return out;
}

/// <reference path="../../receiver/bench/autocannon.d.ts" />
/**
 * `npm run bench -w @sonde/demo`: the cost of `--import @sonde/node/register` on the demo shop.
 * The same three services are started without and with the register entry (traces, metrics, logs
 * and events on, exported to a real Sonde receiver running as its own process), alternately, in one
 * run; autocannon drives `GET /products/:sku` on the storefront (storefront → cart → SQLite, one
 * business event, one log line in the cart on errors only) at maximum throughput (or at a fixed rate, `--rate`). Random faults off.
 *
 *   node bench/overhead.ts [--quick] [--rounds N] [--duration S] [--connections C] [--cpu-prof DIR] [--compare PATH] [--rate R]
 *
 * `--rate R` offers the same R requests/s to every side (autocannon's overallRate) instead of the
 * maximum: CPU per request is then compared at equal load, without the instrumented side being
 * charged for running at a lower rate (fewer requests per wake-up and per write). R must be below
 * what the slowest side sustains, or that side saturates and the comparison is again at unequal load.
 *
 * `--compare PATH` adds a side started with `--import PATH` (e.g. the register.mjs of another build of
 * @sonde/node, to compare two versions in the same run).
 *
 * `--cpu-prof DIR` starts every service with `--cpu-prof --cpu-prof-dir=DIR` (V8 CPU profiles written
 * when each service exits; open them in Chrome DevTools or VS Code). Profiling slows every side, so
 * the figures of a profiled run are not the benchmark's.
 *
 * Needs the packages built (`npm run build` at the root). Prints a Markdown table, and writes it to
 * docs/benchmarks-instrumentation.md at the repository root (not with --quick, --rate, --compare,
 * --cpu-prof or --no-write, whose figures are not the benchmark's).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon, { type Result } from 'autocannon';

const require = createRequire(import.meta.url);
const { startShop } = require('../dist/index.js') as typeof import('../src/index.ts');

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.SONDE_BENCH_QUICK === '1' },
    'no-write': { type: 'boolean', default: process.env.SONDE_BENCH_WRITE === '0' },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string', default: '16' },
    'cpu-prof': { type: 'string' },
    compare: { type: 'string' },
    rate: { type: 'string' },
  },
});
const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
const duration = Number(values.duration ?? (values.quick ? 3 : 15));
const warmup = values.quick ? 2 : 5;
const connections = Number(values.connections);
const rate = values.rate ? Number(values.rate) : undefined;
const profileArgs = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];

function cpuModel(): string {
  try {
    return (
      /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? '?'
    );
  } catch {
    return os.cpus()[0]?.model ?? '?';
  }
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

async function startReceiverProcess(): Promise<{ child: ChildProcess; otlp: string; admin: string }> {
  const bin = join(dirname(require.resolve('@sonde/receiver/package.json')), 'bin', 'sonde-receiver.js');
  const child = spawn(process.execPath, [bin], {
    env: {
      ...process.env,
      SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
      SONDE_OTLP_GRPC_ADDR: 'off',
      SONDE_ADMIN_ADDR: '127.0.0.1:0',
      SONDE_DATA_DIR: join(os.tmpdir(), `sonde-bench-${process.pid}`),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (const line of buf.split('\n')) {
        try {
          const l = JSON.parse(line) as { otlpHttp?: string; admin?: string };
          if (l.otlpHttp && l.admin) {
            child.stdout!.removeAllListeners('data');
            child.stdout!.resume();
            resolve({ child, otlp: `http://${l.otlpHttp}`, admin: `http://${l.admin}` });
            return;
          }
        } catch {
          // partial line
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`sonde-receiver exited with ${code}`)));
  });
}

function cannon(url: string, seconds: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        connections,
        duration: seconds,
        ...(rate ? { overallRate: rate } : {}),
        requests: [{ method: 'GET', path: '/products/tea-green', headers: { 'x-user': 'shopper-1' } }],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

/** The sides compared: no Sonde, Sonde with every trace sampled (the default), Sonde sampling 10% of traces. */
const SIDES: { name: string; instrument: boolean; env: Record<string, string>; nodeArgs?: string[] }[] = [
  { name: 'without Sonde', instrument: false, env: {} },
  { name: 'with `--import @sonde/node/register`', instrument: true, env: {} },
  {
    name: 'with Sonde, 10% of traces sampled',
    instrument: true,
    env: { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  },
  {
    // Reference: the upstream zero-code entry with its own defaults (dns, net, router and express
    // middleware spans on; no redaction, consent or events processing).
    name: 'reference: `--require @opentelemetry/auto-instrumentations-node/register`',
    instrument: true,
    nodeArgs: ['--require', '@opentelemetry/auto-instrumentations-node/register'],
    env: {},
  },
];
if (values.compare)
  SIDES.splice(2, 0, {
    name: `with \`--import ${values.compare}\``,
    instrument: true,
    nodeArgs: ['--import', values.compare],
    env: {},
  });
type Side = (typeof SIDES)[number];

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

interface Run {
  side: Side;
  /** CPU milliseconds per request: the three services together, and the receiver. */
  cpuPerRequest: number;
  receiverCpuPerRequest: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function measure(side: Side, otlp: string, receiverPid: number): Promise<Run> {
  const shop = await startShop({
    otlpEndpoint: otlp,
    // Without Sonde, `instrument: true` with only the profiling flags runs the bare services profiled.
    instrument: side.instrument || profileArgs.length > 0,
    nodeArgs: [...profileArgs, ...(side.instrument ? (side.nodeArgs ?? ['--import', '@sonde/node/register']) : [])],
    env: { DEMO_NO_FAULTS: '1', OTEL_METRIC_EXPORT_INTERVAL: '5000', ...side.env },
  });
  try {
    await cannon(shop.storefrontUrl, warmup);
    const pids = Object.values(shop.pids);
    const cpu0 = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const rcpu0 = cpuSeconds(receiverPid);
    const r = await cannon(shop.storefrontUrl, duration);
    const cpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpu0;
    const rcpu = cpuSeconds(receiverPid) - rcpu0;
    const requests = r.requests.total;
    return {
      side,
      cpuPerRequest: (cpu * 1000) / requests,
      receiverCpuPerRequest: (rcpu * 1000) / requests,
      rps: r.requests.average,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.errors + r.non2xx + r.timeouts,
    };
  } finally {
    await shop.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const load0 = os.loadavg()[0];
  const receiver = await startReceiverProcess();
  log(
    `receiver at ${receiver.otlp}; ${rounds} round(s) of ${warmup}s warm-up + ${duration}s, ${connections} connections`,
  );
  const runs: Run[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // Alternate the order so that drift (thermal, neighbours) does not favour one side.
      for (const side of i % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const run = await measure(side, receiver.otlp, receiver.child.pid!);
        runs.push(run);
        log(
          `round ${i + 1} ${side.name}: ${run.rps.toFixed(0)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, errors ${run.errors}, CPU/request ${run.cpuPerRequest.toFixed(2)} ms services + ${run.receiverCpuPerRequest.toFixed(2)} ms receiver`,
        );
      }
    }
    const received = await (await fetch(`${receiver.admin}/metrics`)).text();
    const spans = /sonde_receiver_accepted_spans_total(?:\{[^}]*\})? (\d+)/.exec(received)?.[1];
    const stats = SIDES.map((side) => {
      const rs = runs.filter((r) => r.side === side);
      return {
        side,
        rps: median(rs.map((r) => r.rps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
        cpu: median(rs.map((r) => r.cpuPerRequest)),
        rcpu: median(rs.map((r) => r.receiverCpuPerRequest)),
      };
    });
    const b = stats[0];
    const loss = (x: { rps: number }) => ((b.rps - x.rps) / b.rps) * 100;
    const full = loss(stats[1]);
    const machine = `${cpuModel()}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; 1-minute load average ${load0.toFixed(2)} before the run, ${os.loadavg()[0].toFixed(2)} after (other jobs share the machine: CPU per request is the steadier figure)`;
    const doc = [
      '## Instrumentation overhead: demo storefront with and without `--import @sonde/node/register`',
      '',
      `Machine: ${machine}. Storefront, cart and payments on the same machine as the load generator (autocannon, ${connections} connections, ${rate ? `${rate} requests/s offered to every side` : 'maximum rate'}) and the receiver. \`GET /products/:sku\`: storefront → cart over HTTP → SQLite; one \`product.viewed\` event. Instrumented: traces (every request sampled), metrics (runtime + HTTP, 5 s interval), logs and events, redaction on, exported over OTLP/HTTP protobuf to a \`sonde-receiver\` process. Median of ${rounds} round(s) of ${duration} s after ${warmup} s of warm-up, order alternated.`,
      '',
      '| | requests/s | change | p50 latency | p99 latency | CPU per request (3 services) | CPU per request (receiver) |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...stats.map(
        (x, i) =>
          `| ${x.side.name} | ${x.rps.toFixed(0)} | ${i === 0 ? '' : `${loss(x) >= 0 ? '−' : '+'}${Math.abs(loss(x)).toFixed(1)}%`} | ${x.p50} ms | ${x.p99} ms | ${x.cpu.toFixed(2)} ms | ${x.rcpu.toFixed(2)} ms |`,
      ),
      '',
      `Spans accepted by the receiver over the run: ${spans ?? '?'}. Target: under 10% throughput loss with every trace sampled (${rate ? 'not judged: at a fixed offered rate every side serves the same requests/s; compare CPU per request' : full < 10 ? 'met' : 'not met'}).`,
      '',
      'Each round:',
      '',
      '| round | side | requests/s | p50 | p99 | errors | CPU/request (services + receiver) |',
      '|---:|---|---:|---:|---:|---:|---:|',
      ...runs.map(
        (r, i) =>
          `| ${Math.floor(i / SIDES.length) + 1} | ${r.side.name} | ${r.rps.toFixed(0)} | ${r.p50} ms | ${r.p99} ms | ${r.errors} | ${r.cpuPerRequest.toFixed(2)} + ${r.receiverCpuPerRequest.toFixed(2)} ms |`,
      ),
      '',
    ].join('\n');
    process.stdout.write(doc);
    if (!values.quick && !values['no-write'] && !rate && !values.compare && !values['cpu-prof']) {
      const file = join(
        dirname(new URL(import.meta.url).pathname),
        '..',
        '..',
        '..',
        'docs',
        'benchmarks-instrumentation.md',
      );
      writeFileSync(
        file,
        `# Benchmarks: instrumentation overhead\n\nWritten by \`npm run bench -w @sonde/demo\` (also run by the root \`npm run bench\`).\n\n${doc}`,
      );
      log(`wrote ${file}`);
    }
  } finally {
    receiver.child.kill('SIGTERM');
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});

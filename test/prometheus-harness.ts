/**
 * A real Prometheus server for the end-to-end tests: Debian's `prometheus` package (2.42), started on a
 * free loopback port with a temporary TSDB and a configuration that scrapes the given targets every
 * second, plus `promtool check metrics`.
 *
 * Nothing here skips: without the binaries `startPrometheus()` and `promtoolCheckMetrics()` throw, so
 * the tests that need them fail and say how to install them (CI does, in .ci/run).
 *
 * The scrape job sets `honor_labels: true`: an OTLP → Prometheus exposition carries its own `job` and
 * `instance` labels (from service.name / service.instance.id), which would otherwise be renamed
 * `exported_job` / `exported_instance` by Prometheus in favour of the target's own labels. Series
 * without them (the receiver's self-metrics) get the target's: job="sonde", instance="<admin address>".
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';

const INSTALL_HINT =
  "run .ci/run, or install Debian's package: apt-get install prometheus (CI installs it; the tests need " +
  'Prometheus 2.42 and promtool at /usr/bin, or PROMETHEUS_BIN / PROMTOOL_BIN)';

/** Throws, saying how to install it, when `bin` is not an executable file. */
function requireBinary(bin: string, what: string): void {
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`${what} is not installed (${bin} not found or not executable): ${INSTALL_HINT}`);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP API types (the parts the tests read)

/** One element of an instant vector, as /api/v1/query returns it, with the value parsed. */
export interface Sample {
  metric: Record<string, string>;
  /** Evaluation time, in seconds since the epoch. */
  time: number;
  /** The sample's value ("+Inf", "NaN" and the like parsed as floats). */
  value: number;
}

export interface ExemplarSeries {
  seriesLabels: Record<string, string>;
  exemplars: { labels: Record<string, string>; value: number; timestamp: number }[];
}

export interface ActiveTarget {
  discoveredLabels: Record<string, string>;
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  globalUrl: string;
  lastError: string;
  /** RFC 3339; "0001-01-01T00:00:00Z" before the first scrape. */
  lastScrape: string;
  lastScrapeDuration: number;
  health: 'up' | 'down' | 'unknown';
  scrapeInterval: string;
  scrapeTimeout: string;
}

// ---------------------------------------------------------------------------------------------
// The server

export interface Prometheus {
  /** http://127.0.0.1:port */
  url: string;
  /** The scrape job's name (the `job` label of series that carry none of their own). */
  job: string;
  /** The instant vector `promql` evaluates to now. Throws on an API error or a non-vector result. */
  query(promql: string): Promise<Sample[]>;
  /**
   * Polls `query(promql)` every 200 ms until `predicate` holds, and returns that result. Throws after
   * `timeoutMs` with the last result, the targets' health and Prometheus's log.
   */
  waitFor(promql: string, predicate: (samples: Sample[]) => boolean, timeoutMs: number): Promise<Sample[]>;
  /** /api/v1/query_exemplars over [start, end] (Date or seconds since the epoch). */
  queryExemplars(promql: string, start: Date | number, end: Date | number): Promise<ExemplarSeries[]>;
  /** The active targets of /api/v1/targets. */
  targets(): Promise<ActiveTarget[]>;
  /** Waits until every target has been scraped at least once since `since` (default: now). */
  waitForScrape(timeoutMs: number, since?: Date): Promise<ActiveTarget[]>;
  /**
   * /api/v1/query_range from `start` to `end` (seconds since the epoch) every `stepSeconds`. Matrix and
   * vector results both come back as series; a scalar as one series without labels.
   */
  queryRange(promql: string, start: number, end: number, stepSeconds: number): Promise<RangeSeries[]>;
  /** /api/v1/query at `time` (seconds; default now), any result type, as series of one value. */
  queryInstant(promql: string, time?: number): Promise<RangeSeries[]>;
  /** /api/v1/label/<label>/values, restricted to the series of `match` when given. */
  labelValues(label: string, match?: string): Promise<string[]>;
  /** Every rule of /api/v1/rules, with its group's name. */
  rules(): Promise<(RuleStatus & { group: string })[]>;
  /** What Prometheus wrote to stdout/stderr (the last 64 KiB). */
  log(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the temporary directory. Idempotent. */
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** "host:port" of each target, scraped at /metrics. */
  targets: string[];
  job?: string;
  /** Default "1s"; the scrape timeout is the same. */
  scrapeInterval?: string;
  /** Default true (see the top of this file). */
  honorLabels?: boolean;
  /** How long to wait for /-/ready (default 20 s). */
  readyTimeoutMs?: number;
  /** Rule files (absolute paths) to load; evaluated every `evaluationInterval`. */
  ruleFiles?: string[];
  /** Default "1m". */
  evaluationInterval?: string;
  /** --query.lookback-delta (Prometheus's default is 5m). */
  lookbackDelta?: string;
  /** A file holding a bearer token that the scrapes send (`authorization.credentials_file`). */
  credentialsFile?: string;
  /** Scrape over https, trusting `caFile`, with a client certificate when given (`tls_config`). */
  tls?: { caFile: string; certFile?: string; keyFile?: string };
  /** "host:port" of Alertmanagers to send alerts to (`alerting.alertmanagers`, API v2, over http). */
  alertmanagers?: string[];
}

/** One series of a range query, values parsed. */
export interface RangeSeries {
  metric: Record<string, string>;
  values: [time: number, value: number][];
}

/** A rule group's rule as /api/v1/rules returns it (the parts the tests read). */
export interface RuleStatus {
  name: string;
  query: string;
  type: 'recording' | 'alerting';
  health: string;
  lastError?: string;
  state?: string;
}

const LOG_LIMIT = 64 * 1024;

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  requireBinary(PROMETHEUS_BIN, 'Prometheus');
  // The port is picked by binding :0 and closing; another process may take it in between, in which
  // case Prometheus exits at once ("address already in use") and another port is tried.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options, await freePort());
    } catch (err) {
      lastError = err;
      if (!(err instanceof PortInUseError)) throw err;
    }
  }
  throw lastError;
}

class PortInUseError extends Error {}

async function startOnce(options: PrometheusOptions, port: number): Promise<Prometheus> {
  const job = options.job ?? 'sonde';
  const interval = options.scrapeInterval ?? '1s';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-prometheus-'));
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    configFile,
    [
      'global:',
      `  scrape_interval: ${interval}`,
      `  scrape_timeout: ${interval}`,
      `  evaluation_interval: ${options.evaluationInterval ?? '1m'}`,
      ...(options.ruleFiles?.length
        ? ['rule_files:', ...options.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)]
        : []),
      ...(options.alertmanagers?.length
        ? [
            'alerting:',
            '  alertmanagers:',
            '    - api_version: v2',
            '      static_configs:',
            `        - targets: ${JSON.stringify(options.alertmanagers)}`,
          ]
        : []),
      'scrape_configs:',
      `  - job_name: ${JSON.stringify(job)}`,
      `    honor_labels: ${options.honorLabels ?? true}`,
      '    metrics_path: /metrics',
      ...(options.credentialsFile
        ? [
            '    authorization:',
            '      type: Bearer',
            `      credentials_file: ${JSON.stringify(options.credentialsFile)}`,
          ]
        : []),
      ...(options.tls
        ? [
            '    scheme: https',
            '    tls_config:',
            `      ca_file: ${JSON.stringify(options.tls.caFile)}`,
            ...(options.tls.certFile ? [`      cert_file: ${JSON.stringify(options.tls.certFile)}`] : []),
            ...(options.tls.keyFile ? [`      key_file: ${JSON.stringify(options.tls.keyFile)}`] : []),
          ]
        : []),
      '    static_configs:',
      `      - targets: ${JSON.stringify(options.targets)}`,
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  const { log, stop } = await startUntilReady({
    name: 'Prometheus',
    command: PROMETHEUS_BIN,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--enable-feature=exemplar-storage',
      '--log.level=warn',
      ...(options.lookbackDelta ? [`--query.lookback-delta=${options.lookbackDelta}`] : []),
    ],
    dir,
    readyUrl: `${url}/-/ready`,
    readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
    earlyExitError: (message, output) =>
      /address already in use/.test(output) ? new PortInUseError(message) : new Error(message),
  });

  const api = async <T>(endpoint: string, params: Record<string, string>): Promise<T> => {
    const res = await fetch(`${url}${endpoint}?${new URLSearchParams(params)}`, {
      signal: AbortSignal.timeout(5000),
    });
    const body = (await res.json()) as { status: string; data: T; errorType?: string; error?: string };
    if (body.status !== 'success') {
      throw new Error(`${endpoint} ${JSON.stringify(params)}: ${res.status} ${body.errorType}: ${body.error}`);
    }
    return body.data;
  };

  const query = async (promql: string): Promise<Sample[]> => {
    const data = await api<{
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    }>('/api/v1/query', { query: promql });
    if (data.resultType !== 'vector') throw new Error(`${promql}: expected a vector, got a ${data.resultType}`);
    return data.result.map((r) => ({ metric: r.metric, time: r.value[0], value: Number.parseFloat(r.value[1]) }));
  };

  const targets = async (): Promise<ActiveTarget[]> =>
    (await api<{ activeTargets: ActiveTarget[] }>('/api/v1/targets', { state: 'active' })).activeTargets;

  const describeTargets = async () => {
    try {
      return (await targets())
        .map(
          (t) => `${t.scrapeUrl}: ${t.health}, last scrape ${t.lastScrape}, lastError ${JSON.stringify(t.lastError)}`,
        )
        .join('\n');
    } catch (err) {
      return `(targets unavailable: ${(err as Error).message})`;
    }
  };

  const waitFor = async (promql: string, predicate: (samples: Sample[]) => boolean, timeoutMs: number) => {
    const until = Date.now() + timeoutMs;
    let last: Sample[] | undefined;
    let lastError: unknown;
    for (;;) {
      try {
        last = await query(promql);
        lastError = undefined;
        if (predicate(last)) return last;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > until) break;
      await delay(200);
    }
    throw new Error(
      `Prometheus: ${promql} did not satisfy the condition within ${timeoutMs} ms.\n` +
        `last result: ${lastError ? String(lastError) : JSON.stringify(last)}\n` +
        `targets:\n${await describeTargets()}\n` +
        `Prometheus log:\n${log() || '(empty)'}`,
    );
  };

  const seconds = (t: Date | number) => String(typeof t === 'number' ? t : t.getTime() / 1000);
  const queryExemplars = async (promql: string, start: Date | number, end: Date | number) => {
    const data = await api<
      {
        seriesLabels: Record<string, string>;
        exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
      }[]
    >('/api/v1/query_exemplars', { query: promql, start: seconds(start), end: seconds(end) });
    return data.map((s) => ({
      seriesLabels: s.seriesLabels,
      exemplars: s.exemplars.map((e) => ({
        labels: e.labels,
        value: Number.parseFloat(e.value),
        timestamp: e.timestamp,
      })),
    }));
  };

  const waitForScrape = async (timeoutMs: number, since = new Date()) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const ts = await targets();
      if (ts.length > 0 && ts.every((t) => Date.parse(t.lastScrape) > since.getTime())) return ts;
      if (Date.now() > until) {
        throw new Error(
          `Prometheus did not scrape every target within ${timeoutMs} ms:\n${await describeTargets()}\n${log()}`,
        );
      }
      await delay(200);
    }
  };

  type Result =
    | { resultType: 'matrix'; result: { metric: Record<string, string>; values: [number, string][] }[] }
    | { resultType: 'vector'; result: { metric: Record<string, string>; value: [number, string] }[] }
    | { resultType: 'scalar' | 'string'; result: [number, string] };
  const toSeries = (data: Result): RangeSeries[] => {
    const num = ([t, v]: [number, string]): [number, number] => [t, Number.parseFloat(v)];
    if (data.resultType === 'matrix') return data.result.map((r) => ({ metric: r.metric, values: r.values.map(num) }));
    if (data.resultType === 'vector') return data.result.map((r) => ({ metric: r.metric, values: [num(r.value)] }));
    return [{ metric: {}, values: [num(data.result)] }];
  };
  const queryRange = async (promql: string, start: number, end: number, stepSeconds: number) =>
    toSeries(
      await api<Result>('/api/v1/query_range', {
        query: promql,
        start: String(start),
        end: String(end),
        step: String(stepSeconds),
      }),
    );
  const queryInstant = async (promql: string, time?: number) =>
    toSeries(
      await api<Result>('/api/v1/query', { query: promql, ...(time === undefined ? {} : { time: String(time) }) }),
    );
  const labelValues = (label: string, match?: string) =>
    api<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values`, match ? { 'match[]': match } : {});
  const rules = async () =>
    (await api<{ groups: { name: string; rules: RuleStatus[] }[] }>('/api/v1/rules', {})).groups.flatMap((g) =>
      g.rules.map((r) => ({ ...r, group: g.name })),
    );

  return {
    url,
    job,
    query,
    waitFor,
    queryExemplars,
    queryRange,
    queryInstant,
    labelValues,
    rules,
    targets,
    waitForScrape,
    log,
    stop,
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A server process a test started: its recent output, and a stop that ends it and removes its directory. */
export interface ManagedProcess {
  log: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts `command` (Prometheus, Alertmanager) and waits until `readyUrl` answers 2xx. Its output is
 * kept (the last 64 KiB) for error messages; it is killed if the test process exits without stop();
 * stop() sends SIGTERM (SIGKILL after 5 s) and removes `dir`. Exiting before ready, or not ready
 * within the time, stops it and throws with its output (`earlyExitError` may choose the error).
 */
export async function startUntilReady(options: {
  name: string;
  command: string;
  args: string[];
  dir: string;
  readyUrl: string;
  readyTimeoutMs: number;
  earlyExitError?: (message: string, output: string) => Error;
}): Promise<ManagedProcess> {
  const { name } = options;
  const child = spawn(options.command, options.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-LOG_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      append(Buffer.from(`spawn error: ${err.message}\n`));
      exited ??= { code: null, signal: null };
      resolve();
    });
  });
  // If the test process dies without stop(), do not leave the server behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(timer);
      }
      fs.rmSync(options.dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const deadline = Date.now() + options.readyTimeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      const message = `${name} exited (${exited.code ?? exited.signal}) before it was ready:\n${log}`;
      throw options.earlyExitError ? options.earlyExitError(message, log) : new Error(message);
    }
    try {
      const res = await fetch(options.readyUrl, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} was not ready within ${options.readyTimeoutMs} ms:\n${log}`);
    }
    await delay(100);
  }
  return { log: () => log, stop };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// promtool

export interface PromtoolResult {
  /**
   * promtool 2.42's exit code: 0 clean; 3 lint problems only (the exposition parsed, the lines say
   * e.g. "x_total no help text" or "x counter metrics should have \"_total\" suffix"); 1 the text did not
   * parse ("error while linting: text format parsing error in line N: ...").
   */
  code: number | null;
  /** stdout and stderr together (promtool writes its findings to stderr). */
  output: string;
  /** The lint problems, one per line ("<metric> <problem>"). */
  problems: string[];
  /** The lines that report errors ("error while linting: ..."): the text did not parse. */
  errors: string[];
}

/**
 * Pipes `text` (an exposition in the Prometheus text format 0.0.4: promtool 2.42 parses nothing else,
 * an OpenMetrics body with exemplars is a parse error) into `promtool check metrics`.
 */
export async function promtoolCheckMetrics(text: string, timeoutMs = 10_000): Promise<PromtoolResult> {
  requireBinary(PROMTOOL_BIN, 'promtool');
  const child: ChildProcess = spawn(PROMTOOL_BIN, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString('utf8');
  });
  child.stdin?.on('error', () => {}); // EPIPE if promtool stops reading at a parse error
  child.stdin?.end(text);
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`promtool check metrics did not finish within ${timeoutMs} ms: ${output}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  // promtool 2.42 prints "error while linting: <err>" (exit 1), or one "<metric> <problem>" line per
  // lint problem (exit 3).
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => l.startsWith('error'));
  return { code, output, problems: lines.filter((l) => !l.startsWith('error')), errors };
}

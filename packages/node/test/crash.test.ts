/**
 * Crashes leave a record (src/crash.ts): a child process instrumented with @sonde/node
 * (`--require @sonde/node/register`) crashes with an uncaught exception or an unhandled rejection;
 * the log record with exception.* arrives in the real receiver's log store (queried through its Loki
 * API, as Grafana does), the active span carries the exception event, and the process dies as the
 * same program does without Sonde: same exit code, same stderr, within the flush bound.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Receiver, type Span, startReceiver, validateConfig } from '@sonde/receiver';
import { CJS, FIXTURES, waitFor, waitForAsync } from './harness';

let receiver: Receiver;
let dataDir: string;
const spans: { span: Span; service: string }[] = [];

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-crash-'));
  receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
      data_dir: dataDir,
      log_store: { enabled: true },
      trace_store: { enabled: false },
    }),
    { defaultMetrics: false },
  );
  receiver.pipeline.traces.addConsumer({
    name: 'capture',
    consume: (b) => {
      for (const rs of b.data) {
        const service = String(rs.resource.attributes.find((a) => a.key === 'service.name')?.value);
        for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ span, service });
      }
    },
  });
}, 30_000);

afterAll(async () => {
  await receiver?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** When the process exited (Date.now()). */
  endedAt: number;
}

/** Runs crash-app.cjs with CRASH=`crash`, with Sonde (`--require @sonde/node/register`) or without. */
function run(
  crash: string,
  options: { sonde: boolean; service?: string; env?: Record<string, string>; args?: string[] },
) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('OTEL_') && !k.startsWith('SONDE_') && k !== 'DO_NOT_TRACK' && k !== 'NODE_OPTIONS',
    ),
  );
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [...(options.args ?? []), ...(options.sonde ? CJS : []), path.join(FIXTURES, 'crash-app.cjs')],
    {
      cwd: path.join(__dirname, '..'),
      env: {
        ...inherited,
        CRASH: crash,
        OTEL_SERVICE_NAME: options.service ?? `crash-${crash}`,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://${receiver.addresses.otlpHttp}`,
        // Long batch delays: only the crash flush can have sent the records in time.
        OTEL_BSP_SCHEDULE_DELAY: '30000',
        OTEL_BLRP_SCHEDULE_DELAY: '30000',
        SONDE_SUMMARY: 'false',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise<Run>((resolve) =>
    child.once('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, endedAt: Date.now() }),
    ),
  );
}

interface LokiStream {
  stream: Record<string, string>;
  values: [string, string, { structuredMetadata?: Record<string, string> }][];
}

/** The records of `service` in the receiver's log store, through its Loki API. */
async function lokiRecords(service: string): Promise<LokiStream['values']> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const qs = new URLSearchParams({
    query: `{service_name="${service}"}`,
    start: String(now - 600_000_000_000n),
    end: String(now + 60_000_000_000n),
    limit: '100',
    direction: 'backward',
  });
  const res = await fetch(`http://${receiver.addresses.admin}/loki/api/v1/query_range?${qs}`, {
    headers: { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' },
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { data: { result: LokiStream[] } };
  return body.data.result.flatMap((s) => s.values);
}

const crashRecord = (service: string) =>
  waitForAsync(
    `the crash record of ${service} in the log store`,
    async () => (await lokiRecords(service)).find(([, , m]) => m.structuredMetadata?.exception_type !== undefined),
    10_000,
  );

test('an uncaught exception: the record and the span event arrive, the process dies as without Sonde', async () => {
  const [without, withSonde] = await Promise.all([
    run('exception', { sonde: false }),
    run('exception', { sonde: true }),
  ]);
  expect(without.code).toBe(1);
  expect(without.stderr).toContain('TypeError: card declined: exception');
  expect({ code: withSonde.code, signal: withSonde.signal, stderr: withSonde.stderr }).toEqual({
    code: without.code,
    signal: without.signal,
    stderr: without.stderr,
  });

  const [, line, meta] = await crashRecord('crash-exception');
  expect(line).toBe('uncaughtException: TypeError: card declined: exception');
  expect(meta.structuredMetadata).toMatchObject({
    exception_type: 'TypeError',
    exception_message: 'card declined: exception',
    sonde_crash_origin: 'uncaughtException',
    severity_text: 'FATAL',
  });
  expect(meta.structuredMetadata?.exception_stacktrace).toContain('crash-app.cjs');
  // The span active when the timer threw: ended, in status ERROR, with the exception event.
  const { span } = await waitFor('the checkout span', () =>
    spans.find((s) => s.service === 'crash-exception' && s.span.name === 'checkout'),
  );
  expect(span.status.code).toBe(2);
  const event = span.events.find((e) => e.name === 'exception');
  expect(event?.attributes.find((a) => a.key === 'exception.type')?.value).toBe('TypeError');
  // The record is also linked to the span.
  expect(meta.structuredMetadata?.trace_id).toBe(span.traceId);
}, 60_000);

test.each([
  ['rejection', 'Error', 'payment service unreachable'],
  ['string-rejection', 'string', 'out of stock'],
])(
  'an unhandled rejection (%s): recorded, then Node reports it as it would (--unhandled-rejections=throw)',
  async (crash, type, message) => {
    const [without, withSonde] = await Promise.all([run(crash, { sonde: false }), run(crash, { sonde: true })]);
    expect(without.code).toBe(1);
    expect({ code: withSonde.code, stderr: withSonde.stderr }).toEqual({ code: without.code, stderr: without.stderr });
    const [, , meta] = await crashRecord(`crash-${crash}`);
    expect(meta.structuredMetadata).toMatchObject({
      exception_type: type,
      exception_message: message,
      sonde_crash_origin: 'unhandledRejection',
    });
  },
  60_000,
);

test.each([
  // Node only warns: both survive and end normally (0) when the fixture stops its timer.
  ['warn', 0],
  // Node warns and sets exit code 1, and the process goes on until its timer stops.
  ['warn-with-error-code', 1],
  // Node raises it as an uncaught exception: the process dies (1).
  ['strict', 1],
])(
  '--unhandled-rejections=%s: recorded, and the process ends as without Sonde (exit code %d)',
  async (mode, code) => {
    const args = [`--unhandled-rejections=${mode}`];
    const [without, withSonde] = await Promise.all([
      run('rejection', { sonde: false, args }),
      run('rejection', { sonde: true, args, service: `crash-${mode}` }),
    ]);
    expect([without.code, withSonde.code]).toEqual([code, code]);
    // Same warning, but for the pid and, with warn-with-error-code, the rejection id: Sonde hands the
    // reason back to Node as a new rejection (id 2).
    const normal = (stderr: string) => stderr.replace(/\(node:\d+\)/g, '').replace(/\(rejection id: \d+\)/g, '');
    expect(normal(withSonde.stderr)).toBe(normal(without.stderr));
    const [, , meta] = await crashRecord(`crash-${mode}`);
    expect(meta.structuredMetadata?.exception_message).toBe('payment service unreachable');
  },
  60_000,
);

test("the application's own uncaughtException handler decides: it runs, and its exit code stands", async () => {
  const result = await run('handled', { sonde: true });
  expect(result.code).toBe(3);
  expect(result.stdout).toContain('{"handled":"card declined: handled"}');
  const [, , meta] = await crashRecord('crash-handled');
  expect(meta.structuredMetadata?.exception_message).toBe('card declined: handled');
}, 60_000);

test('the flush is bounded: with the receiver unreachable, the process still dies within the bound', async () => {
  const bound = 500;
  const [without, withSonde] = await Promise.all([
    run('exception', { sonde: false }),
    run('exception', {
      sonde: true,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
        SONDE_CRASH_FLUSH_TIMEOUT_MS: String(bound),
        CRASH_PRINT_TIME: '1',
      },
    }),
  ]);
  // Sonde's own warning that the receiver is unreachable (a JSON line) aside, stderr is the same.
  const notSonde = (stderr: string) =>
    stderr
      .split('\n')
      .filter((l) => !l.startsWith('{"level"'))
      .join('\n');
  expect({ code: withSonde.code, stderr: notSonde(withSonde.stderr) }).toEqual({
    code: without.code,
    stderr: without.stderr,
  });
  // From the crash to the exit: the bound, with slack for a loaded machine (the SDK's start-up, which
  // a busy machine can stretch to seconds, is not counted).
  const crashingAt = (JSON.parse(withSonde.stdout.trim().split('\n').at(-1) ?? '{}') as { crashingAt?: number })
    .crashingAt;
  expect(crashingAt).toBeDefined();
  expect(withSonde.endedAt - crashingAt!).toBeLessThan(bound + 1500);
}, 60_000);

/**
 * The persistent Tempo export queue, end to end: `sonde-receiver` accepts spans while Tempo is down
 * (a local sink answering 503), is killed with SIGKILL, and once started again on the same data
 * directory it delivers them to Tempo (now answering 200): at least once, and intact.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeTraceRequest } from '@sonde/receiver';
import { type CliProcess, startCli } from './cli';

const running: CliProcess[] = [];

function startTracked(args: string[], env: Record<string, string>): CliProcess {
  const cli = startCli(args, env);
  running.push(cli);
  return cli;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `cond` until it holds; fails with `explain()` after `timeoutMs` or if `cli` exits first. */
async function until(what: string, cond: () => boolean, cli: CliProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    const state = `stdout: ${JSON.stringify(cli.lines)}; stderr: ${cli.stderr.join('')}`;
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) {
      throw new Error(`sonde-receiver exited before ${what}; ${state}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${state}`);
    await sleep(20);
  }
}

interface Received {
  status: number;
  body: Buffer;
}

let sink: Server;
let sinkStatus = 503;
const received: Received[] = [];
let work: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-restart-'));
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = sinkStatus;
      received.push({ status, body: Buffer.concat(chunks) });
      res.writeHead(status, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const cli of running) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }
  }
  sink.closeAllConnections();
  await new Promise((resolve) => sink.close(resolve));
  rmSync(work, { recursive: true, force: true });
});

test('spans accepted while Tempo is down survive a SIGKILL and are delivered after the restart', async () => {
  const configFile = path.join(work, 'sonde.yaml');
  writeFileSync(
    configFile,
    ['tempo:', '  persistent_queue: true', '  batch_timeout: 20ms', '  retry:', '    initial_interval: 100ms', ''].join(
      '\n',
    ),
  );
  const env = {
    SONDE_OTLP_HTTP_ADDR: '127.0.0.1:0',
    SONDE_OTLP_GRPC_ADDR: 'off',
    SONDE_ADMIN_ADDR: '127.0.0.1:0',
    SONDE_DATA_DIR: path.join(work, 'data'),
    SONDE_LOG_LEVEL: 'info',
    SONDE_TEMPO_ENDPOINT: `http://127.0.0.1:${(sink.address() as AddressInfo).port}`,
  };

  // Tempo is down: the receiver accepts the spans (200) and keeps retrying.
  const first = startTracked(['--config', configFile], env);
  await until('the first log line', () => first.lines.length > 0, first);
  expect(first.lines[0].msg).toBe('sonde-receiver listening');
  const traceId = '5b8efff798038103d269b633813fc60c';
  const spanIds = ['eee19b7ec3c1b174', '0102030405060708'];
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'restart-e2e' } }] },
        scopeSpans: [
          {
            scope: { name: 'e2e' },
            spans: spanIds.map((spanId, i) => ({
              traceId,
              spanId,
              name: `span-${i}`,
              kind: 2,
              startTimeUnixNano: '1700000000000000000',
              endTimeUnixNano: '1700000000050000000',
            })),
          },
        ],
      },
    ],
  };
  const res = await fetch(`http://${first.lines[0].otlpHttp as string}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  await res.text();
  await until('two refused export attempts', () => received.filter((r) => r.status === 503).length >= 2, first);

  // kill -9: no shutdown, no flush.
  first.child.kill('SIGKILL');
  expect(await first.exited).toStrictEqual({ code: null, signal: 'SIGKILL' });

  // Tempo is back; the receiver starts again on the same data directory and sends what it kept.
  sinkStatus = 200;
  const second = startTracked(['--config', configFile], env);
  await until('a delivery', () => received.some((r) => r.status === 200), second);
  const delivered = received
    .filter((r) => r.status === 200)
    .flatMap((r) => decodeTraceRequest(gunzipSync(r.body), { maxAnyValueDepth: 32 }))
    .flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => [s.traceId, s.spanId, s.name])));
  // At least once: every span, possibly more than once, nothing else.
  expect([...new Set(delivered.map((d) => d.join('/')))].sort()).toStrictEqual(
    spanIds.map((id, i) => `${traceId}/${id}/span-${i}`).sort(),
  );

  second.child.kill('SIGTERM');
  expect(await second.exited).toStrictEqual({ code: 0, signal: null });
  expect(second.lines.filter((l) => l.level >= 50)).toStrictEqual([]);
}, 60_000);

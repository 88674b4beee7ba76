/**
 * The persistent Tempo export queue, end to end: `sonde-receiver` accepts spans while Tempo is down
 * (a local sink answering 503), is killed with SIGKILL, and once started again on the same data
 * directory it delivers them to Tempo (now answering 200): at least once, and intact.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeTraceRequest } from '@sonde/receiver';
import { cliTracker, untilCli } from './cli';
import { type RecordingBackend, startRecordingBackend } from './feed/recording-backend';
import { decodeBody } from './helpers';

const clis = cliTracker();
let tempo: RecordingBackend;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'sonde-e2e-restart-'));
  tempo = await startRecordingBackend(200);
});

afterAll(async () => {
  await clis.killAll();
  await tempo.close();
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
    SONDE_TEMPO_ENDPOINT: tempo.url,
  };

  // Tempo is down: the receiver accepts the spans (200) and keeps retrying.
  const first = clis.start(['--config', configFile], env);
  await untilCli('the first log line', () => first.lines.length > 0, first);
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
  await untilCli(
    'two refused export attempts',
    () => tempo.received.filter((r) => r.status === 503).length >= 2,
    first,
  );

  // kill -9: no shutdown, no flush.
  first.child.kill('SIGKILL');
  expect(await first.exited).toStrictEqual({ code: null, signal: 'SIGKILL' });

  // Tempo is back; the receiver starts again on the same data directory and sends what it kept.
  tempo.status = 200;
  const second = clis.start(['--config', configFile], env);
  await untilCli('a delivery', () => tempo.received.some((r) => r.status === 200), second);
  const delivered = tempo.received
    .filter((r) => r.status === 200)
    .flatMap((r) => decodeTraceRequest(decodeBody(r.body, r.headers), { maxAnyValueDepth: 32 }))
    .flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => [s.traceId, s.spanId, s.name])));
  // At least once: every span, possibly more than once, nothing else.
  expect([...new Set(delivered.map((d) => d.join('/')))].sort()).toStrictEqual(
    spanIds.map((id, i) => `${traceId}/${id}/span-${i}`).sort(),
  );

  second.child.kill('SIGTERM');
  expect(await second.exited).toStrictEqual({ code: 0, signal: null });
  expect(second.lines.filter((l) => l.level >= 50)).toStrictEqual([]);
}, 60_000);

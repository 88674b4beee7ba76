/**
 * DO_NOT_TRACK and `consent: none` mean silence, and detected resources hold nothing personal.
 * A plain node:http server stands in for the receiver and keeps every byte of every request the
 * SDK sends (decompressed); the real SDK runs in a child process (`--import @sonde/node/register`)
 * and serves requests, logs, business events and metrics. Under DO_NOT_TRACK the bytes hold no host
 * name, host id, user name nor command line, and nothing but the anonymous consent choice records
 * (one per withdrawn category, resource service.name only); with SONDE_COUNT_OPT_OUT=false, not one
 * request is made. Without DO_NOT_TRACK, the resource keeps what operations need and leaves out the
 * host name and id, the owner and the command line, unless SONDE_RESOURCE_ALLOW lists them.
 */
import * as fs from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeLogsRequest, decodeMetricsRequest, decodeTraceRequest, type KeyValue } from '@sonde/receiver';
import { ESM, FIXTURES, startApp } from './harness';

interface Captured {
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let server: Server;
let endpoint: string;
const captured: Captured[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      captured.push({ url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const LIMITS = { maxAnyValueDepth: 32 };
const attrs = (list: KeyValue[]) => Object.fromEntries(list.map((kv) => [kv.key, kv.value]));

/** What a person or a secret could be found by, on this machine and in the child's command line. */
function identifying(): string[] {
  const out = [os.hostname(), os.userInfo().username, process.execPath, path.join(FIXTURES, 'privacy-app.mjs')];
  try {
    const id = fs.readFileSync('/etc/machine-id', 'utf8').trim();
    if (id) out.push(id);
  } catch {
    // no machine id here
  }
  return out;
}

/**
 * Whether `s` is in the bytes sent. A short one (a host named `vm`, the user `root`) turns up by chance
 * in random ids and compressed-looking bytes, so it counts only as a whole protobuf string: its length
 * byte followed by it, as every string field and attribute value shorter than 128 bytes is encoded.
 */
function leaks(bytes: Buffer, s: string): boolean {
  const text = Buffer.from(s);
  if (text.length >= 8) return bytes.includes(text);
  return bytes.includes(Buffer.concat([Buffer.from([text.length]), text]));
}

/** Runs the fixture with `env` sending to the capture server, serves a few requests, stops it; returns what it sent. */
async function run(
  service: string,
  env: Record<string, string>,
  requestHeaders: Record<string, string>[] = [{}, {}, {}],
): Promise<{ sent: Captured[]; stderr: string }> {
  const from = captured.length;
  const app = await startApp('privacy-app.mjs', ESM, {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    ...env,
  });
  try {
    for (const [i, extra] of requestHeaders.entries()) {
      const res = await fetch(`${app.url}/checkout?ref=S${i}&email=jane%40example.com`, {
        headers: { 'x-user': 'u-1', 'x-card': '4111 1111 1111 1111', ...extra },
      });
      expect(res.status).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 1500)); // three metric intervals
    await app.stop('SIGTERM');
  } finally {
    await app.stop('SIGKILL');
  }
  return { sent: captured.slice(from), stderr: app.stderr.join('') };
}

test('DO_NOT_TRACK: the only bytes sent are one anonymous opt-out record per category', async () => {
  const service = 'silence-dnt';
  const { sent, stderr } = await run(service, { DO_NOT_TRACK: '1' });
  expect(stderr).toContain('"doNotTrack":true');

  const all = Buffer.concat(sent.map((c) => c.body));
  for (const s of identifying()) expect([s, leaks(all, s)]).toEqual([s, false]);
  for (const s of ['jane', '4111', 'u-1', 'checkout']) expect([s, all.includes(s)]).toEqual([s, false]);

  // Only logs requests, and in them only the consent choice records.
  expect(sent.length).toBeGreaterThan(0);
  expect(sent.map((c) => c.url)).toEqual(sent.map(() => '/v1/logs'));
  const records = sent.flatMap((c) =>
    decodeLogsRequest(c.body, LIMITS).flatMap((rl) => {
      expect(attrs(rl.resource.attributes)).toEqual({ 'service.name': service });
      return rl.scopeLogs.flatMap((sl) => sl.logRecords);
    }),
  );
  expect(records.map((r) => [r.eventName, attrs(r.attributes)])).toEqual(
    ['diagnostics', 'performance', 'product'].map((category) => [
      'sonde.consent.choice',
      { 'sonde.consent.category': category, 'sonde.consent.choice': 'denied', 'sonde.consent.source': 'do_not_track' },
    ]),
  );
  expect(records.every((r) => r.severityNumber === 9 && r.traceId === '')).toBe(true);
});

test('DO_NOT_TRACK with SONDE_COUNT_OPT_OUT=false, and SONDE_CONSENT=none: silence, or start-up records only', async () => {
  const quiet = await run('silence-quiet', { DO_NOT_TRACK: 'true', SONDE_COUNT_OPT_OUT: 'false' });
  expect(quiet.sent).toEqual([]);

  const none = await run('silence-none', { SONDE_CONSENT: 'none' });
  expect(none.sent.map((c) => c.url)).toEqual(none.sent.map(() => '/v1/logs'));
  const records = none.sent.flatMap((c) =>
    decodeLogsRequest(c.body, LIMITS).flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords)),
  );
  expect(records.map((r) => attrs(r.attributes)['sonde.consent.source'])).toEqual(['startup', 'startup', 'startup']);
});

test('default resource detection keeps what operations need and leaves out host, owner and command line', async () => {
  const plain = await run('resource-default', {});
  const allowed = await run('resource-allow', { SONDE_RESOURCE_ALLOW: 'host.name,process.owner' });

  const resourceOf = (sent: Captured[]) => {
    const metrics = sent.filter((c) => c.url === '/v1/metrics');
    expect(metrics.length).toBeGreaterThan(0);
    const rm = decodeMetricsRequest(metrics[0].body, LIMITS)[0];
    const spans = sent.filter((c) => c.url === '/v1/traces');
    expect(spans.length).toBeGreaterThan(0);
    const rs = decodeTraceRequest(spans[0].body, LIMITS)[0];
    expect(attrs(rs.resource.attributes)).toEqual(attrs(rm.resource.attributes));
    return attrs(rm.resource.attributes);
  };

  const r = resourceOf(plain.sent);
  expect(r['service.name']).toBe('resource-default');
  expect(r['telemetry.sdk.language']).toBe('nodejs');
  expect(r['host.arch']).toBeDefined();
  expect(r['os.type']).toBe('linux');
  expect(r['process.pid']).toBeDefined();
  expect(r['process.runtime.name']).toBe('nodejs');
  for (const key of [
    'host.name',
    'host.id',
    'process.owner',
    'process.command',
    'process.command_line',
    'process.command_args',
    'process.executable.path',
    'process.executable.name',
  ])
    expect([key, r[key]]).toEqual([key, undefined]);
  const all = Buffer.concat(plain.sent.map((c) => c.body));
  for (const s of identifying()) expect([s, leaks(all, s)]).toEqual([s, false]);
  // The check finds them when they are sent.
  const allowedBytes = Buffer.concat(allowed.sent.map((c) => c.body));
  expect([leaks(allowedBytes, os.hostname()), leaks(allowedBytes, os.userInfo().username)]).toEqual([true, true]);

  const a = resourceOf(allowed.sent);
  expect(a['host.name']).toBe(os.hostname());
  expect(a['process.owner']).toBe(os.userInfo().username);
  expect(a['process.command_line']).toBeUndefined();
});

test('per-request withdrawal of performance: the measurements of that request are not recorded', async () => {
  const withdrawn = { 'x-consent': 'performance=0' };
  const { sent } = await run('metrics-scoped', { SONDE_CONSENT: 'all' }, [{}, withdrawn, {}, withdrawn, withdrawn]);
  // The last export holds the cumulative totals.
  const last = new Map<string, number>();
  for (const c of sent.filter((x) => x.url === '/v1/metrics'))
    for (const rm of decodeMetricsRequest(c.body, LIMITS))
      for (const sm of rm.scopeMetrics)
        for (const m of sm.metrics) {
          if (m.name === 'app.checkouts' && m.data.type === 'sum')
            last.set(
              m.name,
              m.data.dataPoints.reduce((n, p) => n + Number(p.value), 0),
            );
          if (m.name === 'http.server.request.duration' && m.data.type === 'histogram')
            last.set(
              m.name,
              m.data.dataPoints
                .filter((p) => attrs(p.attributes)['http.route'] === '/checkout')
                .reduce((n, p) => n + Number(p.count), 0),
            );
        }
  // Five requests, three of which withdrew performance: two counted, by the app's counter and by
  // the HTTP instrumentation's duration histogram (recorded when the response ends).
  expect(Object.fromEntries(last)).toEqual({ 'app.checkouts': 2, 'http.server.request.duration': 2 });
});

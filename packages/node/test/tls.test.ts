/**
 * @sonde/node over TLS: an app started with `--import @sonde/node/register` sends to a receiver that
 * requires mutual TLS and a bearer token, configured only by the standard variables
 * OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY (or their per-signal variants) and
 * OTEL_EXPORTER_OTLP_HEADERS, over OTLP/HTTP (Sonde's own sender) and OTLP/gRPC (the upstream
 * exporters). Without the token nothing is accepted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Batch, type Receiver, startReceiver, validateConfig } from '@sonde/receiver';
import { makePki, type TestPki } from '../../receiver/test/certs';
import { attr, ESM, startApp, waitFor } from './harness';

const TOKEN = 'node-sdk-token-0123456789';

let pki: TestPki;
let receiver: Receiver;
const spans: { service: string; path: unknown; transport: string }[] = [];

beforeAll(async () => {
  pki = makePki();
  const tokens = path.join(pki.dir, 'tokens');
  fs.writeFileSync(tokens, `${TOKEN}\n`);
  receiver = await startReceiver(
    validateConfig({
      otlp: {
        http: { address: '127.0.0.1:0' },
        grpc: { address: '127.0.0.1:0' },
        tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert },
        auth: { bearer_tokens_file: tokens },
      },
      admin: { address: 'off' },
      log: { level: 'silent', summary_interval: 0 },
      trace_store: { enabled: false },
    }),
    { defaultMetrics: false },
  );
  receiver.pipeline.traces.addConsumer({
    name: 'capture',
    consume: (b: Batch<'traces'>) => {
      for (const rs of b.data)
        for (const ss of rs.scopeSpans)
          for (const span of ss.spans)
            spans.push({
              service: String(attr(rs.resource.attributes, 'service.name')),
              path: attr(span.attributes, 'url.path'),
              transport: b.context.transport,
            });
    },
  });
});

afterAll(async () => {
  await receiver?.close();
  pki?.cleanup();
});

async function refused(transport: string): Promise<number> {
  const { values } = await receiver.metrics.refusedRequests.get();
  return values
    .filter((v) => v.labels.transport === transport && v.labels.reason === 'unauthenticated')
    .reduce((n, v) => n + v.value, 0);
}

const CASES: { name: string; protocol: string; perSignal: boolean }[] = [
  { name: 'OTLP/HTTP, general variables', protocol: 'http/protobuf', perSignal: false },
  { name: 'OTLP/HTTP, per-signal variables', protocol: 'http/protobuf', perSignal: true },
  { name: 'OTLP/gRPC, general variables', protocol: 'grpc', perSignal: false },
];

test.each(CASES)('$name: spans arrive over mutual TLS with the token', async ({ name, protocol, perSignal }) => {
  const grpc = protocol === 'grpc';
  const service = `tls-${name.replace(/\W+/g, '-').toLowerCase()}`;
  const prefix = perSignal ? 'OTEL_EXPORTER_OTLP_TRACES_' : 'OTEL_EXPORTER_OTLP_';
  const app = await startApp('express-app.mjs', ESM, {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_EXPORTER_OTLP_ENDPOINT: `https://${grpc ? receiver.addresses.otlpGrpc : receiver.addresses.otlpHttp}`,
    [`${prefix}CERTIFICATE`]: pki.ca.cert,
    [`${prefix}CLIENT_CERTIFICATE`]: pki.client.cert,
    [`${prefix}CLIENT_KEY`]: pki.client.key,
    [`${perSignal ? 'OTEL_EXPORTER_OTLP_TRACES_' : 'OTEL_EXPORTER_OTLP_'}HEADERS`]: `Authorization=Bearer%20${TOKEN}`,
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
  });
  try {
    expect((await fetch(`${app.url}/users/3`)).status).toBe(200);
    const span = await waitFor('the server span, over TLS', () =>
      spans.find((s) => s.service === service && s.path === '/users/3'),
    );
    expect(span.transport).toBe(grpc ? 'grpc' : 'http');
    expect(app.stderr.join('')).not.toContain(TOKEN);
  } finally {
    await app.stop('SIGKILL');
  }
});

test.each(['http/protobuf', 'grpc'])('%s without the token: refused, nothing accepted', async (protocol) => {
  const grpc = protocol === 'grpc';
  const transport = grpc ? 'grpc' : 'http';
  const before = await refused(transport);
  const service = `tls-no-token-${grpc ? 'grpc' : 'http'}`;
  const app = await startApp('express-app.mjs', ESM, {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_EXPORTER_OTLP_ENDPOINT: `https://${grpc ? receiver.addresses.otlpGrpc : receiver.addresses.otlpHttp}`,
    OTEL_EXPORTER_OTLP_CERTIFICATE: pki.ca.cert,
    OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: pki.client.cert,
    OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.client.key,
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
  });
  try {
    expect((await fetch(`${app.url}/users/4`)).status).toBe(200);
    // The refusal is counted once the export reached the receiver: then nothing was accepted.
    const deadline = Date.now() + 15000;
    while ((await refused(transport)) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await refused(transport)).toBeGreaterThan(before);
    expect(spans.filter((s) => s.service === service)).toEqual([]);
  } finally {
    await app.stop('SIGKILL');
  }
});

/**
 * Locking the listeners (issue 11, finding 8): loopback by default, TLS and mutual TLS on OTLP/HTTP,
 * OTLP/gRPC and the admin port, bearer tokens on the intake and on the admin port's data, and the
 * certificate and token files reloaded when they change. Real requests over real sockets; the
 * certificates are made by openssl at test time.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { loadConfig, type ReceiverConfigInput, validateConfig } from '../src';
import { serviceDefinition } from '../src/intake/grpc';
import { ProtoReader } from '../src/otlp/protobuf/reader';
import { makePki, type TestPki } from './certs';
import { JSON_TYPE, PROTOBUF, span, startTestReceiver, type TestReceiver, traceRequest } from './helpers';

const BODY = traceRequest([span()]);
const TOKEN = 's3cr3t-token-for-tests_0123456789';
const OTHER_TOKEN = 'another-token-9876543210';

let pki: TestPki;
let tmp: string;

beforeAll(() => {
  pki = makePki();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-security-'));
});
afterAll(() => {
  pki?.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeFile(name: string, content: string | Buffer): string {
  const file = path.join(tmp, name);
  // Written to a temporary name and renamed, as an atomic update (and as Kubernetes swaps a Secret).
  fs.writeFileSync(`${file}.new`, content);
  fs.renameSync(`${file}.new`, file);
  return file;
}

let seq = 0;
const tokensFile = (content: string) => writeFile(`tokens-${++seq}`, content);

async function start(overrides: ReceiverConfigInput): Promise<TestReceiver> {
  const r = await startTestReceiver(overrides);
  return r;
}

interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTPS request (no connection reuse), trusting `ca`, with a client certificate when given. */
function httpsRequest(
  url: string,
  options: {
    ca?: Buffer;
    cert?: Buffer;
    key?: Buffer;
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer;
    maxVersion?: tls.SecureVersion;
  },
): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        maxVersion: options.maxVersion,
        servername: 'localhost',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const TraceClient = grpc.makeGenericClientConstructor(serviceDefinition('traces'), 'TraceService');
type ExportFn = (req: Buffer, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;

function grpcExport(
  address: string,
  credentials: grpc.ChannelCredentials,
  token?: string,
): Promise<{ err: grpc.ServiceError | null }> {
  const client = new TraceClient(address, credentials) as unknown as grpc.Client & { Export: ExportFn };
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    client.Export(BODY, md, (err) => {
      client.close();
      resolve({ err });
    });
  });
}

/** The value of a self-metric series, from the receiver's registry. */
async function metricValue(r: TestReceiver, name: string, labels: Record<string, string>): Promise<number> {
  const metric = r.receiver.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const v = values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const spansReceived = (r: TestReceiver) => r.batches.traces.reduce((n, b) => n + b.itemCount, 0);

describe('safe defaults', () => {
  test('every listener binds the IPv4 loopback unless configured', () => {
    const c = validateConfig({});
    expect([c.otlp.http.address, c.otlp.grpc.address, c.admin.address]).toStrictEqual([
      { host: '127.0.0.1', port: 4318 },
      { host: '127.0.0.1', port: 4317 },
      { host: '127.0.0.1', port: 9464 },
    ]);
    // All interfaces only when asked for, e.g. by the images (":port" or 0.0.0.0).
    expect(validateConfig({ otlp: { http: { address: ':4318' } } }).otlp.http.address).toStrictEqual({
      host: '0.0.0.0',
      port: 4318,
    });
  });

  test('TLS and token files come from the environment', () => {
    const c = loadConfig({
      env: {
        SONDE_OTLP_TLS_CERT_FILE: '/c.pem',
        SONDE_OTLP_TLS_KEY_FILE: '/k.pem',
        SONDE_OTLP_TLS_CLIENT_CA_FILE: '/ca.pem',
        SONDE_OTLP_BEARER_TOKENS_FILE: '/otlp-tokens',
        SONDE_ADMIN_TLS_CERT_FILE: '/ac.pem',
        SONDE_ADMIN_TLS_KEY_FILE: '/ak.pem',
        SONDE_ADMIN_BEARER_TOKENS_FILE: '/admin-tokens',
      },
    });
    expect(c.otlp.tls).toMatchObject({
      cert_file: '/c.pem',
      key_file: '/k.pem',
      client_ca_file: '/ca.pem',
      min_version: '1.2',
    });
    expect(c.otlp.auth.bearer_tokens_file).toBe('/otlp-tokens');
    expect(c.admin.tls).toMatchObject({ cert_file: '/ac.pem', key_file: '/ak.pem', client_ca_file: '' });
    expect(c.admin.auth).toStrictEqual({
      bearer_tokens_file: '/admin-tokens',
      reload_interval: 1000,
      protect_metrics: false,
    });
  });

  test('half a TLS configuration is refused, naming the keys', () => {
    expect(() => validateConfig({ otlp: { tls: { cert_file: '/c.pem' } } })).toThrow(
      /otlp\.tls: cert_file and key_file go together/,
    );
    expect(() => validateConfig({ admin: { tls: { client_ca_file: '/ca.pem' } } })).toThrow(
      /admin\.tls: client_ca_file \(mutual TLS\) needs cert_file and key_file/,
    );
    expect(() => validateConfig({ otlp: { tls: { min_version: '1.1' as never } } })).toThrow(/otlp\.tls\.min_version/);
  });

  test('unreadable or mismatched files stop the start with the key and the file', async () => {
    const missing = path.join(tmp, 'nope.pem');
    await expect(start({ otlp: { tls: { cert_file: missing, key_file: pki.server.key } } })).rejects.toThrow(
      `otlp.tls: cannot read ${missing}: ENOENT`,
    );
    // The client's key with the server's certificate.
    await expect(start({ admin: { tls: { cert_file: pki.server.cert, key_file: pki.client.key } } })).rejects.toThrow(
      /admin\.tls: cert_file, key_file or client_ca_file is not usable/,
    );
    const empty = tokensFile('# no token yet\n\n');
    await expect(start({ otlp: { auth: { bearer_tokens_file: empty } } })).rejects.toThrow(
      `otlp.auth.bearer_tokens_file: ${empty} holds no token`,
    );
    const bad = tokensFile(`${TOKEN} tenant-a extra\n`);
    const err = await start({ otlp: { auth: { bearer_tokens_file: bad } } }).catch((e: Error) => e);
    expect(String(err)).toContain('otlp.auth.bearer_tokens_file: line 1 is not');
    expect(String(err)).not.toContain(TOKEN);
  });
});

describe('OTLP over TLS', () => {
  let r: TestReceiver;
  afterEach(() => r?.close());

  test('OTLP/HTTP and OTLP/gRPC speak TLS with the configured certificate', async () => {
    r = await start({ otlp: { tls: { cert_file: pki.server.cert, key_file: pki.server.key } } });
    const url = r.http.replace('http:', 'https:');
    const ok = await httpsRequest(`${url}/v1/traces`, {
      method: 'POST',
      headers: PROTOBUF,
      body: BODY,
      ca: pki.read(pki.ca.cert),
    });
    expect(ok.status).toBe(200);
    // Plain HTTP to the TLS port gets no OTLP answer.
    await expect(fetch(`${r.http}/v1/traces`, { method: 'POST', headers: PROTOBUF, body: BODY })).rejects.toThrow();
    // Without trusting the CA, the client refuses the certificate.
    await expect(httpsRequest(`${url}/v1/traces`, { method: 'POST', headers: PROTOBUF, body: BODY })).rejects.toThrow(
      /self-signed|unable to verify|certificate/i,
    );
    const grpcOk = await grpcExport(r.grpc, grpc.credentials.createSsl(pki.read(pki.ca.cert)));
    expect(grpcOk.err).toBeNull();
    const grpcPlain = await grpcExport(r.grpc, grpc.credentials.createInsecure());
    expect(grpcPlain.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(spansReceived(r)).toBe(2);
  });

  test('mutual TLS: a client certificate signed by client_ca_file is required', async () => {
    r = await start({
      otlp: { tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert } },
    });
    const url = `${r.http.replace('http:', 'https:')}/v1/traces`;
    const ca = pki.read(pki.ca.cert);
    const withCert = { ca, cert: pki.read(pki.client.cert), key: pki.read(pki.client.key) };
    expect((await httpsRequest(url, { method: 'POST', headers: PROTOBUF, body: BODY, ...withCert })).status).toBe(200);
    await expect(httpsRequest(url, { method: 'POST', headers: PROTOBUF, body: BODY, ca })).rejects.toThrow();
    // A certificate from another CA is refused as well.
    const stranger = pki.newLeaf('stranger', 'client', pki.newCa('other-ca'));
    await expect(
      httpsRequest(url, {
        method: 'POST',
        headers: PROTOBUF,
        body: BODY,
        ca,
        cert: pki.read(stranger.cert),
        key: pki.read(stranger.key),
      }),
    ).rejects.toThrow();
    const grpcOk = await grpcExport(
      r.grpc,
      grpc.credentials.createSsl(ca, pki.read(pki.client.key), pki.read(pki.client.cert)),
    );
    expect(grpcOk.err).toBeNull();
    const grpcNoCert = await grpcExport(r.grpc, grpc.credentials.createSsl(ca));
    expect(grpcNoCert.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(spansReceived(r)).toBe(2);
  });

  test('a connection that never completes its TLS handshake is closed at read_header_timeout, counted', async () => {
    r = await start({
      otlp: { tls: { cert_file: pki.server.cert, key_file: pki.server.key }, http: { read_header_timeout: '300ms' } },
      admin: { tls: { cert_file: pki.server.cert, key_file: pki.server.key }, read_header_timeout: '300ms' },
    });
    // Node's own handshake timeout is 120 s: a client that opens TCP and sends nothing would hold the
    // socket that long, past read_header_timeout, which the plaintext listeners enforce.
    for (const [base, listener] of [
      [r.http, 'otlp_http'],
      [r.admin, 'admin'],
    ] as const) {
      const url = new URL(base);
      const socket = net.connect({ host: url.hostname, port: Number(url.port) });
      socket.on('error', () => {});
      const closed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 5000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      socket.destroy();
      expect(closed).toBe(true);
      expect(await metricValue(r, 'sonde_receiver_request_timeouts_total', { listener, kind: 'read_header' })).toBe(1);
    }
  });

  test('min_version 1.3 refuses a TLS 1.2 client', async () => {
    r = await start({ otlp: { tls: { cert_file: pki.server.cert, key_file: pki.server.key, min_version: '1.3' } } });
    const url = `${r.http.replace('http:', 'https:')}/v1/traces`;
    const ca = pki.read(pki.ca.cert);
    await expect(
      httpsRequest(url, { method: 'POST', headers: PROTOBUF, body: BODY, ca, maxVersion: 'TLSv1.2' }),
    ).rejects.toThrow();
    expect((await httpsRequest(url, { method: 'POST', headers: PROTOBUF, body: BODY, ca })).status).toBe(200);
  });

  test('a replaced certificate is used by new handshakes, over HTTP and gRPC', async () => {
    const certFile = writeFile('reload.crt', pki.read(pki.server.cert));
    const keyFile = writeFile('reload.key', pki.read(pki.server.key));
    r = await start({ otlp: { tls: { cert_file: certFile, key_file: keyFile, reload_interval: '50ms' } } });
    const url = `${r.http.replace('http:', 'https:')}/v1/traces`;
    const oldCa = pki.read(pki.ca.cert);
    expect((await httpsRequest(url, { method: 'POST', headers: PROTOBUF, body: BODY, ca: oldCa })).status).toBe(200);

    const newCa = pki.newCa('rotated-ca');
    const leaf = pki.newLeaf('rotated-server', 'server', newCa);
    // The key first, then the certificate: in between the pair does not match and the old one stays.
    writeFile('reload.key', pki.read(leaf.key));
    await new Promise((res) => setTimeout(res, 200));
    expect((await httpsRequest(url, { method: 'POST', headers: PROTOBUF, body: BODY, ca: oldCa })).status).toBe(200);
    writeFile('reload.crt', pki.read(leaf.cert));
    const ca = pki.read(newCa.cert);
    await eventually(
      () =>
        httpsRequest(url, { method: 'POST', headers: PROTOBUF, body: BODY, ca }).then(
          (res) => res.status === 200,
          () => false,
        ),
      'the new certificate on OTLP/HTTP',
    );
    await expect(httpsRequest(url, { method: 'POST', headers: PROTOBUF, body: BODY, ca: oldCa })).rejects.toThrow();
    expect((await grpcExport(r.grpc, grpc.credentials.createSsl(ca))).err).toBeNull();
    expect((await grpcExport(r.grpc, grpc.credentials.createSsl(oldCa))).err?.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('OTLP bearer tokens', () => {
  let r: TestReceiver;
  afterEach(() => r?.close());

  test('OTLP/HTTP without a known token: 401, WWW-Authenticate, a Status in the request encoding, nothing accepted', async () => {
    r = await start({
      otlp: { auth: { bearer_tokens_file: tokensFile(`# senders\n${TOKEN} tenant-a\n${OTHER_TOKEN}\n`) } },
    });
    const url = `${r.http}/v1/traces`;

    const missing = await fetch(url, { method: 'POST', headers: JSON_TYPE, body: '{}' });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="OTLP"');
    expect(missing.headers.get('connection')).toBe('close');
    expect(await missing.json()).toStrictEqual({
      code: 16,
      message: 'unauthenticated: send the header Authorization: Bearer <token>',
    });

    const wrong = await fetch(url, {
      method: 'POST',
      headers: { ...PROTOBUF, authorization: `Bearer ${TOKEN}x` },
      body: BODY,
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="OTLP", error="invalid_token"');
    expect(wrong.headers.get('content-type')).toBe('application/x-protobuf');
    const status = Buffer.from(await wrong.arrayBuffer());
    const reader = new ProtoReader(status);
    const fields: Record<number, unknown> = {};
    while (reader.pos < status.length) {
      const tag = reader.uint32();
      fields[tag >>> 3] = (tag & 7) === 0 ? reader.uint32() : reader.string();
    }
    expect(fields).toStrictEqual({ 1: 16, 2: 'unauthenticated: the bearer token is not valid' });
    expect(status.toString('latin1')).not.toContain(TOKEN);

    const basic = await fetch(url, {
      method: 'POST',
      headers: { ...PROTOBUF, authorization: `Basic ${TOKEN}` },
      body: BODY,
    });
    expect(basic.status).toBe(401);
    expect(spansReceived(r)).toBe(0);
    expect(
      await metricValue(r, 'sonde_receiver_refused_requests_total', {
        signal: 'traces',
        transport: 'http',
        reason: 'unauthenticated',
      }),
    ).toBe(3);

    for (const token of [TOKEN, OTHER_TOKEN]) {
      const ok = await fetch(url, {
        method: 'POST',
        headers: { ...PROTOBUF, authorization: `bearer ${token}` },
        body: BODY,
      });
      expect(ok.status).toBe(200);
    }
    expect(spansReceived(r)).toBe(2);
    // The tenant after the token reaches the batch (the exporters send it as X-Scope-OrgID).
    expect(r.batches.traces.map((b) => b.context.tenant)).toStrictEqual(['tenant-a', undefined]);
  });

  test('an unauthenticated upload is answered on its headers and its connection closed, the body unread', async () => {
    r = await start({ otlp: { auth: { bearer_tokens_file: tokensFile(`${TOKEN}\n`) } } });
    const { hostname, port } = new URL(r.http);
    const socket = net.connect(Number(port), hostname);
    await new Promise((res) => socket.once('connect', res));
    const declared = 64 * 1024 * 1024;
    socket.write(
      `POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${declared}\r\n\r\n`,
    );
    let response = '';
    socket.on('data', (d: Buffer) => {
      response += d.toString('latin1');
    });
    const closed = new Promise<void>((res) => socket.once('close', () => res()));
    socket.on('error', () => {});
    // Keep sending the body: with keep-alive, Node would read all 64 MiB before closing.
    const chunk = Buffer.alloc(256 * 1024);
    const pump = setInterval(() => {
      if (!socket.destroyed) socket.write(chunk);
    }, 5);
    await closed;
    clearInterval(pump);
    expect(response).toMatch(/^HTTP\/1\.1 401 /);
    expect(response.toLowerCase()).toContain('connection: close');
    expect(socket.bytesWritten).toBeLessThan(declared / 2);
  });

  test('CORS preflights need no token; the 401 carries the CORS headers', async () => {
    r = await start({
      otlp: {
        http: { cors_allowed_origins: ['https://app.example'] },
        auth: { bearer_tokens_file: tokensFile(`${TOKEN}\n`) },
      },
    });
    const pre = await fetch(`${r.http}/v1/traces`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const refused = await fetch(`${r.http}/v1/traces`, {
      method: 'POST',
      headers: { ...JSON_TYPE, origin: 'https://app.example' },
      body: '{}',
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('https://app.example');
    // A credentialed request (sendBeacon, fetch with credentials) can read the 401 only with this.
    expect(refused.headers.get('access-control-allow-credentials')).toBe('true');
  });

  test('OTLP/gRPC without a known token: UNAUTHENTICATED, nothing accepted', async () => {
    r = await start({ otlp: { auth: { bearer_tokens_file: tokensFile(`${TOKEN}\n`) } } });
    const insecure = grpc.credentials.createInsecure();
    const missing = await grpcExport(r.grpc, insecure);
    expect(missing.err?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(missing.err?.details).toBe('unauthenticated: send the header Authorization: Bearer <token>');
    const wrong = await grpcExport(r.grpc, insecure, OTHER_TOKEN);
    expect(wrong.err?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(wrong.err?.message).not.toContain(OTHER_TOKEN);
    expect(spansReceived(r)).toBe(0);
    expect(
      await metricValue(r, 'sonde_receiver_refused_requests_total', {
        signal: 'traces',
        transport: 'grpc',
        reason: 'unauthenticated',
      }),
    ).toBe(2);
    expect((await grpcExport(r.grpc, insecure, TOKEN)).err).toBeNull();
    expect(spansReceived(r)).toBe(1);
  });

  test('a changed token file takes effect; an unreadable one keeps the previous tokens', async () => {
    const file = writeFile('rotating-tokens', `${TOKEN}\n`);
    r = await start({ otlp: { auth: { bearer_tokens_file: file, reload_interval: '50ms' } } });
    const send = (token: string) =>
      fetch(`${r.http}/v1/traces`, {
        method: 'POST',
        headers: { ...PROTOBUF, authorization: `Bearer ${token}` },
        body: BODY,
      }).then((res) => res.status);
    expect(await send(TOKEN)).toBe(200);
    expect(await send(OTHER_TOKEN)).toBe(401);
    writeFile('rotating-tokens', `${OTHER_TOKEN} tenant-b\n`);
    await eventually(async () => (await send(OTHER_TOKEN)) === 200, 'the new token');
    expect(await send(TOKEN)).toBe(401);
    expect((await grpcExport(r.grpc, grpc.credentials.createInsecure(), TOKEN)).err?.code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect((await grpcExport(r.grpc, grpc.credentials.createInsecure(), OTHER_TOKEN)).err).toBeNull();
    fs.rmSync(file);
    await new Promise((res) => setTimeout(res, 200));
    expect(await send(OTHER_TOKEN)).toBe(200);
  });
});

describe('admin port', () => {
  let r: TestReceiver;
  afterEach(() => r?.close());

  test('debug and query endpoints need the admin token; /metrics, /healthz and /readyz stay open', async () => {
    r = await start({
      admin: { auth: { bearer_tokens_file: tokensFile(`${TOKEN}\n`) } },
      trace_store: { enabled: true, path: path.join(tmp, `traces-${++seq}.db`) },
    });
    const get = (p: string, token?: string) =>
      fetch(`${r.admin}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    for (const p of [
      '/debug/recent?signal=traces',
      '/api/search?limit=1',
      '/api/echo',
      '/api/traces/5b8efff798038103d269b633813fc60c',
      '/nope',
    ]) {
      const res = await get(p);
      expect([p, res.status, res.headers.get('www-authenticate')]).toStrictEqual([
        p,
        401,
        'Bearer realm="sonde-admin"',
      ]);
      expect((await get(p, OTHER_TOKEN)).status).toBe(401);
      expect((await get(p, TOKEN)).status).not.toBe(401);
    }
    for (const p of ['/metrics', '/healthz', '/readyz', '/ready'])
      expect([p, (await get(p)).status]).toStrictEqual([p, 200]);
    expect(await metricValue(r, 'sonde_admin_refused_requests_total', { reason: 'unauthenticated' })).toBe(10);
  });

  test('protect_metrics puts /metrics behind the token too', async () => {
    r = await start({ admin: { auth: { bearer_tokens_file: tokensFile(`${TOKEN}\n`), protect_metrics: true } } });
    expect((await fetch(`${r.admin}/metrics`)).status).toBe(401);
    expect((await fetch(`${r.admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${r.admin}/healthz`)).status).toBe(200);
  });

  test('admin over mutual TLS', async () => {
    r = await start({
      admin: { tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert } },
    });
    const url = `${r.admin.replace('http:', 'https:')}/healthz`;
    const ca = pki.read(pki.ca.cert);
    const res = await httpsRequest(url, { ca, cert: pki.read(pki.client.cert), key: pki.read(pki.client.key) });
    expect([res.status, res.body.toString()]).toStrictEqual([200, 'ok\n']);
    await expect(httpsRequest(url, { ca })).rejects.toThrow();
  });
});

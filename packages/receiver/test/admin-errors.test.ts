/**
 * Errors on the admin port and the OTLP/HTTP intake leave no stack trace, file path or internal
 * message in a response (issue 11, finding 7): tag names that are Object.prototype's own
 * (`__proto__`, `constructor`, `toString`) are ordinary tags, a malformed %-escape in a path is a
 * JSON 400, and an unexpected error is a bare 500 whose details go to the log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import pino from 'pino';
import { Gauge } from 'prom-client';
import { createAdminApp } from '../src/admin/server';
import { errorHandler } from '../src/http-errors';
import { RecentTelemetry } from '../src/pipeline/recent';
import { SelfMetrics } from '../src/self-metrics';
import { post, startTestReceiver, type TestReceiver } from './helpers';

/** What must never be in a response: a stack frame, a file path of this installation. */
function expectNoDetails(text: string): void {
  expect(text).not.toMatch(/\n\s+at /);
  expect(text).not.toContain(__dirname.split('/').slice(0, 3).join('/'));
  expect(text).not.toContain('node_modules');
  expect(text).not.toContain('.ts:');
  expect(text).not.toContain('.js:');
}

describe('the Tempo API and the admin port', () => {
  let dir: string;
  let r: TestReceiver;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sonde-admin-errors-'));
    r = await startTestReceiver({ data_dir: dir, trace_store: { enabled: true } });
  });

  afterAll(async () => {
    await r.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const res = await post(`${r.admin}${path}`, '', {}, 'GET');
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: res.body.toString() };
  };

  test.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])(
    'tag values of "%s" are an ordinary (empty) answer',
    async (tag) => {
      const v1 = await get(`/api/search/tag/${tag}/values`);
      expect([v1.status, JSON.parse(v1.text)]).toStrictEqual([200, { tagValues: [] }]);
      const v2 = await get(`/api/v2/search/tag/.${tag}/values`);
      expect([v2.status, JSON.parse(v2.text)]).toStrictEqual([200, { tagValues: [] }]);
    },
  );

  test('status and kind values that are Object.prototype members are refused as unknown values', async () => {
    for (const q of ['{ status = constructor }', '{ kind = __proto__ }', '{ status = toString }']) {
      const res = await get(`/api/search?q=${encodeURIComponent(q)}`);
      expect(res.status).toBe(400);
      expect(res.text).toContain('must be one of');
    }
  });

  test.each(['/api/traces/%ZZ', '/api/v2/traces/%E0%A4%A', '/api/search/tag/%ZZ/values'])(
    'a malformed %%-escape (%s) is a JSON 400 without a stack trace',
    async (path) => {
      const res = await get(path);
      expect(res.status).toBe(400);
      expect(res.type).toContain('application/json');
      expect(JSON.parse(res.text)).toStrictEqual({ error: expect.stringContaining('percent-encoding') });
      expectNoDetails(res.text);
    },
  );
});

describe('an unexpected error', () => {
  const lines: { msg?: string; err?: { stack?: string }; path?: string }[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) });

  async function serve(app: express.Express, path: string) {
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const res = await post(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, '', {}, 'GET');
      return { status: res.status, type: res.headers.get('content-type') ?? '', text: res.body.toString() };
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  const failing = () => {
    const router = express.Router();
    router.get('/boom', () => {
      throw new Error(`cannot open ${__filename}: secret internal detail`);
    });
    return router;
  };

  test('on the admin port is a bare JSON 500; its details are logged', async () => {
    lines.length = 0;
    const recent = {
      traces: new RecentTelemetry<'traces'>(1),
      metrics: new RecentTelemetry<'metrics'>(1),
      logs: new RecentTelemetry<'logs'>(1),
    };
    const app = createAdminApp(
      new SelfMetrics({ defaultMetrics: false }),
      recent,
      { ready: () => true },
      [],
      [failing()],
      { logger },
    );
    const res = await serve(app, '/boom');
    expect(res.status).toBe(500);
    expect(res.type).toContain('application/json');
    expect(JSON.parse(res.text)).toStrictEqual({ error: expect.any(String) });
    expect(res.text).not.toContain('secret internal detail');
    expectNoDetails(res.text);
    expect(lines).toHaveLength(1);
    expect(lines[0].err?.stack).toContain('secret internal detail');
    expect(lines[0].path).toBe('/boom');
  });

  test('a scrape that fails before its first byte is a bare 500; its details are logged', async () => {
    lines.length = 0;
    const recent = {
      traces: new RecentTelemetry<'traces'>(1),
      metrics: new RecentTelemetry<'metrics'>(1),
      logs: new RecentTelemetry<'logs'>(1),
    };
    const metrics = new SelfMetrics({ defaultMetrics: false });
    new Gauge({
      name: 'failing_gauge',
      help: 'its collect throws',
      registers: [metrics.registry],
      collect() {
        throw new Error(`cannot open ${__filename}: secret internal detail`);
      },
    });
    const app = createAdminApp(metrics, recent, { ready: () => true }, [], [], { logger });
    const res = await serve(app, '/metrics');
    expect(res.status).toBe(500);
    expect(res.text).not.toContain('secret internal detail');
    expectNoDetails(res.text);
    expect(lines).toHaveLength(1);
    expect(lines[0].err?.stack).toContain('secret internal detail');
  });

  test('the shared handler answers the intake (google.rpc.Status) without details, and logs them', async () => {
    lines.length = 0;
    const app = express();
    app.use(failing());
    app.use(errorHandler(logger, (res, status, message) => res.status(status).json({ code: 13, message })));
    const res = await serve(app, '/boom');
    expect(res.status).toBe(500);
    expect(JSON.parse(res.text)).toStrictEqual({ code: 13, message: expect.any(String) });
    expect(res.text).not.toContain('secret internal detail');
    expectNoDetails(res.text);
    expect(lines[0].err?.stack).toContain('secret internal detail');
  });
});

/**
 * An untouched express app, started with `--import @sonde/node/register` (ESM) and with
 * `--require @sonde/node/register` (CommonJS), sends to a real receiver: server spans with the
 * HTTP semantic-convention attributes, runtime metrics, and pino and winston records correlated
 * with the request's span. SIGTERM flushes and the process still dies of SIGTERM.
 */
import { attr, CJS, ESM, startApp, startTestReceiver, type TestReceiver, waitFor } from './harness';

let rx: TestReceiver;
beforeAll(async () => {
  rx = await startTestReceiver();
});
afterAll(() => rx.close());

describe.each([
  ['ESM', 'express-app.mjs', ESM],
  ['CommonJS', 'express-app.cjs', CJS],
])('%s express app', (kind, file, flags) => {
  const service = `shop-${kind.toLowerCase()}`;

  test('server spans, runtime metrics and correlated logs arrive at the receiver; SIGTERM flushes', async () => {
    const app = await startApp(file, flags, {
      OTEL_SERVICE_NAME: service,
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
      OTEL_RESOURCE_ATTRIBUTES: 'service.namespace=sonde-test,deployment.environment.name=test',
    });
    try {
      const summary = app.stderr.join('');
      expect(summary).toContain('"msg":"sonde: instrumented"');
      expect(summary).toContain(`"esm":${kind === 'ESM'}`);

      expect((await fetch(`${app.url}/users/42`)).status).toBe(200);
      expect((await fetch(`${app.url}/fail`)).status).toBe(500);

      const server = await waitFor('the server span of GET /users/42', () =>
        rx
          .spans()
          .find(
            (s) => s.service === service && s.span.kind === 2 && attr(s.span.attributes, 'http.route') === '/users/:id',
          ),
      );
      expect(server.scope).toBe('@opentelemetry/instrumentation-http');
      expect(server.span.name).toBe('GET /users/:id');
      expect(attr(server.span.attributes, 'http.request.method')).toBe('GET');
      expect(attr(server.span.attributes, 'http.response.status_code')).toBe(200);
      expect(attr(server.span.attributes, 'url.path')).toBe('/users/42');
      expect(attr(server.span.attributes, 'server.port')).toBe(app.port);

      const failed = await waitFor('the server span of GET /fail', () =>
        rx
          .spans()
          .find((s) => s.service === service && s.span.kind === 2 && attr(s.span.attributes, 'url.path') === '/fail'),
      );
      expect(attr(failed.span.attributes, 'http.response.status_code')).toBe(500);
      expect(failed.span.status.code).toBe(2); // ERROR for a 5xx on the server side

      // The resource: service, namespace and the distro.
      const batch = rx.batches.traces.find((b) =>
        b.data.some((rs) => rs.resource.attributes.some((a) => a.key === 'service.name' && a.value === service)),
      )!;
      const resource = batch.data[0].resource.attributes;
      expect(attr(resource, 'service.namespace')).toBe('sonde-test');
      expect(attr(resource, 'telemetry.distro.name')).toBe('sonde');

      // Correlated logs: pino and winston records carry the server span's trace and span ids... of
      // the span active in the handler (a child of the server span, same trace).
      const pino = await waitFor('the pino record', () =>
        rx.logs().find((l) => l.service === service && l.record.body === 'user looked up'),
      );
      expect(pino.scope).toBe('@opentelemetry/instrumentation-pino');
      expect(pino.record.traceId).toBe(server.span.traceId);
      expect(rx.spans().some((s) => s.span.spanId === pino.record.spanId)).toBe(true);
      const winston = await waitFor('the winston record', () =>
        rx.logs().find((l) => l.service === service && l.record.body === 'winston says hello'),
      );
      expect(winston.record.traceId).toBe(server.span.traceId);
      // ... and the ids are injected into the records the app writes itself.
      const line = app.stdout.find((l) => l.includes('user looked up'))!;
      expect(JSON.parse(line).trace_id).toBe(server.span.traceId);

      // Runtime metrics (on by default) and the HTTP server duration histogram.
      const names = await waitFor('runtime metrics', () => {
        const n = new Set(
          rx
            .metrics()
            .filter((m) => m.service === service)
            .map((m) => m.metric.name),
        );
        return n.has('nodejs.eventloop.delay.p99') && n.has('v8js.memory.heap.used') ? n : undefined;
      });
      expect(names.has('nodejs.eventloop.utilization')).toBe(true);
      expect(names.has('http.server.request.duration')).toBe(true);

      // A request just before SIGTERM: only the shutdown flush can deliver its span in time.
      expect((await fetch(`${app.url}/users/last`)).status).toBe(200);
      const exit = await app.stop('SIGTERM');
      expect(exit.signal).toBe('SIGTERM'); // no handler of its own: it dies of the signal, as without Sonde
      expect(
        rx.spans().some((s) => s.service === service && attr(s.span.attributes, 'url.path') === '/users/last'),
      ).toBe(true);
    } finally {
      await app.stop('SIGKILL');
    }
  });
});

test.each([
  ['http/json', false],
  ['grpc', true],
])('OTEL_EXPORTER_OTLP_PROTOCOL=%s is honoured', async (protocol, grpc) => {
  const rx2 = await startTestReceiver('127.0.0.1:0', grpc);
  const service = `protocol-${protocol.replace('/', '-')}`;
  const app = await startApp('express-app.mjs', ESM, {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_EXPORTER_OTLP_ENDPOINT: grpc ? `http://${rx2.grpc}` : rx2.endpoint,
    OTEL_METRICS_EXPORTER: 'none',
  });
  try {
    expect(app.stderr.join('')).toContain(`"protocol":"${protocol}"`);
    expect((await fetch(`${app.url}/users/7`)).status).toBe(200);
    await waitFor('the server span', () =>
      rx2.spans().find((s) => s.service === service && attr(s.span.attributes, 'url.path') === '/users/7'),
    );
    await waitFor('the pino record', () =>
      rx2.logs().find((l) => l.service === service && l.record.body === 'user looked up'),
    );
    expect(rx2.batches.traces.every((b) => b.context.transport === (grpc ? 'grpc' : 'http'))).toBe(true);
    expect(rx2.batches.metrics).toEqual([]); // OTEL_METRICS_EXPORTER=none
  } finally {
    await app.stop('SIGKILL');
    await rx2.close();
  }
});

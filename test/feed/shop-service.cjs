// One service of the simulated shop that feeds the end-to-end dashboard test (test/feed/shop.ts starts
// three of these as child processes). It is ordinary instrumented Node code: the OpenTelemetry Node SDK
// configured from OTEL_* environment variables (OTLP/HTTP protobuf to the receiver), the http and
// runtime-node instrumentations, manual spans for the SQLite calls, events as log records with an
// eventName, and the consent-decision counter that Sonde's SDK emits.
//
//   SHOP_ROLE=storefront|cart|payments  PORT=0  CART_URL=…  PAYMENTS_URL=…  node shop-service.cjs
//
// Prints one JSON line {"listening": port} when ready. SIGTERM flushes telemetry and exits 0.
'use strict';
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { RuntimeNodeInstrumentation } = require('@opentelemetry/instrumentation-runtime-node');

const sdk = new NodeSDK({
  instrumentations: [new HttpInstrumentation(), new RuntimeNodeInstrumentation({ monitoringPrecision: 100 })],
});
sdk.start();

// Instrumented modules are required after start().
const http = require('node:http');
const { DatabaseSync } = require('node:sqlite');
const api = require('@opentelemetry/api');

const role = process.env.SHOP_ROLE;
const tracer = api.trace.getTracer('sonde-shop');
const meter = api.metrics.getMeter('sonde-shop');
const logger = api.logs.getLogger('sonde-shop');
const consent = meter.createCounter('sonde.consent.decisions', {
  description: 'Consent decisions taken by users, by telemetry category',
  unit: '{decision}',
});

let seq = 0;
/** Deterministic enough to give every label value, random enough to look like traffic. */
const every = (n) => seq % n === 0;

function emitEvent(eventName, category, attributes = {}) {
  logger.emit({
    eventName,
    severityNumber: 9,
    severityText: 'INFO',
    body: eventName,
    attributes: { 'event.category': category, ...attributes },
  });
}

function fail(res, status, message) {
  const span = api.trace.getActiveSpan();
  span?.setStatus({ code: api.SpanStatusCode.ERROR, message });
  span?.recordException(new Error(message));
  logger.emit({ severityNumber: 17, severityText: 'ERROR', body: message, attributes: { 'http.status': status } });
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: message }));
}

/** What a web framework's instrumentation does: name the server span after the route. */
function route(req, template) {
  const span = api.trace.getActiveSpan();
  span?.updateName(`${req.method} ${template}`);
  span?.setAttribute('http.route', template);
}

function ok(res, body) {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function call(url, body) {
  const res = await fetchViaHttp(url, JSON.stringify(body));
  return res.status;
}

/** node:http (instrumented: a CLIENT span, trace context propagated), not fetch. */
function fetchViaHttp(url, payload) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

let db;
function sql(operation, statement, run) {
  return tracer.startActiveSpan(
    `${operation} cart_items`,
    {
      kind: api.SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'sqlite',
        'db.namespace': 'cart-db',
        'db.operation.name': operation,
        'db.collection.name': 'cart_items',
        'db.query.text': statement,
      },
    },
    (span) => {
      try {
        return run(db.prepare(statement));
      } catch (err) {
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: String(err) });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

const handlers = {
  storefront: async (req, res) => {
    seq++;
    for (const category of ['diagnostics', 'performance', 'product']) {
      if (every(3)) consent.add(1, { category, granted: String(!every(9) || category === 'diagnostics') });
    }
    if (req.url.startsWith('/products/')) {
      route(req, '/products/:id');
      emitEvent('product.viewed', 'product', { 'product.id': req.url.slice(10) });
      return ok(res, { id: req.url.slice(10) });
    }
    if (req.url === '/cart') {
      route(req, '/cart');
      const status = await call(`${process.env.CART_URL}/items`, { sku: `sku-${seq % 5}` });
      if (status !== 200) return fail(res, 502, 'cart unavailable');
      emitEvent('cart.item_added', 'product');
      return ok(res, { added: true });
    }
    if (req.url === '/checkout') {
      route(req, '/checkout');
      emitEvent('checkout.started', 'product');
      const status = await call(`${process.env.PAYMENTS_URL}/charge`, { amount: 10 + (seq % 7) });
      if (status !== 200) {
        emitEvent('payment.failed', 'product', { 'payment.status': status });
        return fail(res, 502, 'payment declined');
      }
      emitEvent('checkout.completed', 'product');
      return ok(res, { paid: true });
    }
    return fail(res, 404, `no route ${req.url}`);
  },
  cart: async (req, res) => {
    seq++;
    route(req, '/items');
    sql('INSERT', 'INSERT INTO cart_items (sku) VALUES (?)', (stmt) => stmt.run(`sku-${seq}`));
    const { n } = sql('SELECT', 'SELECT count(*) AS n FROM cart_items', (stmt) => stmt.get());
    return ok(res, { items: n });
  },
  payments: async (req, res) => {
    seq++;
    route(req, '/charge');
    await new Promise((r) => setTimeout(r, 5 + (seq % 20)));
    if (every(4)) return fail(res, 503, 'card network timeout');
    return ok(res, { charged: true });
  },
};

const handler = handlers[role];
if (!handler) throw new Error(`SHOP_ROLE must be one of ${Object.keys(handlers).join(', ')}, got ${role}`);
if (role === 'cart') {
  db = new DatabaseSync(':memory:');
  db.exec('CREATE TABLE cart_items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL)');
}

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    handler(req, res).catch((err) => fail(res, 500, String(err)));
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
});

process.on('SIGTERM', () => {
  server.close();
  sdk.shutdown().finally(() => process.exit(0));
});

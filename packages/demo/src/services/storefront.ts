/**
 * The storefront: the catalogue, the cart and the checkout, calling the cart and payments services
 * over HTTP. Business events with track(); each end user's consent from the `x-consent` header
 * (`product=0` = opted out of product analytics), honoured here and, through the baggage, in the
 * services it calls, and recorded once per shopper with consent.record(); the user id (`x-user`) on the span as enduser.id, which @sonde/node turns into
 * a pseudonym before export. With DEMO_WEB_OTLP_ENDPOINT, also a browser page at `/` (shop-page.ts).
 */
import { trace } from '@opentelemetry/api';
import { consent, consentMiddleware, track } from '@sonde/node';
import express from 'express';
import { CATALOG, parseConsentHeader } from '../catalog';
import { latency, listen, logger, sleep } from './common';
import { shopPage } from './shop-page';

const log = logger('storefront');
const CART = process.env.CART_URL ?? 'http://127.0.0.1:3001';
const PAYMENTS = process.env.PAYMENTS_URL ?? 'http://127.0.0.1:3002';

const bySku = new Map(CATALOG.map((p) => [p.sku, p]));

async function call(url: string, init?: RequestInit): Promise<Response> {
  return fetch(url, { ...init, headers: { 'content-type': 'application/json', ...init?.headers } });
}

const app = express();
app.use(express.json());
app.use(consentMiddleware((req: express.Request) => parseConsentHeader(req.get('x-consent'))));
// A shopper's choice is recorded once, when this storefront first sees it or it changes (a real shop
// would do it in its consent banner's handler): people are counted, not requests. The shopper id is
// pseudonymised by @sonde/node before it is sent.
const knownChoices = new Map<string, string>();
app.use((req, _res, next) => {
  const user = req.get('x-user');
  const header = req.get('x-consent');
  const choice = parseConsentHeader(header);
  if (user && header && choice && knownChoices.get(user) !== header) {
    if (knownChoices.size >= 10_000) knownChoices.clear();
    knownChoices.set(user, header);
    consent.record(choice, { subject: user });
  }
  next();
});
app.use((req, _res, next) => {
  const user = req.get('x-user');
  if (user) trace.getActiveSpan()?.setAttribute('enduser.id', user);
  next();
});

// The browser page, instrumented by @sonde/web, when the receiver's address as browsers see it is known.
const WEB_OTLP_ENDPOINT = process.env.DEMO_WEB_OTLP_ENDPOINT;
if (WEB_OTLP_ENDPOINT) {
  const page = shopPage(WEB_OTLP_ENDPOINT);
  const bundle = require.resolve('@sonde/web/sonde-web.min.js');
  app.get('/', (_req, res) => {
    res.type('html').send(page);
  });
  app.get('/sonde-web.min.js', (_req, res) => {
    res.type('text/javascript').sendFile(bundle);
  });
}

app.get('/healthz', (_req, res) => {
  res.send('ok\n');
});

app.get('/products', (_req, res) => {
  res.json(CATALOG);
});

app.get('/products/:sku', async (req, res) => {
  const product = bySku.get(req.params.sku);
  if (!product) {
    res.status(404).json({ error: `no product ${req.params.sku}` });
    return;
  }
  await sleep(latency(0, 8));
  const user = req.get('x-user') ?? 'anonymous';
  const count = await call(`${CART}/carts/${encodeURIComponent(user)}/count`);
  const inCart = count.ok ? ((await count.json()) as { items: number }).items : undefined;
  track('product.viewed', { 'product.sku': product.sku, 'product.price_cents': product.priceCents });
  res.json({ ...product, inCart });
});

app.post('/cart/items', async (req, res) => {
  const user = req.get('x-user');
  const { sku, qty = 1 } = req.body as { sku?: string; qty?: number };
  const product = sku ? bySku.get(sku) : undefined;
  if (!user || !product) {
    res.status(400).json({ error: 'x-user header and a known sku are required' });
    return;
  }
  const r = await call(`${CART}/carts/${encodeURIComponent(user)}/items`, {
    method: 'POST',
    body: JSON.stringify({ sku, qty, priceCents: product.priceCents }),
  });
  if (!r.ok) {
    log.error({ status: r.status }, 'cart service refused the item');
    res.status(502).json({ error: 'cart unavailable, try again' });
    return;
  }
  track('cart.item_added', { 'product.sku': product.sku, 'cart.quantity': qty });
  res.status(201).json({ ok: true });
});

app.post('/checkout', async (req, res) => {
  const user = req.get('x-user');
  if (!user) {
    res.status(400).json({ error: 'x-user header required' });
    return;
  }
  const cart = (await (await call(`${CART}/carts/${encodeURIComponent(user)}`)).json()) as {
    items: unknown[];
    totalCents: number;
  };
  if (cart.items.length === 0) {
    res.status(409).json({ error: 'the cart is empty' });
    return;
  }
  track('checkout.started', { 'cart.items': cart.items.length, 'order.total_cents': cart.totalCents });
  const payment = await call(`${PAYMENTS}/payments`, {
    method: 'POST',
    body: JSON.stringify({ amountCents: cart.totalCents }),
  });
  if (!payment.ok) {
    const body = (await payment.json().catch(() => ({}))) as { reason?: string };
    track('payment.failed', { 'payment.failure_reason': body.reason ?? `http_${payment.status}` });
    log.warn({ status: payment.status, reason: body.reason }, 'checkout failed at payment');
    res.status(payment.status === 402 ? 402 : 502).json({ error: 'payment failed', reason: body.reason });
    return;
  }
  await call(`${CART}/carts/${encodeURIComponent(user)}`, { method: 'DELETE' });
  track('checkout.completed', { 'order.total_cents': cart.totalCents, 'cart.items': cart.items.length });
  log.info({ totalCents: cart.totalCents }, 'order placed');
  res.json({ ok: true, totalCents: cart.totalCents });
});

listen(app, 'storefront');

/**
 * The storefront's browser page (served at `/` when DEMO_WEB_OTLP_ENDPOINT is set): the catalogue,
 * instrumented by @sonde/web's script-tag build. Its fetches to the storefront carry `traceparent`,
 * so a click links to the server spans it caused. A visitor states a product-consent choice once per
 * tab session (`?optout` declines); the funnel steps are browser events: `shop.product_opened`,
 * `shop.cart_added`, `shop.checkout_clicked`.
 */
export function shopPage(otlpEndpoint: string): string {
  return `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>Sonde demo shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="/sonde-web.min.js"></script>
<script>
  sonde.start({ endpoint: ${JSON.stringify(otlpEndpoint)}, serviceName: 'storefront-web', serviceNamespace: 'sonde-demo', serviceVersion: '1.0.0',
    environment: 'demo', batchDelayMs: 2000, metricIntervalMs: 10000 });
  const user = sessionStorage.getItem('demo.user') || 'browser-' + Math.random().toString(36).slice(2, 8);
  sessionStorage.setItem('demo.user', user);
  if (!sessionStorage.getItem('demo.consent')) {
    sessionStorage.setItem('demo.consent', '1');
    sonde.consent.record({ product: !location.search.includes('optout') });
  } else if (!location.search.includes('optout')) {
    sonde.consent.set('product', true);
  }
  const consentHeader = () => (sonde.consent.get('product') ? 'product=1' : 'product=0');
  const call = (path, init = {}) =>
    fetch(path, { ...init, headers: { 'content-type': 'application/json', 'x-user': user, 'x-consent': consentHeader() } });
  async function openProduct(sku) {
    sonde.track('shop.product_opened', { 'product.sku': sku });
    const p = await (await call('/products/' + encodeURIComponent(sku))).json();
    document.getElementById('detail').textContent = p.name + ': ' + (p.priceCents / 100).toFixed(2);
    document.getElementById('detail').dataset.sku = sku;
  }
  async function addToCart() {
    const sku = document.getElementById('detail').dataset.sku;
    if (!sku) return;
    sonde.track('shop.cart_added', { 'product.sku': sku });
    const r = await call('/cart/items', { method: 'POST', body: JSON.stringify({ sku, qty: 1 }) });
    document.getElementById('status').textContent = r.ok ? 'added' : 'cart unavailable';
  }
  async function checkout() {
    sonde.track('shop.checkout_clicked');
    const r = await call('/checkout', { method: 'POST' });
    document.getElementById('status').textContent = r.ok ? 'order placed' : 'checkout failed (' + r.status + ')';
  }
  addEventListener('DOMContentLoaded', async () => {
    const products = await (await call('/products')).json();
    const list = document.getElementById('products');
    for (const p of products) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'product';
      b.textContent = p.name;
      b.addEventListener('click', () => openProduct(p.sku));
      list.append(b);
    }
    // addEventListener (not onclick): @sonde/web's user-interaction instrumentation traces these clicks.
    document.getElementById('add').addEventListener('click', addToCart);
    document.getElementById('checkout').addEventListener('click', checkout);
    document.body.dataset.ready = '1';
  });
</script>
<h1>Sonde demo shop</h1>
<div id="products"></div>
<p id="detail"></p>
<button type="button" id="add">Add to cart</button> <button type="button" id="checkout">Check out</button>
<p id="status"></p>
</html>`;
}

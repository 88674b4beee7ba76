/**
 * The demo shop end to end: three services instrumented only by `--import @sonde/node/register`,
 * shoppers from runLoad, and what reaches a real receiver: spans of every service in one trace
 * (storefront → cart → SQLite, storefront → payments), business events, opt-outs counted.
 */
import { type Batch, startReceiver, validateConfig } from '@sonde/receiver';
import { runLoad, startShop } from '../src';

type KV = { key: string; value: unknown };
const attr = (attrs: KV[], key: string) => attrs.find((a) => a.key === key)?.value;

test('storefront, cart and payments send correlated telemetry; events and opt-outs arrive', async () => {
  const receiver = await startReceiver(
    validateConfig({
      otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', summary_interval: 0 },
    }),
    { defaultMetrics: false },
  );
  const traces: Batch<'traces'>[] = [];
  const logs: Batch<'logs'>[] = [];
  const metrics: Batch<'metrics'>[] = [];
  receiver.pipeline.traces.addConsumer({ name: 'capture', consume: (b) => void traces.push(b) });
  receiver.pipeline.logs.addConsumer({ name: 'capture', consume: (b) => void logs.push(b) });
  receiver.pipeline.metrics.addConsumer({ name: 'capture', consume: (b) => void metrics.push(b) });
  const shop = await startShop({
    otlpEndpoint: `http://${receiver.addresses.otlpHttp}`,
    env: { OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_BLRP_SCHEDULE_DELAY: '200', OTEL_METRIC_EXPORT_INTERVAL: '500' },
  });
  try {
    // Fill some carts first, so that checkouts have something to pay.
    const stats = await runLoad({ url: shop.storefrontUrl, rps: 40, durationMs: 2500, users: 10 });
    expect(stats.requests).toBeGreaterThan(60);
    expect(stats.byStatus['200']).toBeGreaterThan(0);
  } finally {
    await shop.stop();
  }
  try {
    const spans = traces.flatMap((b) =>
      b.data.flatMap((rs) =>
        rs.scopeSpans.flatMap((ss) =>
          ss.spans.map((span) => ({
            span,
            service: attr(rs.resource.attributes, 'service.name'),
            namespace: attr(rs.resource.attributes, 'service.namespace'),
          })),
        ),
      ),
    );
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['storefront', 'cart', 'payments']));
    expect(new Set(spans.map((s) => s.namespace))).toEqual(new Set(['sonde-demo']));

    // One checkout's trace crosses all three services and the database.
    const pay = spans.find((s) => s.service === 'payments' && s.span.kind === 2);
    expect(pay).toBeDefined();
    const trace = spans.filter((s) => s.span.traceId === pay!.span.traceId);
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(['storefront', 'cart', 'payments']));
    const db = trace.find((s) => attr(s.span.attributes, 'db.system.name') === 'sqlite');
    expect(db?.service).toBe('cart');
    expect(attr(db!.span.attributes, 'db.namespace')).toBe('cart-store');
    // end-user ids arrive only as pseudonyms
    expect(spans.some((s) => attr(s.span.attributes, 'enduser.id') !== undefined)).toBe(false);
    expect(spans.some((s) => /^[0-9a-f]{16}$/.test(String(attr(s.span.attributes, 'enduser.pseudo.id'))))).toBe(true);

    const events = logs.flatMap((b) =>
      b.data.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords.filter((r) => r.eventName !== ''))),
    );
    const names = new Set(events.map((e) => e.eventName));
    for (const n of ['product.viewed', 'cart.item_added', 'checkout.started']) expect(names).toContain(n);
    expect(events.every((e) => attr(e.attributes, 'sonde.consent.category') === 'product')).toBe(true);

    // shopper-0 and shopper-5 opted out of product analytics, the others said yes: both counted.
    const decisions = { true: 0, false: 0 };
    for (const b of metrics)
      for (const rm of b.data)
        for (const sm of rm.scopeMetrics)
          for (const m of sm.metrics)
            if (m.name === 'sonde.consent.decisions' && m.data.type === 'sum')
              for (const p of m.data.dataPoints)
                if (attr(p.attributes, 'category') === 'product') {
                  const granted = attr(p.attributes, 'granted') as 'true' | 'false';
                  decisions[granted] = Math.max(decisions[granted], p.value);
                }
    expect(decisions.false).toBeGreaterThan(0);
    expect(decisions.true).toBeGreaterThan(decisions.false); // 2 of 10 shoppers opted out
  } finally {
    await receiver.close();
  }
});

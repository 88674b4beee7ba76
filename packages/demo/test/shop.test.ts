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
  try {
    const shop = await startShop({
      otlpEndpoint: `http://${receiver.addresses.otlpHttp}`,
      env: { OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_BLRP_SCHEDULE_DELAY: '200', OTEL_METRIC_EXPORT_INTERVAL: '500' },
    });
    try {
      // Fill some carts first, so that checkouts have something to pay. No request is skipped for
      // too many in flight: on a busy machine the services' first answers take seconds.
      const stats = await runLoad({ url: shop.storefrontUrl, rps: 40, durationMs: 2500, users: 10, maxInFlight: 1000 });
      expect(stats.requests).toBeGreaterThan(60);
      expect(stats.byStatus['200']).toBeGreaterThan(0);
    } finally {
      await shop.stop();
    }

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
    const choiceRecords = events.filter((e) => e.eventName === 'sonde.consent.choice');
    const business = events.filter((e) => e.eventName !== 'sonde.consent.choice');
    const names = new Set(business.map((e) => e.eventName));
    for (const n of ['product.viewed', 'cart.item_added', 'checkout.started']) expect(names).toContain(n);
    expect(business.every((e) => attr(e.attributes, 'sonde.consent.category') === 'product')).toBe(true);

    // shopper-0 and shopper-5 opted out of product analytics, the others said yes: each shopper's
    // choice is recorded as people (one consent choice record per shopper, however many requests).
    const choices = new Map<string, Set<string>>();
    for (const e of choiceRecords) {
      const choice = String(attr(e.attributes, 'sonde.consent.choice'));
      const subject = String(attr(e.attributes, 'sonde.consent.subject'));
      expect(subject).toMatch(/^[0-9a-f]{16}$/);
      if (!choices.has(choice)) choices.set(choice, new Set());
      choices.get(choice)!.add(subject);
    }
    expect(choices.get('denied')?.size).toBe(2);
    expect(choices.get('granted')?.size).toBeGreaterThan(2);
    expect(choiceRecords.length).toBe((choices.get('denied')?.size ?? 0) + (choices.get('granted')?.size ?? 0));
  } finally {
    await receiver.close();
  }
});

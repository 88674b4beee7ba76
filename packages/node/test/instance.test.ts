/**
 * service.instance.id: each process of a service gets its own random UUID (so replicas write separate
 * metric series), unless OTEL_RESOURCE_ATTRIBUTES gives one.
 */
import { attr, ESM, startApp, startTestReceiver, type TestReceiver, waitFor } from './harness';

let rx: TestReceiver;
beforeAll(async () => {
  rx = await startTestReceiver();
});
afterAll(() => rx.close());

/** The service.instance.id on the resource of the first metrics batch of `service`. */
async function instanceOf(service: string): Promise<unknown> {
  const resource = await waitFor(`metrics of ${service}`, () =>
    rx.batches.metrics
      .flatMap((b) => b.data)
      .map((rm) => rm.resource.attributes)
      .find((a) => attr(a, 'service.name') === service),
  );
  return attr(resource, 'service.instance.id');
}

test('two replicas get two different UUIDs; OTEL_RESOURCE_ATTRIBUTES wins', async () => {
  const env = (extra: Record<string, string>) => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
    OTEL_METRIC_EXPORT_INTERVAL: '200',
    ...extra,
  });
  const apps = await Promise.all([
    startApp('express-app.mjs', ESM, env({ OTEL_SERVICE_NAME: 'replica-a' })),
    startApp('express-app.mjs', ESM, env({ OTEL_SERVICE_NAME: 'replica-b' })),
    startApp(
      'express-app.mjs',
      ESM,
      env({ OTEL_SERVICE_NAME: 'replica-c', OTEL_RESOURCE_ATTRIBUTES: 'service.instance.id=pod-7' }),
    ),
  ]);
  try {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const a = await instanceOf('replica-a');
    const b = await instanceOf('replica-b');
    expect(a).toMatch(uuid);
    expect(b).toMatch(uuid);
    expect(a).not.toBe(b);
    expect(await instanceOf('replica-c')).toBe('pod-7');
  } finally {
    await Promise.all(apps.map((app) => app.stop('SIGKILL')));
  }
}, 60_000);

/**
 * redactSpan / redactLogRecord on real SDK spans, in process: the redacted copy carries every field the
 * OTLP encoder reads, the original is untouched, unchanged spans are passed through as they are, and
 * the memo (bounded) never changes an outcome: past its bound, results equal a fresh redactor's.
 */
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { createRedactor } from '@sonde/redact';
import { redactLogRecord, redactSpan, setupRedaction } from '../src/redaction';

const KEY = 'a-test-key-of-32-characters-long';

async function spans(make: (tracer: ReturnType<TracerProvider['getTracer']>) => void): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const processor = new SimpleSpanProcessor({ exporter });
  const provider = new TracerProvider({ spanProcessors: [processor] });
  make(provider.getTracer('test'));
  await processor.forceFlush();
  return exporter.getFinishedSpans();
}

test('a redacted span is a full copy; the original is untouched; a clean span passes through', async () => {
  const { redactor } = setupRedaction({}, KEY);
  const [dirty, clean] = await spans((tracer) => {
    const s = tracer.startSpan('GET /users/:id', {
      attributes: { 'enduser.id': 'u-1', 'http.route': '/users/:id', 'contact.mail': 'ann@example.com', n: 42 },
    });
    s.addEvent('note', { to: 'bob@example.com' });
    s.end();
    tracer.startSpan('clean', { attributes: { 'http.route': '/x', n: 1 } }).end();
  });
  expect([dirty, clean].map((s) => s.name)).toEqual(['GET /users/:id', 'clean']);
  const out = redactSpan(redactor, dirty);
  expect(out).not.toBe(dirty);
  expect(out.attributes['enduser.id']).toBeUndefined();
  expect(out.attributes['enduser.pseudo.id']).toBe(createRedactor({ hmac_key: KEY }).pseudonym('u-1'));
  expect(String(out.attributes['contact.mail'])).not.toContain('@');
  expect(out.attributes['http.route']).toBe('/users/:id');
  expect(out.attributes.n).toBe(42);
  expect(JSON.stringify(out.events[0].attributes)).not.toContain('bob@example.com');
  // every other field is the original's
  expect(out.spanContext()).toEqual(dirty.spanContext());
  for (const k of ['name', 'kind', 'startTime', 'endTime', 'duration', 'status', 'resource'] as const)
    expect(out[k]).toEqual(dirty[k]);
  expect(out.instrumentationScope).toBe(dirty.instrumentationScope);
  // the application's span is not modified
  expect(dirty.attributes['enduser.id']).toBe('u-1');
  expect(dirty.attributes['contact.mail']).toBe('ann@example.com');
  // the encoder takes the copy next to an untouched span, and the secrets are not in the bytes
  const clean2 = redactSpan(redactor, clean);
  expect(clean2).toBe(clean);
  const bytes = ProtobufTraceSerializer.serializeRequest([out, clean2]);
  expect(bytes?.byteLength).toBeGreaterThan(0);
  const text = Buffer.from(bytes!).toString('latin1');
  expect(text).not.toContain('ann@example.com');
  expect(text).not.toContain('u-1');
  expect(text).toContain('/users/:id');
});

test('the memo never changes an outcome, past its bound too', async () => {
  const memoised = setupRedaction({}, KEY).redactor;
  const users = Array.from({ length: 5000 }, (_, i) => `user-${i}`);
  const all = await spans((tracer) => {
    for (const [i, u] of users.entries())
      tracer.startSpan('GET /', { attributes: { 'enduser.id': u, 'http.status': 200 + (i % 3), ok: true } }).end();
  });
  expect(all).toHaveLength(users.length);
  // twice through the memoised redactor (the second pass mostly from the memo, cleared once on the way)
  for (let pass = 0; pass < 2; pass++) {
    for (const [i, s] of all.entries()) {
      const out = redactSpan(memoised, s);
      const fresh = redactSpan(setupRedaction({}, KEY).redactor, s);
      expect(out.attributes).toEqual(fresh.attributes);
      expect(out.attributes['enduser.pseudo.id']).toBe(createRedactor({ hmac_key: KEY }).pseudonym(users[i]));
      if (i > 50) break; // fresh redactors are slow to build: check a sample of the pass...
    }
    // ...and all of it against the pseudonyms
    const pseudo = createRedactor({ hmac_key: KEY });
    for (const [i, s] of all.entries())
      expect(redactSpan(memoised, s).attributes['enduser.pseudo.id']).toBe(pseudo.pseudonym(users[i]));
  }
});

test('resource and instrumentation scope attributes are redacted too (spans, log records), once per resource', async () => {
  const { redactor } = setupRedaction({}, undefined);
  const resource = resourceFromAttributes({
    'service.name': 'shop',
    'deployment.owner': 'ann@example.com',
    'db.password': 'hunter2',
  });
  const exporter = new InMemorySpanExporter();
  const processor = new SimpleSpanProcessor({ exporter });
  const provider = new TracerProvider({ resource, spanProcessors: [processor] });
  provider.getTracer('test').startSpan('a').end();
  provider.getTracer('test').startSpan('b').end();
  await processor.forceFlush();
  const [a, b] = exporter.getFinishedSpans().map((s) => redactSpan(redactor, s));
  expect(a.resource.attributes).toEqual({ 'service.name': 'shop', 'deployment.owner': '[REDACTED:email]' });
  expect(b.resource).toBe(a.resource); // one redacted resource for every span of the original
  const encoded = Buffer.from(ProtobufTraceSerializer.serializeRequest([a, b]) ?? new Uint8Array());
  expect(encoded.includes('ann@example.com')).toBe(false);
  expect(encoded.includes('hunter2')).toBe(false);

  const logs = new InMemoryLogRecordExporter();
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new SimpleLogRecordProcessor({ exporter: logs })],
  });
  loggerProvider
    .getLogger('audit', '1.0.0', { attributes: { 'audit.contact': 'bob@example.com', api_key: 'k-1' } })
    .emit({ body: 'ok' });
  const [record] = logs.getFinishedLogRecords().map((r) => redactLogRecord(redactor, r));
  expect(record.resource.attributes['deployment.owner']).toBe('[REDACTED:email]');
  expect(record.resource.attributes['db.password']).toBeUndefined();
  expect((record.instrumentationScope as { attributes?: Record<string, unknown> }).attributes).toEqual({
    'audit.contact': '[REDACTED:email]',
  });
  expect(record.body).toBe('ok');
});

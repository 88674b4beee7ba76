// Runnable example: embed the receiver in a program, print every span that arrives, send one span
// over OTLP/HTTP JSON, and stop. Run from the repository root after `npm install && npm run build`:
//   node packages/receiver/examples/embed.mts
import { startReceiver, validateConfig } from '@sonde/receiver';

const config = validateConfig({
  otlp: { http: { address: '127.0.0.1:0' }, grpc: { address: 'off' } },
  admin: { address: '127.0.0.1:0' },
  log: { level: 'warn' },
  trace_store: { enabled: false }, // no embedded trace store here (it would write under ./.sonde-data)
});
const receiver = await startReceiver(config);
receiver.pipeline.traces.addConsumer({
  name: 'print',
  consume(batch) {
    for (const rs of batch.data)
      for (const ss of rs.scopeSpans)
        for (const span of ss.spans)
          console.log(`span ${span.name} trace=${span.traceId} via ${batch.context.transport}`);
  },
});

const response = await fetch(`http://${receiver.addresses.otlpHttp}/v1/traces`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'example' } }] },
        scopeSpans: [
          {
            spans: [
              { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'GET /cart', kind: 2 },
            ],
          },
        ],
      },
    ],
  }),
});
console.log(`receiver answered ${response.status} ${await response.text()}`);
await receiver.close();

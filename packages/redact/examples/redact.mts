// Runnable example: redact an OpenTelemetry attributes object, a log line and a URL.
// Run from the repository root after `npm install && npm run build`:
//   node packages/redact/examples/redact.mts
import { createRedactor, parseRedactionConfig } from '@sonde/redact';

const redactor = createRedactor(
  parseRedactionConfig({
    block_keys: ['app.internal.*'],
    pseudonymize_keys: ['enduser.id'],
    hmac_key: 'example-only-key-use-a-secret-store', // in real use: from the environment or a secret store
  }),
);

const { attributes, redacted } = redactor.redactAttributes({
  'http.request.method': 'POST',
  'url.full': 'https://shop.example.com/account/alice%40example.com?access_token=abc123&page=2',
  'http.request.header.authorization': ['Bearer abc.def.ghi'],
  'enduser.id': 'user-42',
  'payment.card': '4111 1111 1111 1111',
  'client.address': '203.0.113.7',
  'app.internal.host': 'build-7',
});
console.log(`${JSON.stringify(attributes, null, 2)}\n${redacted} attributes redacted`);
console.log(redactor.redactString('password reset for bob@example.org, trace 4bf92f3577b34da6a3ce929d0e0e4736'));
console.log(redactor.redactUrl('/cb?code=xyz&state=ok#id_token=eyJ'));
console.log(JSON.stringify(redactor.stats));

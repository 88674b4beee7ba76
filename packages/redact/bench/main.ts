/**
 * `npm run bench -w @sonde/redact`: nanoseconds per attribute of redactAttributes and redactString,
 * on typical clean HTTP-span attributes and on dirty ones (an email in the URL, a card number, a
 * client IP, an authorization header, a user id to pseudonymize). Not part of the tests.
 *
 *   node bench/main.ts [--ms 500]    (builds nothing: the npm script runs tsc first)
 */
import { parseArgs } from 'node:util';
import { createRedactor } from '../dist/index.js';

const { values } = parseArgs({ options: { ms: { type: 'string', default: '500' } } });
const budgetMs = Number(values.ms);

const clean: Record<string, unknown> = {
  'http.request.method': 'GET',
  'url.full': 'https://shop.example.com/api/v2/products/8f14e45f?page=2&sort=price',
  'http.route': '/api/v2/products/:id',
  'http.response.status_code': 200,
  'server.address': 'shop.example.com',
  'server.port': 443,
  'user_agent.original':
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'db.query.text': 'SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 20',
  'app.request_id': '550e8400-e29b-41d4-a716-446655440000',
  'app.started_at': 1763769600123,
};

const dirty: Record<string, unknown> = {
  'http.request.method': 'POST',
  'url.full': 'https://shop.example.com/account/alice%40example.com/orders?access_token=abc123&page=2',
  'http.route': '/account/:email/orders',
  'http.response.status_code': 200,
  'client.address': '203.0.113.7',
  'http.request.header.authorization': ['Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'],
  'payment.card': '4111 1111 1111 1111',
  'enduser.id': 'user-42',
  'app.note': 'receipt sent to bob@example.org',
  'app.started_at': 1763769600123,
};

const cleanLine =
  'GET /api/v2/products/8f14e45f 200 in 12.5 ms, cache hit ratio 0.93, upstream shop-backend-7d9f, trace 4bf92f3577b34da6a3ce929d0e0e4736';
const dirtyLine =
  'POST /login 401 for alice@example.com from 203.0.113.7 card 4111111111111111 auth Bearer abcdef1234567890 ?token=xyz';

let sink: unknown;

/**
 * CPU time (process.cpuUsage, user + system) per call divided by `perIteration`: on a shared
 * machine, wall time would also count the time other processes held the core.
 */
function measure(name: string, perIteration: number, fn: () => unknown): { name: string; ns: number } {
  for (let i = 0; i < 2000; i++) fn(); // warm-up (JIT)
  let iterations = 0;
  const start = process.cpuUsage();
  const wallDeadline = Date.now() + budgetMs;
  while (Date.now() < wallDeadline) {
    for (let i = 0; i < 1000; i++) sink = fn();
    iterations += 1000;
  }
  const used = process.cpuUsage(start);
  const ns = ((used.user + used.system) * 1000) / (iterations * perIteration);
  return { name, ns };
}

const mask = createRedactor({ hmac_key: 'bench-hmac-key-0123456789abcdef', pseudonymize_keys: ['enduser.id'] });
const pseudo = createRedactor({
  hmac_key: 'bench-hmac-key-0123456789abcdef',
  pseudonymize_keys: ['enduser.id'],
  action: 'pseudonymize',
});
const allow = createRedactor({ mode: 'allow', allow_keys: ['http.*', 'url.*', 'server.*', 'app.*'] });

// A yardstick for the machine: summing the char codes of a 100-character string.
const yard = 'x'.repeat(100);
const yardstick = measure('yardstick: a bare charCodeAt loop over 100 characters', 1, () => {
  let x = 0;
  for (let i = 0; i < yard.length; i++) x += yard.charCodeAt(i);
  return x;
});

// Distinct values (a URL and an id per request), more than the clean-string memo holds.
const distinct = Array.from({ length: 10_000 }, (_, i) => ({
  ...clean,
  'url.full': `https://shop.example.com/api/v2/products/${(i * 7919).toString(16)}?page=${i % 10}&sort=price`,
  'app.request_id': `550e8400-e29b-41d4-a716-${String(446655440000 + i)}`,
  'db.query.text': `SELECT id, total FROM orders WHERE customer_id = ${i} ORDER BY created_at DESC LIMIT 20`,
}));
let next = 0;

// URLs as the receiver's decoder hands them over: a new string each time (not the same object).
const fresh = (s: string) => Buffer.from(s, 'latin1').toString('latin1');
const urlOf = (i: number) => `https://shop.example.com/api/orders/${100000 + (i % 900000)}/items?locale=en-GB`;
// Never seen before: more distinct URLs than the calls of one case.
const uniqueUrls = Array.from({ length: 400_000 }, (_, i) => fresh(urlOf(i * 7919)));
// 4,000 URLs over and over (as the receiver benchmark's payloads repeat), each call a new string.
const repeatedUrls = Array.from({ length: 100_000 }, (_, i) => fresh(urlOf((i % 4000) * 7919)));
const sameUrl = urlOf(1);
let nextUrl = 0;

const n = Object.keys(clean).length;
const results = [
  yardstick,
  measure('redactAttributes, clean (block mode, mask)', n, () => mask.redactAttributes(clean)),
  measure('redactAttributes, clean, 3 of 10 values distinct per call', n, () =>
    mask.redactAttributes(distinct[next++ % distinct.length]),
  ),
  measure('redactAttributes, dirty (block mode, mask)', n, () => mask.redactAttributes(dirty)),
  measure('redactAttributes, dirty (action pseudonymize)', n, () => pseudo.redactAttributes(dirty)),
  measure('redactAttributes, clean (allow mode)', n, () => allow.redactAttributes(clean)),
  measure(`redactString, clean log line (${cleanLine.length} chars)`, 1, () => mask.redactString(cleanLine)),
  measure(`redactString, dirty log line (${dirtyLine.length} chars)`, 1, () => mask.redactString(dirtyLine)),
  measure('redactString, short clean value ("shop.example.com")', 1, () => mask.redactString('shop.example.com')),
  measure('keyAction (memoised)', 1, () => mask.keyAction('http.request.method')),
  measure(`redactUrl, a URL never seen before (${sameUrl.length} chars, an id, ?locale=en-GB)`, 1, () =>
    mask.redactUrl(uniqueUrls[nextUrl++ % uniqueUrls.length]),
  ),
  measure('redactUrl, 4,000 URLs over and over (100,000 string objects)', 1, () =>
    mask.redactUrl(repeatedUrls[nextUrl++ % repeatedUrls.length]),
  ),
  measure('redactUrl, the same string again', 1, () => mask.redactUrl(sameUrl)),
];

console.log(`@sonde/redact micro-benchmark, Node ${process.version}, ${budgetMs} ms per case, CPU time\n`);
console.log('| case | ns of CPU per attribute (or per call) |');
console.log('|---|---:|');
for (const r of results) console.log(`| ${r.name} | ${r.ns.toFixed(0)} |`);
if (sink === 'never') console.log(); // the results are used, so no call is optimised away

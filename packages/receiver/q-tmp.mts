import { TraceDb } from '/work/wt-store/packages/receiver/dist/index.js';
import { search } from '/work/wt-store/packages/receiver/dist/trace-store/search.js';
import { parseLogfmtTags, parseTraceQL } from '/work/wt-store/packages/receiver/dist/trace-store/traceql.js';

const db = TraceDb.open('/tmp/store-1m/traces.db', { reader: true });
const idx = {
  indexedAttributes: new Set([
    'http.route',
    'http.method',
    'http.status_code',
    'http.request.method',
    'db.system.name',
  ]),
};
const routes = db.db
  .prepare("select value from tag_values where key='span.http.route'")
  .all()
  .map((r) => r.value);
console.log(routes);
const nowMs = Date.now();
for (const [name, mk] of [
  ['route', (r) => parseTraceQL(`{ span.http.route = "${r}" }`, idx)],
  ['tags', () => [parseLogfmtTags('service.name=checkout http.method=GET', idx)]],
  ['dur', () => parseTraceQL('{ duration > 500ms }', idx)],
]) {
  const ms = [];
  for (let i = 0; i < 30; i++) {
    const end = BigInt(nowMs - ((i * 7919) % 23) * 3600000) * 1000000n;
    const t = performance.now();
    const r = search(db, mk(routes[i % routes.length]), {
      startNs: end - 3600n * 1000000000n,
      endNs: end,
      limit: 20,
      spss: 3,
    });
    ms.push(performance.now() - t);
    if (i === 0) console.log(name, r.traces.length, r.metrics.inspectedSpans);
  }
  ms.sort((a, b) => a - b);
  console.log(name, 'p50', ms[15].toFixed(1), 'max', ms[29].toFixed(1));
}

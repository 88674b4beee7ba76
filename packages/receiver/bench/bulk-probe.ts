import { makePayload, makeSpans } from './payloads.ts';
import { runStoreBench } from './store-bench.ts';

const spans = await makeSpans(2000);
const payload = makePayload(spans, 100, 4);
const r = await runStoreBench(
  payload,
  { connections: 10, warmupSec: 1, durationSec: 4, rounds: 1 },
  { datasetSpans: Number(process.argv[2] ?? 200000), log: (l) => console.log(l) },
);
console.log(JSON.stringify(r.queries));

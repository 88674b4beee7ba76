/**
 * Erasure of one pseudonymous subject (POST /api/admin/erase on the admin port, behind the admin
 * token): afterwards the Tempo API and the Loki API return nothing of the subject (their traces,
 * records carrying the subject, records of their traces, the subject among tag values), the others'
 * data is intact, and it all holds after a restart. Without admin tokens the call is refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JSON_TYPE, post, startTestReceiver, type TestReceiver } from './helpers';

const TOKEN = 'erasure-admin-token-0123456789abcdef';
const ALICE = '5f0c1a2b3c4d5e6f';
const BOB = '9a8b7c6d5e4f3a2b';
const TRACE_A = 'a1'.repeat(16);
const TRACE_A2 = 'a2'.repeat(16);
const TRACE_B = 'b1'.repeat(16);

let dir: string;
let r: TestReceiver;

const start = (tokens = true) =>
  startTestReceiver({
    data_dir: dir,
    trace_store: { enabled: true },
    log_store: { enabled: true },
    admin: tokens ? { auth: { bearer_tokens_file: join(dir, 'admin-tokens') } } : {},
  });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sonde-erasure-'));
  writeFileSync(join(dir, 'admin-tokens'), `${TOKEN}\n`);
});

afterEach(async () => {
  await r?.close();
  rmSync(dir, { recursive: true, force: true });
});

const AUTH = { authorization: `Bearer ${TOKEN}` };
const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const nowNs = () => BigInt(Date.now()) * 1_000_000n;

async function ingest(): Promise<void> {
  const t = nowNs() - 60_000_000_000n;
  const span = (traceId: string, spanId: string, name: string, attrs: ReturnType<typeof str>[]) => ({
    traceId,
    spanId,
    name,
    kind: 2,
    startTimeUnixNano: String(t),
    endTimeUnixNano: String(t + 5_000_000n),
    attributes: attrs,
  });
  const traces = {
    resourceSpans: [
      {
        resource: { attributes: [str('service.name', 'shop')] },
        scopeSpans: [
          {
            scope: { name: 'test' },
            spans: [
              span(TRACE_A, '1111111111111111', 'GET /cart', [str('enduser.pseudo.id', ALICE)]),
              // A span of Alice's trace without her id (a downstream call): part of her trace, erased with it.
              { ...span(TRACE_A, '1111111111111112', 'SELECT cart', []), parentSpanId: '1111111111111111' },
              span(TRACE_A2, '1111111111111113', 'GET /orders', [str('enduser.pseudo.id', ALICE)]),
              span(TRACE_B, '2222222222222221', 'GET /cart', [str('enduser.pseudo.id', BOB)]),
            ],
          },
        ],
      },
    ],
  };
  expect((await post(`${r.http}/v1/traces`, JSON.stringify(traces), JSON_TYPE)).status).toBe(200);
  const record = (body: string, attrs: ReturnType<typeof str>[], traceId = '', eventName = '') => ({
    timeUnixNano: String(t),
    severityNumber: 9,
    body: { stringValue: body },
    attributes: attrs,
    traceId,
    eventName,
  });
  const logs = {
    resourceLogs: [
      {
        resource: { attributes: [str('service.name', 'shop')] },
        scopeLogs: [
          {
            scope: { name: 'test' },
            logRecords: [
              record('alice viewed her cart', [str('enduser.pseudo.id', ALICE)], TRACE_A),
              record('cart query for trace A', [], TRACE_A),
              record(
                'alice consent',
                [str('sonde.consent.subject', ALICE), str('sonde.consent.category', 'product')],
                '',
                'sonde.consent.choice',
              ),
              record('bob viewed his cart', [str('enduser.pseudo.id', BOB)], TRACE_B),
              record('unrelated line', []),
            ],
          },
        ],
      },
    ],
  };
  expect((await post(`${r.http}/v1/logs`, JSON.stringify(logs), JSON_TYPE)).status).toBe(200);
  await r.receiver.traceStore?.flush();
  await r.receiver.logStore?.flush();
}

async function get(path: string): Promise<{ status: number; json: unknown }> {
  const res = await post(`${r.admin}${path}`, '', AUTH, 'GET');
  let json: unknown;
  try {
    json = JSON.parse(res.body.toString());
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

const erase = (body: unknown, headers: Record<string, string> = AUTH) =>
  post(`${r.admin}/api/admin/erase`, JSON.stringify(body), { ...JSON_TYPE, ...headers });

async function lines(): Promise<string[]> {
  const q = new URLSearchParams({
    query: '{service_name="shop"}',
    start: String(nowNs() - 3_600_000_000_000n),
    end: String(nowNs()),
    limit: '100',
  });
  const res = await get(`/loki/api/v1/query_range?${q}`);
  expect(res.status).toBe(200);
  const streams = (res.json as { data: { result: { values: [string, string][] }[] } }).data.result;
  return streams.flatMap((s) => s.values.map((v) => v[1])).sort();
}

async function searchIds(q: string): Promise<string[]> {
  const res = await get(`/api/search?q=${encodeURIComponent(q)}&limit=20`);
  expect(res.status).toBe(200);
  return (res.json as { traces: { traceID: string }[] }).traces.map((t) => t.traceID).sort();
}

async function expectErased(): Promise<void> {
  expect((await get(`/api/traces/${TRACE_A}`)).status).toBe(404);
  expect((await get(`/api/v2/traces/${TRACE_A2}`)).status).toBe(404);
  expect((await get(`/api/v2/traces/${TRACE_B}`)).status).toBe(200);
  expect(await searchIds(`{ .enduser.pseudo.id = "${ALICE}" }`)).toEqual([]);
  expect(await searchIds(`{ .enduser.pseudo.id = "${BOB}" }`)).toEqual([TRACE_B]);
  expect(await searchIds('{ resource.service.name = "shop" }')).toEqual([TRACE_B]);
  const values = (await get('/api/v2/search/tag/enduser.pseudo.id/values')).json as { tagValues: { value: string }[] };
  expect(values.tagValues.map((v) => v.value)).toEqual([BOB]);
  expect(await lines()).toEqual(['bob viewed his cart', 'unrelated line']);
}

test('erasure hides every trace and record of one subject, keeps the others, and survives a restart', async () => {
  r = await start();
  await ingest();
  // Before: all there.
  expect((await get(`/api/traces/${TRACE_A}`)).status).toBe(200);
  expect(await searchIds(`{ .enduser.pseudo.id = "${ALICE}" }`)).toEqual([TRACE_A, TRACE_A2]);
  expect(await lines()).toHaveLength(5);

  // Bad calls: no token, a bad body, both forms at once; nothing erased by them.
  expect((await erase({ subject: ALICE }, {})).status).toBe(401);
  for (const body of [{}, { subject: '' }, { subject: 42 }, { subject: ALICE, attribute: 'x', value: 'y' }, []]) {
    const res = await erase(body);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString()).error).toMatch(/subject|attribute/);
  }
  const notIndexed = await erase({ attribute: 'customer.number', value: '42' });
  expect(notIndexed.status).toBe(400);
  expect(JSON.parse(notIndexed.body.toString()).error).toMatch(/not indexed.*erasure\.subject_keys/);
  expect((await get(`/api/traces/${TRACE_A}`)).status).toBe(200);

  const res = await erase({ subject: ALICE });
  expect(res.status).toBe(200);
  expect(JSON.parse(res.body.toString())).toMatchObject({ erased: true, traces: 2 });
  await expectErased();
  const metrics = (await post(`${r.admin}/metrics`, '', AUTH, 'GET')).body.toString();
  expect(metrics).toContain('sonde_erasure_requests_total{outcome="erased"} 1');
  expect(metrics).toContain('sonde_erasure_tombstones{kind="traces"} 2');
  expect(metrics).not.toContain(ALICE);

  await r.close();
  r = await start();
  await expectErased();
});

test('erasure by attribute key and value; refused without admin tokens', async () => {
  r = await start(false);
  await ingest();
  const refused = await erase({ subject: ALICE }, {});
  expect(refused.status).toBe(403);
  expect(JSON.parse(refused.body.toString()).error).toMatch(/admin\.auth\.bearer_tokens_file/);
  await r.close();

  r = await start();
  const res = await erase({ attribute: 'enduser.pseudo.id', value: BOB });
  expect(res.status).toBe(200);
  expect(JSON.parse(res.body.toString())).toMatchObject({ traces: 1, keys: ['enduser.pseudo.id'] });
  expect((await get(`/api/v2/traces/${TRACE_B}`)).status).toBe(404);
  expect((await get(`/api/v2/traces/${TRACE_A}`)).status).toBe(200);
  expect(await lines()).toEqual(['alice consent', 'alice viewed her cart', 'cart query for trace A', 'unrelated line']);
});

test('a tombstone file that cannot be read stops the start-up (erased data would reappear)', async () => {
  writeFileSync(join(dir, 'erasure.json'), '{"version": 1, "subj');
  await expect(start()).rejects.toThrow(/erasure tombstones .*erasure\.json cannot be read.*does not start/);
});

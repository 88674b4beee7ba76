import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as units from '@grafana/grafana-foundation-sdk/units';
import * as YAML from 'yaml';
import { allPanels, dashboards, lokiQueries, panelQueries, render, variableQueries } from '../src';
import { DASHBOARDS_DIR, staleFiles } from '../src/generate';

const ROOT = path.resolve(__dirname, '../../..');
const generated = dashboards();
const committed = Object.fromEntries(
  fs
    .readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f, JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as dashboard.Dashboard]),
);

/** Panel types used here, as the foundation SDK names them (its panel builders' `type`). */
const PANEL_TYPES = new Set(['row', 'timeseries', 'table', 'stat', 'bargauge', 'heatmap', 'nodeGraph', 'logs', 'text']);

const KNOWN_UNITS = new Set<string>(Object.values(units).filter((u) => typeof u === 'string'));

interface Datasources {
  datasources: {
    name: string;
    type: string;
    uid: string;
    url: string;
    jsonData?: Record<string, unknown>;
    secureJsonData?: Record<string, string>;
  }[];
}
const provisioning = (variant: string) =>
  YAML.parse(
    fs.readFileSync(path.join(ROOT, 'grafana', variant, 'datasources/datasources.yaml'), 'utf8'),
  ) as Datasources;

test('grafana/dashboards holds exactly what the code generates (run npm run generate -w @sonde/dashboards)', () => {
  expect(staleFiles()).toEqual([]);
  expect(Object.keys(committed).sort()).toEqual(Object.keys(render()).sort());
});

test('uids and titles are unique', () => {
  const ds = Object.values(generated);
  expect(new Set(ds.map((d) => d.uid)).size).toBe(ds.length);
  expect(new Set(ds.map((d) => d.title)).size).toBe(ds.length);
  for (const d of ds) expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
});

describe.each(Object.entries(committed))('%s', (_file, d) => {
  const panels = allPanels(d).filter((p) => p.type !== 'row') as unknown as dashboard.Panel[];

  test('has the fields the dashboard schema requires, and known panel types on a 24-column grid', () => {
    expect(typeof d.title).toBe('string');
    expect(typeof d.schemaVersion).toBe('number');
    expect(Array.isArray(d.templating?.list)).toBe(true);
    expect(Array.isArray(d.annotations?.list)).toBe(true);
    for (const p of allPanels(d) as unknown as dashboard.Panel[]) {
      expect(PANEL_TYPES).toContain(p.type);
      const g = p.gridPos!;
      for (const k of ['x', 'y', 'w', 'h'] as const) expect(Number.isInteger(g[k])).toBe(true);
      expect(g.x + g.w).toBeLessThanOrEqual(24);
    }
    // No two panels overlap.
    const cells = new Set<string>();
    for (const p of allPanels(d) as unknown as dashboard.Panel[]) {
      const g = p.gridPos!;
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`)).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  test('every panel has a title, a description, a unit (but log lists and text notes) and queries with distinct refIds', () => {
    for (const p of panels) {
      const where = `${d.title} / ${p.title}`;
      expect([where, p.title?.length ?? 0]).not.toEqual([where, 0]);
      expect([where, (p.description ?? '').length > 20]).toEqual([where, true]);
      if (p.type === 'logs') continue;
      // A text panel (a note for the reader) has neither unit nor query.
      if (p.type === 'text') {
        expect([where, ((p.options as { content?: string })?.content ?? '').length > 20]).toEqual([where, true]);
        continue;
      }
      expect([where, p.fieldConfig?.defaults?.unit ?? '']).not.toEqual([where, '']);
      // A unit Grafana knows (the foundation SDK's list), not a free-form suffix.
      expect([where, KNOWN_UNITS.has(p.fieldConfig?.defaults?.unit ?? '')]).toEqual([where, true]);
      const refIds = ((p.targets ?? []) as { refId?: string }[]).map((t) => t.refId);
      expect([where, refIds.length > 0]).toEqual([where, true]);
      expect([where, new Set(refIds).size]).toEqual([where, refIds.length]);
    }
  });

  test('has the environment, service_namespace and service variables', () => {
    const names = variableQueries(d).map((v) => v.name);
    expect(names).toEqual(expect.arrayContaining(['environment', 'service_namespace', 'service']));
  });

  test('every range selector is $__rate_interval or $__range, never a fixed window', () => {
    for (const q of [...panelQueries(d).filter((q) => q.origin === 'target'), ...lokiQueries(d)]) {
      const windows = [...q.expr.matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]);
      for (const w of windows)
        expect([q.panel, w]).toEqual([q.panel, expect.stringMatching(/^\$__(rate_interval|range)$/)]);
    }
  });

  test.each(['provisioning', 'provisioning-embedded'])(
    'every datasource reference resolves to a uid in grafana/%s',
    (variant) => {
      const uids = new Map(provisioning(variant).datasources.map((ds) => [ds.uid, ds.type]));
      const refs: { where: string; ref?: { type?: string; uid?: string } }[] = [];
      for (const p of allPanels(d) as unknown as dashboard.Panel[]) {
        if (p.type === 'row' || p.type === 'text') continue; // a text note queries nothing
        refs.push({ where: `${p.title}`, ref: p.datasource });
        for (const t of (p.targets ?? []) as { refId?: string; datasource?: { type?: string; uid?: string } }[])
          refs.push({ where: `${p.title} [${t.refId}]`, ref: t.datasource });
      }
      for (const v of d.templating?.list ?? []) refs.push({ where: `$${v.name}`, ref: v.datasource ?? undefined });
      for (const { where, ref } of refs) {
        expect([where, ref?.uid !== undefined && uids.has(ref.uid)]).toEqual([where, true]);
        expect([where, uids.get(ref!.uid!)]).toEqual([where, ref!.type]);
      }
      // Trace links in panels point at the Tempo datasource too.
      const links = JSON.stringify(d).match(/"datasourceUid":"([^"]+)"/g) ?? [];
      for (const l of links) expect(uids.has(l.slice(17, -1))).toBe(true);
    },
  );
});

test('both provisioning variants agree on everything but where Tempo and Loki are (and the receiver token they need)', () => {
  const a = provisioning('provisioning');
  const b = provisioning('provisioning-embedded');
  // The embedded variant's Tempo and Loki are the receiver's admin port, which needs its admin token.
  const strip = (x: Datasources) =>
    x.datasources.map((ds) => {
      if (ds.type !== 'tempo' && ds.type !== 'loki') return ds;
      const { secureJsonData: _token, ...rest } = ds;
      const { httpHeaderName1: _header, ...jsonData } = ds.jsonData ?? {};
      return { ...rest, url: `(${ds.type})`, jsonData };
    });
  expect(strip(b)).toEqual(strip(a));
  for (const type of ['tempo', 'loki']) {
    const embedded = b.datasources.find((ds) => ds.type === type)!;
    expect(embedded.jsonData?.httpHeaderName1).toBe('Authorization');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's environment variable syntax
    expect(embedded.secureJsonData?.httpHeaderValue1).toBe('Bearer ${SONDE_ADMIN_TOKEN}');
    expect(embedded.url).toBe('http://receiver:9464');
    expect(a.datasources.find((ds) => ds.type === type)?.secureJsonData).toBeUndefined();
  }
  expect(a.datasources.find((ds) => ds.type === 'tempo')?.url).toBe('http://tempo:3200');
  expect(a.datasources.find((ds) => ds.type === 'loki')?.url).toBe('http://loki:3100');
  const prom = a.datasources.find((ds) => ds.type === 'prometheus')!;
  const destinations = prom.jsonData?.exemplarTraceIdDestinations as { name: string; datasourceUid: string }[];
  expect(destinations.map((e) => e.name).sort()).toEqual(['traceID', 'trace_id']);
  expect(new Set(destinations.map((e) => e.datasourceUid))).toEqual(new Set(['tempo']));
  const tempo = a.datasources.find((ds) => ds.type === 'tempo')!.jsonData as Record<string, { datasourceUid?: string }>;
  expect(tempo.serviceMap.datasourceUid).toBe('prometheus');
  expect(tempo.tracesToMetrics.datasourceUid).toBe('prometheus');
});

test('logs and traces link both ways: derived field trace_id → Tempo, traces to logs → Loki', () => {
  for (const variant of ['provisioning', 'provisioning-embedded']) {
    const ds = provisioning(variant).datasources;
    const loki = ds.find((d) => d.type === 'loki')!;
    expect(loki.uid).toBe('loki');
    expect(loki.jsonData?.derivedFields).toEqual([
      {
        name: 'TraceID',
        matcherType: 'label',
        matcherRegex: '^trace_id$',
        datasourceUid: 'tempo',
        // `$$` is Grafana's escape of `$` in provisioning files.
        url: '$${__value.raw}',
        urlDisplayLabel: 'View trace',
      },
    ]);
    const t2l = ds.find((d) => d.type === 'tempo')!.jsonData?.tracesToLogsV2 as Record<string, unknown>;
    expect(t2l).toEqual({
      datasourceUid: 'loki',
      spanStartTimeShift: '-2s',
      spanEndTimeShift: '2s',
      tags: [{ key: 'service.name', value: 'service_name' }],
      filterByTraceID: true,
      filterBySpanID: false,
      customQuery: true,
      query: '{$${__tags}} | trace_id="$${__trace.traceId}"',
    });
  }
});

test('the service-detail dashboard has a logs panel and an error-logs rate over the Loki datasource', () => {
  const q = lokiQueries(generated['service-detail.json']);
  expect(q.map((x) => [x.panel, x.logs])).toEqual([
    ['Error logs per second', false],
    ['Logs', true],
  ]);
  for (const x of q) expect(x.expr).toContain('service_name=~"$service"');
  expect(q[0].expr).toMatch(
    /^sum by \(service_name, detected_level\) \(rate\(\{.*\} \| detected_level=~"error\|fatal\|critical" \[\$__rate_interval\]\)\)$/,
  );
});

test('the dashboards provider points where compose mounts grafana/dashboards', () => {
  for (const variant of ['provisioning', 'provisioning-embedded']) {
    const p = YAML.parse(fs.readFileSync(path.join(ROOT, 'grafana', variant, 'dashboards/sonde.yaml'), 'utf8')) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(p.providers.map((x) => [x.type, x.options.path])).toEqual([['file', '/var/lib/grafana/dashboards/sonde']]);
  }
});

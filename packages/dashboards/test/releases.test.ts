/** Releases on the dashboards: the version variable, the release comparison and the deployment annotations. */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { allPanels, dashboards, panelQueries, variableQueries } from '../src';

const all = dashboards();
const detail = all['service-detail.json'];
const overview = all['services-overview.json'];

test('the service dashboard has $version: one release, newest first, from the span metrics', () => {
  const v = (detail.templating?.list ?? []).find((x) => x.name === 'version') as dashboard.VariableModel;
  expect(v).toBeDefined();
  expect(v.multi).toBe(false);
  expect(v.includeAll).toBe(false);
  expect(v.sort).toBe(8); // natural, descending: 1.10.0 before 1.9.0
  expect(variableQueries(detail).find((x) => x.name === 'version')?.query).toMatch(
    /^label_values\(traces_spanmetrics_calls_total\{.*\}, service_version\)$/,
  );
});

test('the Releases row compares $version with the other versions for rate, errors and p95', () => {
  const titles = allPanels(detail).map((p) => p.title);
  const row = titles.indexOf('Releases: this release vs the previous one');
  expect(row).toBeGreaterThan(0);
  expect(titles.slice(row + 1, row + 5)).toEqual([
    'Requests per second by release',
    'Error ratio by release',
    'p95 duration by release',
    'This release vs the previous one',
  ]);
  for (const title of titles.slice(row + 1, row + 4)) {
    const [a, b] = panelQueries(detail).filter((q) => q.panel === title);
    expect(a.expr).toContain('service_version="$version"');
    expect(b.expr).toContain('service_version!="$version"');
  }
});

test.each([
  ['service detail', detail],
  ['services overview', overview],
])('the %s dashboard has the Deployments annotation from target_info', (_name, d) => {
  const q = panelQueries(d).filter((x) => x.origin === 'annotation');
  expect(q.map((x) => x.panel)).toEqual(['annotation "Deployments"']);
  expect(q[0].expr).toMatch(/^group by \(job, service_version\) \(target_info\{.*\}\) unless .* offset 10m\)$/);
});

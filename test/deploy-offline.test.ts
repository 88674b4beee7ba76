/**
 * What can be checked of deploy/ and grafana/ without Docker, Kubernetes, Grafana or Tempo: the files
 * parse, every file they mount or reference exists, ports, hosts and datasource uids agree across
 * files, the receiver configurations pass the receiver's own schema, and promtool accepts the
 * Prometheus configuration and rules and passes the rules' unit tests.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, validateConfig } from '@sonde/receiver';
import * as YAML from 'yaml';
import { amtoolCheckConfig } from './alertmanager-harness';
import { PROMTOOL_BIN } from './prometheus-harness';

const ROOT = path.resolve(__dirname, '..');
const DEPLOY = path.join(ROOT, 'deploy');
const run = promisify(execFile);

const readYaml = <T>(file: string): T => YAML.parse(fs.readFileSync(file, 'utf8')) as T;
const readAllYaml = (file: string): Record<string, unknown>[] =>
  YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS() as Record<string, unknown>);

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string[] | string;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: string[];
  profiles?: string[];
}
const compose = readYaml<{ services: Record<string, ComposeService>; volumes: Record<string, unknown> }>(
  path.join(DEPLOY, 'docker-compose.yml'),
);

/** Compose's `${VAR:-default}` / `${VAR-default}` interpolation with the given variables. */
function interpolateCompose(s: string, env: Record<string, string>): string {
  return s.replace(/\$\{(\w+)(:?-)([^}]*)\}/g, (_m, name: string, op: string, def: string) => {
    const v = env[name];
    if (v === undefined || (op === ':-' && v === '')) return def;
    return v;
  });
}

/** host:port → container port, for every published port of a service. */
const containerPorts = (s: ComposeService) => (s.ports ?? []).map((p) => Number(p.split(':').at(-1)));

const httpUrl = (u: string) => {
  const url = new URL(u);
  return { host: url.hostname, port: Number(url.port) };
};

describe('docker-compose.yml', () => {
  test('has the receiver, Prometheus, Alertmanager, Tempo, Loki and Grafana, and the demo behind a profile', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'alertmanager',
      'demo',
      'grafana',
      'loki',
      'prometheus',
      'receiver',
      'tempo',
    ]);
    expect(compose.services.demo.profiles).toEqual(['demo']);
    // The demo runs the demo package's CLI from the workspace image, against the receiver service.
    const demo = compose.services.demo;
    expect(demo.command).toEqual(['node', 'packages/demo/dist/cli.js']);
    expect(fs.existsSync(path.join(ROOT, 'packages/demo/src/cli.ts'))).toBe(true);
    expect(fs.readFileSync(path.join(ROOT, 'packages/demo/package.json'), 'utf8')).toContain(
      '"build": "tsc -p tsconfig.build.json"',
    );
    expect(httpUrl(demo.environment!.DEMO_OTLP_ENDPOINT)).toEqual({ host: 'receiver', port: 4318 });
    for (const [name, s] of Object.entries(compose.services)) {
      for (const d of s.depends_on ?? []) expect([name, d in compose.services]).toEqual([name, true]);
    }
  });

  test.each<Record<string, string>>([{}, { SONDE_GRAFANA_PROVISIONING: 'provisioning-embedded' }])(
    'every bind-mounted file or folder exists (%o)',
    (env) => {
      for (const [name, s] of Object.entries(compose.services)) {
        for (const v of s.volumes ?? []) {
          const source = interpolateCompose(v, env).split(':')[0];
          if (!source.startsWith('.')) {
            expect([name, source in compose.volumes]).toEqual([name, true]);
            continue;
          }
          expect([name, source, fs.existsSync(path.resolve(DEPLOY, source))]).toEqual([name, source, true]);
        }
      }
    },
  );

  test('the receiver and demo images build from deploy/Dockerfile at the repository root, with existing targets', () => {
    const dockerfile = fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8');
    const stages = [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]);
    expect(stages).toEqual(['workspace', 'receiver']);
    for (const name of ['receiver', 'demo']) {
      const b = compose.services[name].build!;
      expect(path.resolve(DEPLOY, b.context)).toBe(ROOT);
      expect(fs.existsSync(path.resolve(DEPLOY, b.context, b.dockerfile))).toBe(true);
      expect(stages).toContain(b.target);
    }
    // Every COPY from the build context exists.
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)) {
      for (const src of m[1].split(/\s+/)) expect([src, fs.existsSync(path.join(ROOT, src))]).toEqual([src, true]);
    }
    // The image exposes the ports the receiver listens on.
    const exposed = /^EXPOSE (.+)$/m.exec(dockerfile)![1].split(/\s+/).map(Number).sort();
    expect(exposed).toEqual([4317, 4318, 9464]);
  });

  test("the receiver's configuration passes the receiver's schema and listens where compose publishes", () => {
    const raw = readYaml<Record<string, unknown>>(path.join(DEPLOY, 'receiver/sonde.yaml'));
    const config = validateConfig(raw as Parameters<typeof validateConfig>[0]);
    const port = (a: { port: number } | 'off') => (a === 'off' ? -1 : a.port);
    expect(containerPorts(compose.services.receiver).sort()).toEqual(
      [port(config.otlp.grpc.address), port(config.otlp.http.address), port(config.admin.address)].sort(),
    );
    expect(config.span_metrics.dimensions).toEqual(['service.namespace', 'deployment.environment.name']);
    // The mount target is where the command reads it, and the Dockerfile's default too.
    expect(compose.services.receiver.volumes).toContain('./receiver/sonde.yaml:/etc/sonde/sonde.yaml:ro');
    expect(compose.services.receiver.command).toEqual(['--config', '/etc/sonde/sonde.yaml']);
  });

  test('the receiver exports to the OTLP/HTTP port Tempo listens on, and Grafana reads Tempo where it serves', () => {
    const tempo = readYaml<{
      server: { http_listen_port: number };
      distributor: { receivers: { otlp: { protocols: { http: { endpoint: string } } } } };
    }>(path.join(DEPLOY, 'tempo/tempo.yaml'));
    const endpoint = interpolateCompose(compose.services.receiver.environment!.SONDE_TEMPO_ENDPOINT, {});
    expect(httpUrl(endpoint)).toEqual({
      host: 'tempo',
      port: Number(tempo.distributor.receivers.otlp.protocols.http.endpoint.split(':')[1]),
    });
    // The embedded variant: SONDE_TEMPO_ENDPOINT set empty turns the export off.
    expect(
      interpolateCompose(compose.services.receiver.environment!.SONDE_TEMPO_ENDPOINT, { SONDE_TEMPO_ENDPOINT: '' }),
    ).toBe('');
    expect(containerPorts(compose.services.tempo)).toContain(tempo.server.http_listen_port);
  });

  test('Loki: a pinned Loki 3 image, its mounted config with OTLP intake, structured metadata, filesystem storage and no tenants', () => {
    const loki = compose.services.loki;
    expect(loki.image).toMatch(/^grafana\/loki:3\.\d+\.\d+$/);
    expect(loki.command).toEqual(['-config.file=/etc/loki/loki.yaml']);
    expect(loki.volumes).toContain('./loki/loki.yaml:/etc/loki/loki.yaml:ro');
    const config = readYaml<{
      auth_enabled: boolean;
      server: { http_listen_port: number };
      common: { path_prefix: string; storage: { filesystem: Record<string, string> } };
      schema_config: { configs: { store: string; object_store: string; schema: string }[] };
      limits_config: { allow_structured_metadata: boolean; volume_enabled: boolean };
      // OTLP intake is on by default in Loki 3; a `distributor.otlp_config` could only narrow it.
      distributor?: unknown;
    }>(path.join(DEPLOY, 'loki/loki.yaml'));
    expect(config.auth_enabled).toBe(false);
    expect(config.limits_config.allow_structured_metadata).toBe(true);
    expect(config.limits_config.volume_enabled).toBe(true);
    // Structured metadata needs the tsdb index and schema v13, on the filesystem.
    expect(config.schema_config.configs.at(-1)).toMatchObject({
      store: 'tsdb',
      object_store: 'filesystem',
      schema: 'v13',
    });
    for (const dir of Object.values(config.common.storage.filesystem)) expect(dir.startsWith('/loki/')).toBe(true);
    // Its data is in a named volume at the path prefix; its API is published on the loopback.
    expect(loki.volumes).toContain(`loki-data:${config.common.path_prefix}`);
    expect('loki-data' in compose.volumes).toBe(true);
    expect(loki.ports).toEqual([`127.0.0.1:${config.server.http_listen_port}:${config.server.http_listen_port}`]);
  });

  test("the receiver exports logs to Loki's OTLP intake (loki.endpoint), and an empty SONDE_LOKI_ENDPOINT turns it off", () => {
    const loki = readYaml<{ server: { http_listen_port: number } }>(path.join(DEPLOY, 'loki/loki.yaml'));
    const variable = compose.services.receiver.environment!.SONDE_LOKI_ENDPOINT;
    const endpoint = interpolateCompose(variable, {});
    expect(httpUrl(endpoint)).toEqual({ host: 'loki', port: loki.server.http_listen_port });
    // The receiver's compose configuration with the variable compose sets, through the receiver's own
    // loader and schema: logs go to <loki>/otlp/v1/logs, kept on disk while Loki is down.
    const config = loadConfig({
      file: path.join(DEPLOY, 'receiver/sonde.yaml'),
      env: { SONDE_LOKI_ENDPOINT: endpoint },
    });
    expect(config.loki.endpoint).toBe(`http://loki:${loki.server.http_listen_port}/otlp/v1/logs`);
    expect(config.loki.persistent_queue).toBe(true);
    // The variable set empty: no export (the file holds no endpoint that an empty variable could not clear).
    expect(interpolateCompose(variable, { SONDE_LOKI_ENDPOINT: '' })).toBe('');
    expect(loadConfig({ file: path.join(DEPLOY, 'receiver/sonde.yaml'), env: {} }).loki.endpoint).toBe('');
  });

  test.each(['provisioning', 'provisioning-embedded'])(
    'grafana/%s: every datasource URL is a compose service on a port it serves',
    (variant) => {
      const ds = readYaml<{ datasources: { type: string; url: string }[] }>(
        path.join(ROOT, 'grafana', variant, 'datasources/datasources.yaml'),
      );
      const prometheusArgs = compose.services.prometheus.command as string[];
      expect(prometheusArgs).toContain('--enable-feature=exemplar-storage');
      for (const d of ds.datasources) {
        const { host, port } = httpUrl(d.url);
        expect([d.type, host in compose.services]).toEqual([d.type, true]);
        expect([d.type, containerPorts(compose.services[host])]).toEqual([d.type, expect.arrayContaining([port])]);
      }
    },
  );

  test('Grafana mounts the provisioning at its provisioning path and the dashboards where the provider reads them', () => {
    const vols = compose.services.grafana.volumes!.map((v) => interpolateCompose(v, {}));
    expect(vols).toContain('../grafana/provisioning:/etc/grafana/provisioning:ro');
    const provider = readYaml<{ providers: { options: { path: string } }[] }>(
      path.join(ROOT, 'grafana/provisioning/dashboards/sonde.yaml'),
    );
    expect(vols).toContain(`../grafana/dashboards:${provider.providers[0].options.path}:ro`);
    const home = compose.services.grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    expect(
      fs.existsSync(path.join(ROOT, 'grafana/dashboards', path.relative(provider.providers[0].options.path, home))),
    ).toBe(true);
  });

  test('Prometheus scrapes the receiver service on its admin port with honor_labels, and loads the mounted rules', () => {
    const prom = readYaml<{
      rule_files: string[];
      scrape_configs: { job_name: string; honor_labels: boolean; static_configs: { targets: string[] }[] }[];
    }>(path.join(DEPLOY, 'prometheus/prometheus.yml'));
    const job = prom.scrape_configs.find((s) => s.job_name === 'sonde')!;
    expect(job.honor_labels).toBe(true);
    expect(job.static_configs[0].targets).toEqual(['receiver:9464']);
    // The rule SondeReceiverDown watches this job.
    expect(fs.readFileSync(path.join(DEPLOY, 'prometheus/rules/sonde-pipeline.rules.yml'), 'utf8')).toContain(
      `up{job="${job.job_name}"}`,
    );
    expect(prom.rule_files).toEqual(['rules/*.rules.yml']);
    expect(compose.services.prometheus.volumes).toContain('./prometheus/rules:/etc/prometheus/rules:ro');
  });

  test('Prometheus sends to the compose Alertmanager, a pinned image running the mounted deploy/alertmanager configuration', () => {
    const prom = readYaml<{ alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] } }>(
      path.join(DEPLOY, 'prometheus/prometheus.yml'),
    );
    const targets = prom.alerting.alertmanagers.flatMap((a) => a.static_configs.flatMap((c) => c.targets));
    expect(targets).toEqual(['alertmanager:9093']);
    const am = compose.services.alertmanager;
    expect(am.image).toMatch(/^prom\/alertmanager:v\d+\.\d+\.\d+$/);
    expect(containerPorts(am)).toEqual([9093]);
    expect(am.ports).toEqual(['127.0.0.1:9093:9093']);
    const mount = am.volumes!.find((v) => v.endsWith(':ro'))!;
    const [source, target] = mount.split(':');
    expect(path.resolve(DEPLOY, source)).toBe(path.join(DEPLOY, 'alertmanager/alertmanager.yml'));
    expect(am.command).toContain(`--config.file=${target}`);
    expect(compose.services.prometheus.depends_on).toContain('alertmanager');
  });
});

describe('safe to expose (issue 11)', () => {
  const all = (a: { host: string; port: number } | 'off') => (a === 'off' ? 'off' : a.host);

  test('the receiver binds every interface only where a file says so: image, compose and Kubernetes configs', () => {
    // The receiver's own default is the loopback...
    const defaults = validateConfig({});
    expect([all(defaults.otlp.http.address), all(defaults.otlp.grpc.address), all(defaults.admin.address)]).toEqual([
      '127.0.0.1',
      '127.0.0.1',
      '127.0.0.1',
    ]);
    // ...and the configurations for containers bind 0.0.0.0 explicitly.
    for (const file of ['receiver/sonde.yaml', 'kubernetes/sonde.yaml']) {
      const config = validateConfig(readYaml(path.join(DEPLOY, file)));
      expect([file, all(config.otlp.http.address), all(config.otlp.grpc.address), all(config.admin.address)]).toEqual([
        file,
        '0.0.0.0',
        '0.0.0.0',
        '0.0.0.0',
      ]);
    }
    // ...and both redact (the receiver's default, written out so that nobody turns it off by accident).
    for (const file of ['receiver/sonde.yaml', 'kubernetes/sonde.yaml']) {
      const raw = readYaml<{ redaction?: { enabled?: boolean } }>(path.join(DEPLOY, file));
      expect([file, raw.redaction?.enabled]).toEqual([file, true]);
      expect([file, validateConfig(raw as never).redaction.detectors.length]).toEqual([file, 5]);
    }
    // The image runs with the compose configuration baked in.
    const dockerfile = fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain('COPY deploy/receiver/sonde.yaml /etc/sonde/sonde.yaml');
    expect(dockerfile).toContain('CMD ["--config", "/etc/sonde/sonde.yaml"]');
  });

  test('compose publishes every port on the host loopback only', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const p of s.ports ?? []) expect([name, p.split(':')[0]]).toEqual([name, '127.0.0.1']);
    }
  });

  test('compose Grafana: anonymous visitors are Viewers, the admin password comes from the environment', () => {
    const env = compose.services.grafana.environment!;
    expect(env.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
    expect(env.GF_AUTH_DISABLE_LOGIN_FORM).toBeUndefined();
    // `${VAR:?message}`: compose refuses to start without it; no default password.
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}$/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's and Grafana's own ${…} syntax, not a template
    expect(env.SONDE_ADMIN_TOKEN).toBe('${SONDE_ADMIN_TOKEN-}');
  });

  test("the Tempo datasource that reads the receiver sends the receiver's admin token", () => {
    const ds = readYaml<{
      datasources: {
        type: string;
        url: string;
        jsonData: Record<string, unknown>;
        secureJsonData?: Record<string, string>;
      }[];
    }>(path.join(ROOT, 'grafana/provisioning-embedded/datasources/datasources.yaml'));
    const tempo = ds.datasources.find((d) => d.type === 'tempo')!;
    expect(httpUrl(tempo.url)).toEqual({ host: 'receiver', port: 9464 });
    expect(tempo.jsonData.httpHeaderName1).toBe('Authorization');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's and Grafana's own ${…} syntax, not a template
    expect(tempo.secureJsonData).toEqual({ httpHeaderValue1: 'Bearer ${SONDE_ADMIN_TOKEN}' });
  });
});

describe('kubernetes (kustomize)', () => {
  const dir = path.join(DEPLOY, 'kubernetes');
  const kustomization = readYaml<{
    resources: string[];
    configMapGenerator: { name: string; files: string[] }[];
    images: { name: string }[];
  }>(path.join(dir, 'kustomization.yaml'));
  const docs = kustomization.resources.flatMap((r) => readAllYaml(path.join(dir, r)));
  // biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind) as any[];

  test('every resource and generated file exists and parses', () => {
    for (const r of kustomization.resources) expect(fs.existsSync(path.join(dir, r))).toBe(true);
    for (const g of kustomization.configMapGenerator)
      for (const f of g.files) expect(fs.existsSync(path.join(dir, f))).toBe(true);
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'Deployment',
      'HorizontalPodAutoscaler',
      'Namespace',
      'PodDisruptionBudget',
      'Service',
    ]);
  });

  test('the Deployment probes /healthz and /readyz on the admin port, sets resources, and mounts its config', () => {
    const [deployment] = byKind('Deployment');
    const podLabels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': podLabels['app.kubernetes.io/name'],
    });
    const [c] = deployment.spec.template.spec.containers;
    const ports = Object.fromEntries(
      c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
    );
    expect(ports).toEqual({ 'otlp-grpc': 4317, 'otlp-http': 4318, admin: 9464 });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(c.resources.requests.cpu).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(kustomization.images.map((i) => i.name)).toContain(c.image);
    const configVolume = deployment.spec.template.spec.volumes.find((v: { configMap?: unknown }) => v.configMap);
    expect(configVolume.configMap.name).toBe(kustomization.configMapGenerator[0].name);
    const mount = c.volumeMounts.find((m: { name: string }) => m.name === configVolume.name);
    expect(`${mount.mountPath}/${kustomization.configMapGenerator[0].files[0]}`).toBe(c.args[1]);
    // Its configuration passes the receiver's schema and listens on the declared ports.
    const config = validateConfig(readYaml(path.join(dir, 'sonde.yaml')));
    const port = (a: { port: number } | 'off') => (a === 'off' ? -1 : a.port);
    expect([port(config.otlp.grpc.address), port(config.otlp.http.address), port(config.admin.address)]).toEqual([
      4317, 4318, 9464,
    ]);
    expect(config.data_dir).toBe(c.volumeMounts.find((m: { name: string }) => m.name === 'data').mountPath);
  });

  test('the Service, PodDisruptionBudget and HPA select and target the Deployment', () => {
    const [deployment] = byKind('Deployment');
    const podLabels = deployment.spec.template.metadata.labels;
    const [service] = byKind('Service');
    for (const [k, v] of Object.entries(service.spec.selector)) expect(podLabels[k]).toBe(v);
    const containerPortNames = deployment.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name);
    for (const p of service.spec.ports) expect(containerPortNames).toContain(p.targetPort);
    const [pdb] = byKind('PodDisruptionBudget');
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) expect(podLabels[k]).toBe(v);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    const [hpa] = byKind('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeGreaterThan(pdb.spec.minAvailable);
  });
});

describe('promtool', () => {
  const promtool = (...args: string[]) => run(PROMTOOL_BIN, args, { cwd: path.join(DEPLOY, 'prometheus') });

  test('check config: deploy/prometheus/prometheus.yml and the rule files it loads', async () => {
    const { stdout, stderr } = await promtool('check', 'config', 'prometheus.yml');
    expect(`${stdout}${stderr}`).toMatch(/SUCCESS: prometheus\.yml is valid/);
    const ruleFiles = fs.readdirSync(path.join(DEPLOY, 'prometheus/rules')).filter((f) => f.endsWith('.rules.yml'));
    expect(`${stdout}${stderr}`).toContain(`SUCCESS: ${ruleFiles.length} rule files found`);
  });

  test('check rules', async () => {
    const files = fs.readdirSync(path.join(DEPLOY, 'prometheus/rules')).filter((f) => f.endsWith('.rules.yml'));
    const { stdout, stderr } = await promtool('check', 'rules', ...files.map((f) => `rules/${f}`));
    expect((`${stdout}${stderr}`.match(/SUCCESS/g) ?? []).length).toBe(files.length);
  });

  test('test rules: every alert has unit tests, and they pass', async () => {
    const dir = path.join(DEPLOY, 'prometheus/rules');
    const tests = fs.readdirSync(path.join(dir, 'tests')).filter((f) => f.endsWith('.test.yml'));
    const { stdout, stderr } = await promtool('test', 'rules', ...tests.map((f) => `rules/tests/${f}`));
    expect((`${stdout}${stderr}`.match(/SUCCESS/g) ?? []).length).toBe(tests.length);
    // Every alert appears in some test, firing at least once.
    const alerts = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.rules.yml'))
      .flatMap((f) => readYaml<{ groups: { rules: { alert?: string }[] }[] }>(path.join(dir, f)).groups)
      .flatMap((g) => g.rules)
      .flatMap((r) => (r.alert ? [r.alert] : []));
    const testText = tests.map((f) => fs.readFileSync(path.join(dir, 'tests', f), 'utf8')).join('\n');
    for (const a of alerts)
      expect([
        a,
        testText.includes(`alertname: ${a}`) || testText.match(new RegExp(`alertname: ${a}\\b`)) !== null,
      ]).toEqual([a, true]);
    const fired = [...testText.matchAll(/exp_labels:\s*(?:\{\s*)?alertname: (\w+)/g)].map((m) => m[1]);
    expect([...new Set(fired)].sort()).toEqual([...new Set(alerts)].sort());
  });
});

describe('Alertmanager and runbooks', () => {
  test('amtool check-config accepts deploy/alertmanager/alertmanager.yml, with a route to each receiver', async () => {
    const file = path.join(DEPLOY, 'alertmanager/alertmanager.yml');
    const { ok, output } = await amtoolCheckConfig(file);
    expect([ok, output]).toEqual([true, expect.stringContaining('SUCCESS')]);
    const config = readYaml<{
      route: { receiver: string; routes: { receiver: string; matchers: string[] }[] };
      receivers: { name: string; webhook_configs: { url: string; send_resolved: boolean }[] }[];
    }>(file);
    // Pages go to the pager receiver, everything else to tickets; both webhooks send resolutions.
    expect(config.route.receiver).toBe('tickets');
    expect(config.route.routes).toEqual([
      expect.objectContaining({ receiver: 'pager', matchers: ['severity="page"'] }),
    ]);
    expect(config.receivers.map((r) => r.name).sort()).toEqual(['pager', 'tickets']);
    for (const r of config.receivers) expect(r.webhook_configs.every((w) => w.send_resolved)).toBe(true);
  });

  test('kubernetes/alerting: an Alertmanager Deployment and Service with the same configuration as compose', () => {
    const dir = path.join(DEPLOY, 'kubernetes/alerting');
    const kustomization = readYaml<{
      namespace: string;
      resources: string[];
      configMapGenerator: { name: string; files: string[] }[];
    }>(path.join(dir, 'kustomization.yaml'));
    expect(kustomization.namespace).toBe('sonde');
    expect(fs.readFileSync(path.join(dir, 'alertmanager.yml'), 'utf8')).toBe(
      fs.readFileSync(path.join(DEPLOY, 'alertmanager/alertmanager.yml'), 'utf8'),
    );
    // biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
    const docs = kustomization.resources.flatMap((r) => readAllYaml(path.join(dir, r))) as any[];
    const deployment = docs.find((d) => d.kind === 'Deployment');
    const service = docs.find((d) => d.kind === 'Service');
    const [c] = deployment.spec.template.spec.containers;
    expect(c.image).toBe(compose.services.alertmanager.image);
    const configVolume = deployment.spec.template.spec.volumes.find((v: { configMap?: unknown }) => v.configMap);
    expect(configVolume.configMap.name).toBe(kustomization.configMapGenerator[0].name);
    const mount = c.volumeMounts.find((m: { name: string }) => m.name === configVolume.name);
    expect(c.args).toContain(`--config.file=${mount.mountPath}/${kustomization.configMapGenerator[0].files[0]}`);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/-/ready', port: 'http' });
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(service.spec.ports).toEqual([{ name: 'http', port: 9093, targetPort: 'http' }]);
    // The address the kustomization tells Prometheus to send to is this Service's.
    expect(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')).toContain(
      `${service.metadata.name}.${kustomization.namespace}.svc:9093`,
    );
  });

  test('every alert has a severity, summary, description and a runbook_url whose anchor is a heading of docs/runbooks.md', () => {
    const runbooks = fs.readFileSync(path.join(ROOT, 'docs/runbooks.md'), 'utf8');
    // GitHub's heading anchors: lower case, punctuation other than - and _ removed, spaces to -.
    const anchors = new Set(
      [...runbooks.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
        m[1]
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N}\s_-]/gu, '')
          .replace(/\s/g, '-'),
      ),
    );
    const dir = path.join(DEPLOY, 'prometheus/rules');
    const problems: string[] = [];
    let alerts = 0;
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.rules.yml'))) {
      const rules = readYaml<{
        groups: {
          rules: { alert?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[];
        }[];
      }>(path.join(dir, f));
      for (const r of rules.groups.flatMap((g) => g.rules)) {
        if (!r.alert) continue;
        alerts++;
        const a = r.annotations ?? {};
        for (const key of ['summary', 'description', 'runbook_url'])
          if (!a[key]?.trim()) problems.push(`${f} ${r.alert}: no ${key}`);
        if (!['page', 'ticket', 'warning'].includes(r.labels?.severity ?? ''))
          problems.push(`${f} ${r.alert}: severity ${r.labels?.severity}`);
        const m = /^docs\/runbooks\.md#(.+)$/.exec(a.runbook_url ?? '');
        if (!m) problems.push(`${f} ${r.alert}: runbook_url ${a.runbook_url} is not docs/runbooks.md#<anchor>`);
        else if (!anchors.has(m[1])) problems.push(`${f} ${r.alert}: no heading for #${m[1]} in docs/runbooks.md`);
        else if (m[1] !== r.alert.toLowerCase()) problems.push(`${f} ${r.alert}: runbook anchor #${m[1]}`);
      }
    }
    expect(problems).toEqual([]);
    expect(alerts).toBeGreaterThan(10);
  });

  test('each runbook section says what the alert means, what to check first on which dashboard panel, and how to fix it', () => {
    const runbooks = fs.readFileSync(path.join(ROOT, 'docs/runbooks.md'), 'utf8');
    const sections = runbooks.split(/^### /m).slice(1);
    const titles = new Set(
      fs
        .readdirSync(path.join(ROOT, 'grafana/dashboards'))
        .filter((f) => f.endsWith('.json'))
        .flatMap((f) => {
          const d = JSON.parse(fs.readFileSync(path.join(ROOT, 'grafana/dashboards', f), 'utf8')) as {
            panels: { title: string }[];
          };
          return d.panels.map((p) => p.title);
        }),
    );
    const problems: string[] = [];
    for (const s of sections) {
      const name = s.split('\n')[0].trim();
      for (const part of ['**Meaning.**', '**First checks.**', '**Fixes.**'])
        if (!s.includes(part)) problems.push(`${name}: no ${part}`);
      // Panels are named in italics after "→"; each must be a panel of a committed dashboard.
      const panels = [...s.matchAll(/(?<!\*)\*([^*]+)\*(?!\*)/g)].map((m) => m[1].replace(/\s+/g, ' '));
      if (panels.length === 0) problems.push(`${name}: names no dashboard panel`);
      for (const p of panels) if (!titles.has(p)) problems.push(`${name}: no panel titled "${p}"`);
    }
    expect(problems).toEqual([]);
  });
});

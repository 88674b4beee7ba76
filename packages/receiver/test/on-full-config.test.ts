/**
 * One `on_full` vocabulary for every queue the receiver has (tempo, loki, trace_store, log_store):
 * `refuse`, `drop_newest`, `drop_oldest`, each section taking what its queue can do; the former
 * spellings (`drop` in the stores, `drop_oldest` in the exporters) still work, `drop` with one
 * deprecation line.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src';
import { toBlobStoreOptions } from '../src/blob-store/config';
import { toExporterOptions } from '../src/export/config';

function load(yaml: string) {
  const path = join(mkdtempSync(join(tmpdir(), 'sonde-on-full-')), 'sonde.yaml');
  writeFileSync(path, yaml);
  const warnings: string[] = [];
  const config = loadConfig({ file: path, env: {}, onWarning: (m) => warnings.push(m) });
  return { config, warnings };
}

describe('on_full in the exporters (tempo, loki)', () => {
  test.each([
    ['tempo', 'refuse'],
    ['tempo', 'drop_newest'],
    ['tempo', 'drop_oldest'],
    ['loki', 'refuse'],
    ['loki', 'drop_newest'],
    ['loki', 'drop_oldest'],
  ] as const)('%s.on_full: %s is taken as it is, without a warning', (section, value) => {
    const { config, warnings } = load(`${section}:\n  on_full: ${value}\n`);
    expect(config[section].on_full).toBe(value);
    expect(toExporterOptions(config[section], section, '/data').onFull).toBe(value);
    expect(warnings).toEqual([]);
  });

  test('the default is refuse', () => {
    expect(load('{}\n').config.tempo.on_full).toBe('refuse');
    expect(load('{}\n').config.loki.on_full).toBe('refuse');
  });

  test('drop (a store spelling, ambiguous here) and unknown values are refused with the vocabulary', () => {
    expect(() => load('tempo:\n  on_full: drop\n')).toThrow(
      /tempo\.on_full: .*"drop".*refuse, drop_newest, drop_oldest/,
    );
    expect(() => load('loki:\n  on_full: block\n')).toThrow(
      /loki\.on_full: .*"block".*refuse, drop_newest, drop_oldest/,
    );
  });
});

describe('on_full in the embedded stores (trace_store, log_store)', () => {
  test.each([
    ['trace_store', 'refuse'],
    ['trace_store', 'drop_newest'],
    ['log_store', 'refuse'],
    ['log_store', 'drop_newest'],
  ] as const)('%s.on_full: %s is taken as it is, without a warning', (section, value) => {
    const { config, warnings } = load(`${section}:\n  on_full: ${value}\n`);
    expect(config[section].on_full).toBe(value);
    expect(toBlobStoreOptions(config[section], '/data').onFull).toBe(value);
    expect(warnings).toEqual([]);
  });

  test.each(['trace_store', 'log_store'] as const)(
    'the former %s.on_full: drop still works: it is drop_newest, with one deprecation line',
    (section) => {
      const { config, warnings } = load(`${section}:\n  on_full: drop\n`);
      expect(config[section].on_full).toBe('drop_newest');
      expect(toBlobStoreOptions(config[section], '/data').onFull).toBe('drop_newest');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(new RegExp(`${section}\\.on_full: drop is deprecated.*drop_newest`));
    },
  );

  test.each(['trace_store', 'log_store'] as const)(
    '%s.on_full: drop_oldest is refused with the reason (queued requests are already acknowledged)',
    (section) => {
      expect(() => load(`${section}:\n  on_full: drop_oldest\n`)).toThrow(
        new RegExp(
          `${section}\\.on_full: drop_oldest is not supported by a store.*acknowledged.*refuse or drop_newest`,
        ),
      );
    },
  );
});

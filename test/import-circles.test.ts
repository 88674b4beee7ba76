/**
 * No import circle in any package's src/ folder: every relative import (`import`, `import type`, `export ... from`,
 * `require('./x')`, `import('./x')`) of every source file is followed, and a cycle fails the test
 * with its path. Type-only imports count too: a circle of types is still two modules that cannot be
 * understood apart.
 */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const PACKAGES = fs
  .readdirSync(path.join(ROOT, 'packages'), { withFileTypes: true })
  .filter((e) => e.isDirectory() && fs.existsSync(path.join(ROOT, 'packages', e.name, 'src')))
  .map((e) => e.name);

function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
    );
}

/** The relative module specifiers a file imports, without comments. */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"](\.[^'"]*)['"]/g,
    /\bimport\s*['"](\.[^'"]*)['"]/g,
    /\b(?:require|import)\s*\(\s*['"](\.[^'"]*)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]);
  return out;
}

function resolve(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, path.join(base, 'index.ts')])
    if (candidate.endsWith('.ts') && fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
  return undefined; // outside src (../package.json) or not a source file
}

/** Every elementary cycle found by a depth-first walk, as `a.ts → b.ts → a.ts`. */
export function cycles(files: string[], read: (file: string) => string): string[] {
  const graph = new Map<string, string[]>();
  for (const file of files)
    graph.set(
      file,
      importsOf(read(file))
        .map((spec) => resolve(file, spec))
        .filter((f): f is string => f !== undefined),
    );
  const found = new Set<string>();
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'visiting');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'visiting') {
        const loop = [...stack.slice(stack.indexOf(next)), next].map((f) => path.relative(ROOT, f));
        found.add(loop.join(' → '));
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return [...found];
}

test('the import parser sees every form of relative import', () => {
  expect(
    importsOf(
      [
        "import { a } from './a';",
        "import type { B } from './b';",
        "export { c } from './c';",
        "export * from './d';",
        "import './e';",
        "const f = require('./f');",
        "const g = await import('./g');",
        "import {\n  h,\n  type H,\n} from './h';",
        "import { x } from '@opentelemetry/api';",
        "// import { y } from './commented';",
        "/* import { z } from './block'; */",
      ].join('\n'),
    ),
  ).toEqual(['./a', './b', './c', './d', './h', './e', './f', './g']);
});

test('the cycle finder finds a two-module circle through type imports', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-cycles-'));
  try {
    fs.writeFileSync(path.join(tmp, 'x.ts'), "import type { Y } from './y';");
    fs.writeFileSync(path.join(tmp, 'y.ts'), "import { x } from './x';");
    fs.writeFileSync(path.join(tmp, 'z.ts'), "import { x } from './x';");
    const found = cycles(
      ['x.ts', 'y.ts', 'z.ts'].map((f) => path.join(tmp, f)),
      (f) => fs.readFileSync(f, 'utf8'),
    );
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/x\.ts → .*y\.ts → .*x\.ts$/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test.each(PACKAGES)('packages/%s/src has no import circle', (name) => {
  const files = sources(path.join(ROOT, 'packages', name, 'src'));
  expect(files.length).toBeGreaterThan(0);
  expect(cycles(files, (f) => fs.readFileSync(f, 'utf8'))).toEqual([]);
});

test('every package with sources is checked', () => {
  expect(PACKAGES).toEqual(expect.arrayContaining(['dashboards', 'demo', 'node', 'receiver', 'redact', 'web']));
});

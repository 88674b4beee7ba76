/**
 * The README's Layout section against the package's folders: every folder of src/ and every file at
 * its top is described, every folder of the package too, and every path or file name the section
 * gives exists, so that a move or a rename cannot leave the map behind.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

interface Row {
  paths: string[];
  text: string;
}

function layoutRows(): Row[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Layout\n');
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const [first, ...rest] = line.slice(1, -1).split(' | ');
      return { paths: [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1]), text: rest.join(' | ') };
    });
}

/** Directories under `dir` (relative to the package), recursively. */
function directories(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => [`${dir}/${e.name}`, ...directories(`${dir}/${e.name}`)]);
}

/** Whether `name` (a file name or a relative path) is somewhere under `dir`. */
function foundUnder(dir: string, name: string): boolean {
  if (existsSync(join(ROOT, dir, name))) return true;
  return directories(dir).some((d) => existsSync(join(ROOT, d, name)));
}

describe('the README layout section', () => {
  const rows = layoutRows();
  const listed = rows.flatMap((r) => r.paths);

  test('every path it lists exists', () => {
    expect(rows.length).toBeGreaterThan(10);
    const missing = listed.filter((p) => !existsSync(join(ROOT, p)));
    expect(missing).toEqual([]);
  });

  test('every folder of the package and of src/ is described', () => {
    const folders = readdirSync(ROOT, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !['node_modules', 'dist', 'src'].includes(e.name))
      .map((e) => `${e.name}/`);
    const undescribed = [...folders, ...directories('src').map((d) => `${d}/`)].filter((folder) => {
      if (listed.includes(folder)) return false;
      // A folder inside a listed one may be described in its parent's row, as `name/`.
      const parent = folder.slice(0, folder.slice(0, -1).lastIndexOf('/') + 1);
      const leaf = folder.slice(parent.length);
      return !rows.some((r) => r.paths.includes(parent) && r.text.includes(`\`${leaf}\``));
    });
    expect(undescribed).toEqual([]);
  });

  test('every file at the top of src/ is described', () => {
    const files = readdirSync(join(ROOT, 'src')).filter((f) => statSync(join(ROOT, 'src', f)).isFile());
    const texts = rows.map((r) => r.text).join('\n');
    expect(files.filter((f) => !listed.includes(`src/${f}`) && !texts.includes(`\`src/${f}\``))).toEqual([]);
  });

  test("every file a row names exists in that row's folders", () => {
    const stale: string[] = [];
    for (const row of rows) {
      const dirs = row.paths.filter((p) => p.endsWith('/'));
      for (const [, name] of row.text.matchAll(/`([\w./-]+\.(?:ts|mts|js|json))`/g)) {
        const ok = name.startsWith('src/') ? existsSync(join(ROOT, name)) : dirs.some((d) => foundUnder(d, name));
        if (!ok) stale.push(`${row.paths.join(', ')}: ${name}`);
      }
    }
    expect(stale).toEqual([]);
  });
});

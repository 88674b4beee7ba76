/**
 * The README's Layout table against src/: every source file has a row, and every path a row names
 * exists, so that a split or a rename cannot leave the map behind.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

function listedPaths(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Layout\n');
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme
    .slice(start, end < 0 ? undefined : end)
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) =>
      [
        ...line
          .slice(1)
          .split(' | ')[0]
          .matchAll(/`([^`]+)`/g),
      ].map((m) => m[1]),
    );
}

test('every file of src/ has a row in the README layout table', () => {
  const listed = listedPaths();
  const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `src/${f}`);
  expect(files.length).toBeGreaterThan(10);
  expect(files.filter((f) => !listed.includes(f))).toEqual([]);
});

test('every path the layout table names exists', () => {
  const listed = listedPaths();
  expect(listed.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
});

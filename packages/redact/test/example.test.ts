/** The README's runnable example runs and prints what the README shows (needs `npm run build` first, as turbo does). */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

test('examples/redact.mts prints what the README says', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, '..', 'examples', 'redact.mts')], {
    timeout: 20_000,
  });
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const shown = /<!-- example-output -->\n```text\n([\s\S]*?)```/.exec(readme);
  expect(shown).not.toBeNull();
  expect(stdout).toBe(shown![1]);
  expect(stdout).not.toMatch(/alice|abc123|user-42|4111|203\.0\.113|bob@|build-7|Bearer abc/);
});

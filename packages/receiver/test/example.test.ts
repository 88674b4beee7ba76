/** The README's runnable example runs and prints what it promises (needs `npm run build` first, as turbo does). */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

test('examples/embed.mts receives its span and stops', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, '..', 'examples', 'embed.mts')], {
    timeout: 20_000,
  });
  expect(stdout).toBe('span GET /cart trace=5b8efff798038103d269b633813fc60c via http\nreceiver answered 200 {}\n');
});

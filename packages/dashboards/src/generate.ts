/**
 * Writes grafana/dashboards/*.json from the code (`npm run generate -w @sonde/dashboards`), or with
 * `--check` only compares and exits 1 naming the files that differ (what CI's test does too).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { render } from './index';

export const DASHBOARDS_DIR = path.resolve(__dirname, '../../../grafana/dashboards');

/** Files whose committed content differs from the generated one (missing and stale ones included). */
export function staleFiles(dir = DASHBOARDS_DIR): string[] {
  const want = render();
  const have = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  const stale = Object.entries(want)
    .filter(([file, text]) => !have.includes(file) || fs.readFileSync(path.join(dir, file), 'utf8') !== text)
    .map(([file]) => file);
  return [...stale, ...have.filter((f) => !(f in want))];
}

function main(): void {
  if (process.argv.includes('--check')) {
    const stale = staleFiles();
    if (stale.length > 0) {
      console.error(
        `grafana/dashboards is out of date (${stale.join(', ')}): run npm run build && npm run generate -w @sonde/dashboards, and commit the result`,
      );
      process.exit(1);
    }
    console.log('grafana/dashboards matches the code');
    return;
  }
  fs.mkdirSync(DASHBOARDS_DIR, { recursive: true });
  for (const f of fs.readdirSync(DASHBOARDS_DIR)) if (f.endsWith('.json')) fs.rmSync(path.join(DASHBOARDS_DIR, f));
  for (const [file, text] of Object.entries(render())) fs.writeFileSync(path.join(DASHBOARDS_DIR, file), text);
  console.log(`wrote ${Object.keys(render()).length} dashboards to ${path.relative(process.cwd(), DASHBOARDS_DIR)}`);
}

if (require.main === module) main();

// Builds dist/index.mjs (ES module for bundlers; the OpenTelemetry packages stay imports) and
// dist/sonde-web.min.js (one minified script for a <script> tag: the global `sonde`). The type
// declarations come from tsc (tsconfig.build.json).
import * as path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.join(import.meta.dirname, '..');
const common = {
  entryPoints: [path.join(root, 'src/index.ts')],
  bundle: true,
  platform: 'browser',
  target: 'es2022',
  logLevel: 'warning',
  legalComments: 'none',
};
await esbuild.build({ ...common, format: 'esm', packages: 'external', outfile: path.join(root, 'dist/index.mjs') });
await esbuild.build({
  ...common,
  format: 'iife',
  globalName: 'sonde',
  minify: true,
  outfile: path.join(root, 'dist/sonde-web.min.js'),
  metafile: true,
});

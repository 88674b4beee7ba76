// Runnable example: serves examples/index.html and the script-tag build on http://127.0.0.1:8080.
// From the repository root, after `npm install && npm run build`, in two terminals:
//   npx sonde-receiver --config packages/web/examples/receiver.yaml
//   node packages/web/examples/serve.mjs
// then open http://127.0.0.1:8080 and watch: curl -s 'localhost:9464/debug/recent?signal=logs&limit=5'
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

const dir = import.meta.dirname;
const files = {
  '/': [path.join(dir, 'index.html'), 'text/html; charset=utf-8'],
  '/sonde-web.min.js': [path.join(dir, '../dist/sonde-web.min.js'), 'text/javascript'],
};
const port = Number(process.env.PORT ?? 8080);
http
  .createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[1] }).end(fs.readFileSync(file[0]));
  })
  .listen(port, '127.0.0.1', () => console.log(`open http://127.0.0.1:${port}`));

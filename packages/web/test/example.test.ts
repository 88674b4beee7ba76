/**
 * The README's runnable example: examples/receiver.yaml is a valid receiver configuration that allows
 * the example page's origin, and examples/index.html, served with the script-tag build (its endpoint
 * pointed at a test receiver), does what the README says: consent asked, an event tracked once
 * granted, an error sent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '@sonde/receiver';
import {
  launch,
  logsOf,
  type PageServer,
  startPageServer,
  startTestReceiver,
  type TestBrowser,
  type TestReceiver,
  until,
} from './harness';

const EXAMPLES = path.join(__dirname, '../examples');

let receiver: TestReceiver;
let server: PageServer;
let tb: TestBrowser;

beforeAll(async () => {
  server = await startPageServer();
  receiver = await startTestReceiver([server.origin]);
  tb = await launch();
}, 60_000);

afterAll(async () => {
  await tb?.close();
  await server?.close();
  await receiver?.close();
});

test('examples/receiver.yaml allows the example page (http://127.0.0.1:8080) to send', () => {
  const config = loadConfig({ file: path.join(EXAMPLES, 'receiver.yaml'), env: {} });
  expect(config.otlp.http.cors_allowed_origins).toEqual(['http://127.0.0.1:8080']);
  expect(fs.readFileSync(path.join(EXAMPLES, 'serve.mjs'), 'utf8')).toContain('?? 8080');
});

test('examples/index.html: the event is sent once product is granted, the error always', async () => {
  const html = fs.readFileSync(path.join(EXAMPLES, 'index.html'), 'utf8');
  expect(html).toContain("endpoint: 'http://127.0.0.1:4318'");
  server.pages.set('/', html.replace("endpoint: 'http://127.0.0.1:4318'", `endpoint: '${receiver.endpoint}'`));
  await tb.page.goto(`${server.origin}/`, { waitUntil: 'load' });
  await tb.page.click('#buy'); // not granted yet: nothing
  await tb.page.click('#yes');
  await tb.page.waitForFunction(() => document.getElementById('out')?.textContent?.includes('"product": true'));
  await tb.page.click('#buy');
  await tb.page.click('#oops');
  const names = () => logsOf(receiver).map((l) => l.eventName ?? l.attributes['exception.type']);
  await until(
    () =>
      names().includes('cart.item_added') && names().includes('TypeError') && names().includes('sonde.consent.choice'),
    'the event, the error and the consent record',
  );
  expect(names().filter((n) => n === 'cart.item_added')).toHaveLength(1);
});

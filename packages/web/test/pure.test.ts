/**
 * The pure parts, on Node: coarse segments from User-Agent strings and client hints (never finer than
 * a browser's major version), page routes (ids replaced by `:id`), and the merge of queued OTLP/JSON
 * exports into one request.
 */
import { defaultRoute } from '../src/route';
import { segmentsOf } from '../src/segments';
import { mergeBodies } from '../src/transport';

test.each([
  [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.86 Safari/537.36',
    { 'browser.name': 'Chrome', 'browser.version': '131', 'device.type': 'desktop', 'os.name': 'Windows' },
  ],
  [
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15',
    { 'browser.name': 'Safari', 'browser.version': '17', 'device.type': 'desktop', 'os.name': 'macOS' },
  ],
  [
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
    { 'browser.name': 'Safari', 'browser.version': '17', 'device.type': 'mobile', 'os.name': 'iOS' },
  ],
  [
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
    { 'browser.name': 'Chrome', 'browser.version': '131', 'device.type': 'mobile', 'os.name': 'Android' },
  ],
  [
    'Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36',
    { 'browser.name': 'Samsung Internet', 'browser.version': '25', 'device.type': 'tablet', 'os.name': 'Android' },
  ],
  [
    'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
    { 'browser.name': 'Firefox', 'browser.version': '133', 'device.type': 'desktop', 'os.name': 'Linux' },
  ],
  [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70',
    { 'browser.name': 'Edge', 'browser.version': '131', 'device.type': 'desktop', 'os.name': 'Windows' },
  ],
])('segments of %s', (ua, expected) => {
  expect(segmentsOf(ua)).toEqual(expected);
});

test('client hints win over the UA string (low-entropy hints only)', () => {
  const ua =
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
  const hints = {
    brands: [
      { brand: 'Not_A Brand', version: '8' },
      { brand: 'Microsoft Edge', version: '131' },
      { brand: 'Chromium', version: '131' },
    ],
    mobile: false,
    platform: 'Windows',
  };
  expect(segmentsOf(ua, hints)).toEqual({
    'browser.name': 'Edge',
    'browser.version': '131',
    'device.type': 'desktop',
    'os.name': 'Windows',
  });
});

test.each([
  ['/', '/'],
  ['', '/'],
  ['/products/tea-green', '/products/tea-green'],
  ['/orders/12345', '/orders/:id'],
  ['/users/3f2b8a1c-9d4e-4b7a-8c6d-1e2f3a4b5c6d/profile', '/users/:id/profile'],
  ['/files/0123456789abcdef0123', '/files/:id'],
  ['/reset/Xy7_kP2qLm9ZrT4vWb8nC1', '/reset/:id'],
  ['/blog/a-long-article-title-without-digits', '/blog/a-long-article-title-without-digits'],
])('route of %s is %s', (pathname, route) => {
  expect(defaultRoute({ pathname })).toBe(route);
});

test('queued exports of one signal merge into one OTLP/JSON request', () => {
  const a = JSON.stringify({
    resourceLogs: [{ resource: { attributes: [] }, scopeLogs: [{ logRecords: [{ n: 1 }] }] }],
  });
  const b = JSON.stringify({
    resourceLogs: [{ resource: { attributes: [] }, scopeLogs: [{ logRecords: [{ n: 2 }] }] }],
  });
  expect(mergeBodies('logs', [a])).toBe(a);
  const merged = JSON.parse(mergeBodies('logs', [a, b]));
  expect(merged.resourceLogs).toHaveLength(2);
  expect(JSON.parse(mergeBodies('traces', [JSON.stringify({ resourceSpans: [1] }), '{}'])).resourceSpans).toEqual([1]);
});

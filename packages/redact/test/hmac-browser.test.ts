/**
 * The browser HMAC (src/hmac.browser.ts, which the package's `browser` field puts in place of
 * src/hmac.ts in a bundle): WebCrypto, computed ahead of the synchronous redactor. Run here on Node's
 * own WebCrypto: a value is pending (a placeholder) until computePendingPseudonyms(), then it is the
 * same pseudonym as the Node HMAC's.
 */
import { hmacOf as nodeHmac } from '../src/hmac';
import { computePendingPseudonyms, hasPendingPseudonyms, hmacOf, PENDING_PSEUDONYM } from '../src/hmac.browser';

test('pending until computed, then the same pseudonyms as node:crypto', async () => {
  const key = 'browser-hmac-test-key-0123456789';
  const browser = hmacOf(key, 16, 100);
  const node = nodeHmac(key, 16, 100);
  expect(hasPendingPseudonyms()).toBe(false);
  const first = browser('user-42');
  expect(first).toHaveLength(16);
  expect(first.startsWith(PENDING_PSEUDONYM)).toBe(true);
  expect(hasPendingPseudonyms()).toBe(true);
  await computePendingPseudonyms();
  expect(hasPendingPseudonyms()).toBe(false);
  expect(browser('user-42')).toBe(node('user-42'));
  // Another key: another pseudonym.
  const other = hmacOf('another-browser-hmac-test-key-01', 16, 100);
  other('user-42');
  await computePendingPseudonyms();
  expect(other('user-42')).not.toBe(browser('user-42'));
});

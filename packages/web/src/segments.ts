/**
 * Coarse segments of the browser, as resource attributes: `browser.name`, `browser.version` (major
 * only), `device.type` (mobile, tablet, desktop) and `os.name`. From User-Agent Client Hints where the
 * browser has them (low-entropy hints only, no request for more), else from the UA string. Nothing
 * finer (no full version, no model): these are segments, not a fingerprint.
 */
interface UaData {
  brands?: { brand: string; version: string }[];
  mobile?: boolean;
  platform?: string;
}

export interface Segments {
  'browser.name': string;
  'browser.version': string;
  'device.type': 'mobile' | 'tablet' | 'desktop';
  'os.name': string;
}

const BRANDS: [RegExp, string][] = [
  [/edg/i, 'Edge'],
  [/opera|opr/i, 'Opera'],
  [/samsung/i, 'Samsung Internet'],
  [/^google chrome$/i, 'Chrome'],
  [/^chromium$/i, 'Chromium'],
];

/** From a UA string (and optional client hints). Exported for tests. */
export function segmentsOf(ua: string, hints?: UaData): Segments {
  let name = 'other';
  let version = '';
  const brands = hints?.brands?.filter((b) => !/not.?a.?brand/i.test(b.brand)) ?? [];
  for (const [re, label] of BRANDS) {
    const b = brands.find((x) => re.test(x.brand));
    if (b) {
      name = label;
      version = b.version.split('.')[0];
      break;
    }
  }
  if (name === 'other') {
    const tests: [RegExp, string][] = [
      [/Edg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
      [/(?:OPR|Opera)\/(\d+)/, 'Opera'],
      [/SamsungBrowser\/(\d+)/, 'Samsung Internet'],
      [/(?:Firefox|FxiOS)\/(\d+)/, 'Firefox'],
      [/(?:Chrome|CriOS)\/(\d+)/, 'Chrome'],
      [/Version\/(\d+)[\d.]* (?:Mobile\/\S+ )?Safari/, 'Safari'],
    ];
    for (const [re, label] of tests) {
      const m = re.exec(ua);
      if (m) {
        name = label;
        version = m[1];
        break;
      }
    }
  }
  if (/HeadlessChrome/.test(ua) && name === 'Chrome') name = 'Chrome Headless';
  const platform = hints?.platform ?? '';
  let os = 'other';
  if (/android/i.test(platform) || /Android/.test(ua)) os = 'Android';
  else if (/iPhone|iPad|iPod/.test(ua)) os = 'iOS';
  else if (/windows/i.test(platform) || /Windows/.test(ua)) os = 'Windows';
  else if (/chrome ?os/i.test(platform) || /CrOS/.test(ua)) os = 'ChromeOS';
  else if (/mac/i.test(platform) || /Mac OS X|Macintosh/.test(ua)) os = 'macOS';
  else if (/linux/i.test(platform) || /Linux/.test(ua)) os = 'Linux';
  let device: Segments['device.type'] = 'desktop';
  if (/iPad|Tablet/.test(ua) || (/Android/.test(ua) && !/Mobile/.test(ua))) device = 'tablet';
  else if (hints?.mobile || /Mobi|iPhone|iPod/.test(ua)) device = 'mobile';
  return { 'browser.name': name, 'browser.version': version, 'device.type': device, 'os.name': os };
}

export function browserSegments(): Segments {
  return segmentsOf(navigator.userAgent, (navigator as Navigator & { userAgentData?: UaData }).userAgentData);
}

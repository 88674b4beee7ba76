/**
 * runBrowserLoad(): visitors in headless Chromium (driven by puppeteer-core) on the storefront's
 * browser page, at a low rate: each visit opens the page, opens a product, adds it to the cart (70%),
 * checks out (40% of those), and leaves (closing the tab, so @sonde/web's pagehide delivery runs).
 * One visitor in five declines product analytics. Needs a Chromium (Debian's `chromium`).
 */
import * as fs from 'node:fs';
import puppeteer from 'puppeteer-core';

export interface BrowserLoadOptions {
  /** Storefront base URL (its page at `/` needs DEMO_WEB_OTLP_ENDPOINT set on the storefront). */
  url: string;
  /** Visits started per minute (default 6). */
  visitsPerMinute?: number;
  /** How long; Infinity runs until `signal` aborts (or `visits` have been made). */
  durationMs: number;
  /** Stop starting visits after this many (and wait for them), however long they take: for tests. */
  visits?: number;
  /** Most visits at once (default 2). */
  maxConcurrent?: number;
  /** Chromium executable (default DEMO_CHROMIUM, else /usr/bin/chromium). */
  executablePath?: string;
  signal?: AbortSignal;
}

export interface BrowserLoadStats {
  visits: number;
  completed: number;
  errors: number;
}

export function chromiumPath(explicit?: string): string | undefined {
  const candidate = explicit ?? process.env.DEMO_CHROMIUM ?? '/usr/bin/chromium';
  return fs.existsSync(candidate) ? candidate : undefined;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

export async function runBrowserLoad(options: BrowserLoadOptions): Promise<BrowserLoadStats> {
  const executablePath = chromiumPath(options.executablePath);
  if (!executablePath) throw new Error('runBrowserLoad: no Chromium found (install chromium, or set DEMO_CHROMIUM)');
  const browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox'], timeout: 30_000 });
  const stats: BrowserLoadStats = { visits: 0, completed: 0, errors: 0 };
  const base = options.url.replace(/\/+$/, '');
  const intervalMs = 60_000 / Math.max(0.01, options.visitsPerMinute ?? 6);
  const maxConcurrent = options.maxConcurrent ?? 2;
  const running = new Set<Promise<void>>();
  const until = Date.now() + options.durationMs;

  const visit = async (n: number): Promise<void> => {
    const optOut = n % 5 === 4;
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/${optOut ? '?optout' : ''}`, { waitUntil: 'load', timeout: 15_000 });
      await page.waitForSelector('body[data-ready="1"] button.product', { timeout: 15_000 });
      const products = await page.$$('button.product');
      await products[Math.floor(Math.random() * products.length)].click();
      await page.waitForFunction('document.getElementById("detail")?.dataset.sku', { timeout: 10_000 });
      if (Math.random() < 0.7) {
        await page.click('#add');
        await page.waitForFunction('document.getElementById("status")?.textContent', { timeout: 10_000 });
        if (Math.random() < 0.4) {
          await page.evaluate('document.getElementById("status").textContent = ""');
          await page.click('#checkout');
          await page.waitForFunction('document.getElementById("status")?.textContent', { timeout: 10_000 });
        }
      }
      stats.completed++;
    } catch {
      stats.errors++;
    } finally {
      // Leaving: pagehide sends what the page still holds.
      await page.close({ runBeforeUnload: true }).catch(() => {});
    }
  };

  try {
    const more = () => options.visits === undefined || stats.visits < options.visits;
    while (!options.signal?.aborted && Date.now() < until && more()) {
      if (running.size < maxConcurrent) {
        const p = visit(stats.visits++).finally(() => running.delete(p));
        running.add(p);
      }
      await sleep(intervalMs, options.signal);
    }
    await Promise.all(running);
  } finally {
    const child = browser.process();
    await browser.close().catch(() => child?.kill('SIGKILL'));
  }
  return stats;
}

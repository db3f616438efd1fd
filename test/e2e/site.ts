/**
 * The built demo site in headless Chromium: builds examples/ with vite, serves the build with `vite preview` on
 * a free port, and opens pages that record console errors and main-thread long tasks.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { chromiumArgs, chromiumPath } from '../../tools/chromium.js';

const configFile = fileURLToPath(new URL('../../examples/vite.config.ts', import.meta.url));
export const screenshotDir = fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url));

export interface Site {
  url: string;
  browser: Browser;
  close(): Promise<void>;
}

export async function openSite(): Promise<Site> {
  await build({ configFile, logLevel: 'warn' });
  const server: PreviewServer = await preview({ configFile, logLevel: 'warn', preview: { host: '127.0.0.1', port: 0, strictPort: false } });
  const url = server.resolvedUrls!.local[0]!;
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
  mkdirSync(screenshotDir, { recursive: true });
  return {
    url,
    browser,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

export interface DemoPage {
  page: Page;
  /** Console errors and uncaught exceptions so far. */
  errors: string[];
  /** Main-thread long tasks (>= 50 ms) between two performance.now() readings. */
  longTasks(from: number, to: number): Promise<{ start: number; duration: number }[]>;
  now(): Promise<number>;
}

/** Opens a page of the site and waits for its backend picker to report (pages without one: for load). */
export async function openPage(site: Site, path: string): Promise<DemoPage> {
  const page = await site.browser.newPage({ viewport: { width: 1366, height: 900 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.addInitScript(() => {
    const w = window as unknown as { longTasks: { start: number; duration: number }[] };
    w.longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  await page.goto(new URL(path, site.url).href);
  if (await page.locator('#backend-note').count()) {
    await page.waitForFunction(() => {
      const note = document.getElementById('backend-note')!;
      return note.textContent!.startsWith('active:') || note.classList.contains('error');
    }, undefined, { timeout: 60_000 });
  } else {
    await page.waitForLoadState('load');
  }
  return {
    page,
    errors,
    now: () => page.evaluate(() => performance.now()),
    longTasks: (from, to) =>
      page.evaluate(
        ([a, b]) => (window as unknown as { longTasks: { start: number; duration: number }[] }).longTasks
          .filter((t) => t.start >= a! && t.start <= b!),
        [from, to],
      ),
  };
}

/** The page's window.demoState (plain data the pages mirror their progress into). */
export function demoState<T>(page: Page): Promise<T> {
  return page.evaluate(() => (window as unknown as { demoState: T }).demoState);
}

/** Waits until the page's demoState satisfies a condition written as a function body over `s`. */
export async function waitForState(page: Page, condition: string, timeout = 240_000): Promise<void> {
  await page.waitForFunction(`(() => { const s = window.demoState; return ${condition}; })()`, undefined, { timeout, polling: 250 });
}

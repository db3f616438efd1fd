import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import { chromiumArgs, chromiumPath } from '../tools/chromium.js';

export interface ChromiumRunOptions {
  timeoutMs: number;
  /** Receives the page's console lines; default: stderr. */
  onConsole?: (line: string) => void;
  /** Exposed to the page as window[name] (playwright's exposeFunction) before it loads. */
  expose?: Record<string, (arg: never) => void>;
}

/**
 * Serves `root` with vite on a free loopback port, opens `query` in headless Chromium (Debian's, never a
 * downloaded one), and resolves with `window.benchResult` once the page sets it, or rejects with `window.benchError`.
 */
export async function runInChromium<T>(root: string, query: string, options: ChromiumRunOptions): Promise<T> {
  const server = await createServer({
    root,
    configFile: false,
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0 },
    optimizeDeps: { include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-webgpu'] },
  });
  await server.listen();
  const address = server.httpServer!.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
  try {
    const page = await browser.newPage();
    const onConsole = options.onConsole ?? ((line: string) => console.error(`  [page] ${line}`));
    page.on('console', (m) => onConsole(m.text()));
    for (const [name, f] of Object.entries(options.expose ?? {})) await page.exposeFunction(name, f);
    await page.goto(`http://127.0.0.1:${port}/${query}`);
    await page.waitForFunction('window.benchResult !== undefined || window.benchError !== undefined', undefined, {
      timeout: options.timeoutMs, polling: 500,
    });
    const error = await page.evaluate('window.benchError');
    if (error) throw new Error(String(error));
    return (await page.evaluate('window.benchResult')) as T;
  } finally {
    await browser.close();
    await server.close();
  }
}

import { chromium } from 'playwright';
import { createServer } from 'vite';
import { chromiumArgs, chromiumPath } from './chromium.js';


/**
 * Serves `root` with vite on a free loopback port, opens `query` in headless Chromium, forwards the page's
 * console, and resolves with `read(window)` once it is defined (polled), or rejects with the page's error.
 */
export async function runInChromium<T>(root: string, query: string, read: string, timeoutMs: number): Promise<T> {
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
    page.on('console', (m) => console.error(`  [page] ${m.text()}`));
    await page.goto(`http://127.0.0.1:${port}/${query}`);
    await page.waitForFunction(`window.${read} !== undefined || window.benchError !== undefined`, undefined, { timeout: timeoutMs, polling: 500 });
    const error = await page.evaluate('window.benchError');
    if (error) throw new Error(String(error));
    return (await page.evaluate(`window.${read}`)) as T;
  } finally {
    await browser.close();
    await server.close();
  }
}

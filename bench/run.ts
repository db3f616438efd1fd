/**
 * npm run bench -- [--quick] [--backend wasm,cpu] [--browser] [--out DIR] [--summary-only]
 * The whole bench suite (parameters, layer speed, scaling, training throughput, dispatch breakdown, memory) on
 * each chosen backend. Node runs tensorflow (when @tensorflow/tfjs-node is installed), wasm and cpu, and webgpu
 * through Dawn when asked for by name and the optional `webgpu` package is installed (any machine with a GPU and a
 * Vulkan driver; here Chromium's SwiftShader through VK_ICD_FILENAMES); --browser runs webgpu, webgl, wasm and cpu
 * in headless Chromium (webgl always runs there, and webgpu when Dawn is not installed). Writes
 * DIR/<date>-<backend>.json per backend, then DIR/summary.md and DIR/charts/*.svg from every result of the
 * newest date and this mode in DIR. DIR: bench/results, or bench/results/quick with --quick. --summary-only
 * rebuilds the summary and charts from the results already in DIR, running nothing.
 */
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { backendOrder, initBackend, type BackendName } from 'deepseek-moe-tfjs';
import { runInChromium } from './browser-runner.js';
import { chromiumPath } from '../tools/chromium.js';
import { benchCharts, resultLabel } from '../tools/bench-report/charts.js';
import { benchMarkdown } from '../tools/bench-report/markdown.js';
import { benchTaskCount, runBenchSuite, type BenchMode, type BenchProgress } from '../tools/bench-suite/index.js';
import { benchSchemaId, type BenchResult } from '../tools/bench-suite/schema.js';
import { validateBenchResult } from '../tools/bench-suite/validate.js';

/** Node's backends run by default; webgpu (Dawn) only when named. */
const nodeBackends: BackendName[] = backendOrder.node.filter((b) => b !== 'webgpu');
const browserBackends: readonly BackendName[] = backendOrder.browser;

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

const usage = 'Usage: npm run bench -- [--quick] [--backend wasm,cpu,...] [--browser] [--out DIR] [--summary-only]';
let values: { quick: boolean; backend?: string; browser: boolean; out?: string; 'summary-only': boolean };
try {
  ({ values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      backend: { type: 'string' },
      browser: { type: 'boolean', default: false },
      out: { type: 'string' },
      'summary-only': { type: 'boolean', default: false },
    },
  }));
} catch (e) {
  fail(`${(e as Error).message}\n${usage}`);
}
const mode: BenchMode = values.quick ? 'quick' : 'full';
const outDir = values.out ?? fileURLToPath(new URL(values.quick ? './results/quick/' : './results/', import.meta.url));
const chosen = values.backend?.split(',').map((b) => b.trim()).filter(Boolean);
for (const b of chosen ?? []) {
  if (![...nodeBackends, ...browserBackends].includes(b as BackendName)) {
    fail(`expected --backend to list names from ${[...new Set([...nodeBackends, ...browserBackends])].join(', ')}, but got '${b}'.`);
  }
}
/** Whether webgpu can run in Node: the optional `webgpu` package (Dawn) resolves. */
function hasDawn(): boolean {
  try {
    import.meta.resolve('webgpu');
    return true;
  } catch {
    return false;
  }
}
const inNode = (b: BackendName) => nodeBackends.includes(b) || (b === 'webgpu' && hasDawn());
// Each job: a backend and where it runs. webgl exists only in the browser, webgpu in Node only through Dawn.
const jobs: { backend: BackendName; browser: boolean; explicit: boolean }[] = values.browser
  ? (chosen ?? browserBackends).map((b) => ({ backend: b as BackendName, browser: true, explicit: chosen !== undefined }))
  : (chosen ?? nodeBackends).map((b) => ({
    backend: b as BackendName, browser: !inNode(b as BackendName), explicit: chosen !== undefined,
  }));
if (jobs.some((j) => j.browser && j.backend === 'tensorflow')) {
  fail(`expected --backend with --browser to list webgpu, webgl, wasm or cpu, but got 'tensorflow'.`);
}
if (jobs.some((j) => j.browser) && !existsSync(chromiumPath)) {
  fail(`expected Chromium at ${chromiumPath} for the browser backends (apt-get install chromium, or set CHROMIUM_PATH).`);
}

const nodeEnvironment = (): BenchResult['environment'] => ({
  runtime: 'node',
  description: `Node ${process.version}, ${platform()} ${release()}, ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
  cores: cpus().length,
  device: null,
  tfjsVersion: tf.version_core,
});

const bar = new cliProgress.SingleBar({
  format: '{job} [{bar}] {value}/{total} {label}', stream: process.stderr, hideCursor: true, noTTYOutput: true, notTTYSchedule: 10_000,
}, cliProgress.Presets.shades_classic);

async function runJob(job: (typeof jobs)[number]): Promise<BenchResult | null> {
  const name = `${job.browser ? 'browser-' : ''}${job.backend}`;
  const onProgress = (p: BenchProgress) => bar.update(p.done, { label: p.label.slice(0, 70) });
  if (job.browser) {
    bar.start(benchTaskCount(mode), 0, { job: name.padEnd(16), label: 'starting Chromium' });
    const root = fileURLToPath(new URL('./browser/', import.meta.url));
    const result = await runInChromium<unknown>(root, `?backend=${job.backend}&job=suite&mode=${mode}`, {
      timeoutMs: 4 * 3_600_000,
      onConsole: () => {}, // progress arrives through benchProgress; a failure through benchError
      expose: { benchProgress: onProgress as (arg: never) => void },
    });
    bar.stop();
    return validateBenchResult(result);
  }
  try {
    await initBackend(job.backend);
  } catch (e) {
    // tfjs-node is optional: without it the default list skips 'tensorflow'; asked for by name, it is an error.
    if (job.explicit) fail((e as Error).message);
    console.error(`${job.backend}: skipped (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
  bar.start(benchTaskCount(mode), 0, { job: name.padEnd(16), label: 'starting' });
  const result = await runBenchSuite({ mode, environment: nodeEnvironment(), onProgress });
  bar.stop();
  return result;
}

mkdirSync(join(outDir, 'charts'), { recursive: true });
// A backend that fails (a lost GPU device, a page error) is reported; the others still run and are summarised.
const failed: string[] = [];
for (const job of values['summary-only'] ? [] : jobs) {
  let result: BenchResult | null;
  try {
    result = await runJob(job);
  } catch (e) {
    bar.stop();
    failed.push(job.backend);
    console.error(`bench: ${job.browser ? 'browser-' : ''}${job.backend} failed: ${(e as Error).message}`);
    continue;
  }
  if (!result) continue;
  const file = join(outDir, `${result.date.slice(0, 10)}-${resultLabel(result)}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.error(`${resultLabel(result)}: ${result.seconds.toFixed(0)} s, layer ${result.layer.ms.moe.toFixed(1)} ms ` +
    `(${result.layer.ratios.moeOverDenseActivated.toFixed(2)}× the dense FFN), ` +
    `training ${result.training.moe.tokensPerSecond.toFixed(0)} tokens/s -> ${file}`);
}

// The summary and charts cover every result of the newest date and this mode in the folder (Node and browser runs alike).
const results = readdirSync(outDir).filter((f) => f.endsWith('.json')).flatMap((f) => {
  const json = JSON.parse(readFileSync(join(outDir, f), 'utf8')) as { schema?: unknown };
  return json.schema === benchSchemaId ? [validateBenchResult(json)] : [];
}).filter((r) => r.mode === mode);
const newest = results.map((r) => r.date.slice(0, 10)).sort().at(-1);
const order = [...nodeBackends, ...browserBackends.map((b) => `browser-${b}`)];
if (results.length === 0) fail(`no ${mode} results in ${outDir} to summarise${mode === 'full' ? ' (add --quick for quick ones)' : ''}.`);
const latest = results
  .filter((r) => r.date.slice(0, 10) === newest)
  .sort((a, b) => order.indexOf(resultLabel(a)) - order.indexOf(resultLabel(b)));
for (const [name, svg] of Object.entries(benchCharts(latest))) writeFileSync(join(outDir, 'charts', name), svg);
writeFileSync(join(outDir, 'summary.md'), benchMarkdown(latest, (name) => `charts/${name}`));
console.error(`summary of ${latest.map(resultLabel).join(', ')} -> ${join(outDir, 'summary.md')}`);
if (failed.length > 0) process.exitCode = 1;

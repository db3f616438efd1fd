/**
 * npm run bench:layer -- [--backend wasm|cpu|tensorflow|webgl|webgpu] [--browser] [--runs 5] [--warmup 2] [--json]
 * Forward + backward of one DeepSeekMoE layer at the reference shape against issue 2's targets; the last line
 * is one JSON object. webgl and webgpu (and any backend with --browser) run in headless Chromium, served by vite.
 * The whole suite (scaling, training, breakdown, memory) is `npm run bench`.
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { backendOrder, initBackend, type BackendName } from 'deepseek-moe-tfjs';
import { runInChromium } from './browser-runner.js';
import { layerSection, referenceShape, timeUnit } from '../tools/bench-suite/layer.js';
import type { LayerSection } from '../tools/bench-suite/schema.js';
import { benchLayerConfig, moeUnit } from '../tools/bench-suite/steps.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    runs: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    browser: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const warmup = Number(values.warmup);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, but got '${values.runs}'.`);
if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup: expected a non-negative integer, but got '${values.warmup}'.`);

// With --json, stdout carries only the result line; the progress goes to stderr.
const say = values.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
const backends: BackendName[] = [...new Set([...backendOrder.node, ...backendOrder.browser])];
if (!backends.includes(values.backend as BackendName)) {
  throw new Error(`--backend: expected one of ${backends.join(', ')}, but got '${values.backend}'.`);
}
const inBrowser = values.browser || values.backend === 'webgl' || values.backend === 'webgpu';

let result: LayerSection;
let e8: number | null = null;
if (inBrowser) {
  say(`${values.backend} in headless Chromium, ${runs} timed runs after ${warmup} warm-up`);
  const root = fileURLToPath(new URL('./browser/', import.meta.url));
  result = await runInChromium<LayerSection>(
    root, `?backend=${values.backend}&job=layer&runs=${runs}&warmup=${warmup}`, { timeoutMs: 3_600_000 },
  );
} else {
  const backend = await initBackend(values.backend as BackendName);
  say(`backend ${backend}, ${runs} timed runs after ${warmup} warm-up`);
  result = await layerSection('reference', referenceShape, { runs, warmup }, false, say);
  // Issue 2's scaling target: E = 8 at the same activated size.
  const x = tf.randomNormal([referenceShape.tokens, referenceShape.dModel], 0, 1, 'float32', 1) as tf.Tensor2D;
  e8 = await timeUnit(moeUnit(benchLayerConfig({ ...referenceShape, nRoutedExperts: 8 }, 'dropless', false), x, false), { runs, warmup });
  x.dispose();
}
// Issue 2's targets: wasm in Node, and webgl / webgpu in the browser.
const targets = inBrowser && values.backend !== 'wasm' ? { moe: 2.5, naive: 4 } : { moe: 1.5, naive: 5 };
const r = result.ratios;
say(`moe / dense FFN of equal activated size: ${r.moeOverDenseActivated.toFixed(2)} (target <= ${targets.moe})`);
say(`  capacity 1.25 / dense FFN: ${(result.ms.moeCapacity / result.ms.denseActivated).toFixed(2)}`);
if (r.naiveOverMoe !== null) say(`masked dense path / moe: ${r.naiveOverMoe.toFixed(2)} (target >= ${targets.naive})`);
const p = result.programs;
say(`reference path / grouped: ${r.referenceOverMoe?.toFixed(2) ?? '-'}; ${p.unit}: moe ${p.moe}, dense ${p.denseActivated}`);
if (e8 !== null) say(`E=64 / E=8: ${(result.ms.moe / e8).toFixed(2)} (target <= 1.25 on wasm)`);
say(`GFLOP/s: moe ${result.gflops.moe.toFixed(2)}, plain matmul ${result.gflops.matmul.toFixed(2)}`);
console.log(JSON.stringify(result));

/**
 * The bench suite on the current TF.js backend: parameters, layer speed, scaling, training throughput, the
 * dispatch cost breakdown and memory, as one BenchResult. It runs unchanged in Node (`npm run bench`), in the
 * headless-Chromium page the Node runner drives, and in the demos' worker (the bench page).
 */
import * as tf from '@tensorflow/tfjs';
import { breakdownSection } from './breakdown.js';
import { layerSection, referenceShape, v3Shape } from './layer.js';
import { paramsSection } from './params.js';
import { memorySection, scalingSection, seriesPlans, seriesPoints } from './scaling.js';
import { benchSchemaId, breakdownStages, type BenchResult, type LayerShape } from './schema.js';
import { trainingPlans, trainingSection } from './training.js';

export type BenchMode = 'quick' | 'full';

/** Quick: a one-minute subset (fewer tokens, runs and points); full: the reference shape. */
export const benchSettings: Record<BenchMode, { tokens: number; runs: number; warmup: number }> = {
  quick: { tokens: 256, runs: 3, warmup: 1 },
  full: { tokens: 2048, runs: 10, warmup: 2 },
};

export interface BenchProgress {
  done: number;
  total: number;
  label: string;
}

export interface BenchSuiteOptions {
  mode: BenchMode;
  environment: BenchResult['environment'];
  /** Called after each timed unit. */
  onProgress?: (p: BenchProgress) => void;
}

/** The layer shapes besides the reference at the run's token count: name, tokens, shape, whether to time the slow paths. */
export const otherLayerPlans: Record<BenchMode, [string, number, Omit<LayerShape, 'tokens'>, boolean][]> = {
  quick: [['DeepSeek-V3 shape', 256, v3Shape, false]],
  full: [['reference', 256, referenceShape, true], ['DeepSeek-V3 shape', 2048, v3Shape, false]],
};

/** Progress ticks of a layer section: dense, grouped, (reference), capacity, (masked), matmul. */
const layerTicks = (slowPaths: boolean) => (slowPaths ? 6 : 4);

/** How many progress ticks a run makes: params, the layers, the series points twice, training, the breakdown. */
export function benchTaskCount(mode: BenchMode): number {
  const layers = layerTicks(true) + otherLayerPlans[mode].reduce((n, [, , , slow]) => n + layerTicks(slow), 0);
  return 1 + layers + 2 * seriesPoints(seriesPlans[mode]).length + 1 + 1 + breakdownStages.length;
}

export async function runBenchSuite(options: BenchSuiteOptions): Promise<BenchResult> {
  const { mode } = options;
  if (mode !== 'quick' && mode !== 'full') throw new Error(`bench: expected mode 'quick' or 'full', but got '${String(mode)}'.`);
  const backend = tf.getBackend();
  // Synchronous reads lose the device on webgpu (SwiftShader) and stall webgl; there every read is awaited.
  const asyncReads = backend === 'webgpu' || backend === 'webgl';
  const settings = benchSettings[mode];
  const repeats = { runs: settings.runs, warmup: settings.warmup };
  const total = benchTaskCount(mode);
  let done = 0;
  const tick = (label: string) => options.onProgress?.({ done: ++done, total, label });
  const started = performance.now();
  const date = new Date().toISOString();

  const params = paramsSection();
  tick('parameters');
  const shape = { ...referenceShape, tokens: settings.tokens };
  const layer = await layerSection('reference', shape, repeats, asyncReads, tick);
  const otherLayers = [];
  for (const [name, tokens, s, slowPaths] of otherLayerPlans[mode]) {
    otherLayers.push(await layerSection(name, { ...s, tokens }, repeats, asyncReads, tick, slowPaths));
  }
  const { nRoutedExperts: _E, topK: _K, nExpertGroups: _G, topKGroups: _KG, ...seriesShape } = shape;
  const scaling = await scalingSection(seriesShape, seriesPlans[mode], repeats, asyncReads, tick);
  const training = await trainingSection(trainingPlans[mode], asyncReads, tick);
  const breakdown = await breakdownSection(shape, repeats, asyncReads, tick);
  const memory = await memorySection(seriesShape, seriesPlans[mode], asyncReads, tick);
  return {
    schema: benchSchemaId, date, mode, backend, environment: options.environment, settings: { ...settings },
    seconds: (performance.now() - started) / 1000,
    params, layer, otherLayers, scaling, training, breakdown, memory,
  };
}

/** The layer section: one DeepSeekMoE layer at the reference shape against a dense FFN and the masked path. */
import * as tf from '@tensorflow/tfjs';
import { benchLayerConfig, denseUnit, layerParams, moeUnit, twinHidden, type TimedUnit } from './steps.js';
import { timeStep, type Repeats } from './timing.js';
import type { LayerSection, LayerShape } from './schema.js';

/** The reference shape of issue 2: T = 2048 tokens, d = 128, 64 routed experts of h = 64, top-6, 2 shared. */
export const referenceShape: LayerShape = { tokens: 2048, dModel: 128, nRoutedExperts: 64, expertHiddenDim: 64, topK: 6, nSharedExperts: 2 };

/** Runs `unit`'s timed steps and frees its weights. */
export async function timeUnit(unit: TimedUnit, repeats: Repeats): Promise<number> {
  try {
    return await timeStep(unit.step, repeats);
  } finally {
    unit.dispose();
  }
}

/**
 * Forward + backward of the layer at `shape` (dropless and capacity 1.25), of a dense SwiGLU of equal activated
 * width, of the masked path that runs every expert on every token (fewer runs: it is the slow one), and of one
 * plain matmul [T, d] x [d, hidden] as the backend's reachable GFLOP/s.
 */
export async function layerSection(shape: LayerShape, repeats: Repeats, asyncReads: boolean, log: (line: string) => void): Promise<LayerSection> {
  const x = tf.randomNormal([shape.tokens, shape.dModel], 0, 1, 'float32', 1) as tf.Tensor2D;
  try {
    const hidden = twinHidden(shape, 'activated');
    const denseActivated = await timeUnit(denseUnit(x, hidden, 10), repeats);
    log(`dense SwiGLU, hidden ${hidden}: ${denseActivated.toFixed(1)} ms`);
    const moe = await timeUnit(moeUnit(benchLayerConfig(shape, 'dropless', asyncReads), x, asyncReads), repeats);
    log(`DeepSeekMoE dropless, E=${shape.nRoutedExperts}: ${moe.toFixed(1)} ms`);
    const moeCapacity = await timeUnit(moeUnit(benchLayerConfig(shape, 'capacity', asyncReads), x, asyncReads), repeats);
    log(`DeepSeekMoE capacity 1.25: ${moeCapacity.toFixed(1)} ms`);
    const naive = await timeUnit(moeUnit(benchLayerConfig(shape, 'dense', asyncReads), x, asyncReads), { runs: Math.max(1, Math.ceil(repeats.runs / 2)), warmup: 1 });
    log(`DeepSeekMoE masked dense path: ${naive.toFixed(1)} ms`);
    const w = tf.randomNormal([shape.dModel, hidden], 0, 1, 'float32', 20);
    const matmul = await timeStep(() => tf.tidy(() => tf.sum(tf.matMul(x, w))) as tf.Scalar, { runs: repeats.runs * 2, warmup: repeats.warmup });
    w.dispose();
    log(`plain matmul [${shape.tokens}, ${shape.dModel}] x [${shape.dModel}, ${hidden}]: ${matmul.toFixed(2)} ms`);
    const moeFlops = 3 * layerParams(shape).flopsPerToken * shape.tokens; // forward + 2x backward
    return {
      shape,
      ms: { moe, moeCapacity, denseActivated, naive, matmul },
      ratios: { moeOverDenseActivated: moe / denseActivated, naiveOverMoe: naive / moe, capacityOverDropless: moeCapacity / moe },
      gflops: { moe: moeFlops / (moe * 1e6), matmul: (2 * shape.tokens * shape.dModel * hidden) / (matmul * 1e6) },
    };
  } finally {
    x.dispose();
  }
}

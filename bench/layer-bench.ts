import * as tf from '@tensorflow/tfjs';
import {
  countParams, createMoEWeights, disposeMoEWeights, measureDroplessCapacity, moeForward, resolveMoEConfig, swiGLU,
  type DeepSeekMoEConfig, type MoEConfigInput, type MoEForwardOptions, type MoEWeights,
} from '../src/index.js';

/** The reference shape of issue 2: T = 2048 tokens, d = 128, 64 routed experts of h = 64, top-6, 2 shared. */
export const referenceShape = { tokens: 2048, dModel: 128, nRoutedExperts: 64, expertHiddenDim: 64, topK: 6, nSharedExperts: 2 };
export const scalingExperts = [8, 16, 32, 64];

export interface LayerBenchResult {
  backend: string;
  shape: typeof referenceShape;
  ms: { moe: number; moeCapacity: number; denseActivated: number; naive: number };
  ratios: { moeOverDenseActivated: number; naiveOverMoe: number; e64OverE8: number };
  scaling: { experts: number; ms: number }[];
  gflops: { moe: number; matmulPeak: number };
  runs: number;
}

export interface LayerBenchOptions {
  runs: number;
  warmup: number;
  /** Sync reads lose the device on webgpu/SwiftShader: size dropless slots with an async read first. */
  asyncCapacity: boolean;
  /** Tokens per call; default the reference shape's 2048. */
  tokens?: number;
  log?: (line: string) => void;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Times `step` (which returns one scalar forcing every result) after warm-up; median in ms. */
async function time(step: () => Promise<tf.Scalar>, runs: number, warmup: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    const done = await step();
    await done.data();
    done.dispose();
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return median(times);
}

/** Forward + backward of f w.r.t. every input, reduced to one scalar so a single read forces all of it. */
function forwardBackward(f: (...xs: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    const grads = tf.grads(f)(inputs);
    return grads.map((g) => tf.sum(g)).reduce((a, b) => tf.add(a, b)) as tf.Scalar;
  });
}

/**
 * A training loss of one layer call, mean(y^2) + balance losses, as a function of [x, ...trainable weights]
 * for tf.grads; `inputs(x)` lists those tensors in order.
 */
export function moeLoss(config: DeepSeekMoEConfig, w: MoEWeights, options: MoEForwardOptions = {}) {
  const names = (Object.keys(w) as (keyof MoEWeights)[]).filter((k) => w[k] !== null && k !== 'expertBias');
  const f = (...args: tf.Tensor[]) => {
    const weights = { ...w } as Record<string, tf.Tensor | null>;
    names.forEach((n, i) => (weights[n] = args[i + 1]!));
    const { output, losses } = moeForward(args[0]!, weights as unknown as MoEWeights, config, options);
    return tf.add(tf.mean(tf.square(output)), losses.total) as tf.Scalar;
  };
  return { f, inputs: (x: tf.Tensor) => [x, ...names.map((n) => w[n]!)] };
}

function moeStep(input: MoEConfigInput, x: tf.Tensor, asyncCapacity: boolean, owned: MoEWeights[]) {
  const config = resolveMoEConfig(asyncCapacity ? { ...input, checkFinite: false } : input);
  const w = createMoEWeights(config);
  owned.push(w);
  return async () => {
    const capacity = asyncCapacity && config.dispatch === 'dropless' ? await measureDroplessCapacity(x, w, config) : undefined;
    const { f, inputs } = moeLoss(config, w, capacity === undefined ? {} : { capacity });
    return forwardBackward(f, inputs(x));
  };
}

export async function runLayerBench(options: LayerBenchOptions): Promise<LayerBenchResult> {
  const { runs, warmup, asyncCapacity } = options;
  const log = options.log ?? (() => {});
  const s = { ...referenceShape, tokens: options.tokens ?? referenceShape.tokens };
  const owned: MoEWeights[] = [];
  const x = tf.randomNormal([s.tokens, s.dModel], 0, 1, 'float32', 1);
  const layer = (nRoutedExperts: number, dispatch: 'dropless' | 'capacity' | 'dense'): MoEConfigInput => ({
    dModel: s.dModel, nRoutedExperts, topK: s.topK, expertHiddenDim: s.expertHiddenDim, nSharedExperts: s.nSharedExperts,
    scoreFunc: 'sigmoid', normTopK: true, auxFreeBias: true, seqAlpha: 0.0001, dispatch, seed: 1,
  });

  const hidden = (s.topK + s.nSharedExperts) * s.expertHiddenDim;
  const dense = [1, 2, 3].map((i) => tf.randomNormal(i < 3 ? [s.dModel, hidden] : [hidden, s.dModel], 0, 0.05, 'float32', 10 + i));
  const denseStep = async () =>
    forwardBackward((...a: tf.Tensor[]) => tf.mean(tf.square(swiGLU(a[0] as tf.Tensor2D, a[1] as tf.Tensor2D, a[2] as tf.Tensor2D, a[3] as tf.Tensor2D))) as tf.Scalar, [x, dense[0]!, dense[1]!, dense[2]!]);

  const denseActivated = await time(denseStep, runs, warmup);
  log(`dense SwiGLU, hidden ${hidden}: ${denseActivated.toFixed(1)} ms`);
  const moe = await time(moeStep(layer(s.nRoutedExperts, 'dropless'), x, asyncCapacity, owned), runs, warmup);
  log(`DeepSeekMoE dropless, E=${s.nRoutedExperts}: ${moe.toFixed(1)} ms`);
  const moeCapacity = await time(moeStep(layer(s.nRoutedExperts, 'capacity'), x, asyncCapacity, owned), runs, warmup);
  log(`DeepSeekMoE capacity 1.25, E=${s.nRoutedExperts}: ${moeCapacity.toFixed(1)} ms`);
  const naive = await time(moeStep(layer(s.nRoutedExperts, 'dense'), x, asyncCapacity, owned), Math.max(1, Math.ceil(runs / 2)), 1);
  log(`DeepSeekMoE masked dense path: ${naive.toFixed(1)} ms`);
  const scaling: { experts: number; ms: number }[] = [];
  for (const experts of scalingExperts) {
    const ms = experts === s.nRoutedExperts ? moe : await time(moeStep(layer(experts, 'dropless'), x, asyncCapacity, owned), runs, warmup);
    scaling.push({ experts, ms });
    log(`  E=${experts}: ${ms.toFixed(1)} ms`);
  }

  // Peak: a plain [T, d] x [d, hidden] matmul, forward only.
  const w = tf.randomNormal([s.dModel, hidden], 0, 1, 'float32', 20);
  const matmulMs = await time(async () => tf.tidy(() => tf.sum(tf.matMul(x, w))) as tf.Scalar, runs * 2, warmup);
  const matmulPeak = (2 * s.tokens * s.dModel * hidden) / (matmulMs * 1e6);
  const moeFlops = 3 * countParams(layer(s.nRoutedExperts, 'dropless')).flopsPerToken * s.tokens; // forward + 2x backward
  const e8 = scaling[0]!.ms;
  tf.dispose([x, w, ...dense]);
  owned.forEach(disposeMoEWeights);
  return {
    backend: tf.getBackend(),
    shape: s,
    ms: { moe, moeCapacity, denseActivated, naive },
    ratios: { moeOverDenseActivated: moe / denseActivated, naiveOverMoe: naive / moe, e64OverE8: moe / e8 },
    scaling,
    gflops: { moe: moeFlops / (moe * 1e6), matmulPeak },
    runs,
  };
}

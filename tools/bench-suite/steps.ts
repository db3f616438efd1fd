/** The timed units: one DeepSeekMoE layer call and one dense SwiGLU FFN, forward + backward to a scalar loss. */
import * as tf from '@tensorflow/tfjs';
import {
  countLayerParams, createMoEWeights, disposeMoEWeights, moeForward, resolveMoEConfig, swiGLU,
  type DeepSeekMoEConfig, type DispatchMode, type MoEOutput, type MoEWeights,
} from 'deepseek-moe-tfjs';
import { oracleForward, oracleSlots, type OraclePath } from '../oracle/forward.js';
import { forwardBackward } from './timing.js';
import type { LayerShape } from './schema.js';

/** The layer config the bench times: DeepSeek-V3's gate (sigmoid, normalised top-K, selection bias). */
export function benchLayerConfig(
  s: Omit<LayerShape, 'tokens' | 'nExpertGroups' | 'topKGroups'> & Partial<LayerShape>, dispatch: DispatchMode, asyncReads: boolean,
): DeepSeekMoEConfig {
  return resolveMoEConfig({
    dModel: s.dModel, nRoutedExperts: s.nRoutedExperts, topK: s.topK, expertHiddenDim: s.expertHiddenDim, nSharedExperts: s.nSharedExperts,
    nExpertGroups: s.nExpertGroups ?? 1, topKGroups: s.topKGroups ?? 1, groupScoreFunc: 'sumTop2',
    scoreFunc: 'sigmoid', normTopK: true, auxFreeBias: true, seqAlpha: 0.0001, dispatch, seed: 1,
    // Off where reads must be awaited: the finite check is a synchronous read.
    checkFinite: !asyncReads,
  });
}

/** The layer's parameter counts (router, bias, routed and shared experts). */
export function layerParams(
  s: Omit<LayerShape, 'tokens' | 'nExpertGroups' | 'topKGroups'>,
): { total: number; activated: number; flopsPerToken: number } {
  const c = countLayerParams(benchLayerConfig(s, 'dropless', false));
  return { total: c.total, activated: c.activated, flopsPerToken: c.flopsPerToken };
}

/**
 * A training loss of one layer call, mean(y^2) + balance losses, as a function of [x, ...trainable weights]
 * for tf.grads; `inputs(x)` lists those tensors in order.
 */
export function moeLoss(w: MoEWeights, forward: (x: tf.Tensor, weights: MoEWeights) => MoEOutput) {
  const names = (Object.keys(w) as (keyof MoEWeights)[]).filter((k) => w[k] !== null && k !== 'expertBias');
  const f = (...args: tf.Tensor[]) => {
    const weights = { ...w } as Record<string, tf.Tensor | null>;
    names.forEach((n, i) => (weights[n] = args[i + 1]!));
    const { output, losses } = forward(args[0]!, weights as unknown as MoEWeights);
    return tf.add(tf.mean(tf.square(output)), losses.total) as tf.Scalar;
  };
  return { f, inputs: (x: tf.Tensor) => [x, ...names.map((n) => w[n]!)] };
}

export interface TimedUnit {
  /** Forward + backward, reduced to one scalar. */
  step: () => Promise<tf.Scalar>;
  /** Forward only (the loss). */
  forward: () => Promise<tf.Scalar>;
  /** Forward + backward without the reduction `step` adds to force the result: what countPrograms counts. */
  gradients: () => Promise<void>;
  /** The unit's own weight tensors. */
  weights: tf.Tensor[];
  dispose: () => void;
}

/**
 * Forward + backward of the layer on x: the library's moeForward, or the oracle's 'slots' or 'masked' path (the
 * stock-op computations it replaced, tools/oracle). With `asyncReads` the oracle's 'dropless' slots are measured
 * with an awaited read first (part of the timed step), since a synchronous read loses the device on webgpu
 * (SwiftShader); the library's path reads nothing there (checkFinite off).
 */
export function moeUnit(config: DeepSeekMoEConfig, x: tf.Tensor2D, asyncReads: boolean, path: 'layer' | OraclePath = 'layer'): TimedUnit {
  const w = createMoEWeights(config);
  const loss = async () => {
    if (path === 'layer') return moeLoss(w, (xx, ww) => moeForward(xx, ww, config)).f;
    const slots = asyncReads && path === 'slots' && config.dispatch === 'dropless' ? await oracleSlots(x, w, config) : undefined;
    return moeLoss(w, (xx, ww) => oracleForward(xx, ww, config, { path, slots })).f;
  };
  const { inputs } = moeLoss(w, (xx, ww) => moeForward(xx, ww, config));
  return {
    step: async () => forwardBackward(await loss(), inputs(x)),
    forward: async () => {
      const fn = await loss();
      return tf.tidy(() => fn(...inputs(x)));
    },
    gradients: async () => {
      const fn = await loss();
      tf.dispose(tf.tidy(() => tf.grads(fn)(inputs(x))));
    },
    weights: Object.values(w).filter((t): t is tf.Tensor => t !== null),
    dispose: () => disposeMoEWeights(w),
  };
}

/** A dense SwiGLU FFN of `hidden` width on x, the MoE's twin of equal activated or equal total parameters. */
export function denseUnit(x: tf.Tensor2D, hidden: number, seed: number): TimedUnit {
  const d = x.shape[1];
  const scale = 1 / Math.sqrt(d);
  const w = ([[d, hidden], [d, hidden], [hidden, d]] as [number, number][])
    .map((shape, i) => tf.randomNormal(shape, 0, scale, 'float32', seed + i) as tf.Tensor2D);
  const loss = (...a: tf.Tensor[]) => tf.mean(tf.square(
    swiGLU(a[0] as tf.Tensor2D, a[1] as tf.Tensor2D, a[2] as tf.Tensor2D, a[3] as tf.Tensor2D),
  )) as tf.Scalar;
  return {
    step: async () => forwardBackward(loss, [x, ...w]),
    forward: async () => tf.tidy(() => loss(x, ...w)),
    gradients: async () => tf.dispose(tf.tidy(() => tf.grads(loss)([x, ...w]))),
    weights: w,
    dispose: () => tf.dispose(w),
  };
}

/**
 * Hidden widths of the dense twins: the shared plus K (activated) or E (total) experts' SwiGLU weights and the
 * router's d E, as one FFN (3 d width parameters), as denseTwin does for whole models.
 */
export function twinHidden(s: Omit<LayerShape, 'tokens' | 'nExpertGroups' | 'topKGroups'>, matches: 'activated' | 'total'): number {
  const experts = s.nSharedExperts + (matches === 'activated' ? s.topK : s.nRoutedExperts);
  return Math.round((experts * 3 * s.dModel * s.expertHiddenDim + s.dModel * s.nRoutedExperts) / (3 * s.dModel));
}

import * as tf from '@tensorflow/tfjs';
import type { DeepSeekMoEConfig } from './config.js';
import { linear, matMulT } from '../backend-ops.js';
import { customOp, stopGradient } from '../ops.js';
import { selectExperts } from './grouped.js';

/** What the gate computes for T tokens. */
export interface RouterOutput {
  /**
   * Router logits, x Wg: [T, E]; null when the z-loss is off: the scores then come from one op whose backward needs
   * only the scores, so the logits are not kept (E floats per token).
   */
  logits: tf.Tensor2D | null;
  /** Unbiased affinities s (softmax or sigmoid of the logits): [T, E]. Gate weights come from these. */
  scores: tf.Tensor2D;
  /** The K chosen experts per token, picked on the biased, group-masked scores; off the gradient tape: [T, K]. */
  topKIndices: tf.Tensor2D;
}

/**
 * DeepSeek-V3's Gate up to the choice of experts: scores, bias for selection only, group-limited top-k, picked by
 * the selectExperts kernel (one program; TF.js's TopK alone is tens of programs on webgpu).
 */
export function route(
  x: tf.Tensor2D, // [T, d]
  routerKernel: tf.Tensor2D, // [d, E]
  expertBias: tf.Tensor1D | null, // [E]
  config: DeepSeekMoEConfig,
  training: boolean,
  jitterSeed?: number, // seeds the jitter noise, so runs repeat and resume bit for bit; unseeded without it
): RouterOutput {
  const j = config.routerJitter;
  const routerInput = training && j > 0 ? tf.mul(x, tf.randomUniform(x.shape, 1 - j, 1 + j, 'float32', jitterSeed)) : x;
  let logits: tf.Tensor2D | null = null;
  let scores: tf.Tensor2D;
  if (config.zLossCoef === 0) {
    scores = routerScores(routerInput as tf.Tensor2D, routerKernel, config);
  } else {
    logits = linear(routerInput as tf.Tensor2D, routerKernel); // [T, E]
    scores = (config.scoreFunc === 'softmax' ? tf.softmax(logits) : tf.sigmoid(logits)) as tf.Tensor2D;
  }
  const detached = stopGradient(scores);
  return { logits, scores, topKIndices: selectExperts(detached, expertBias, config) };
}

/**
 * s = sigmoid(x Wg) or softmax(x Wg) [T, E] as one op that keeps only s for its backward (the logits are freed
 * as soon as s exists): dLogits = s (1 - s) dS, or s (dS - <dS, s>) for softmax.
 */
export function routerScores(x: tf.Tensor2D, routerKernel: tf.Tensor2D, config: DeepSeekMoEConfig): tf.Tensor2D {
  const softmax = config.scoreFunc === 'softmax';
  const op = customOp(([xIn, wIn], save) => {
    const logits = matMulT(xIn as tf.Tensor2D, wIn as tf.Tensor2D);
    const s = (softmax ? tf.softmax(logits) : tf.sigmoid(logits)) as tf.Tensor2D;
    save([xIn!, wIn!, s]);
    const gradFunc = (dS: tf.Tensor, saved: tf.Tensor[]) => {
      const [x0, w0, s0] = saved as tf.Tensor2D[];
      const dLogits = (softmax
        ? tf.mul(s0!, tf.sub(dS, tf.sum(tf.mul(dS, s0!), -1, true)))
        : tf.mul(dS, tf.mul(s0!, tf.sub(1, s0!)))) as tf.Tensor2D;
      return [matMulT(dLogits, w0!, false, true), matMulT(x0!, dLogits, true)];
    };
    return { value: s, gradFunc };
  });
  return op(x, routerKernel) as tf.Tensor2D;
}

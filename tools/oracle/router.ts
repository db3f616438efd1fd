import * as tf from '@tensorflow/tfjs';
import type { DeepSeekMoEConfig } from 'deepseek-moe-tfjs';
import { oneHotFloat } from '../../src/ops.js';

/**
 * The selection in stock ops. Groups outside a token's topKGroups are masked with -Infinity (never 0), so a
 * negative biased score can never lose to a masked expert. `scores` must be off the tape: TopK has no gradient.
 */
export function selectTopK(scores: tf.Tensor2D, expertBias: tf.Tensor1D | null, config: DeepSeekMoEConfig): tf.Tensor2D {
  const { nRoutedExperts: E, topK: K, nExpertGroups: G, topKGroups } = config;
  const T = scores.shape[0];
  let selection = scores;
  if (expertBias !== null) selection = tf.add(selection, expertBias) as tf.Tensor2D;
  if (G > 1) {
    const grouped = tf.reshape(selection, [T, G, E / G]);
    const groupScores =
      config.groupScoreFunc === 'max' ? tf.max(grouped, -1) : tf.sum(tf.topk(grouped, 2).values, -1); // [T, G]
    const keptGroups = tf.sum(oneHotFloat(tf.topk(groupScores, topKGroups).indices, G), 1); // [T, G], 0 or 1
    const masked = tf.where(
      tf.greater(tf.expandDims(keptGroups, -1), 0).broadcastTo([T, G, E / G]),
      grouped,
      tf.fill([T, G, E / G], -Infinity),
    );
    selection = tf.reshape(masked, [T, E]) as tf.Tensor2D;
  }
  return tf.topk(selection, K).indices as tf.Tensor2D; // [T, K]
}

/** Turns the K gathered affinities into gate weights: optional renormalisation, then routeScale. */
export function gateWeights(chosenScores: tf.Tensor2D, config: DeepSeekMoEConfig): tf.Tensor2D {
  let g = chosenScores; // [T, K]
  if (config.normTopK) g = tf.div(g, tf.sum(g, -1, true)) as tf.Tensor2D;
  return config.routeScale === 1 ? g : (tf.mul(g, config.routeScale) as tf.Tensor2D);
}

import * as tf from '@tensorflow/tfjs';
import type { DeepSeekMoEConfig } from './config.js';

/** The auxiliary losses of one MoE call; each is 0 when its factor is 0. */
export interface BalanceLosses {
  /** alpha1 * sum_i f_i P_i (DeepSeekMoE's expert-level balance loss). */
  expertBalance: tf.Scalar;
  /** alpha2 * sum_g f'_g P'_g over expert groups (DeepSeekMoE's device-level balance loss). */
  deviceBalance: tf.Scalar;
  /** DeepSeek-V3's sequence-wise balance loss, averaged over sequences. */
  seqBalance: tf.Scalar;
  /** zLossCoef * mean_t logsumexp(logits_t)^2. */
  zLoss: tf.Scalar;
  /** The sum of the above: add this to the task loss. */
  total: tf.Scalar;
}

/** Routing statistics: tensors, so nothing is read back unless the caller reads them. */
export interface RoutingStats {
  /** Share of the T * K assignments each expert was chosen for, before any drop; sums to 1: [E]. */
  expertLoad: tf.Tensor1D;
  /** Share of assignments dropped for capacity (0 for dropless and dense). */
  droppedFraction: tf.Scalar;
  /** max_i load_i / mean load - 1; 0 is perfect balance. */
  maxViolation: tf.Scalar;
  /** Mean over tokens of the entropy (nats) of the affinities normalised to sum 1. */
  routerEntropy: tf.Scalar;
}

/** Affinities normalised to sum 1 per token (DeepSeek-V3's s'); softmax scores already are. */
export function normalisedScores(scores: tf.Tensor2D, config: DeepSeekMoEConfig): tf.Tensor2D {
  return config.scoreFunc === 'softmax' ? scores : tf.div(scores, tf.sum(scores, -1, true));
}

/**
 * P_i = mean_t s'_(i,t) over each of `nSequences` equal blocks of tokens: [nSequences, E]. Written as a matmul of
 * the per-token weights 1 / (S sum_j s_(t,j)) with the scores, so no [T, E] intermediate is built (activation
 * memory then follows T K, not T E, beyond the router's own logits and scores).
 */
export function meanAffinity(scores: tf.Tensor2D, nSequences: number, config: DeepSeekMoEConfig): tf.Tensor2D {
  const [T, E] = scores.shape;
  const S = T / nSequences;
  const rowWeight = config.scoreFunc === 'softmax' ? tf.fill([T], 1 / S) : tf.div(1 / S, tf.sum(scores, -1)); // [T]
  if (nSequences === 1) return tf.matMul(tf.reshape(rowWeight, [1, T]), scores) as tf.Tensor2D;
  const perSequence = tf.matMul(tf.reshape(rowWeight, [nSequences, 1, S]), tf.reshape(scores, [nSequences, S, E])); // [B, 1, E]
  return tf.reshape(perSequence, [nSequences, E]) as tf.Tensor2D;
}

/** sum_i f_i P_i with f_i = E / (K T) count_i and P_i = mean_t s'_(i,t); equals 1 at perfect balance. */
function balanceTerm(counts: tf.Tensor, meanP: tf.Tensor, E: number, K: number, T: number): tf.Tensor {
  const f = tf.mul(counts, E / (K * T));
  return tf.sum(tf.mul(f, meanP), -1);
}

/**
 * The balance losses. `counts` [E] are the tokens each expert was chosen for and `sequenceCounts()` the same per
 * sequence, [nSequences, E] (asked for only when seqAlpha > 0); both are off the tape, counts carry no gradient,
 * as in the papers. `scores` and `logits` [T, E] are on the tape.
 */
export function balanceLosses(
  logits: tf.Tensor2D,
  scores: tf.Tensor2D,
  counts: tf.Tensor1D,
  sequenceCounts: () => tf.Tensor2D,
  nSequences: number,
  config: DeepSeekMoEConfig,
): BalanceLosses {
  const { nRoutedExperts: E, topK: K, nExpertGroups: G } = config;
  const T = scores.shape[0];
  const zero = tf.scalar(0);
  const meanP = config.alpha1 > 0 || config.alpha2 > 0 ? tf.reshape(meanAffinity(scores, 1, config), [E]) : zero; // [E]

  const expertBalance = config.alpha1 > 0 ? tf.mul(config.alpha1, balanceTerm(counts, meanP, E, K, T)) : zero;

  let deviceBalance: tf.Tensor = zero;
  if (config.alpha2 > 0) {
    const f = tf.reshape(tf.mul(counts, E / (K * T)), [G, E / G]);
    const P = tf.reshape(meanP, [G, E / G]);
    deviceBalance = tf.mul(config.alpha2, tf.sum(tf.mul(tf.mean(f, 1), tf.sum(P, 1))));
  }

  let seqBalance: tf.Tensor = zero;
  if (config.seqAlpha > 0) {
    const S = T / nSequences;
    const perSeq = balanceTerm(sequenceCounts(), meanAffinity(scores, nSequences, config), E, K, S); // [B]
    seqBalance = tf.mul(config.seqAlpha, tf.mean(perSeq));
  }

  const zLoss = config.zLossCoef > 0 ? tf.mul(config.zLossCoef, tf.mean(tf.square(tf.logSumExp(logits, -1)))) : zero;

  // Only the losses that are on are added (each add is a GPU program); chained adds, not tf.addN, which sums
  // wrongly on webgpu (TF.js 4.22) for some input counts.
  const on = [expertBalance, deviceBalance, seqBalance, zLoss].filter((l) => l !== zero);
  const total = on.length === 0 ? zero : on.reduce((a, b) => tf.add(a, b));
  return {
    expertBalance: expertBalance as tf.Scalar,
    deviceBalance: deviceBalance as tf.Scalar,
    seqBalance: seqBalance as tf.Scalar,
    zLoss: zLoss as tf.Scalar,
    total: total as tf.Scalar,
  };
}

/** Load, violation and entropy; no reads. `counts` [E] are tokens per expert before drops. */
export function routingStats(
  counts: tf.Tensor1D,
  scores: tf.Tensor2D,
  droppedFraction: tf.Scalar,
  config: DeepSeekMoEConfig,
  routerEntropy: tf.Scalar = meanRouterEntropy(scores, config),
): RoutingStats {
  const expertLoad = tf.div(counts, tf.sum(counts)) as tf.Tensor1D;
  const maxViolation = tf.sub(tf.div(tf.max(counts), tf.mean(counts)), 1) as tf.Scalar;
  return { expertLoad, droppedFraction, maxViolation, routerEntropy };
}

/**
 * Mean over tokens of the entropy of the normalised affinities. In a scope of its own, so its [T, E]
 * intermediates are freed at once; moeForward takes it right after routing, before the experts' activations
 * exist, so those intermediates never add to the layer's peak memory.
 */
export function meanRouterEntropy(scores: tf.Tensor2D, config: DeepSeekMoEConfig): tf.Scalar {
  return tf.tidy(() => {
    const p = normalisedScores(scores, config);
    return tf.mean(tf.neg(tf.sum(tf.mul(p, tf.log(tf.maximum(p, 1e-12))), -1))) as tf.Scalar;
  });
}

/**
 * DeepSeek-V3's auxiliary-loss-free update, b_i += gamma * sign(meanLoad - load_i): underloaded experts become
 * more likely to be picked. `counts` [E] are the tokens each expert was chosen for during the step.
 */
export function updateExpertBias(bias: tf.Variable, counts: tf.Tensor1D, gamma: number): void {
  if (gamma === 0) return;
  tf.tidy(() => {
    bias.assign(tf.add(bias, tf.mul(gamma, tf.sign(tf.sub(tf.mean(counts), counts)))));
  });
}

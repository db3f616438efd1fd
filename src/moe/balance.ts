import * as tf from '@tensorflow/tfjs';
import type { BiasUpdate, DeepSeekMoEConfig } from './config.js';
import { affinityBalance, meanRouterEntropyOf } from './grouped.js';
import { stopGradient } from '../ops.js';
import type { BalanceLoad } from './moe.js';

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

/** Routing statistics: tensors, so nothing is read back unless the caller reads them; none carries a gradient. */
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

/**
 * The balance losses. `counts` [E] are the tokens each expert was chosen for and `sequenceCounts()` the same per
 * sequence, [nSequences, E] (asked for only when seqAlpha > 0); both are off the tape, counts carry no gradient,
 * as in the papers. `scores` and `logits` [T, E] are on the tape. The expert, device and sequence losses are the
 * affinityBalance kernel (one program forward and one backward each, instead of about ten stock ops; the stock-op
 * formulas are the oracle they are tested against, tools/oracle/balance.ts). `load` (balanceScope
 * 'globalBatch' under gradient accumulation) gives the counts and token count f_i comes from instead of `counts`
 * and this call's T: the expert- and device-level losses then equal this call's share of the global batch's loss.
 */
export function balanceLosses(
  logits: tf.Tensor2D | null,
  scores: tf.Tensor2D,
  counts: tf.Tensor1D,
  sequenceCounts: () => tf.Tensor2D,
  nSequences: number,
  config: DeepSeekMoEConfig,
  load: BalanceLoad = { counts, tokens: scores.shape[0] },
): BalanceLosses {
  const zero = tf.scalar(0);
  const { expertBalance, deviceBalance, seqBalance } = kernelBalance(scores, load, sequenceCounts, nSequences, config, zero);

  if (config.zLossCoef > 0 && logits === null) {
    throw new Error('balanceLosses logits: expected the router logits for the z-loss, but got null.');
  }
  const zLoss = config.zLossCoef > 0 ? tf.mul(config.zLossCoef, tf.mean(tf.square(tf.logSumExp(logits!, -1)))) : zero;

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

export type BalanceTerms = Pick<BalanceLosses, 'expertBalance' | 'deviceBalance' | 'seqBalance'>;

/**
 * The same losses as sum_t sum_i w_(b(t), i) s'_(t,i) (affinityBalance), the counts and factors as w:
 * alpha1 sum_i f_i P_i has w_i = alpha1 E / (K T^2) count_i; alpha2 sum_g f'_g P'_g has w_i = alpha2 E / (K T^2)
 * times the mean count of i's group; seqAlpha mean_b sum_i f_(b,i) P_(b,i) has w_(b,i) = seqAlpha E / (B K S^2)
 * count_(b,i), with S = T / B tokens per sequence.
 */
function kernelBalance(
  scores: tf.Tensor2D, load: BalanceLoad, sequenceCounts: () => tf.Tensor2D, nSequences: number,
  config: DeepSeekMoEConfig, zero: tf.Scalar,
): BalanceTerms {
  const { nRoutedExperts: E, topK: K, nExpertGroups: G } = config;
  const T = scores.shape[0];
  const S = T / nSequences;
  const { counts, tokens } = load; // f_i's counts over `tokens` tokens; P_i's mean is over this call's T
  const loss = (factor: number, weights: tf.Tensor) => affinityBalance(scores, weights as tf.Tensor2D, factor, config);
  const expertBalance = config.alpha1 > 0
    ? loss((config.alpha1 * E) / (K * tokens * T), tf.reshape(counts, [1, E]))
    : zero;
  let deviceBalance: tf.Scalar = zero;
  if (config.alpha2 > 0) {
    const groupMeans = tf.mean(tf.reshape(counts, [G, E / G]), 1, true); // [G, 1]
    deviceBalance = loss((config.alpha2 * E) / (K * tokens * T), tf.reshape(tf.tile(groupMeans, [1, E / G]), [1, E]));
  }
  const seqFactor = (config.seqAlpha * E) / (nSequences * K * S * S);
  const seqBalance = config.seqAlpha > 0 ? loss(seqFactor, sequenceCounts()) : zero;
  return { expertBalance, deviceBalance, seqBalance };
}

/**
 * Load, violation and entropy; no reads. `counts` [E] are tokens per expert before drops, so they sum to T K
 * (every token picks K distinct experts): dividing by that constant saves the GPU backends their sum programs.
 */
export function routingStats(
  counts: tf.Tensor1D,
  scores: tf.Tensor2D,
  droppedFraction: tf.Scalar,
  config: DeepSeekMoEConfig,
  routerEntropy: tf.Scalar = meanRouterEntropy(scores, config),
): RoutingStats {
  const assignments = scores.shape[0] * config.topK; // T K
  const expertLoad = tf.mul(counts, 1 / assignments) as tf.Tensor1D;
  // max / mean - 1, the mean being T K / E
  const maxViolation = tf.sub(tf.mul(tf.max(counts), config.nRoutedExperts / assignments), 1) as tf.Scalar;
  return { expertLoad, droppedFraction, maxViolation, routerEntropy };
}

/** Mean over tokens of the entropy of the normalised affinities: one kernel, nothing [T, E] built, no gradient. */
export function meanRouterEntropy(scores: tf.Tensor2D, config: DeepSeekMoEConfig): tf.Scalar {
  return meanRouterEntropyOf(stopGradient(scores), config); // a statistic, like the rest of RoutingStats
}

/**
 * DeepSeek-V3's auxiliary-loss-free update, b_i += gamma * sign(meanLoad - load_i): underloaded experts become
 * more likely to be picked. `counts` [E] are the tokens each expert was chosen for during the step (the whole
 * global batch's). 'signCentered' (torchtitan) subtracts the step's mean over experts, so sum_i b_i stays 0.
 */
export function updateExpertBias(
  bias: tf.Variable, counts: tf.Tensor1D, gamma: number, rule: BiasUpdate = 'sign',
): void {
  if (gamma === 0) return;
  tf.tidy(() => {
    const step = tf.mul(gamma, tf.sign(tf.sub(tf.mean(counts), counts)));
    bias.assign(tf.add(bias, rule === 'signCentered' ? tf.sub(step, tf.mean(step)) : step));
  });
}

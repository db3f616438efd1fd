/**
 * The balance losses and the router entropy in stock ops, as the papers write them: the oracle the library's
 * affinityBalance and routerEntropy kernels are tested against.
 */
import * as tf from '@tensorflow/tfjs';
import type { BalanceLoad, BalanceLosses, DeepSeekMoEConfig } from 'deepseek-moe-tfjs';
import type { BalanceTerms } from '../../src/moe/balance.js';

/** balanceLosses' arguments and result (src/moe/balance.ts), in stock ops. */
export function oracleBalanceLosses(
  logits: tf.Tensor2D, scores: tf.Tensor2D, counts: tf.Tensor1D, sequenceCounts: () => tf.Tensor2D, nSequences: number,
  config: DeepSeekMoEConfig, load: BalanceLoad = { counts, tokens: scores.shape[0] },
): BalanceLosses {
  const zero = tf.scalar(0);
  const terms = stockBalance(scores, load, sequenceCounts, nSequences, config, zero);
  const zLoss = config.zLossCoef > 0 ? tf.mul(config.zLossCoef, tf.mean(tf.square(tf.logSumExp(logits, -1)))) : zero;
  const total = [terms.expertBalance, terms.deviceBalance, terms.seqBalance, zLoss].reduce((a, b) => tf.add(a, b));
  return { ...terms, zLoss: zLoss as tf.Scalar, total: total as tf.Scalar };
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
  const f = tf.mul(counts, E / (K * T)); // T: the tokens `counts` were counted over
  return tf.sum(tf.mul(f, meanP), -1);
}

/** The three balance losses in stock ops, as the papers write them: f_i from the counts, P_i the mean affinity. */
export function stockBalance(
  scores: tf.Tensor2D, load: BalanceLoad, sequenceCounts: () => tf.Tensor2D, nSequences: number,
  config: DeepSeekMoEConfig, zero: tf.Scalar,
): BalanceTerms {
  const { nRoutedExperts: E, topK: K, nExpertGroups: G } = config;
  const T = scores.shape[0];
  const meanP = config.alpha1 > 0 || config.alpha2 > 0 ? tf.reshape(meanAffinity(scores, 1, config), [E]) : zero; // [E]
  const { counts, tokens } = load; // f_i's counts, over `tokens` tokens

  const expertBalance = config.alpha1 > 0 ? tf.mul(config.alpha1, balanceTerm(counts, meanP, E, K, tokens)) : zero;

  let deviceBalance: tf.Tensor = zero;
  if (config.alpha2 > 0) {
    const f = tf.reshape(tf.mul(counts, E / (K * tokens)), [G, E / G]);
    const P = tf.reshape(meanP, [G, E / G]);
    deviceBalance = tf.mul(config.alpha2, tf.sum(tf.mul(tf.mean(f, 1), tf.sum(P, 1))));
  }

  let seqBalance: tf.Tensor = zero;
  if (config.seqAlpha > 0) {
    const S = T / nSequences;
    const perSeq = balanceTerm(sequenceCounts(), meanAffinity(scores, nSequences, config), E, K, S); // [B]
    seqBalance = tf.mul(config.seqAlpha, tf.mean(perSeq));
  }
  return { expertBalance, deviceBalance, seqBalance } as BalanceTerms;
}


/** Mean over tokens of the entropy of the normalised affinities. */
export function stockRouterEntropy(scores: tf.Tensor2D, config: DeepSeekMoEConfig): tf.Scalar {
  return tf.tidy(() => {
    const p = normalisedScores(scores, config);
    return tf.mean(tf.neg(tf.sum(tf.mul(p, tf.log(tf.maximum(p, 1e-12))), -1))) as tf.Scalar;
  });
}

import * as tf from '@tensorflow/tfjs';
import { balanceLosses, meanRouterEntropy, routingStats, type BalanceLosses, type RoutingStats } from './balance.js';
import type { DeepSeekMoEConfig } from './config.js';
import { combineExperts, dispatchTokens, gatherChoices } from './dispatch.js';
import { expertsSwiGLU, routedExperts, swiGLU } from './experts.js';
import { countExperts, gateWeightsOf, groupedExperts, keptRoutingPlan, routingPlan, sharedExperts } from './grouped.js';
import { linear, sumOverChoices } from '../kernels.js';
import { buildRoutingPlan, capacityFor, choicesOf, droplessCapacity, keepByAffinity, type Choices } from './plan.js';
import { maskToFloat, oneHotFloat, stopGradient } from '../ops.js';
import { gateWeights, route } from './router.js';

/** The tensors of one DeepSeekMoE layer. */
export interface MoEWeights {
  /** Router (gate) weight Wg: [d, E]. */
  routerKernel: tf.Tensor2D;
  /** Routed experts, stacked: w1 and w3 [E, d, h], w2 [E, h, d]. */
  expertW1: tf.Tensor3D;
  expertW3: tf.Tensor3D;
  expertW2: tf.Tensor3D;
  /** Shared experts as one SwiGLU FFN of width nSharedExperts * h; null when nSharedExperts is 0. */
  sharedW1: tf.Tensor2D | null;
  sharedW3: tf.Tensor2D | null;
  sharedW2: tf.Tensor2D | null;
  /** Qwen2-MoE's shared-expert gate w_g [d, 1] (sharedExpertGate); null or absent otherwise. */
  sharedGate?: tf.Tensor2D | null;
  /** Auxiliary-loss-free selection bias [E]; null when auxFreeBias is off. */
  expertBias: tf.Tensor1D | null;
}

/** What one call of the layer returns: its output, balance losses, routing statistics and expert counts (tensors). */
export interface MoEOutput {
  /** Same shape as the input. */
  output: tf.Tensor;
  losses: BalanceLosses;
  stats: RoutingStats;
  /** Tokens each expert was chosen for, before drops: [E]. This is the load the bias update reads. */
  expertCounts: tf.Tensor1D;
  /**
   * With `deferFiniteCheck`: how many input values were NaN or infinite (a scalar; 0 when checkFinite is off or a
   * read of this call already checked), for the caller to read with its own values. Absent otherwise.
   */
  nonFiniteInputs?: tf.Scalar;
}

/** Per-call options of moeForward. */
export interface MoEForwardOptions {
  /** Enables router jitter. Default false. */
  training?: boolean;
  /** Seeds router jitter's noise (any number): the same seed draws the same noise. Unseeded without it. */
  jitterSeed?: number;
  /**
   * 'dropless': slots per expert measured ahead by `measureDroplessCapacity` (an async read), so this call
   * reads nothing back. Assignments beyond it are dropped and show in stats.droppedFraction; that only happens
   * when routing differs from the measurement (router jitter, changed weights). The grouped path needs no slots;
   * there a measured capacity only says that the finite check was done ahead (awaited), so the call reads nothing.
   */
  capacity?: number;
  /**
   * With checkFinite: count the non-finite inputs into `nonFiniteInputs` instead of reading them back, so the
   * caller checks them in a read it makes anyway (the language model does so in training, evaluation and
   * generation). The reference path's 'dropless' still makes its one read, and checks there.
   */
  deferFiniteCheck?: boolean;
  /**
   * The load the balance losses count f_i from, when it is not this call's: balanceScope 'globalBatch' under
   * gradient accumulation passes the whole global batch's expert counts [E] and its token count. Default: this call's.
   */
  balanceLoad?: BalanceLoad;
}

/** Expert counts [E] (tokens per expert, before drops) over `tokens` tokens: what f_i is computed from. */
export interface BalanceLoad {
  counts: tf.Tensor1D;
  tokens: number;
}

/** Whether a call runs the grouped path: 'dropless' or 'capacity' with expertCompute 'grouped'. */
export function usesGroupedPath(config: DeepSeekMoEConfig): boolean {
  return config.dispatch !== 'dense' && config.expertCompute === 'grouped';
}

/**
 * Routes `x` once, off the tape, and returns the slots per expert that 'dropless' needs for it on the reference
 * path; awaits the read instead of blocking. Throws on non-finite input when config.checkFinite is set. The grouped
 * path needs no slots: there it returns T, after an awaited finite check when checkFinite is set.
 */
export async function measureDroplessCapacity(x: tf.Tensor, weights: MoEWeights, config: DeepSeekMoEConfig): Promise<number> {
  checkInput(x, config);
  const T = x.size / config.dModel;
  if (usesGroupedPath(config)) {
    if (config.checkFinite) {
      const nonFinite = tf.tidy(() => tf.sum(maskToFloat(tf.logicalNot(tf.isFinite(x)))));
      const [count = 0] = await nonFinite.data();
      nonFinite.dispose();
      if (count > 0) throw nonFiniteError();
    }
    return T;
  }
  const summary = tf.tidy(() => {
    const tokens = tf.reshape(x, [T, config.dModel]) as tf.Tensor2D;
    const { topKIndices } = route(tokens, weights.routerKernel, weights.expertBias, config, false);
    const nonFinite = config.checkFinite ? tf.sum(maskToFloat(tf.logicalNot(tf.isFinite(tokens)))) : tf.scalar(0);
    return tf.stack([tf.max(choicesOf(topKIndices, config.nRoutedExperts).expertCounts), nonFinite]);
  });
  const [maxCount = 0, nonFiniteCount = 0] = await summary.data();
  summary.dispose();
  if (nonFiniteCount > 0) throw nonFiniteError();
  return droplessCapacity(maxCount, T);
}

function checkInput(x: tf.Tensor, config: DeepSeekMoEConfig): void {
  if (!(x instanceof tf.Tensor)) throw new Error(`DeepSeekMoE input: expected a tf.Tensor, but got ${typeof x}.`);
  if (x.rank !== 2 && x.rank !== 3) {
    throw new Error(`DeepSeekMoE input: expected rank 2 [tokens, dModel] or 3 [batch, seq, dModel], but got shape [${x.shape}].`);
  }
  if (x.shape[x.rank - 1] !== config.dModel) {
    throw new Error(`DeepSeekMoE input: expected last dimension dModel = ${config.dModel}, but got shape [${x.shape}].`);
  }
  if (x.dtype !== 'float32') throw new Error(`DeepSeekMoE input: expected dtype float32, but got ${x.dtype}.`);
}

const nonFiniteError = () => new Error('DeepSeekMoE input: expected finite values, but got NaN or Infinity.');

/**
 * The DeepSeekMoE layer as a function (no residual: the block adds it). Returns
 * sharedExperts(x) + sum_k g_k routedExpert_k(x) with its balance losses and routing statistics.
 *
 * GPU-to-CPU reads per call: none on the grouped path (the default) when checkFinite is false, one (the finite
 * check) when it is true. The reference path's 'dropless' makes exactly one (the busiest expert's count, to size
 * the slots; the finite check rides on it) unless `options.capacity` is given; its 'capacity' and 'dense' make one
 * when checkFinite is set. These reads are synchronous: on webgpu TF.js serves them through a canvas, which is
 * slow (and loses the device on SwiftShader), so there set checkFinite false or pass `deferFiniteCheck` and read
 * `nonFiniteInputs` with your own values.
 */
export function moeForward(
  x: tf.Tensor, weights: MoEWeights, layerConfig: DeepSeekMoEConfig, options: MoEForwardOptions = {},
): MoEOutput {
  checkInput(x, layerConfig);
  const training = options.training ?? false;
  // Capacity is a training device: evaluation and generation run dropless (DeepSeek-V2), so the full and the
  // KV-cached forward agree whatever the batch.
  const config = training || layerConfig.dispatch !== 'capacity'
    ? layerConfig
    : { ...layerConfig, dispatch: 'dropless' as const };
  const { nRoutedExperts: E, topK: K, dModel: d } = config;
  const T = x.size / d;
  const nSequences = x.rank === 3 ? x.shape[0] : 1;
  const grouped = usesGroupedPath(config);
  const run = (): MoEOutput => {
    const tokens = tf.reshape(x, [T, d]) as tf.Tensor2D;
    // Reference dropless checks with its one read below; a grouped call with a measured capacity was checked ahead.
    const checkedAhead = grouped && options.capacity !== undefined;
    const check = config.checkFinite && (config.dispatch !== 'dropless' || grouped) && !checkedAhead;
    let nonFiniteInputs: tf.Scalar | undefined;
    if (options.deferFiniteCheck) {
      nonFiniteInputs = check ? (tf.sum(maskToFloat(tf.logicalNot(tf.isFinite(tokens)))) as tf.Scalar) : tf.scalar(0);
    } else if (check && tf.any(tf.logicalNot(tf.isFinite(tokens))).dataSync()[0]) {
      throw nonFiniteError();
    }
    const selection = grouped ? 'kernel' : 'stock';
    const { routerKernel, expertBias } = weights;
    const { logits, scores, topKIndices } = route(tokens, routerKernel, expertBias, config, training, selection, options.jitterSeed);
    const routerEntropy = meanRouterEntropy(scores, config, grouped);
    const routedOut = grouped
      ? groupedRouted(tokens, scores, topKIndices, weights, config)
      : referenceRouted(tokens, scores, topKIndices, weights, config, options);
    const { routed, droppedFraction, counts, sequenceCounts } = routedOut;

    const { sharedW1, sharedW3, sharedW2 } = weights;
    const sharedFFN = grouped ? sharedExperts : swiGLU;
    let shared = sharedW1 && sharedW3 && sharedW2 ? sharedFFN(tokens, sharedW1, sharedW3, sharedW2) : null;
    // Qwen2-MoE: the shared output scaled per token by sigmoid(x w_g).
    if (shared && weights.sharedGate) {
      shared = <tf.Tensor2D>tf.mul(shared, tf.sigmoid(linear(tokens, weights.sharedGate)));
    }
    const output = tf.reshape(shared ? tf.add(routed, shared) : routed, x.shape);
    const losses = balanceLosses(
      logits, scores, counts, () => sequenceCounts(nSequences), nSequences, config, grouped, options.balanceLoad,
    );
    const stats = routingStats(counts, scores, droppedFraction, config, routerEntropy);
    return { output, losses, stats, expertCounts: counts, ...(nonFiniteInputs ? { nonFiniteInputs } : {}) };
  };
  return tf.tidy(run as unknown as () => tf.TensorContainerObject) as unknown as MoEOutput;
}

/** The routed experts' output with what the losses and statistics need. */
interface RoutedOutput {
  /** sum_k g_k routedExpert_k(x): [T, d]. */
  routed: tf.Tensor2D;
  droppedFraction: tf.Scalar;
  /** Tokens per expert before drops: [E]. */
  counts: tf.Tensor1D;
  /** The same per sequence: [nSequences, E]. */
  sequenceCounts: (nSequences: number) => tf.Tensor2D;
}

/** The grouped path: assignments sorted by expert, one kernel per stage (grouped.ts). No read. */
function groupedRouted(x: tf.Tensor2D, scores: tf.Tensor2D, ids: tf.Tensor2D, w: MoEWeights, config: DeepSeekMoEConfig): RoutedOutput {
  const { nRoutedExperts: E, topK: K } = config;
  const T = x.shape[0];
  const capacity = config.dispatch === 'capacity' ? capacityFor(T, K, E, config.capacityFactor) : 0;
  const counts = tf.reshape(countExperts(ids, E), [E]) as tf.Tensor1D;
  const keep = capacity > 0 && config.dropPolicy === 'probs' ? probsKeep(scores, ids, E, capacity) : null;
  const route = keep ? keptRoutingPlan(ids, E, keep) : routingPlan(ids, E, capacity);
  const routed = groupedExperts(x, w.expertW1, w.expertW3, w.expertW2, gateWeightsOf(scores, ids, config), route);
  // Either policy drops max(0, count_e - C) of expert e's assignments.
  const droppedFraction = (capacity === 0 ? tf.scalar(0) : tf.div(tf.sum(tf.relu(tf.sub(counts, capacity))), T * K)) as tf.Scalar;
  // One sequence: its counts are the layer's, already counted (each count is a program on the GPU backends).
  const sequenceCounts = (n: number) => (n === 1 ? (tf.reshape(counts, [1, E]) as tf.Tensor2D) : countExperts(ids, E, n));
  return { routed, droppedFraction, counts, sequenceCounts };
}

/** dropPolicy 'probs' on the grouped path: which of the T K assignments survive capacity (keepByAffinity). */
function probsKeep(scores: tf.Tensor2D, ids: tf.Tensor2D, E: number, capacity: number): tf.Tensor2D {
  const membership = sumOverChoices(oneHotFloat(ids, E) as tf.Tensor3D); // [T, E]
  return keepByAffinity(stopGradient(scores), ids, membership, capacity);
}

/** The reference path: tokens gathered into [E, C] slots, stock ops (plan.ts, dispatch.ts, experts.ts). */
function referenceRouted(
  x: tf.Tensor2D, scores: tf.Tensor2D, topKIndices: tf.Tensor2D, w: MoEWeights, config: DeepSeekMoEConfig, options: MoEForwardOptions,
): RoutedOutput {
  const { nRoutedExperts: E, topK: K } = config;
  const T = x.shape[0];
  const choices = choicesOf(topKIndices, E);
  const sequenceCounts = (n: number) => tf.sum(tf.reshape(choices.membership, [n, T / n, E]), 1) as tf.Tensor2D;
  if (config.dispatch === 'dense') {
    const routed = denseRouted(x, scores, choices, w, config);
    return { routed, droppedFraction: tf.scalar(0), counts: choices.expertCounts, sequenceCounts };
  }
  let capacity: number;
  let rowsPerExpert: number[] | null = null;
  if (config.dispatch === 'capacity') {
    capacity = capacityFor(T, K, E, config.capacityFactor);
  } else if (options.capacity !== undefined) {
    capacity = Math.min(T, options.capacity);
  } else {
    const nonFinite = config.checkFinite ? tf.sum(maskToFloat(tf.logicalNot(tf.isFinite(x)))) : tf.scalar(0);
    // The one read: every expert's count (the busiest sizes the slots) and the finite check.
    const read = Array.from(tf.concat([choices.expertCounts, tf.reshape(nonFinite, [1])]).dataSync());
    if (read[E]! > 0) throw nonFiniteError();
    rowsPerExpert = read.slice(0, E);
    capacity = droplessCapacity(Math.max(...rowsPerExpert), T);
  }
  const keep = config.dispatch === 'capacity' && config.dropPolicy === 'probs'
    ? keepByAffinity(stopGradient(scores), topKIndices, choices.membership, capacity)
    : undefined;
  const plan = buildRoutingPlan(topKIndices, choices, capacity, keep);
  const gates = gateWeights(gatherChoices(scores, plan, K), config); // [T, K]
  const xe = dispatchTokens(x, plan, E); // [E, C, d]
  const ye = routedExperts(xe, w.expertW1, w.expertW3, w.expertW2, rowsPerExpert);
  const routed = combineExperts(ye, gates, plan);
  return { routed, droppedFraction: plan.droppedFraction, counts: choices.expertCounts, sequenceCounts };
}

/**
 * The readable reference: every expert runs on every token, and a mask keeps the chosen ones. Costs E / K times
 * the routed FLOPs; used by the tests to check the fast paths, and by the bench as the naive baseline.
 */
function denseRouted(x: tf.Tensor2D, scores: tf.Tensor2D, choices: Choices, w: MoEWeights, config: DeepSeekMoEConfig): tf.Tensor2D {
  const E = config.nRoutedExperts;
  const [T, d] = x.shape;
  const { choiceMask } = choices; // [T, K, E], off the tape
  const chosenScores = tf.sum(tf.mul(choiceMask, tf.expandDims(scores, 1)), 2) as tf.Tensor2D; // [T, K]
  const gates = gateWeights(chosenScores, config);
  const combineWeights = sumOverChoices(tf.mul(choiceMask, tf.expandDims(gates, 2)) as tf.Tensor3D); // [T, E]
  const everyExpert = expertsSwiGLU(tf.broadcastTo(tf.expandDims(x, 0), [E, T, d]) as tf.Tensor3D, w.expertW1, w.expertW3, w.expertW2);
  return tf.sum(tf.mul(everyExpert, tf.expandDims(tf.transpose(combineWeights), 2)), 0) as tf.Tensor2D; // [T, d]
}

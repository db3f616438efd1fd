import * as tf from '@tensorflow/tfjs';
import { balanceLosses, meanRouterEntropy, routingStats, type BalanceLosses, type RoutingStats } from './balance.js';
import { capacityFor, keepByAffinity } from './capacity.js';
import type { DeepSeekMoEConfig } from './config.js';
import {
  countExperts, gateWeightsOf, groupedExperts, keptRoutingPlan, routingPlan, sharedExperts, type GroupedRoute,
} from './grouped.js';
import { linear, sumOverChoices } from '../backend-ops.js';
import { maskToFloat, oneHotFloat, stopGradient } from '../ops.js';
import { route } from './router.js';

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
  /** With `tokenRoutes`: what the router did to each token (tensors, off the gradient tape). Absent otherwise. */
  routes?: TokenRoutes;
}

/** Per token, where the layer sent it: T tokens, K choices each, in the order the router picked them. */
export interface TokenRoutes {
  /** The chosen routed experts: [T, K] int32. */
  ids: tf.Tensor2D;
  /** Their gate weights (normalised and scaled as the output uses them): [T, K]. */
  gates: tf.Tensor2D;
  /** 1 where capacity dropped the assignment (training with dispatch 'capacity'), else 0: [T, K]. */
  dropped: tf.Tensor2D;
  /**
   * The shared experts' share of the output norm, |shared| / (|shared| + |routed|) per token: [T]; 0 without
   * shared experts, 1 when every routed assignment was dropped.
   */
  sharedShare: tf.Tensor1D;
}

/** Per-call options of moeForward. */
export interface MoEForwardOptions {
  /** Enables router jitter and capacity drops. Default false. */
  training?: boolean;
  /** Seeds router jitter's noise (any number): the same seed draws the same noise. Unseeded without it. */
  jitterSeed?: number;
  /**
   * The input was checked for NaN and infinity ahead (`checkInputFinite`, an awaited read), so with checkFinite
   * this call reads nothing back.
   */
  inputChecked?: boolean;
  /**
   * With checkFinite: count the non-finite inputs into `nonFiniteInputs` instead of reading them back, so the
   * caller checks them in a read it makes anyway (the language model does so in training, evaluation and
   * generation).
   */
  deferFiniteCheck?: boolean;
  /**
   * The load the balance losses count f_i from, when it is not this call's: balanceScope 'globalBatch' under
   * gradient accumulation passes the whole global batch's expert counts [E] and its token count. Default: this call's.
   */
  balanceLoad?: BalanceLoad;
  /** Also return each token's routes (`routes`): for a routing view; costs a few small ops, no read. */
  tokenRoutes?: boolean;
}

/** Expert counts [E] (tokens per expert, before drops) over `tokens` tokens: what f_i is computed from. */
export interface BalanceLoad {
  counts: tf.Tensor1D;
  tokens: number;
}

/**
 * Checks `x` for NaN and infinity with an awaited read, so a call with `inputChecked` needs no synchronous one
 * (on webgpu those go through a canvas). Throws as moeForward would.
 */
export async function checkInputFinite(x: tf.Tensor, config: DeepSeekMoEConfig): Promise<void> {
  checkInput(x, config);
  const nonFinite = tf.tidy(() => tf.sum(maskToFloat(tf.logicalNot(tf.isFinite(x)))));
  const [count = 0] = await nonFinite.data();
  nonFinite.dispose();
  if (count > 0) throw nonFiniteError();
}

function checkInput(x: tf.Tensor, config: DeepSeekMoEConfig): void {
  if (!(x instanceof tf.Tensor)) throw new Error(`DeepSeekMoE input: expected a tf.Tensor, but got ${typeof x}.`);
  if (x.rank !== 2 && x.rank !== 3) {
    throw new Error(
      `DeepSeekMoE input: expected rank 2 [tokens, dModel] or 3 [batch, seq, dModel], but got shape [${x.shape}].`,
    );
  }
  if (x.shape[x.rank - 1] !== config.dModel) {
    throw new Error(`DeepSeekMoE input: expected last dimension dModel = ${config.dModel}, but got shape [${x.shape}].`);
  }
  if (x.dtype !== 'float32') throw new Error(`DeepSeekMoE input: expected dtype float32, but got ${x.dtype}.`);
}

const nonFiniteError = () => new Error('DeepSeekMoE input: expected finite values, but got NaN or Infinity.');

/**
 * The DeepSeekMoE layer as a function (no residual: the block adds it). Returns
 * sharedExperts(x) + sum_k g_k routedExpert_k(x) with its balance losses and routing statistics, on the one routed
 * path every backend runs (grouped.ts): route, select, plan, gates, experts up and down, combine, shared experts,
 * losses.
 *
 * GPU-to-CPU reads per call: none when checkFinite is false, one (the finite check) when it is true, unless
 * `inputChecked` or `deferFiniteCheck`. That read is synchronous: on webgpu TF.js serves it through a canvas,
 * which is slow (and loses the device on SwiftShader), so there set checkFinite false or pass one of the two.
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
  const run = (): MoEOutput => {
    const tokens = tf.reshape(x, [T, d]) as tf.Tensor2D;
    const check = config.checkFinite && !options.inputChecked;
    let nonFiniteInputs: tf.Scalar | undefined;
    if (options.deferFiniteCheck) {
      nonFiniteInputs = check ? (tf.sum(maskToFloat(tf.logicalNot(tf.isFinite(tokens)))) as tf.Scalar) : tf.scalar(0);
    } else if (check && tf.any(tf.logicalNot(tf.isFinite(tokens))).dataSync()[0]) {
      throw nonFiniteError();
    }
    const { routerKernel, expertBias } = weights;
    const { logits, scores, topKIndices: ids } = route(tokens, routerKernel, expertBias, config, training, options.jitterSeed);
    const routerEntropy = meanRouterEntropy(scores, config);

    const capacity = config.dispatch === 'capacity' ? capacityFor(T, K, E, config.capacityFactor) : 0;
    const counts = tf.reshape(countExperts(ids, E), [E]) as tf.Tensor1D; // tokens per expert, before drops
    const keep = capacity > 0 && config.dropPolicy === 'probs' ? probsKeep(scores, ids, E, capacity) : null;
    const plan = keep ? keptRoutingPlan(ids, E, keep) : routingPlan(ids, E, capacity);
    const gates = gateWeightsOf(scores, ids, config);
    const routed = groupedExperts(tokens, weights.expertW1, weights.expertW3, weights.expertW2, gates, plan);
    // Either policy drops max(0, count_e - C) of expert e's assignments.
    const droppedFraction = (
      capacity === 0 ? tf.scalar(0) : tf.div(tf.sum(tf.relu(tf.sub(counts, capacity))), T * K)
    ) as tf.Scalar;

    const { sharedW1, sharedW3, sharedW2 } = weights;
    let shared = sharedW1 && sharedW3 && sharedW2 ? sharedExperts(tokens, sharedW1, sharedW3, sharedW2) : null;
    // Qwen2-MoE: the shared output scaled per token by sigmoid(x w_g).
    if (shared && weights.sharedGate) {
      shared = <tf.Tensor2D>tf.mul(shared, tf.sigmoid(linear(tokens, weights.sharedGate)));
    }
    const output = tf.reshape(shared ? tf.add(routed, shared) : routed, x.shape);
    // One sequence: its counts are the layer's, already counted (each count is a program on the GPU backends).
    const sequenceCounts = () =>
      nSequences === 1 ? (tf.reshape(counts, [1, E]) as tf.Tensor2D) : countExperts(ids, E, nSequences);
    const losses = balanceLosses(logits, scores, counts, sequenceCounts, nSequences, config, options.balanceLoad);
    const stats = routingStats(counts, scores, droppedFraction, config, routerEntropy);
    const routes = options.tokenRoutes ? tokenRoutesOf(plan, gates, routed, shared) : undefined;
    return {
      output, losses, stats, expertCounts: counts,
      ...(nonFiniteInputs ? { nonFiniteInputs } : {}), ...(routes ? { routes } : {}),
    };
  };
  return tf.tidy(run as unknown as () => tf.TensorContainerObject) as unknown as MoEOutput;
}

/** The routes of the T tokens from the plan (a dropped assignment's row is the sentinel A = T K, contract.ts). */
function tokenRoutesOf(
  plan: GroupedRoute, gates: tf.Tensor2D, routed: tf.Tensor2D, shared: tf.Tensor2D | null,
): TokenRoutes {
  const [T, K] = plan.ids.shape;
  const A = T * K;
  const dropped = tf.reshape(maskToFloat(tf.equal(tf.slice(plan.plan, [0], [A]), tf.scalar(A, 'int32'))), [T, K]);
  const norm = (y: tf.Tensor2D) => tf.sqrt(tf.sum(tf.square(stopGradient(y)), -1));
  const sharedNorm = shared ? norm(shared) : null;
  const sharedShare = sharedNorm
    ? tf.div(sharedNorm, tf.maximum(tf.add(sharedNorm, norm(routed)), 1e-30))
    : tf.zeros([T]);
  return {
    ids: plan.ids, gates: stopGradient(gates), dropped: dropped as tf.Tensor2D, sharedShare: sharedShare as tf.Tensor1D,
  };
}

/** dropPolicy 'probs': which of the T K assignments survive capacity (keepByAffinity). */
function probsKeep(scores: tf.Tensor2D, ids: tf.Tensor2D, E: number, capacity: number): tf.Tensor2D {
  const membership = sumOverChoices(oneHotFloat(ids, E) as tf.Tensor3D); // [T, E]
  return keepByAffinity(stopGradient(scores), ids, membership, capacity);
}

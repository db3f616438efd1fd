/**
 * The oracle the library's routed path is tested (and benched) against: the DeepSeekMoE layer in TF.js's stock
 * ops, as the library computed it before its grouped kernels. Two ways:
 *
 * - 'slots': tokens gathered into [E, C] slots per expert (the busiest expert sizes C, read back, or `slots`
 *   given), batched matmuls, gathered back; gradients are gathers through inverse index maps (plan.ts, dispatch.ts).
 * - 'masked': every expert on every token, a mask keeping the chosen ones. E / K times the routed FLOPs: the
 *   readable reference, and the bench's naive baseline.
 *
 * Selection in stock ops (TopK), the balance losses and router entropy as the papers write them (balance.ts). Not
 * part of the library: it lives beside the tests and the bench that use it.
 */
import * as tf from '@tensorflow/tfjs';
import {
  routingStats, type BalanceLoad, type DeepSeekMoEConfig, type MoEOutput, type MoEWeights,
} from 'deepseek-moe-tfjs';
import { linear, sumOverChoices } from '../../src/backend-ops.js';
import { capacityFor, keepByAffinity } from '../../src/moe/capacity.js';
import { swiGLU } from '../../src/moe/experts.js';
import { stopGradient } from '../../src/ops.js';
import { oracleBalanceLosses, stockRouterEntropy } from './balance.js';
import { combineExperts, dispatchTokens, gatherChoices } from './dispatch.js';
import { expertsSwiGLU, routedExperts } from './experts.js';
import { buildRoutingPlan, choicesOf, droplessCapacity, type Choices } from './plan.js';
import { gateWeights, selectTopK } from './router.js';

export type OraclePath = 'slots' | 'masked';

export interface OracleOptions {
  /** 'slots' (default) or 'masked'. */
  path?: OraclePath;
  /** Enables router jitter and capacity drops. */
  training?: boolean;
  jitterSeed?: number;
  /** 'dropless' slots per expert, measured ahead (`oracleSlots`), so the call reads nothing back. */
  slots?: number;
  balanceLoad?: BalanceLoad;
}

/** The router in stock ops: logits, scores, and the K experts chosen on the biased, group-masked scores. */
function stockRoute(x: tf.Tensor2D, w: MoEWeights, config: DeepSeekMoEConfig, training: boolean, jitterSeed?: number) {
  const j = config.routerJitter;
  const input = training && j > 0 ? tf.mul(x, tf.randomUniform(x.shape, 1 - j, 1 + j, 'float32', jitterSeed)) : x;
  const logits = linear(input as tf.Tensor2D, w.routerKernel); // [T, E]
  const scores = (config.scoreFunc === 'softmax' ? tf.softmax(logits) : tf.sigmoid(logits)) as tf.Tensor2D;
  return { logits, scores, ids: selectTopK(stopGradient(scores), w.expertBias, config) };
}

/** The slots 'dropless' needs for x, with an awaited read: the busiest expert's count, rounded up. */
export async function oracleSlots(x: tf.Tensor, w: MoEWeights, config: DeepSeekMoEConfig): Promise<number> {
  const T = x.size / config.dModel;
  const busiest = tf.tidy(() => {
    const { ids } = stockRoute(tf.reshape(x, [T, config.dModel]) as tf.Tensor2D, w, config, false);
    return tf.max(choicesOf(ids, config.nRoutedExperts).expertCounts);
  });
  const [count = 0] = await busiest.data();
  busiest.dispose();
  return droplessCapacity(count, T);
}

/** What moeForward returns (without the finite check), computed the oracle's way. */
export function oracleForward(x: tf.Tensor, w: MoEWeights, layerConfig: DeepSeekMoEConfig, options: OracleOptions = {}): MoEOutput {
  const training = options.training ?? false;
  const config = training || layerConfig.dispatch !== 'capacity' ? layerConfig : { ...layerConfig, dispatch: 'dropless' as const };
  const { nRoutedExperts: E, topK: K, dModel: d } = config;
  const T = x.size / d;
  const nSequences = x.rank === 3 ? x.shape[0] : 1;
  return tf.tidy(() => {
    const tokens = tf.reshape(x, [T, d]) as tf.Tensor2D;
    const { logits, scores, ids } = stockRoute(tokens, w, config, training, options.jitterSeed);
    const routerEntropy = stockRouterEntropy(stopGradient(scores), config);
    const choices = choicesOf(ids, E);
    let routed: tf.Tensor2D;
    let droppedFraction: tf.Scalar = tf.scalar(0);
    if (options.path === 'masked') routed = maskedRouted(tokens, scores, choices, w, config);
    else {
      let slots: number;
      let rows: number[] | null = null;
      if (config.dispatch === 'capacity') slots = capacityFor(T, K, E, config.capacityFactor);
      else if (options.slots !== undefined) slots = Math.min(T, options.slots);
      else {
        rows = Array.from(choices.expertCounts.dataSync()); // the one read: the busiest expert sizes the slots
        slots = droplessCapacity(Math.max(...rows), T);
      }
      const keep = config.dispatch === 'capacity' && config.dropPolicy === 'probs'
        ? keepByAffinity(stopGradient(scores), ids, choices.membership, slots)
        : undefined;
      const plan = buildRoutingPlan(ids, choices, slots, keep);
      const gates = gateWeights(gatherChoices(scores, plan, K), config); // [T, K]
      const ye = routedExperts(dispatchTokens(tokens, plan, E), w.expertW1, w.expertW3, w.expertW2, rows);
      routed = combineExperts(ye, gates, plan);
      droppedFraction = plan.droppedFraction;
    }
    let shared = w.sharedW1 && w.sharedW3 && w.sharedW2 ? swiGLU(tokens, w.sharedW1, w.sharedW3, w.sharedW2) : null;
    if (shared && w.sharedGate) shared = tf.mul(shared, tf.sigmoid(linear(tokens, w.sharedGate))) as tf.Tensor2D;
    const output = tf.reshape(shared ? tf.add(routed, shared) : routed, x.shape);

    const sequenceCounts = () => tf.sum(tf.reshape(choices.membership, [nSequences, T / nSequences, E]), 1) as tf.Tensor2D;
    const losses = oracleBalanceLosses(
      logits, scores, choices.expertCounts, sequenceCounts, nSequences, config, options.balanceLoad,
    );
    const stats = routingStats(choices.expertCounts, scores, droppedFraction, config, routerEntropy);
    return { output, losses, stats, expertCounts: choices.expertCounts } as unknown as tf.TensorContainerObject;
  }) as unknown as MoEOutput;
}

/** Every expert on every token; a mask keeps the chosen ones (off the tape), weighted by their gates. */
function maskedRouted(x: tf.Tensor2D, scores: tf.Tensor2D, choices: Choices, w: MoEWeights, config: DeepSeekMoEConfig): tf.Tensor2D {
  const E = config.nRoutedExperts;
  const [T, d] = x.shape;
  const { choiceMask } = choices; // [T, K, E]
  const chosenScores = tf.sum(tf.mul(choiceMask, tf.expandDims(scores, 1)), 2) as tf.Tensor2D; // [T, K]
  const gates = gateWeights(chosenScores, config);
  const combineWeights = sumOverChoices(tf.mul(choiceMask, tf.expandDims(gates, 2)) as tf.Tensor3D); // [T, E]
  const everyExpert = expertsSwiGLU(tf.broadcastTo(tf.expandDims(x, 0), [E, T, d]) as tf.Tensor3D, w.expertW1, w.expertW3, w.expertW2);
  return tf.sum(tf.mul(everyExpert, tf.expandDims(tf.transpose(combineWeights), 2)), 0) as tf.Tensor2D; // [T, d]
}

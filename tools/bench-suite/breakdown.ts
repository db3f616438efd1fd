/**
 * The cost breakdown: each stage of the layer's grouped path timed alone (forward + backward, on inputs prepared
 * ahead), as a share of the whole layer's time in the same run. The stages are the library's own functions, as
 * moeForward composes them: route (scores and selection), the plan (counts, routing plan), the gate weights,
 * the routed experts (both grouped matmuls, the token gather fused in), combine, the shared experts, the balance
 * losses and routing statistics.
 */
import * as tf from '@tensorflow/tfjs';
import {
  balanceLosses, combineRows, countExperts, createMoEWeights, disposeMoEWeights, expertsDown, expertsUp, gateWeightsOf,
  meanRouterEntropy, route, routingPlan, routingStats, sharedExperts,
} from 'deepseek-moe-tfjs';
import { timeUnit } from './layer.js';
import { benchLayerConfig, moeUnit } from './steps.js';
import { forwardBackward, timeStep, type Repeats } from './timing.js';
import { breakdownStages, type BreakdownSection, type BreakdownStage, type LayerShape } from './schema.js';

/** sum(y * r) for a fixed random r of y's shape: a loss whose gradient w.r.t. y is r. */
const probe = (y: tf.Tensor, r: tf.Tensor): tf.Scalar => tf.sum(tf.mul(y, r));

export async function breakdownSection(
  shape: LayerShape, repeats: Repeats, asyncReads: boolean, tick: (label: string) => void,
): Promise<BreakdownSection> {
  const config = benchLayerConfig(shape, 'dropless', asyncReads);
  const { tokens: T, dModel: d, nRoutedExperts: E, topK: K, expertHiddenDim: h } = shape;
  const keep: tf.Tensor[] = [];
  const held = <X extends tf.Tensor>(t: X): X => (keep.push(t), t);
  const random = (s: number[], seed: number) => held(tf.randomNormal(s, 0, 1, 'float32', seed));
  const x = random([T, d], 4) as tf.Tensor2D;
  const w = createMoEWeights(config);
  try {
    const layerMs = await timeUnit(moeUnit(config, x, asyncReads), repeats);
    tick(`breakdown: whole layer ${layerMs.toFixed(1)} ms`);

    // The layer's intermediates, computed once, and an upstream gradient for each stage's output.
    // The z-loss is off: the grouped router keeps no logits.
    const { scores, topKIndices: ids } = tf.tidy(() => {
      const routed = route(x, w.routerKernel, w.expertBias, config, false);
      return { scores: routed.scores, topKIndices: routed.topKIndices };
    });
    const counts = held(tf.tidy(() => tf.reshape(countExperts(ids, E), [E]) as tf.Tensor1D));
    const r = routingPlan(ids, E, 0);
    [scores, ids, r.plan].forEach(held);
    const gates = held(tf.tidy(() => gateWeightsOf(scores, ids, config)));
    const h13 = random([2, T * K, h], 5) as tf.Tensor3D;
    const yRows = random([T * K, d], 6) as tf.Tensor2D;
    const [rScores, rGates, rH13] = [random([T, E], 7), random([T, K], 8), random([2, T * K, h], 9)];
    const [rRows, rY] = [random([T * K, d], 10), random([T, d], 11)];

    const stages: Record<BreakdownStage, () => tf.Scalar> = {
      router: () => forwardBackward((xx, wg) => {
        const { scores: s } = route(xx as tf.Tensor2D, wg as tf.Tensor2D, w.expertBias, config, false);
        return probe(s, rScores);
      }, [x, w.routerKernel]),
      // No gradient flows through the plan: timed as a forward, reduced to a scalar like the others.
      plan: () => tf.tidy(() => tf.add(tf.sum(countExperts(ids, E)), tf.sum(tf.cast(routingPlan(ids, E, 0).plan, 'float32'))) as tf.Scalar),
      gates: () => forwardBackward((s) => probe(gateWeightsOf(s as tf.Tensor2D, ids, config), rGates), [scores]),
      routedExperts: () => forwardBackward((a, b, c, e) => {
        const up = expertsUp(a as tf.Tensor2D, b as tf.Tensor3D, c as tf.Tensor3D, r);
        return tf.add(probe(up, rH13), probe(expertsDown(h13, e as tf.Tensor3D, r), rRows)) as tf.Scalar;
      }, [x, w.expertW1, w.expertW3, w.expertW2]),
      combine: () => forwardBackward((a, g) => probe(combineRows(a as tf.Tensor2D, g as tf.Tensor2D, r), rY), [yRows, gates]),
      sharedExperts: () => forwardBackward((a, b, c, e) => {
        const [xx, w1, w3, w2] = [a, b, c, e] as tf.Tensor2D[];
        return probe(sharedExperts(xx!, w1!, w3!, w2!), rY);
      }, [x, w.sharedW1!, w.sharedW3!, w.sharedW2!]),
      // Gradients w.r.t. the scores only: the logits enter the losses only through the z-loss, which is off here.
      losses: () => forwardBackward((s) => {
        const sequenceCounts = () => tf.expandDims(counts, 0) as tf.Tensor2D;
        const losses = balanceLosses(null, s as tf.Tensor2D, counts, sequenceCounts, 1, config);
        const entropy = meanRouterEntropy(s as tf.Tensor2D, config);
        const stats = routingStats(counts, s as tf.Tensor2D, tf.scalar(0), config, entropy);
        return tf.add(losses.total, tf.add(stats.maxViolation, stats.routerEntropy)) as tf.Scalar;
      }, [scores]),
    };
    const ms = {} as Record<BreakdownStage, number>;
    for (const stage of breakdownStages) {
      ms[stage] = await timeStep(async () => stages[stage](), repeats);
      tick(`breakdown: ${stage} ${ms[stage].toFixed(1)} ms`);
    }
    const sum = breakdownStages.reduce((a, s) => a + ms[s], 0);
    return {
      shape, layerMs,
      stages: Object.fromEntries(breakdownStages.map((s) => [s, { ms: ms[s], share: ms[s] / layerMs }])) as BreakdownSection['stages'],
      unaccountedMs: layerMs - sum,
    };
  } finally {
    tf.dispose(keep);
    disposeMoEWeights(w);
  }
}

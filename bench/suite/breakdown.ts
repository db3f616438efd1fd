/**
 * The dispatch cost breakdown: each stage of the layer's dropless path timed alone (forward + backward, on
 * inputs prepared ahead), as a share of the whole layer's time in the same run. Stages: the router (scores and
 * top-K), dispatch (routing plan, gate gather, token copy into expert slots), the routed experts' matmuls, the
 * shared experts, combine (weighted gather back to tokens), the balance losses and routing statistics.
 */
import * as tf from '@tensorflow/tfjs';
import { balanceLosses, routingStats } from '../../src/balance.js';
import { combineExperts, dispatchTokens, gatherChoices } from '../../src/dispatch.js';
import { routedExperts, swiGLU } from '../../src/experts.js';
import { buildRoutingPlan, choicesOf, droplessCapacity } from '../../src/plan.js';
import { gateWeights, route } from '../../src/router.js';
import { createMoEWeights, disposeMoEWeights } from '../../src/index.js';
import { timeUnit } from './layer.js';
import { benchLayerConfig, moeUnit } from './steps.js';
import { forwardBackward, timeStep, type Repeats } from './timing.js';
import { breakdownStages, type BreakdownSection, type BreakdownStage, type LayerShape } from './schema.js';

/** sum(y * r) for a fixed random r of y's shape: a loss whose gradient w.r.t. y is r. */
const probe = (y: tf.Tensor, r: tf.Tensor): tf.Scalar => tf.sum(tf.mul(y, r));

export async function breakdownSection(shape: LayerShape, repeats: Repeats, asyncReads: boolean, tick: (label: string) => void): Promise<BreakdownSection> {
  const config = benchLayerConfig(shape, 'dropless', asyncReads);
  const { tokens: T, dModel: d, nRoutedExperts: E, topK: K } = shape;
  const keep: tf.Tensor[] = [];
  const held = <X extends tf.Tensor>(t: X): X => (keep.push(t), t);
  const random = (s: number[], seed: number) => held(tf.randomNormal(s, 0, 1, 'float32', seed));
  const x = random([T, d], 4) as tf.Tensor2D;
  const w = createMoEWeights(config);
  try {
    const layerMs = await timeUnit(moeUnit(config, x, asyncReads), repeats);
    tick(`breakdown: whole layer ${layerMs.toFixed(1)} ms`);

    // The layer's intermediates, computed once, and an upstream gradient for each stage's output.
    const { logits, scores, topKIndices, choiceMask, membership, expertCounts } = tf.tidy(() => {
      const r = route(x, w.routerKernel, w.expertBias, config, false);
      return { ...r, ...choicesOf(r.topKIndices, E) };
    });
    [logits, scores, topKIndices, choiceMask, membership, expertCounts].forEach(held);
    const choices = { choiceMask, membership, expertCounts };
    const counts = await expertCounts.data();
    const rows = asyncReads ? null : Array.from(counts);
    const capacity = droplessCapacity(Math.max(...counts), T);
    const plan = tf.tidy(() => buildRoutingPlan(topKIndices, choices, capacity) as unknown as tf.TensorContainerObject) as unknown as ReturnType<typeof buildRoutingPlan>;
    Object.values(plan).forEach((t) => t instanceof tf.Tensor && held(t));
    const gates = held(tf.tidy(() => gateWeights(gatherChoices(scores, plan, K), config)));
    const xe = held(tf.tidy(() => dispatchTokens(x, plan, E)));
    const ye = random([E, capacity, d], 5) as tf.Tensor3D;
    const [rScores, rGates, rXe, rY, rYe] = [random([T, E], 6), random([T, K], 7), random([E, capacity, d], 8), random([T, d], 9), random([E, capacity, d], 10)];

    const stages: Record<BreakdownStage, () => tf.Scalar> = {
      router: () => forwardBackward((xx, wg) => probe(route(xx as tf.Tensor2D, wg as tf.Tensor2D, w.expertBias, config, false).scores, rScores), [x, w.routerKernel]),
      dispatch: () => forwardBackward((xx, s) => {
        const c = choicesOf(topKIndices, E);
        const p = buildRoutingPlan(topKIndices, c, capacity);
        const g = gateWeights(gatherChoices(s as tf.Tensor2D, p, K), config);
        return tf.add(probe(dispatchTokens(xx as tf.Tensor2D, p, E), rXe), probe(g, rGates)) as tf.Scalar;
      }, [x, scores]),
      routedExperts: () => forwardBackward((a, b, c, e) => probe(routedExperts(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, e as tf.Tensor3D, rows), rYe),
        [xe, w.expertW1, w.expertW3, w.expertW2]),
      sharedExperts: () => forwardBackward((a, b, c, e) => probe(swiGLU(a as tf.Tensor2D, b as tf.Tensor2D, c as tf.Tensor2D, e as tf.Tensor2D), rY),
        [x, w.sharedW1!, w.sharedW3!, w.sharedW2!]),
      combine: () => forwardBackward((a, g) => probe(combineExperts(a as tf.Tensor3D, g as tf.Tensor2D, plan), rY), [ye, gates]),
      // Gradients w.r.t. the scores only: the logits enter the losses only through the z-loss, which is off here.
      losses: () => forwardBackward((s) => {
        const losses = balanceLosses(logits, s as tf.Tensor2D, choices.membership, 1, config);
        const stats = routingStats(choices.expertCounts, s as tf.Tensor2D, tf.scalar(0), config);
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

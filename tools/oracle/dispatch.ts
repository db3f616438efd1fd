import * as tf from '@tensorflow/tfjs';
import { gatherRows, sumOverChoices } from '../../src/backend-ops.js';
import { customOp } from '../../src/ops.js';
import type { RoutingPlan } from './plan.js';

/**
 * The oracle's gather-based dispatch and combine steps (the library's before its grouped kernels). Each is a `tf.customGrad` whose backward is
 * itself a gather through the plan's inverse map, so no backend needs UnsortedSegmentSum or ScatterNd.
 * Sentinel indices (one past the last row) read zeros through gatherRows.
 */

/** The unbiased score of each chosen expert, s[t, topK[t, k]]: scores [T, E] -> [T, K]. */
export function gatherChoices(scores: tf.Tensor2D, plan: RoutingPlan, K: number): tf.Tensor2D {
  const [T, E] = scores.shape;
  const op = customOp(([s], save) => {
    save([plan.scoreToChoice]);
    const value = tf.reshape(tf.gather(tf.reshape(s!, [T * E]), plan.choiceToScore), [T, K]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const scoreToChoice = saved[0] as tf.Tensor1D;
      // dS[t, e] = dG[t, k] where expert e was choice k, else 0 (the sentinel column K).
      const dyPad = tf.concat([dy, tf.zeros([T, 1])], 1); // [T, K + 1]
      return tf.reshape(tf.gather(tf.reshape(dyPad, [T * (K + 1)]), scoreToChoice), [T, E]);
    };
    return { value, gradFunc };
  });
  return op(scores) as tf.Tensor2D;
}

/** Copies each token into the slots of the experts that took it: x [T, d] -> xe [E, C, d]. */
export function dispatchTokens(x: tf.Tensor2D, plan: RoutingPlan, E: number): tf.Tensor3D {
  const [T, d] = x.shape;
  const C = plan.capacity;
  const K = plan.assignmentToSlot.shape[0] / T;
  const op = customOp(([xIn], save) => {
    save([plan.assignmentToSlot]);
    const value = tf.reshape(gatherRows(xIn as tf.Tensor2D, plan.slotToToken), [E, C, d]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const assignmentToSlot = saved[0] as tf.Tensor1D;
      // dx[t] = sum over the token's K assignments of the gradient in its slot (dropped ones read the zero row).
      const perChoice = gatherRows(tf.reshape(dy, [E * C, d]) as tf.Tensor2D, assignmentToSlot); // [T * K, d]
      return sumOverChoices(tf.reshape(perChoice, [T, K, d]) as tf.Tensor3D);
    };
    return { value, gradFunc };
  });
  return op(x) as tf.Tensor3D;
}

/** Weighted sum of each token's expert outputs: ye [E, C, d], gates [T, K] -> y [T, d]. */
export function combineExperts(ye: tf.Tensor3D, gates: tf.Tensor2D, plan: RoutingPlan): tf.Tensor2D {
  const [E, C, d] = ye.shape;
  const [T, K] = gates.shape;
  const op = customOp(([yeIn, gatesIn], save) => {
    save([yeIn!, gatesIn!, plan.assignmentToSlot, plan.slotToAssignment]);
    const perChoice = tf.reshape(gatherRows(tf.reshape(yeIn!, [E * C, d]) as tf.Tensor2D, plan.assignmentToSlot), [T, K, d]);
    const value = sumOverChoices(tf.mul(perChoice, tf.expandDims(gatesIn!, 2)) as tf.Tensor3D);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [yeSaved, gatesSaved, assignmentToSlot, slotToAssignment] = saved as [tf.Tensor, tf.Tensor, tf.Tensor1D, tf.Tensor1D];
      const dyRows = tf.expandDims(dy, 1); // [T, 1, d]
      // dGates[t, k] = <ye[slot of (t, k)], dy[t]>
      const outputs = tf.reshape(gatherRows(tf.reshape(yeSaved, [E * C, d]) as tf.Tensor2D, assignmentToSlot), [T, K, d]);
      const dGates = tf.sum(tf.mul(outputs, dyRows), 2);
      // dYe[slot] = gate * dy of the assignment in that slot; empty slots read the zero row.
      const weighted = tf.reshape(tf.mul(dyRows, tf.expandDims(gatesSaved, 2)), [T * K, d]);
      const dYe = tf.reshape(gatherRows(weighted as tf.Tensor2D, slotToAssignment), [E, C, d]);
      return [dYe, dGates];
    };
    return { value, gradFunc };
  });
  return op(ye, gates) as tf.Tensor2D;
}

import * as tf from '@tensorflow/tfjs';
import { customOp } from '../ops.js';
import type { DeepSeekMoEConfig } from './config.js';
import { ensureKernels, kernelNames, type KernelAttrs, type KernelKey } from './kernels/index.js';

/**
 * The grouped expert computation (the MegaBlocks / ScatterMoE idea): the T K assignments are sorted by expert
 * into contiguous segments of rows, and each stage is one backend kernel over all experts at once, gathers fused
 * into the matmuls that read them. A token pays for its K experts: no [T, E] or [T, K, E] scratch is built, and
 * nothing is padded to [E, capacity] (except on tfjs-node, whose batched matmul needs equal blocks: there each
 * expert's rows are padded to the busiest expert's, memory E C, up to E T when routing collapses). Kernel contracts: kernels/contract.ts. Each stage is a tf.customGrad whose
 * backward is kernels too, so no backend needs TF.js's missing gradients (TopK, gather on wasm).
 */

/** Runs a grouped kernel on the active backend. */
function run<K extends KernelKey>(key: K, inputs: Record<string, tf.Tensor | null>, attrs: KernelAttrs[K]): tf.Tensor {
  ensureKernels();
  const named: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(inputs)) if (t !== null) named[name] = t;
  return tf.engine().runKernel(kernelNames[key], named, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** Where every assignment goes: the experts chosen (ids [T, K]) and the routing plan sorted by expert. */
export interface GroupedRoute {
  /** The chosen experts: [T, K] int32. */
  ids: tf.Tensor2D;
  /** The packed routing plan: [2 T K + E + 1] int32 (layout in kernels/contract.ts). */
  plan: tf.Tensor1D;
}

/** DeepSeek-V3's expert selection (bias for selection only, group-limited top-K): scores [T, E] -> ids [T, K]. */
export function selectExperts(scores: tf.Tensor2D, bias: tf.Tensor1D | null, config: DeepSeekMoEConfig): tf.Tensor2D {
  const { topK, nExpertGroups: nGroups, topKGroups, groupScoreFunc: groupScore } = config;
  return run('selectExperts', { scores, bias }, { topK, nGroups, topKGroups, groupScore }) as tf.Tensor2D;
}

/** How often each expert was chosen in each of `nBlocks` equal blocks of tokens: [nBlocks, E] float32. */
export function countExperts(ids: tf.Tensor2D, nExperts: number, nBlocks = 1): tf.Tensor2D {
  return run('countExperts', { ids }, { nExperts, nBlocks }) as tf.Tensor2D;
}

/** Sorts the assignments by expert; `capacity` 0 keeps them all, C keeps each expert's first C tokens. */
export function routingPlan(ids: tf.Tensor2D, nExperts: number, capacity: number): GroupedRoute {
  return { ids, plan: run('routingPlan', { ids }, { nExperts, capacity }) as tf.Tensor1D };
}

/**
 * The plan when `keep` [T, K] (1 kept, 0 dropped; dropPolicy 'probs') says which assignments survive, in the
 * layout every kernel reads (contract.ts: an expert's kept rows first, in assignment order). Built by the same kernel
 * over 2 E virtual experts, kept assignments of e to 2 e and dropped ones to 2 e + 1, so segment 2 e + 1 sits right
 * after 2 e; then the dropped entries become the sentinel A and the odd segments' starts are left out.
 */
export function keptRoutingPlan(ids: tf.Tensor2D, nExperts: number, keep: tf.Tensor2D): GroupedRoute {
  const [T, K] = ids.shape;
  const A = T * K;
  const E = nExperts;
  const keepFlat = tf.reshape(keep, [A]);
  const kept = tf.greater(keepFlat, 0);
  // From the float mask, not a bool cast (which webgpu gets wrong in TF.js 4.22, see ops.ts maskToFloat).
  const virtual = tf.add(tf.mul(ids, tf.scalar(2, 'int32')), tf.cast(tf.sub(1, keep), 'int32')) as tf.Tensor2D;
  const plan = run('routingPlan', { ids: virtual }, { nExperts: 2 * E, capacity: 0 }) as tf.Tensor1D;
  const sentinel = tf.fill([A], A, 'int32');
  const rowOf = tf.where(kept, tf.slice(plan, [0], [A]), sentinel); // [A]
  const inRow = tf.slice(plan, [A], [A]); // every row holds an assignment (capacity 0)
  const assignmentOf = tf.where(tf.greater(tf.gather(keepFlat, inRow), 0), inRow, sentinel); // [A]
  const starts = tf.reshape(tf.slice(tf.reshape(tf.slice(plan, [2 * A], [2 * E]), [E, 2]), [0, 0], [E, 1]), [E]);
  return { ids, plan: tf.concat([rowOf, assignmentOf, starts, tf.tensor1d([A], 'int32')]) as tf.Tensor1D };
}

/** The gate weights from the unbiased scores of the chosen experts: scores [T, E] -> [T, K]. */
export function gateWeightsOf(scores: tf.Tensor2D, ids: tf.Tensor2D, config: DeepSeekMoEConfig): tf.Tensor2D {
  const attrs = { normTopK: config.normTopK, routeScale: config.routeScale };
  const op = customOp(([s], save) => {
    save([s!, ids]);
    const gradFunc = (dGates: tf.Tensor, [s0, i0]: tf.Tensor[]) => run('gateWeightsGrad', { dGates, scores: s0!, ids: i0! }, attrs);
    return { value: run('gateWeights', { scores: s!, ids }, attrs), gradFunc };
  });
  return op(scores) as tf.Tensor2D;
}

/** First layer of every routed expert on its rows, x gathered by token: x [T, d] -> h13 [2, T K, h]. */
export function expertsUp(x: tf.Tensor2D, w1: tf.Tensor3D, w3: tf.Tensor3D, route: GroupedRoute): tf.Tensor3D {
  const [E, , ] = w1.shape;
  const K = route.ids.shape[1];
  const op = customOp(([xIn, w1In, w3In], save) => {
    save([xIn!, w1In!, w3In!, route.ids, route.plan]);
    const gradFunc = (dH13: tf.Tensor, saved: tf.Tensor[]) => {
      const [x0, v1, v3, ids, plan] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const dW = (half: 0 | 1) => run('expertsUpGradW', { x: x0, dH13, plan }, { nExperts: E, topK: K, half });
      return [run('expertsUpGradX', { dH13, w1: v1, w3: v3, ids, plan }, {}), dW(0), dW(1)];
    };
    return { value: run('expertsUp', { x: xIn!, w1: w1In!, w3: w3In!, ids: route.ids, plan: route.plan }, {}), gradFunc };
  });
  return op(x, w1, w3) as tf.Tensor3D;
}

/** Second layer, SwiGLU fused into its input: h13 [2, T K, h] -> yRows [T K, d] = (silu(h1) * h3) w2[e]. */
export function expertsDown(h13: tf.Tensor3D, w2: tf.Tensor3D, route: GroupedRoute): tf.Tensor2D {
  const E = w2.shape[0];
  const op = customOp(([hIn, w2In], save) => {
    save([hIn!, w2In!, route.ids, route.plan]);
    const gradFunc = (dYRows: tf.Tensor, saved: tf.Tensor[]) => {
      const [h0, v2, ids, plan] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      return [
        run('expertsDownGradH', { dYRows, h13: h0, w2: v2, ids, plan }, {}),
        run('expertsDownGradW', { h13: h0, dYRows, plan }, { nExperts: E }),
      ];
    };
    return { value: run('expertsDown', { h13: hIn!, w2: w2In!, ids: route.ids, plan: route.plan }, {}), gradFunc };
  });
  return op(h13, w2) as tf.Tensor2D;
}

/** Each token's gate-weighted sum of its rows, a gather (no scatter): yRows [T K, d], gates [T, K] -> [T, d]. */
export function combineRows(yRows: tf.Tensor2D, gates: tf.Tensor2D, route: GroupedRoute): tf.Tensor2D {
  const op = customOp(([rows, g], save) => {
    save([rows!, g!, route.plan]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [r0, g0, plan] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      return [run('combineGrad', { dy, gates: g0, plan }, {}), run('combineGradGates', { rows: r0, dy, plan }, {})];
    };
    return { value: run('combine', { rows: rows!, gates: g!, plan: route.plan }, {}), gradFunc };
  });
  return op(yRows, gates) as tf.Tensor2D;
}

/** The routed experts' output for tokens x [T, d]: expertsUp, expertsDown, combine. */
export function groupedExperts(
  x: tf.Tensor2D, w1: tf.Tensor3D, w3: tf.Tensor3D, w2: tf.Tensor3D, gates: tf.Tensor2D, route: GroupedRoute,
): tf.Tensor2D {
  return combineRows(expertsDown(expertsUp(x, w1, w3, route), w2, route), gates, route);
}

/**
 * The shared experts on the grouped kernels: one expert of width nSharedExperts * h that every token takes, so
 * their two matmuls and SwiGLU are the routed experts' two kernels (and six backward), not a dozen stock ops.
 * x [T, d], w1 and w3 [d, H], w2 [H, d] -> [T, d]. The route is the identity: one segment, row t = token t.
 */
export function sharedExperts(x: tf.Tensor2D, w1: tf.Tensor2D, w3: tf.Tensor2D, w2: tf.Tensor2D): tf.Tensor2D {
  const T = x.shape[0];
  const [d, H] = w1.shape;
  const plan = new Int32Array(2 * T + 2);
  for (let t = 0; t < T; t++) (plan[t] = t), (plan[T + t] = t);
  plan[2 * T + 1] = T;
  // Uploaded, not built by ops: on the GPU backends every op is a program.
  const route: GroupedRoute = { ids: tf.tensor2d(new Int32Array(T), [T, 1], 'int32'), plan: tf.tensor1d(plan, 'int32') };
  const stacked = (w: tf.Tensor2D, rows: number, cols: number) => tf.reshape(w, [1, rows, cols]) as tf.Tensor3D;
  const h13 = expertsUp(x, stacked(w1, d, H), stacked(w3, d, H), route);
  return expertsDown(h13, stacked(w2, H, d), route); // rows in token order: the output itself
}

/** Mean over tokens of the entropy of their normalised affinities (contract.ts); a statistic, no gradient. */
export function meanRouterEntropyOf(scores: tf.Tensor2D, config: DeepSeekMoEConfig): tf.Scalar {
  return tf.mean(run('routerEntropy', { scores }, { normalise: config.scoreFunc !== 'softmax' })) as tf.Scalar;
}

/**
 * scale sum_t sum_i weights[b(t), i] s'_(t,i) over the B equal blocks of tokens of weights [B, E] (off the tape),
 * the form every balance loss takes with its counts as the weights and its factors as the scale (balance.ts).
 */
export function affinityBalance(
  scores: tf.Tensor2D, weights: tf.Tensor2D, scale: number, config: DeepSeekMoEConfig,
): tf.Scalar {
  const attrs = { normalise: config.scoreFunc !== 'softmax', scale };
  const op = customOp(([s], save) => {
    save([s!, weights]);
    const gradFunc = (dy: tf.Tensor, [s0, w0]: tf.Tensor[]) =>
      run('affinityBalanceGrad', { dy, scores: s0!, weights: w0! }, attrs);
    return { value: tf.sum(run('affinityBalance', { scores: s!, weights }, attrs)), gradFunc };
  });
  return op(scores) as tf.Scalar;
}

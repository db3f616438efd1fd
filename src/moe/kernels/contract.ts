/**
 * The grouped expert computation's kernels: names, inputs, attributes, and what each computes. Every backend
 * runs the same contract through its adapter (adapter.ts; `wasm.ts`, `webgpu.ts`, `webgl.ts`, `tensorflow.ts`);
 * `loops.ts` is the readable reference the others are tested against, and what runs where an adapter has no
 * native version of a kernel (every kernel on cpu).
 *
 * Notation: T tokens, K choices per token, A = T * K assignments (a = t * K + k), E routed experts, d model
 * width, h expert width. `ids` [T, K] int32 holds the expert of each assignment.
 *
 * The routing plan sorts the A assignments by expert (then by assignment index, so within an expert earlier
 * tokens come first) into A rows: expert e owns the contiguous segment of rows [start_e, start_(e+1)). It is one
 * int32 tensor [2 A + E + 1]:
 *   plan[a]           row of assignment a, or A when capacity dropped it
 *   plan[A + r]       assignment in row r, or A when that row's assignment was dropped
 *   plan[2 A + e]     start_e; plan[2 A + E] = A
 * With a capacity C, the first min(count_e, C) rows of a segment are kept, the rest dropped. Kernels treat
 * dropped rows as zeros (they read nothing and write 0). Its cost and memory follow A = T K, never T E.
 *
 * Per-row expert compute works on rows, so a token pays for its K experts: no [E, capacity] padding, no
 * [T, E] or [T, K, E] scratch. h13 holds the two first-layer products of every row, [2, A, h]: h13[0] = x W1,
 * h13[1] = x W3 (two contiguous blocks, so each segment of either is contiguous for a per-expert matmul).
 */

export const kernelNames = {
  selectExperts: 'DeepSeekMoESelectExperts',
  countExperts: 'DeepSeekMoECountExperts',
  routingPlan: 'DeepSeekMoERoutingPlan',
  gateWeights: 'DeepSeekMoEGateWeights',
  gateWeightsGrad: 'DeepSeekMoEGateWeightsGrad',
  expertsUp: 'DeepSeekMoEExpertsUp',
  expertsUpGradX: 'DeepSeekMoEExpertsUpGradX',
  expertsUpGradW: 'DeepSeekMoEExpertsUpGradW',
  expertsDown: 'DeepSeekMoEExpertsDown',
  expertsDownGradH: 'DeepSeekMoEExpertsDownGradH',
  expertsDownGradW: 'DeepSeekMoEExpertsDownGradW',
  combine: 'DeepSeekMoECombine',
  combineGrad: 'DeepSeekMoECombineGrad',
  combineGradGates: 'DeepSeekMoECombineGradGates',
  routerEntropy: 'DeepSeekMoERouterEntropy',
  affinityBalance: 'DeepSeekMoEAffinityBalance',
  affinityBalanceGrad: 'DeepSeekMoEAffinityBalanceGrad',
} as const;

export type KernelKey = keyof typeof kernelNames;

/**
 * Inputs and attributes of each kernel, and what it returns. Shapes in comments; every float is float32.
 *
 * - selectExperts {scores [T, E], bias? [E]} {topK, nGroups, topKGroups, groupScore} -> ids [T, K] int32.
 *   DeepSeek-V3's selection: v = scores + bias; with nGroups > 1 each group is scored (max of v, or the sum of its
 *   top two for 'sumTop2'), the topKGroups best groups are kept and the rest set to -Infinity; then the K largest
 *   v in descending order. Ties go to the lower index, as tf.topk does.
 * - countExperts {ids [T, K]} {nExperts, nBlocks} -> [nBlocks, E] float32: how often each expert appears among
 *   the assignments of each of nBlocks equal blocks of tokens (nBlocks = 1: the load; = sequences: per sequence).
 * - routingPlan {ids [T, K]} {nExperts, capacity} -> plan int32 [2 A + E + 1] (above); capacity 0 keeps all.
 * - gateWeights {scores [T, E], ids} {normTopK, routeScale} -> gates [T, K]: g = scores[t, ids[t, k]], divided by
 *   their sum over k when normTopK, times routeScale.
 * - gateWeightsGrad {dGates [T, K], scores, ids} {normTopK, routeScale} -> dScores [T, E], zero off the chosen.
 * - expertsUp {x [T, d], w1 [E, d, h], w3 [E, d, h], ids, plan} {} -> h13 [2, A, h]: for a kept row r holding
 *   assignment a of token t = floor(a / K), expert e = ids[a]: h13[0, r] = x[t] w1[e], h13[1, r] = x[t] w3[e].
 * - expertsUpGradX {dH13 [2, A, h], w1, w3, ids, plan} {} -> dx [T, d] = sum over the token's kept rows r of
 *   dH13[0, r] w1[e]^T + dH13[1, r] w3[e]^T.
 * - expertsUpGradW {x [T, d], dH13 [2, A, h], plan} {nExperts, topK, half} -> [E, d, h]: for each expert, the sum
 *   over its kept rows of x[t]^T dH13[half, r] (half 0 gives dW1, 1 gives dW3).
 * - expertsDown {h13 [2, A, h], w2 [E, h, d], ids, plan} {} -> yRows [A, d] = (silu(h13[0, r]) * h13[1, r]) w2[e].
 * - expertsDownGradH {dYRows [A, d], h13, w2, ids, plan} {} -> dH13 [2, A, h]: with u = dYRows[r] w2[e]^T,
 *   s = sigmoid(h1): dH13[0, r] = u h3 s (1 + h1 (1 - s)), dH13[1, r] = u h1 s.
 * - expertsDownGradW {h13, dYRows [A, d], plan} {nExperts} -> [E, h, d]: per expert, the sum over its kept rows of
 *   (silu(h1) * h3)^T dYRows[r].
 * - combine {rows [A, d], gates [T, K], plan} {} -> [T, d]: y[t] = sum_k gates[t, k] rows[plan[t K + k]], dropped
 *   assignments adding nothing.
 * - combineGrad {dy [T, d], gates [T, K], plan} {} -> dRows [A, d]: gates[a] dy[t] in the row of kept assignment a.
 * - combineGradGates {rows [A, d], dy [T, d], plan} {} -> [T, K]: <rows[row of (t, k)], dy[t]>, 0 when dropped.
 *
 * Two per-token reductions of the scores replace tens of small stock ops each on the GPU backends. With
 * normalise, s'[t] = scores[t] / sum_j scores[t, j] (sigmoid scores), otherwise s' = scores (softmax already sums
 * to 1). Token t belongs to block b(t) = floor(t B / T) of the B equal blocks (sequences) of `weights` [B, E].
 * - routerEntropy {scores [T, E]} {normalise} -> [T]: -sum_i s'_(t,i) log(max(s'_(t,i), 1e-12)).
 * - affinityBalance {scores [T, E], weights [B, E]} {normalise, scale} -> [T]: L_t = scale sum_i weights[b(t), i]
 *   s'_(t,i). The balance losses are sums of these (balance.ts), the counts as weights, the factors as scale.
 * - affinityBalanceGrad {dy [], scores, weights} {normalise, scale} -> dScores [T, E], the gradient of sum_t L_t
 *   times the scalar dy: with R_t = sum_j scores[t, j] and W = scale weights, dy (W[b(t), j] - L_t) / R_t when
 *   normalise, dy W[b(t), j] otherwise.
 */
export interface KernelAttrs {
  selectExperts: { topK: number; nGroups: number; topKGroups: number; groupScore: 'max' | 'sumTop2' };
  countExperts: { nExperts: number; nBlocks: number };
  routingPlan: { nExperts: number; capacity: number };
  gateWeights: { normTopK: boolean; routeScale: number };
  gateWeightsGrad: { normTopK: boolean; routeScale: number };
  expertsUp: Record<string, never>;
  expertsUpGradX: Record<string, never>;
  expertsUpGradW: { nExperts: number; topK: number; half: 0 | 1 };
  expertsDown: Record<string, never>;
  expertsDownGradH: Record<string, never>;
  expertsDownGradW: { nExperts: number };
  combine: Record<string, never>;
  combineGrad: Record<string, never>;
  combineGradGates: Record<string, never>;
  routerEntropy: { normalise: boolean };
  affinityBalance: { normalise: boolean; scale: number };
  affinityBalanceGrad: { normalise: boolean; scale: number };
}

/** Input names of each kernel, in the order the GPU programs declare them. Optional inputs end with '?'. */
export const kernelInputs: { [K in KernelKey]: readonly string[] } = {
  selectExperts: ['scores', 'bias?'],
  countExperts: ['ids'],
  routingPlan: ['ids'],
  gateWeights: ['scores', 'ids'],
  gateWeightsGrad: ['dGates', 'scores', 'ids'],
  expertsUp: ['x', 'w1', 'w3', 'ids', 'plan'],
  expertsUpGradX: ['dH13', 'w1', 'w3', 'ids', 'plan'],
  expertsUpGradW: ['x', 'dH13', 'plan'],
  expertsDown: ['h13', 'w2', 'ids', 'plan'],
  expertsDownGradH: ['dYRows', 'h13', 'w2', 'ids', 'plan'],
  expertsDownGradW: ['h13', 'dYRows', 'plan'],
  combine: ['rows', 'gates', 'plan'],
  combineGrad: ['dy', 'gates', 'plan'],
  combineGradGates: ['rows', 'dy', 'plan'],
  routerEntropy: ['scores'],
  affinityBalance: ['scores', 'weights'],
  affinityBalanceGrad: ['dy', 'scores', 'weights'],
};

/**
 * The routing kernels on webgpu: expert selection, load counts, the routing plan and the gate weights. Each is one
 * thread per output item except the plan, which takes two programs (per-block counts, then every assignment's row).
 */
import { i32, f32, runFlat, type GpuKernel } from './program.js';

/**
 * One thread per token: group scores and the kept groups (when nGroups > 1), then K passes over the E values, each
 * taking the best value ranked after the previous pick (value descending, index ascending, as tf.topk orders).
 * No [T, E] scratch and no sort; T K E steps in all. The group shape is compiled in (private arrays need it).
 */
const selectExperts: GpuKernel<'selectExperts'> = ({ scores, bias }, attrs, backend) => {
  const { topK, nGroups, topKGroups, groupScore } = attrs;
  const [T, E] = scores!.shape as [number, number];
  const names = bias ? ['scores', 'bias'] : ['scores'];
  const grouped = nGroups > 1;
  const groupValue = groupScore === 'max'
    ? 'best = max(best, v);'
    // Sum of the two largest: which of equal values is taken does not change the sum.
    : 'if (v > best) { second = best; best = v; } else if (v > second) { second = v; }';
  const helpers = `
    fn value(t : i32, e : i32) -> f32 {
      return scores[t * uniforms.nExperts + e]${bias ? ' + bias[e]' : ''};
    }
    ${grouped ? `
    var<private> keptGroup : array<bool, ${nGroups}>;
    fn keepGroups(t : i32) {
      let per = uniforms.nExperts / ${nGroups};
      var groupScores : array<f32, ${nGroups}>;
      for (var g = 0; g < ${nGroups}; g++) {
        var best = -uniforms.INFINITY;
        var second = -uniforms.INFINITY;
        for (var j = g * per; j < (g + 1) * per; j++) {
          let v = value(t, j);
          ${groupValue}
        }
        groupScores[g] = ${groupScore === 'max' ? 'best' : 'best + second'};
      }
      for (var g = 0; g < ${nGroups}; g++) {
        var rank = 0;
        for (var o = 0; o < ${nGroups}; o++) {
          let s = groupScores[o];
          if (s > groupScores[g] || (s == groupScores[g] && o < g)) { rank++; }
        }
        keptGroup[g] = rank < ${topKGroups};
      }
    }` : ''}
    fn masked(t : i32, e : i32) -> f32 {
      ${grouped ? `if (!keptGroup[e / (uniforms.nExperts / ${nGroups})]) { return -uniforms.INFINITY; }` : ''}
      return value(t, e);
    }`;
  const body = `
    let t = index;
    ${grouped ? 'keepGroups(t);' : ''}
    var prevValue = uniforms.INFINITY;
    var prevIndex = -1;
    for (var k = 0; k < uniforms.topK; k++) {
      var bestValue = 0.0;
      var bestIndex = -1;
      for (var e = 0; e < uniforms.nExperts; e++) {
        let v = masked(t, e);
        let afterPrev = v < prevValue || (v == prevValue && e > prevIndex);
        if (afterPrev && (bestIndex < 0 || v > bestValue)) {
          bestValue = v;
          bestIndex = e;
        }
      }
      result[t * uniforms.topK + k] = bestIndex;
      prevValue = bestValue;
      prevIndex = bestIndex;
    }`;
  return runFlat(backend, {
    key: `selectExperts_${bias ? 'bias' : 'noBias'}_${grouped ? `${nGroups}_${topKGroups}_${groupScore}` : 'flat'}`,
    inputs: bias ? [scores!, bias] : [scores!], names, outputShape: [T, topK], dtype: 'int32', n: T,
    uniforms: [i32('nExperts', E), i32('topK', topK)], helpers, body,
  });
};

/** One thread per (block, expert): counts its expert among the block's A / nBlocks assignments. */
const countExperts: GpuKernel<'countExperts'> = ({ ids }, { nExperts: E, nBlocks }, backend) => {
  const A = ids!.shape[0]! * ids!.shape[1]!;
  return runFlat(backend, {
    key: 'countExperts', inputs: [ids!], names: ['ids'], outputShape: [nBlocks, E], dtype: 'float32', n: nBlocks * E,
    uniforms: [i32('nExperts', E), i32('perBlock', A / nBlocks)],
    body: `
      let e = index % uniforms.nExperts;
      let first = (index / uniforms.nExperts) * uniforms.perBlock;
      var count = 0;
      for (var a = first; a < first + uniforms.perBlock; a++) { count += select(0, 1, ids[a] == e); }
      result[index] = f32(count);`,
  });
};

/** Assignments per block of the routing plan's first program; ~sqrt(2 A) balances the second program's loops. */
const planBlock = 128;

/**
 * The routing plan, a stable counting sort of the assignments by expert, in two programs:
 * 1. counts [2, nb, E] int32, one thread per (block of planBlock assignments, expert): how many of the block's
 *    assignments go to the expert, and how many to lower experts.
 * 2. the plan, one thread per assignment a of expert e in block b: start_e = all blocks' counts below e, its rank
 *    = e's count in blocks before b + e's count among the earlier assignments of b; it writes plan[a] and
 *    plan[A + row] (every row is some assignment's, so all of [A, 2 A) is written). Threads e <= E write start_e.
 * O(A (E + nb + planBlock)) work in all, never O(A^2), and no [T, E] scratch.
 */
const routingPlan: GpuKernel<'routingPlan'> = ({ ids }, { nExperts: E, capacity }, backend) => {
  const A = ids!.shape[0]! * ids!.shape[1]!;
  const nb = Math.ceil(A / planBlock);
  const counts = runFlat(backend, {
    key: `planCounts_${planBlock}`, inputs: [ids!], names: ['ids'], outputShape: [2, nb, E], dtype: 'int32',
    n: nb * E, uniforms: [i32('nExperts', E), i32('nAssignments', A)],
    body: `
      let e = index % uniforms.nExperts;
      let first = (index / uniforms.nExperts) * ${planBlock};
      var same = 0;
      var below = 0;
      for (var a = first; a < min(first + ${planBlock}, uniforms.nAssignments); a++) {
        let id = ids[a];
        same += select(0, 1, id == e);
        below += select(0, 1, id < e);
      }
      result[index] = same;
      result[uniforms.n + index] = below;`,
  });
  const plan = runFlat(backend, {
    key: `plan_${planBlock}`, inputs: [ids!, counts], names: ['ids', 'counts'], outputShape: [2 * A + E + 1],
    dtype: 'int32', n: Math.max(A, E + 1),
    uniforms: [i32('nExperts', E), i32('nAssignments', A), i32('nBlocks', nb), i32('capacity', capacity)],
    helpers: `
      // start_e: the assignments to experts below e, summed over the blocks.
      fn segmentStart(e : i32) -> i32 {
        let E = uniforms.nExperts;
        var start = 0;
        for (var b = 0; b < uniforms.nBlocks; b++) { start += counts[(uniforms.nBlocks + b) * E + e]; }
        return start;
      }`,
    body: `
      let A = uniforms.nAssignments;
      let E = uniforms.nExperts;
      if (index < E) { result[2 * A + index] = segmentStart(index); }
      if (index == E) { result[2 * A + E] = A; }
      if (index < A) {
        let e = ids[index];
        let block = index / ${planBlock};
        var rank = 0;
        for (var b = 0; b < block; b++) { rank += counts[b * E + e]; }
        for (var a = block * ${planBlock}; a < index; a++) { rank += select(0, 1, ids[a] == e); }
        let row = segmentStart(e) + rank;
        let kept = uniforms.capacity == 0 || rank < uniforms.capacity;
        result[index] = select(A, row, kept);
        result[A + row] = select(A, index, kept);
      }`,
  });
  backend.disposeData(counts.dataId);
  return plan;
};

/** One thread per assignment: its score, over the sum of its token's K scores when normTopK, times routeScale. */
const gateWeights: GpuKernel<'gateWeights'> = ({ scores, ids }, { normTopK, routeScale }, backend) => {
  const [T, K] = ids!.shape as [number, number];
  return runFlat(backend, {
    key: 'gateWeights', inputs: [scores!, ids!], names: ['scores', 'ids'], outputShape: [T, K], dtype: 'float32',
    n: T * K, uniforms: [i32('topK', K), i32('normTopK', normTopK ? 1 : 0), f32('routeScale', routeScale)],
    body: `
      let K = uniforms.topK;
      let t = index / K;
      let row = t * uniforms.scoresShape.y;
      var sum = 0.0;
      for (var k = 0; k < K; k++) { sum += scores[row + ids[t * K + k]]; }
      let s = scores[row + ids[index]];
      result[index] = select(s, s / sum, uniforms.normTopK == 1) * uniforms.routeScale;`,
  });
};

/** One thread per (token, expert), zero off the chosen: with g_k = c s_k / S, dS_k = c (dG_k / S - <dG, s> / S^2). */
const gateWeightsGrad: GpuKernel<'gateWeightsGrad'> = ({ dGates, scores, ids }, { normTopK, routeScale }, backend) => {
  const [T, K] = ids!.shape as [number, number];
  const E = scores!.shape[1]!;
  return runFlat(backend, {
    key: 'gateWeightsGrad', inputs: [dGates!, scores!, ids!], names: ['dGates', 'scores', 'ids'],
    outputShape: [T, E], dtype: 'float32', n: T * E,
    uniforms: [i32('nExperts', E), i32('topK', K), i32('normTopK', normTopK ? 1 : 0), f32('routeScale', routeScale)],
    body: `
      let K = uniforms.topK;
      let t = index / uniforms.nExperts;
      let e = index % uniforms.nExperts;
      var chosen = -1;
      var sum = 0.0;
      var weighted = 0.0;
      for (var k = 0; k < K; k++) {
        let id = ids[t * K + k];
        let s = scores[t * uniforms.nExperts + id];
        let dG = dGates[t * K + k];
        sum += s;
        weighted += dG * s;
        if (id == e) { chosen = k; }
      }
      var dS = 0.0;
      if (chosen >= 0) {
        let dG = dGates[t * K + chosen];
        dS = uniforms.routeScale * select(dG, dG / sum - weighted / (sum * sum), uniforms.normTopK == 1);
      }
      result[index] = dS;`,
  });
};

export const routingKernels = { selectExperts, countExperts, routingPlan, gateWeights, gateWeightsGrad };

/**
 * The routing kernels on webgl: selection, per-block expert counts, the routing plan (a stable sort of the
 * assignments by expert, written as gathers) and the gate weights with their gradient.
 */
import type * as tf from '@tensorflow/tfjs';
import { flat, glFloat, type GLKernel, type GLProgram, type WebGLBackend } from './program.js';

/**
 * One fragment per (t, k): the k-th pick is found by k + 1 passes over the E experts, each taking the best one
 * ranked after the previous pick, in the order (kept group first, larger v, lower index): tf.topk's order, with
 * the dropped groups last instead of at -Infinity. O(K E) reads per fragment, no sort scratch.
 */
export const selectExperts: GLKernel<'selectExperts'> = ({ scores, bias }, attrs, backend) => {
  const { topK: K, nGroups: G, topKGroups, groupScore } = attrs;
  const [T, E] = scores!.shape as [number, number];
  const per = E / G;
  const value = `float valueAt(int t, int e) { return getScores(t, e)${bias ? ' + getBias(e)' : ''}; }`;
  const first = (j: number) => `valueAt(t, g * ${per} + ${j})`;
  // Group scores: the max of v, or the sum of its top two; a group is kept when fewer than topKGroups beat it.
  const groupScoreOf = groupScore === 'max' ? `
    float m = ${first(0)};
    for (int j = 1; j < ${per}; j++) m = max(m, valueAt(t, g * ${per} + j));
    return m;` : `
    float m1 = max(${first(0)}, ${first(1)}), m2 = min(${first(0)}, ${first(1)});
    for (int j = 2; j < ${per}; j++) {
      float v = valueAt(t, g * ${per} + j);
      if (v > m1) { m2 = m1; m1 = v; } else if (v > m2) { m2 = v; }
    }
    return m1 + m2;`;
  const groups = G === 1 ? 'bool keptAt(int e) { return true; }' : `
    bool keptGroup[${G}];
    float groupScore(int t, int g) {${groupScoreOf}
    }
    void keepGroups(int t) {
      float s[${G}];
      for (int g = 0; g < ${G}; g++) s[g] = groupScore(t, g);
      for (int g = 0; g < ${G}; g++) {
        int beaten = 0;
        for (int o = 0; o < ${G}; o++) beaten += int(s[o] > s[g] || (s[o] == s[g] && o < g));
        keptGroup[g] = beaten < ${topKGroups};
      }
    }
    bool keptAt(int e) { return keptGroup[e / ${per}]; }`;
  const program: GLProgram = {
    variableNames: bias ? ['scores', 'bias'] : ['scores'],
    outputShape: [T, K],
    userCode: `
      ${value}
      ${groups}
      // Whether (ka, va, ia) ranks before (kb, vb, ib).
      bool before(bool ka, float va, int ia, bool kb, float vb, int ib) {
        if (ka != kb) return ka;
        if (va != vb) return va > vb;
        return ia < ib;
      }
      void main() {
        ivec2 tk = getOutputCoords();
        int t = tk.x;
        ${G === 1 ? '' : 'keepGroups(t);'}
        bool pk = true;
        float pv = 0.0;
        int pe = -1;
        for (int j = 0; j <= tk.y; j++) {
          bool bk = false;
          float bv = 0.0;
          int be = -1;
          for (int e = 0; e < ${E}; e++) {
            bool k = keptAt(e);
            float v = valueAt(t, e);
            bool afterPrevious = pe < 0 || before(pk, pv, pe, k, v, e);
            if (afterPrevious && (be < 0 || before(k, v, e, bk, bv, be))) { bk = k; bv = v; be = e; }
          }
          pk = bk; pv = bv; pe = be;
        }
        setOutput(float(pe));
      }`,
  };
  return backend.runWebGLProgram(program, bias ? [scores!, bias] : [scores!], 'int32');
};

/** Counts of each expert among the assignments of each block of `blockSize`: [ceil(A / blockSize), E] float32. */
function blockCounts(backend: WebGLBackend, ids: tf.TensorInfo, E: number, blockSize: number): tf.TensorInfo {
  const A = ids.shape.reduce((a, b) => a * b, 1);
  const program: GLProgram = {
    variableNames: ['ids'],
    outputShape: [Math.ceil(A / blockSize), E],
    userCode: `
      void main() {
        ivec2 be = getOutputCoords();
        float e = float(be.y);
        float n = 0.0;
        for (int j = 0; j < ${blockSize}; j++) {
          int a = be.x * ${blockSize} + j;
          if (a >= ${A}) break;
          n += float(getIds(a) == e);
        }
        setOutput(n);
      }`,
  };
  return backend.runWebGLProgram(program, [flat(ids)], 'float32');
}

export const countExperts: GLKernel<'countExperts'> = ({ ids }, { nExperts, nBlocks }, backend) =>
  blockCounts(backend, ids!, nExperts, ids!.shape.reduce((a, b) => a * b, 1) / nBlocks);

/**
 * The plan as gathers, in four programs (each fragment loop O(blocks + block size), never O(A)):
 *   counts [NB, E]      expert counts per block of B assignments
 *   before [NB + 1, E]  how often each expert occurs in the blocks before b (row NB: its total)
 *   starts [E + 1]      segment starts, the exclusive scan of the totals
 *   plan [2A + E + 1]   an entry a < A ranks its assignment among the same expert's (earlier blocks' count plus
 *                       a scan within its block); an entry A + r finds its segment by binary search of the starts,
 *                       the block holding that rank by binary search of `before`, then scans that block.
 * The plan is written packed (two entries a fragment): every program that reads it is packed, and TF.js packs an
 * unpacked input again for each packed program that reads it (16 times a layer step).
 */
export const routingPlan: GLKernel<'routingPlan'> = ({ ids }, { nExperts: E, capacity }, backend) => {
  const A = ids!.shape.reduce((a, b) => a * b, 1);
  const B = Math.max(1, Math.ceil(Math.sqrt(A)));
  const NB = Math.ceil(A / B);
  const counts = blockCounts(backend, ids!, E, B);
  const before = backend.runWebGLProgram({
    variableNames: ['counts'],
    outputShape: [NB + 1, E],
    userCode: `
      void main() {
        ivec2 be = getOutputCoords();
        float n = 0.0;
        for (int b = 0; b < ${NB}; b++) {
          if (b >= be.x) break;
          n += getCounts(b, be.y);
        }
        setOutput(n);
      }`,
  }, [counts], 'float32');
  backend.disposeIntermediateTensorInfo(counts);
  const starts = backend.runWebGLProgram({
    variableNames: ['before'],
    outputShape: [E + 1],
    userCode: `
      void main() {
        int e = getOutputCoords();
        float n = 0.0;
        for (int o = 0; o < ${E}; o++) {
          if (o >= e) break;
          n += getBefore(${NB}, o);
        }
        setOutput(n);
      }`,
  }, [before], 'float32');
  const bits = (n: number) => Math.ceil(Math.log2(n + 1)) + 1; // binary search steps over n + 1 bounds
  const kept = capacity === 0 ? 'true' : `rank < ${capacity}`;
  const plan = backend.runWebGLProgram({
    variableNames: ['ids', 'before', 'starts'],
    outputShape: [2 * A + E + 1],
    userCode: `
      int idOf(int a) { return int(getIds(a)); }
      int startOf(int e) { return int(getStarts(e)); }
      int beforeOf(int b, int e) { return int(getBefore(b, e)); }

      // Row of assignment p, or ${A} when capacity drops it.
      int rowOf(int p) {
        int e = idOf(p);
        int b = p / ${B};
        int rank = beforeOf(b, e);
        for (int j = 0; j < ${B}; j++) {
          int a = b * ${B} + j;
          if (a >= p) break;
          rank += int(idOf(a) == e);
        }
        return ${kept} ? startOf(e) + rank : ${A};
      }

      // Assignment in row r, or ${A} when its segment's rank is past capacity.
      int assignmentIn(int r) {
        int lo = 0, hi = ${E};  // start_lo <= r < start_hi
        for (int i = 0; i < ${bits(E)}; i++) {
          if (hi - lo <= 1) break;
          int mid = (lo + hi) / 2;
          if (startOf(mid) <= r) lo = mid; else hi = mid;
        }
        int e = lo;
        int rank = r - startOf(e);
        if (!(${kept})) return ${A};
        int b = 0, bh = ${NB};  // before_b <= rank < before_bh
        for (int i = 0; i < ${bits(NB)}; i++) {
          if (bh - b <= 1) break;
          int mid = (b + bh) / 2;
          if (beforeOf(mid, e) <= rank) b = mid; else bh = mid;
        }
        int left = rank - beforeOf(b, e);
        for (int j = 0; j < ${B}; j++) {
          int a = b * ${B} + j;
          if (a >= ${A}) break;
          if (idOf(a) == e) {
            if (left == 0) return a;
            left--;
          }
        }
        return ${A};
      }

      float entryAt(int p) {
        if (p < ${A}) return float(rowOf(p));
        if (p < ${2 * A}) return float(assignmentIn(p - ${A}));
        return p < ${2 * A + E + 1} ? getStarts(p - ${2 * A}) : 0.0;
      }

      void main() {
        int p = getOutputCoords();
        setOutput(vec4(entryAt(p), entryAt(p + 1), 0, 0));
      }`,
    packedOutput: true,
  }, [flat(ids!), before, starts], 'int32');
  backend.disposeIntermediateTensorInfo(before);
  backend.disposeIntermediateTensorInfo(starts);
  return plan;
};

/** Fragment (t, k): the chosen score, normalised over the token's K choices (K reads, recomputed per k). */
export const gateWeights: GLKernel<'gateWeights'> = ({ scores, ids }, { normTopK, routeScale }, backend) => {
  const [T, K] = ids!.shape as [number, number];
  const program: GLProgram = {
    variableNames: ['scores', 'ids'],
    outputShape: [T, K],
    userCode: `
      float chosen(int t, int k) { return getScores(t, int(getIds(t, k))); }
      void main() {
        ivec2 tk = getOutputCoords();
        float sum = 0.0;
        for (int k = 0; k < ${K}; k++) sum += chosen(tk.x, k);
        float s = chosen(tk.x, tk.y);
        setOutput(${normTopK ? 's / sum' : 's'} * ${glFloat(routeScale)});
      }`,
  };
  return backend.runWebGLProgram(program, [scores!, ids!], 'float32');
};

/**
 * Fragment (t, e): with g_k = c s_k / S (S = sum_j s_j), dS_k = c (dG_k / S - sum_j dG_j s_j / S^2); 0 off the
 * chosen experts.
 */
export const gateWeightsGrad: GLKernel<'gateWeightsGrad'> = ({ dGates, scores, ids }, attrs, backend) => {
  const { normTopK, routeScale } = attrs;
  const [T, K] = ids!.shape as [number, number];
  const E = scores!.shape[1]!;
  const program: GLProgram = {
    variableNames: ['dGates', 'scores', 'ids'],
    outputShape: [T, E],
    userCode: `
      void main() {
        ivec2 te = getOutputCoords();
        int t = te.x;
        float sum = 0.0, weighted = 0.0, dG = 0.0;
        bool chosen = false;
        for (int k = 0; k < ${K}; k++) {
          int e = int(getIds(t, k));
          float s = getScores(t, e);
          float g = getDGates(t, k);
          sum += s;
          weighted += g * s;
          if (e == te.y) { chosen = true; dG = g; }
        }
        float d = ${normTopK ? 'dG / sum - weighted / (sum * sum)' : 'dG'};
        setOutput(chosen ? d * ${glFloat(routeScale)} : 0.0);
      }`,
  };
  return backend.runWebGLProgram(program, [dGates!, scores!, ids!], 'float32');
};

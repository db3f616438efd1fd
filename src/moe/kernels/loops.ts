/**
 * The kernel contract (contract.ts) as plain loops over typed arrays: the readable definition every backend's native
 * kernels are tested against, and what a backend runs for any kernel its adapter leaves out (adapter.ts), through
 * the adapter's host reads and writes: all of them on cpu, the routing kernels on wasm and tensorflow.
 */
import type { KernelAttrs, KernelKey } from './contract.js';

export interface Arr {
  shape: number[];
  values: Float32Array | Int32Array;
}
export interface Out {
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}
export type Loop<K extends KernelKey> = (inputs: Record<string, Arr | undefined>, attrs: KernelAttrs[K]) => Out;

const f32 = (shape: number[]): Out => ({ shape, dtype: 'float32', values: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** The plan's parts and the sizes every row kernel needs. */
function planOf(plan: Arr, A: number, E: number) {
  const p = plan.values;
  return {
    rowOf: (a: number) => p[a]!,
    assignmentIn: (r: number) => p[A + r]!,
    start: (e: number) => p[2 * A + e]!,
    end: (e: number) => p[2 * A + e + 1]!,
    E,
  };
}

/**
 * Writes the indices of the `k` largest of v[0..n) into `out`, descending, ties to the lower index (tf.topk's
 * order): an insertion into a sorted list of k, O(n k), cheaper than sorting for the small k of routing.
 */
function topIndices(v: ArrayLike<number>, n: number, k: number, out: Int32Array, values: Float32Array): void {
  let count = 0;
  for (let i = 0; i < n; i++) {
    const x = v[i]!;
    if (count === k && !(x > values[k - 1]!)) continue;
    let p = count < k ? count++ : k - 1;
    while (p > 0 && x > values[p - 1]!) {
      values[p] = values[p - 1]!;
      out[p] = out[p - 1]!;
      p--;
    }
    values[p] = x;
    out[p] = i;
  }
}

const selectExperts: Loop<'selectExperts'> = ({ scores, bias }, { topK: K, nGroups: G, topKGroups, groupScore }) => {
  const [T, E] = scores!.shape as [number, number];
  const out: Out = { shape: [T, K], dtype: 'int32', values: new Int32Array(T * K) };
  const per = E / G;
  const s = scores!.values;
  const b = bias?.values;
  const v = new Float32Array(E); // float32 sums, as every backend computes them
  const groupScores = new Float32Array(G);
  const [top, topValues] = [new Int32Array(Math.max(K, 2, topKGroups)), new Float32Array(Math.max(K, 2, topKGroups))];
  const chosen = out.values as Int32Array;
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) v[e] = s[t * E + e]! + (b ? b[e]! : 0);
    if (G > 1) {
      for (let g = 0; g < G; g++) {
        const members = v.subarray(g * per, (g + 1) * per);
        if (groupScore === 'max') groupScores[g] = Math.max(...members);
        else {
          topIndices(members, per, 2, top, topValues);
          groupScores[g] = topValues[0]! + topValues[1]!;
        }
      }
      topIndices(groupScores, G, topKGroups, top, topValues);
      const kept = new Set(top.subarray(0, topKGroups));
      for (let g = 0; g < G; g++) if (!kept.has(g)) v.fill(-Infinity, g * per, (g + 1) * per);
    }
    topIndices(v, E, K, chosen.subarray(t * K, (t + 1) * K), topValues);
  }
  return out;
};

const countExperts: Loop<'countExperts'> = ({ ids }, { nExperts: E, nBlocks }) => {
  const A = ids!.values.length;
  const out = f32([nBlocks, E]);
  const perBlock = A / nBlocks;
  for (let a = 0; a < A; a++) out.values[Math.floor(a / perBlock) * E + ids!.values[a]!]! += 1;
  return out;
};

/** A stable counting sort of the assignments by expert. */
const routingPlan: Loop<'routingPlan'> = ({ ids }, { nExperts: E, capacity }) => {
  const A = ids!.values.length;
  const plan = new Int32Array(2 * A + E + 1);
  const starts = plan.subarray(2 * A);
  for (let a = 0; a < A; a++) starts[ids!.values[a]! + 1]! += 1;
  for (let e = 0; e < E; e++) starts[e + 1]! += starts[e]!;
  const filled = new Int32Array(E);
  for (let a = 0; a < A; a++) {
    const e = ids!.values[a]!;
    const rank = filled[e]!++;
    const row = starts[e]! + rank;
    const kept = capacity === 0 || rank < capacity;
    plan[a] = kept ? row : A;
    plan[A + row] = kept ? a : A;
  }
  return { shape: [plan.length], dtype: 'int32', values: plan };
};

const gateWeights: Loop<'gateWeights'> = ({ scores, ids }, { normTopK, routeScale }) => {
  const [T, K] = ids!.shape as [number, number];
  const E = scores!.shape[1]!;
  const out = f32([T, K]);
  for (let t = 0; t < T; t++) {
    let sum = 0;
    for (let k = 0; k < K; k++) sum += scores!.values[t * E + ids!.values[t * K + k]!]!;
    for (let k = 0; k < K; k++) {
      const s = scores!.values[t * E + ids!.values[t * K + k]!]!;
      out.values[t * K + k] = (normTopK ? s / sum : s) * routeScale;
    }
  }
  return out;
};

/** With g_k = c s_k / S (S = sum_j s_j): dS_k = c (dG_k / S - sum_j dG_j s_j / S^2). */
const gateWeightsGrad: Loop<'gateWeightsGrad'> = ({ dGates, scores, ids }, { normTopK, routeScale }) => {
  const [T, K] = ids!.shape as [number, number];
  const E = scores!.shape[1]!;
  const out = f32([T, E]);
  for (let t = 0; t < T; t++) {
    const s = (k: number) => scores!.values[t * E + ids!.values[t * K + k]!]!;
    const dG = (k: number) => dGates!.values[t * K + k]!;
    let sum = 0;
    let dot = 0;
    for (let k = 0; k < K; k++) (sum += s(k)), (dot += dG(k) * s(k));
    for (let k = 0; k < K; k++) {
      out.values[t * E + ids!.values[t * K + k]!] = routeScale * (normTopK ? dG(k) / sum - dot / (sum * sum) : dG(k));
    }
  }
  return out;
};

/** Calls f(r, t, e) for every kept row r: its token t and expert e. */
function forKeptRows(plan: Arr, ids: Arr, f: (r: number, t: number, e: number) => void): void {
  const A = ids.values.length;
  const K = ids.shape[1]!;
  for (let r = 0; r < A; r++) {
    const a = plan.values[A + r]!;
    if (a < A) f(r, Math.floor(a / K), ids.values[a]!);
  }
}

const expertsUp: Loop<'expertsUp'> = ({ x, w1, w3, ids, plan }) => {
  const A = ids!.values.length;
  const [, d, h] = w1!.shape as [number, number, number];
  const out = f32([2, A, h]);
  forKeptRows(plan!, ids!, (r, t, e) => {
    for (const [half, w] of [[0, w1!], [1, w3!]] as const) {
      for (let c = 0; c < h; c++) {
        let acc = 0;
        for (let i = 0; i < d; i++) acc += x!.values[t * d + i]! * w.values[(e * d + i) * h + c]!;
        out.values[(half * A + r) * h + c] = acc;
      }
    }
  });
  return out;
};

const expertsUpGradX: Loop<'expertsUpGradX'> = ({ dH13, w1, w3, ids, plan }) => {
  const [T] = ids!.shape as [number, number];
  const A = ids!.values.length;
  const [, d, h] = w1!.shape as [number, number, number];
  const out = f32([T, d]);
  forKeptRows(plan!, ids!, (r, t, e) => {
    for (let i = 0; i < d; i++) {
      let acc = 0;
      for (let c = 0; c < h; c++) {
        acc += dH13!.values[r * h + c]! * w1!.values[(e * d + i) * h + c]!;
        acc += dH13!.values[(A + r) * h + c]! * w3!.values[(e * d + i) * h + c]!;
      }
      out.values[t * d + i]! += acc;
    }
  });
  return out;
};

const expertsUpGradW: Loop<'expertsUpGradW'> = ({ x, dH13, plan }, { nExperts: E, topK: K, half }) => {
  const d = x!.shape[1]!;
  const [, A, h] = dH13!.shape as [number, number, number];
  const p = planOf(plan!, A, E);
  const out = f32([E, d, h]);
  for (let e = 0; e < E; e++) {
    for (let r = p.start(e); r < p.end(e); r++) {
      const a = p.assignmentIn(r);
      if (a === A) continue;
      const t = Math.floor(a / K);
      for (let i = 0; i < d; i++) {
        const xv = x!.values[t * d + i]!;
        for (let c = 0; c < h; c++) out.values[(e * d + i) * h + c]! += xv * dH13!.values[(half * A + r) * h + c]!;
      }
    }
  }
  return out;
};

const expertsDown: Loop<'expertsDown'> = ({ h13, w2, ids, plan }) => {
  const A = ids!.values.length;
  const [, h, d] = w2!.shape as [number, number, number];
  const out = f32([A, d]);
  forKeptRows(plan!, ids!, (r, _t, e) => {
    for (let c = 0; c < h; c++) {
      const h1 = h13!.values[r * h + c]!;
      const act = h1 * sigmoid(h1) * h13!.values[(A + r) * h + c]!;
      for (let i = 0; i < d; i++) out.values[r * d + i]! += act * w2!.values[(e * h + c) * d + i]!;
    }
  });
  return out;
};

const expertsDownGradH: Loop<'expertsDownGradH'> = ({ dYRows, h13, w2, ids, plan }) => {
  const A = ids!.values.length;
  const [, h, d] = w2!.shape as [number, number, number];
  const out = f32([2, A, h]);
  forKeptRows(plan!, ids!, (r, _t, e) => {
    for (let c = 0; c < h; c++) {
      let u = 0;
      for (let i = 0; i < d; i++) u += dYRows!.values[r * d + i]! * w2!.values[(e * h + c) * d + i]!;
      const h1 = h13!.values[r * h + c]!;
      const h3 = h13!.values[(A + r) * h + c]!;
      const s = sigmoid(h1);
      out.values[r * h + c] = u * h3 * s * (1 + h1 * (1 - s));
      out.values[(A + r) * h + c] = u * h1 * s;
    }
  });
  return out;
};

const expertsDownGradW: Loop<'expertsDownGradW'> = ({ h13, dYRows, plan }, { nExperts: E }) => {
  const [, A, h] = h13!.shape as [number, number, number];
  const d = dYRows!.shape[1]!;
  const p = planOf(plan!, A, E);
  const out = f32([E, h, d]);
  for (let e = 0; e < E; e++) {
    for (let r = p.start(e); r < p.end(e); r++) {
      if (p.assignmentIn(r) === A) continue;
      for (let c = 0; c < h; c++) {
        const h1 = h13!.values[r * h + c]!;
        const act = h1 * sigmoid(h1) * h13!.values[(A + r) * h + c]!;
        for (let i = 0; i < d; i++) out.values[(e * h + c) * d + i]! += act * dYRows!.values[r * d + i]!;
      }
    }
  }
  return out;
};

const combine: Loop<'combine'> = ({ rows, gates, plan }) => {
  const [T, K] = gates!.shape as [number, number];
  const A = T * K;
  const d = rows!.shape[1]!;
  const out = f32([T, d]);
  const [y, src, g, p] = [out.values, rows!.values, gates!.values, plan!.values];
  for (let a = 0; a < A; a++) {
    const r = p[a]!;
    if (r === A) continue;
    const dst = Math.floor(a / K) * d;
    const from = r * d;
    const ga = g[a]!;
    for (let i = 0; i < d; i++) y[dst + i]! += ga * src[from + i]!;
  }
  return out;
};

const combineGrad: Loop<'combineGrad'> = ({ dy, gates, plan }) => {
  const [T, K] = gates!.shape as [number, number];
  const A = T * K;
  const d = dy!.shape[1]!;
  const out = f32([A, d]);
  const [dRows, src, g, p] = [out.values, dy!.values, gates!.values, plan!.values];
  for (let a = 0; a < A; a++) {
    const r = p[a]!;
    if (r === A) continue;
    const dst = r * d;
    const from = Math.floor(a / K) * d;
    const ga = g[a]!;
    for (let i = 0; i < d; i++) dRows[dst + i] = ga * src[from + i]!;
  }
  return out;
};

const combineGradGates: Loop<'combineGradGates'> = ({ rows, dy, plan }) => {
  const [A, d] = rows!.shape as [number, number];
  const T = dy!.shape[0]!;
  const K = A / T;
  const out = f32([T, K]);
  const [src, g, p] = [rows!.values, dy!.values, plan!.values];
  for (let a = 0; a < A; a++) {
    const r = p[a]!;
    if (r === A) continue;
    const from = r * d;
    const t = Math.floor(a / K) * d;
    let acc = 0;
    for (let i = 0; i < d; i++) acc += src[from + i]! * g[t + i]!;
    out.values[a] = acc;
  }
  return out;
};

/** Token t's row of scores, their sum (1 when not normalising) and its block's row of weights. */
function scoreRow(scores: Arr, t: number, normalise: boolean, weights?: Arr) {
  const [T, E] = scores.shape as [number, number];
  const s = scores.values.subarray(t * E, (t + 1) * E);
  let sum = 0;
  if (normalise) for (let j = 0; j < E; j++) sum += s[j]!;
  const B = weights?.shape[0] ?? 1;
  const b = Math.floor((t * B) / T);
  return { s, E, sum: normalise ? sum : 1, w: weights?.values.subarray(b * E, (b + 1) * E) };
}

const routerEntropy: Loop<'routerEntropy'> = ({ scores }, { normalise }) => {
  const T = scores!.shape[0]!;
  const out = f32([T]);
  for (let t = 0; t < T; t++) {
    const { s, E, sum } = scoreRow(scores!, t, normalise);
    let h = 0;
    for (let j = 0; j < E; j++) {
      const p = s[j]! / sum;
      h -= p * Math.log(Math.max(p, 1e-12));
    }
    out.values[t] = h;
  }
  return out;
};

const affinityBalance: Loop<'affinityBalance'> = ({ scores, weights }, { normalise, scale }) => {
  const T = scores!.shape[0]!;
  const out = f32([T]);
  for (let t = 0; t < T; t++) {
    const { s, E, sum, w } = scoreRow(scores!, t, normalise, weights);
    let acc = 0;
    for (let j = 0; j < E; j++) acc += w![j]! * s[j]!;
    out.values[t] = (scale * acc) / sum;
  }
  return out;
};

const affinityBalanceGrad: Loop<'affinityBalanceGrad'> = ({ dy, scores, weights }, { normalise, scale }) => {
  const [T, E] = scores!.shape as [number, number];
  const out = f32([T, E]);
  for (let t = 0; t < T; t++) {
    const { s, sum, w } = scoreRow(scores!, t, normalise, weights);
    let acc = 0;
    for (let j = 0; j < E; j++) acc += w![j]! * s[j]!;
    const L = normalise ? acc / sum : 0; // with normalise off, the L_t term is absent
    for (let j = 0; j < E; j++) out.values[t * E + j] = (dy!.values[0]! * scale * (w![j]! - L)) / sum;
  }
  return out;
};

export const referenceLoops: { [K in KernelKey]: Loop<K> } = {
  selectExperts, countExperts, routingPlan, gateWeights, gateWeightsGrad,
  expertsUp, expertsUpGradX, expertsUpGradW, expertsDown, expertsDownGradH, expertsDownGradW,
  combine, combineGrad, combineGradGates, routerEntropy, affinityBalance, affinityBalanceGrad,
};


/**
 * The per-row expert matmuls on webgl, each a packed matmul (rows.ts) between cheap programs (one fetch or two
 * per output texel) that lay its operands out (the rows' tokens of x, silu(h1) * h3, transposes) or finish its
 * result (SwiGLU's gradient, the sum of a token's rows): 2 or 3 programs per kernel. Rows follow the plan: row r
 * holds assignment a = plan[A + r] (token floor(a / K), expert ids[a]), or nothing when dropped, which reads
 * nothing and writes 0.
 */
import type * as tf from '@tensorflow/tfjs';
import { stacked, type GLKernel, type Stacked, type WebGLBackend } from './program.js';
import {
  expertProduct, gatherTokens, run, segmentProduct, sideBySide, sumTokenRows, swiglu, swigluGrad, transposeExperts,
  transposeRows, type Job,
} from './rows.js';

const rows = (r: string, c: string) => `getRows(${r}, ${c})`;

/** Runs `jobs`, then the job `last` makes of their results, and disposes those intermediates. */
function runJobs(backend: WebGLBackend, jobs: Job[], last: (results: tf.TensorInfo[]) => Job): tf.TensorInfo {
  const results = jobs.map((j) => run(backend, j));
  const out = run(backend, last(results));
  for (const r of results) backend.disposeIntermediateTensorInfo(r);
  return out;
}

/** A stacked input whose batches start at `offset`: expert e of the second weight in a [2E, ...] stack. */
const shifted = (s: Stacked, offset: number): Stacked => ({ ...s, at: (b, r, c) => s.at(`${offset} + ${b}`, r, c) });

/** [E, n, m]: per expert, the sum over its rows of left[r]^T right[r], from jobs making leftT [n, A], rightT [m, A]. */
function perExpertSum(
  backend: WebGLBackend, left: Job, right: Job, plan: tf.TensorInfo, A: number, E: number,
): tf.TensorInfo {
  return runJobs(backend, [left, right], ([leftT, rightT]) => segmentProduct({
    inputs: { leftT: leftT!, rightT: rightT! }, plan, A, E, n: leftT!.shape[0]!, m: rightT!.shape[0]!,
    leftT: (i, r) => `getLeftT(${i}, ${r})`, rightT: (j, r) => `getRightT(${j}, ${r})`,
  }));
}

/** h13 [2, A, h]: xRows [A, d] (the rows' tokens) times w1[e] and w3[e], transposed and stacked as wT [2E, h, d]. */
export const expertsUp: GLKernel<'expertsUp'> = ({ x, w1, w3, ids, plan }, _attrs, backend) => {
  const [T, K] = ids!.shape as [number, number];
  const A = T * K;
  const [E, d, h] = w1!.shape as [number, number, number];
  const transpose = transposeExperts([stacked('w1', w1!), stacked('w3', w3!)], E, h, d);
  return runJobs(backend, [gatherTokens(x!, plan!, A, K, false), transpose], ([xRows, wT]) => {
    const W = stacked('wT', wT!);
    return expertProduct({
      inputs: { rows: xRows!, wT: W.input }, ids: ids!, plan: plan!, A, n: d, m: h,
      parts: [[{ rows, weightT: W }], [{ rows, weightT: shifted(W, E) }]],
    });
  });
};

/**
 * dx [T, d]: per row dH1 w1[e]^T + dH3 w3[e]^T ([A, d], from dH13's parts laid side by side), then each token's
 * rows summed.
 */
export const expertsUpGradX: GLKernel<'expertsUpGradX'> = ({ dH13, w1, w3, ids, plan }, _attrs, backend) => {
  const [T, K] = ids!.shape as [number, number];
  const A = T * K;
  const [, d, h] = w1!.shape as [number, number, number];
  const W1 = stacked('w1', w1!);
  const W3 = stacked('w3', w3!);
  const dxRows = runJobs(backend, [sideBySide(stacked('dH13', dH13!), A, h)], ([dH]) => expertProduct({
    inputs: { rows: dH!, w1: W1.input, w3: W3.input }, ids: ids!, plan: plan!, A, n: h, m: d,
    parts: [[{ rows, weightT: W1 }, { rows: (r, c) => `getRows(${r}, ${h + (h % 2)} + ${c})`, weightT: W3 }]],
  }));
  const dx = run(backend, sumTokenRows(dxRows, plan!, A, K));
  backend.disposeIntermediateTensorInfo(dxRows);
  return dx;
};

/** [E, d, h]: per expert the sum over its rows of x[t]^T dH13[half, r], both operands transposed first. */
export const expertsUpGradW: GLKernel<'expertsUpGradW'> = ({ x, dH13, plan }, attrs, backend) => {
  const { nExperts: E, topK: K, half } = attrs;
  const [, A, h] = dH13!.shape as [number, number, number];
  const dH = stacked('dH13', dH13!);
  const dHT = transposeRows({ dH13: dH.input }, (r, c) => dH.at(`${half}`, r, c), A, h);
  return perExpertSum(backend, gatherTokens(x!, plan!, A, K, true), dHT, plan!, A, E);
};

/** yRows [A, d]: act = silu(h1) * h3 ([A, h]) times w2[e], transposed first (w2T [E, d, h]). */
export const expertsDown: GLKernel<'expertsDown'> = ({ h13, w2, ids, plan }, _attrs, backend) => {
  const A = ids!.shape.reduce((a, b) => a * b, 1);
  const [E, h, d] = w2!.shape as [number, number, number];
  const jobs = [swiglu(stacked('h13', h13!), plan!, A, h, false), transposeExperts([stacked('w2', w2!)], E, d, h)];
  return runJobs(backend, jobs, ([act, w2T]) => {
    const W = stacked('w2T', w2T!);
    return expertProduct({
      inputs: { rows: act!, w2T: W.input }, ids: ids!, plan: plan!, A, n: h, m: d, parts: [[{ rows, weightT: W }]],
    });
  });
};

/** dH13 [2, A, h]: u = dYRows w2[e]^T ([A, h]), then SwiGLU's gradient. */
export const expertsDownGradH: GLKernel<'expertsDownGradH'> = ({ dYRows, h13, w2, ids, plan }, _attrs, backend) => {
  const A = ids!.shape.reduce((a, b) => a * b, 1);
  const [, h, d] = w2!.shape as [number, number, number];
  const W2 = stacked('w2', w2!);
  const product = expertProduct({
    inputs: { dYRows: dYRows!, w2: W2.input }, ids: ids!, plan: plan!, A, n: d, m: h,
    parts: [[{ rows: (r, c) => `getDYRows(${r}, ${c})`, weightT: W2 }]],
  });
  return runJobs(backend, [product], ([u]) => swigluGrad(u!, stacked('h13', h13!), A, h));
};

/** [E, h, d]: per expert the sum over its rows of act[r]^T dYRows[r] (act = silu(h1) * h3), both transposed first. */
export const expertsDownGradW: GLKernel<'expertsDownGradW'> = ({ h13, dYRows, plan }, { nExperts: E }, backend) => {
  const [, A, h] = h13!.shape as [number, number, number];
  const d = dYRows!.shape[1]!;
  const dYT = transposeRows({ dYRows: dYRows! }, (r, c) => `getDYRows(${r}, ${c})`, A, d);
  return perExpertSum(backend, swiglu(stacked('h13', h13!), plan!, A, h, true), dYT, plan!, A, E);
};

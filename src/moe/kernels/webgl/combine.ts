/**
 * Combining the rows back into tokens, and its gradients, as packed programs like the expert kernels' (rows.ts),
 * so the packed rows those write are read as they are, without an unpacking pass. Each output gathers through
 * the plan: a token's K rows via plan[a], a row's assignment via plan[A + r]; dropped assignments add nothing and
 * rows without one are 0.
 */
import { planReads, type GLKernel } from './program.js';
import { gatherTokens, job, rowIn, run, sumTokenRows } from './rows.js';

/** y [T, d]: sum_k gates[t, k] rows[row of (t, k)]. */
export const combine: GLKernel<'combine'> = ({ rows, gates, plan }, _attrs, backend) => {
  const [T, K] = gates!.shape as [number, number];
  return run(backend, sumTokenRows(rows!, plan!, T * K, K, gates!));
};

/** dRows [A, d]: gates[a] dy[t] in the row of each kept assignment a. */
export const combineGrad: GLKernel<'combineGrad'> = ({ dy, gates, plan }, _attrs, backend) => {
  const [T, K] = gates!.shape as [number, number];
  return run(backend, gatherTokens(dy!, plan!, T * K, K, false, gates!));
};

/** dGates [T, K]: <rows[row of (t, k)], dy[t]>, 0 when dropped; a fragment takes 2 tokens x 2 choices. */
export const combineGradGates: GLKernel<'combineGradGates'> = ({ rows, dy, plan }, _attrs, backend) => {
  const [A, d] = rows!.shape as [number, number];
  const T = dy!.shape[0]!;
  const K = A / T;
  // Column pairs (i, i + 1) below d; an odd d ends with column d - 1 alone.
  const tail = d % 2 === 1 ? `acc += rowIn(getRows(r, ${d - 1}), r).x * rowIn(getDy(t, ${d - 1}), t).x;` : '';
  return run(backend, job({ rows: rows!, dy: dy!, plan: plan! }, [T, K], `
    ${planReads(A)}
    ${rowIn}
    float dotOf(int t, int k) {
      int r = t < ${T} && k < ${K} ? rowOf(t * ${K} + k) : ${A};
      if (r == ${A}) return 0.0;
      float acc = 0.0;
      for (int i = 0; i < ${d - 1}; i += 2) acc += dot(rowIn(getRows(r, i), r), rowIn(getDy(t, i), t));
      ${tail}
      return acc;
    }
    void main() {
      ivec2 o = getOutputCoords();
      setOutput(vec4(dotOf(o.x, o.y), dotOf(o.x, o.y + 1), dotOf(o.x + 1, o.y), dotOf(o.x + 1, o.y + 1)));
    }`));
};

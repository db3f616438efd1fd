/**
 * Packed programs over the rows of the plan, the building blocks of the expert and combine kernels. Inputs and
 * outputs are packed RGBA textures, as in TF.js's packed matmul: one texel holds a 2x2 block [(r, c), (r, c + 1),
 * (r + 1, c), (r + 1, c + 1)], so a fragment computes 4 outputs and each fetch brings 4 values. On SwiftShader
 * fetches dominate: the scalar loops these replace ran 6-19x slower than tf.matMul with the same FLOPs.
 *
 * A 2x2 block pairs rows r and r + 1, which may belong to different experts (at a segment boundary) or be empty
 * (dropped). The matmuls then fetch the second expert's weights too, on a second copy of the loop chosen once
 * per fragment.
 */
import type * as tf from '@tensorflow/tfjs';
import { flat, idReads, planReads, type GLProgram, type Stacked, type WebGLBackend } from './program.js';

/** A packed program and its inputs, in the order of its variable names. */
export interface Job {
  program: GLProgram;
  inputs: tf.TensorInfo[];
}

/** A packed program over named inputs: input `n` is sampled as getN(...) in `userCode`. */
export const job = (inputs: Record<string, tf.TensorInfo>, outputShape: number[], userCode: string): Job => ({
  program: { variableNames: Object.keys(inputs), outputShape, userCode, packedInputs: true, packedOutput: true },
  inputs: Object.values(inputs),
});

/** Runs a job; every packed program here computes float32. */
export const run = (backend: WebGLBackend, j: Job) => backend.runWebGLProgram(j.program, j.inputs, 'float32');

/** A sampler call: the texel of rows (r, r + 1) and columns (c, c + 1) of some [rows, columns] operand. */
export type Texel = (r: string, c: string) => string;

export const rowIn = 'vec2 rowIn(vec4 texel, int r) { return (r & 1) == 0 ? texel.xy : texel.zw; }';

/**
 * An [A, n] operand laid out by row, or transposed ([n, A]) for the per-expert sums over rows (segmentProduct),
 * whose contraction then runs along texture rows: 3x faster on SwiftShader than walking down columns.
 * `block` (in userCode) returns the row-major 2x2 block of rows (r, r + 1) and columns (c, c + 1).
 */
function rowBlocks(
  inputs: Record<string, tf.TensorInfo>, A: number, n: number, transposed: boolean, userCode: string,
): Job {
  return job(inputs, transposed ? [n, A] : [A, n], `
    ${userCode}
    void main() {
      ivec2 o = getOutputCoords();
      ${transposed ? 'setOutput(block(o.y, o.x).xzyw);' : 'setOutput(block(o.x, o.y));'}
    }`);
}

/** Gate of assignment a, from gates seen flat [A], or 1 without gates. */
const gateOf = (gates: tf.TensorInfo | undefined) =>
  `float gateOf(int a) { return ${gates ? 'entry(getGates(a), a)' : '1.0'}; }`;

/**
 * xRows [A, d] (or [d, A]): the token of each row, from x [T, d], times the assignment's gate when given; zero in
 * empty rows.
 */
export function gatherTokens(
  x: tf.TensorInfo, plan: tf.TensorInfo, A: number, K: number, transposed: boolean, gates?: tf.TensorInfo,
): Job {
  return rowBlocks({ x, plan, ...(gates ? { gates: flat(gates) } : {}) }, A, x.shape[1]!, transposed, `
    ${planReads(A)}
    ${rowIn}
    ${gateOf(gates)}
    vec2 tokenRow(int a, int c) { return a < ${A} ? rowIn(getX(a / ${K}, c), a / ${K}) * gateOf(a) : vec2(0); }
    vec4 block(int r, int c) { return vec4(tokenRow(assignmentIn(r), c), tokenRow(assignmentIn(r + 1), c)); }`);
}

/**
 * act [A, h] (or [h, A]) = silu(h1) * h3 from h13 [2, A, h]; zero in empty rows. Computed once here rather than
 * once per output column in the matmuls that read it (d / 2 exps per element otherwise).
 */
export function swiglu(h13: Stacked, plan: tf.TensorInfo, A: number, h: number, transposed: boolean): Job {
  return rowBlocks({ [h13.name]: h13.input, plan }, A, h, transposed, `
    ${planReads(A)}
    vec4 block(int r, int c) {
      vec4 h1 = ${h13.at('0', 'r', 'c')};
      float k0 = float(assignmentIn(r) < ${A}), k1 = float(assignmentIn(r + 1) < ${A});
      return h1 / (1.0 + exp(-h1)) * ${h13.at('1', 'r', 'c')} * vec4(k0, k0, k1, k1);
    }`);
}

/**
 * [A, 2 n'], n' = n rounded up to even: the two parts of a [2, A, n] operand side by side, part p from column
 * p n'. TF.js squarifies a texture past SwiftShader's 8192 texel rows (a [2, A, n] one once A > 8192), and the
 * matmul reading dH13 from such a texture ran 2.3x slower than from this copy, which keeps its shape up to
 * A = 16384.
 */
export function sideBySide(parts: Stacked, A: number, n: number): Job {
  const half = n + (n % 2);
  return rowBlocks({ [parts.name]: parts.input }, A, 2 * half, false, `
    vec4 block(int r, int c) {
      if (c < ${half}) return ${parts.at('0', 'r', 'c')};
      return ${parts.at('1', 'r', `c - ${half}`)};
    }`);
}

/** [n, A]: the transpose of an [A, n] operand (a 2x2 block transposes within its texel). */
export function transposeRows(inputs: Record<string, tf.TensorInfo>, rows: Texel, A: number, n: number): Job {
  return rowBlocks(inputs, A, n, true, `vec4 block(int r, int c) { return ${rows('r', 'c')}; }`);
}

/**
 * dH13 [2, A, h] from u [A, h] (dYRows w2^T, zero in empty rows) and h13, with s = sigmoid(h1):
 * dH1 = u h3 s (1 + h1 (1 - s)), dH3 = u h1 s.
 */
export function swigluGrad(u: tf.TensorInfo, h13: Stacked, A: number, h: number): Job {
  return job({ u, [h13.name]: h13.input }, [2, A, h], `
    void main() {
      ivec3 o = getOutputCoords();
      vec4 u = getU(o.y, o.z);
      vec4 h1 = ${h13.at('0', 'o.y', 'o.z')};
      vec4 s = 1.0 / (1.0 + exp(-h1));
      if (o.x == 0) setOutput(u * ${h13.at('1', 'o.y', 'o.z')} * s * (1.0 + h1 * (1.0 - s)));
      else setOutput(u * h1 * s);
    }`);
}

/**
 * [count E, m, n]: the experts' weights [E, n, m] transposed and stacked (a 2x2 block transposes within its
 * texel), so that expertProduct reads them along texture rows.
 */
export function transposeExperts(weights: Stacked[], E: number, m: number, n: number): Job {
  const blocks = weights.map((w, q) => {
    const read = `v = ${w.at(`o.x - ${q * E}`, 'o.z', 'o.y')};`;
    return q < weights.length - 1 ? `if (o.x < ${(q + 1) * E}) ${read}` : read;
  });
  return job(Object.fromEntries(weights.map((w) => [w.name, w.input])), [weights.length * E, m, n], `
    void main() {
      ivec3 o = getOutputCoords();
      vec4 v;
      ${blocks.join('\n      else ')}
      setOutput(v.xzyw);
    }`);
}

/** One product summed into an output: rows [A, n] times the row's expert slice of a transposed weight. */
export interface Term {
  rows: Texel;
  /** The weight transposed, [E, m, n]: output column j's weights lie along a texture row. */
  weightT: Stacked;
}

/**
 * out[r, j] = sum over terms and c of rows[r, c] weightT[e_r, j, c]: [A, m], each row with its own expert
 * e_r = ids[plan[A + r]], zero in empty rows. Both operands are read along texture rows: walking down the
 * columns of [E, n, m] weights instead was 1.3x slower on SwiftShader with 64 experts. One list of terms per
 * output part: out [2, A, m] with two. `inputs` names what the terms sample; ids and plan are added.
 */
export function expertProduct(opts: {
  inputs: Record<string, tf.TensorInfo>; ids: tf.TensorInfo; plan: tf.TensorInfo;
  A: number; n: number; m: number; parts: Term[][];
}): Job {
  const { A, n, m, parts } = opts;
  // Texels (r, c) of rows and (j, c) of weightT: out (r, j) += x(r, c) w(j, c) + x(r, c + 1) w(j, c + 1).
  const same = (t: Term) => `{
          vec4 x = ${t.rows('r', 'c')}, w = ${t.weightT.at('e0', 'j', 'c')};
          result += x.xxzz * w.xzxz + x.yyww * w.ywyw;
        }`;
  const mixed = (t: Term, c: string, lastOdd: boolean) => `{
          vec4 x = ${t.rows('r', c)}, wa = ${t.weightT.at('e0', 'j', c)}, wb = ${t.weightT.at('e1', 'j', c)};
          result += x.xxzz * vec4(wa.xz, wb.xz)${lastOdd ? '' : ' + x.yyww * vec4(wa.yw, wb.yw)'};
        }`;
  // Column pairs (c, c + 1) below n; an odd n ends with column n - 1 alone.
  const product = (terms: Term[], q: number) => `
    vec4 product${q}(int r, int j, int e0, int e1) {
      vec4 result = vec4(0);
      if (e0 == e1) {
        for (int c = 0; c < ${n - 1}; c += 2) {${terms.map(same).join('')}
        }
      } else {
        for (int c = 0; c < ${n - 1}; c += 2) {${terms.map((t) => mixed(t, 'c', false)).join('')}
        }
      }
      ${n % 2 === 1 ? terms.map((t) => mixed(t, `${n - 1}`, true)).join('') : ''}
      return result;
    }`;
  const twoParts = parts.length === 2;
  // The output's coordinates (the part first when there are two); a branch, not ?:, so one product runs.
  const coords = twoParts
    ? 'ivec3 o = getOutputCoords(); int r = o.y, j = o.z;'
    : 'ivec2 o = getOutputCoords(); int r = o.x, j = o.y;';
  const productOf = `vec4 productOf(int part, int r, int j, int e0, int e1) {
      ${twoParts ? 'if (part == 1) return product1(r, j, e0, e1);' : ''}
      return product0(r, j, e0, e1);
    }`;
  return job({ ...opts.inputs, ids: flat(opts.ids), plan: opts.plan }, twoParts ? [2, A, m] : [A, m], `
    ${planReads(A)}
    ${idReads}
    ${parts.map(product).join('\n')}
    ${productOf}
    void main() {
      ${coords}
      int a0 = assignmentIn(r), a1 = assignmentIn(r + 1);
      // An empty row borrows its neighbour's expert (or 0), so the block stays on the one-expert loop.
      int e0 = a0 < ${A} ? idOf(a0) : -1;
      int e1 = a1 < ${A} ? idOf(a1) : e0;
      if (e0 < 0) e0 = max(e1, 0);
      if (e1 < 0) e1 = e0;
      vec4 result = productOf(${twoParts ? 'o.x' : '0'}, r, j, e0, e1);
      float k0 = float(a0 < ${A}), k1 = float(a1 < ${A});
      setOutput(result * vec4(k0, k0, k1, k1));
    }`);
}

/**
 * out [E, n, m]: per expert, the sum over its segment of rows of left[r]^T right[r], from the transposed
 * operands leftT [n, A] (zero in empty rows) and rightT [m, A]. A fragment walks its expert's rows two at a time;
 * the first and last pairs may hang over the segment's ends and are masked to it. `inputs` names what leftT and
 * rightT sample; plan is added.
 */
export function segmentProduct(opts: {
  inputs: Record<string, tf.TensorInfo>; plan: tf.TensorInfo;
  A: number; E: number; n: number; m: number; leftT: Texel; rightT: Texel;
}): Job {
  const { A, E, n, m, leftT, rightT } = opts;
  return job({ ...opts.inputs, plan: opts.plan }, [E, n, m], `
    ${planReads(A)}
    // Texels (i, r) of leftT and (j, r) of rightT: out (i, j) += l(i, r) x(j, r) + l(i, r + 1) x(j, r + 1).
    vec4 pairAt(int i, int j, int r, vec2 keep) {
      vec4 l = ${leftT('i', 'r')} * keep.xyxy, x = ${rightT('j', 'r')};
      return l.xxzz * x.xzxz + l.yyww * x.ywyw;
    }
    void main() {
      ivec3 o = getOutputCoords();
      int i = o.y, j = o.z;
      int first = startOf(o.x), end = startOf(o.x + 1);
      int lo = first - (first & 1), hi = end + (end & 1);
      vec4 result = vec4(0);
      if (lo < hi) {
        result += pairAt(i, j, lo, vec2(lo >= first, lo + 1 < end));
        for (int r = lo + 2; r < hi - 2; r += 2) result += pairAt(i, j, r, vec2(1));
        if (hi - 2 > lo) result += pairAt(i, j, hi - 2, vec2(1, hi - 1 < end));
      }
      setOutput(result);
    }`);
}

/**
 * [T, d]: the sum of each token's K rows of rows [A, d], each times its gate when given; dropped assignments add
 * nothing.
 */
export function sumTokenRows(
  rows: tf.TensorInfo, plan: tf.TensorInfo, A: number, K: number, gates?: tf.TensorInfo,
): Job {
  const T = A / K;
  return job({ rows, plan, ...(gates ? { gates: flat(gates) } : {}) }, [T, rows.shape[1]!], `
    ${planReads(A)}
    ${rowIn}
    ${gateOf(gates)}
    vec2 rowAt(int a, int i) {
      int r = rowOf(a);
      return r < ${A} ? rowIn(getRows(r, i), r) * gateOf(a) : vec2(0);
    }
    void main() {
      ivec2 o = getOutputCoords();
      int t = o.x;
      vec4 result = vec4(0);
      for (int k = 0; k < ${K}; k++) {
        result.xy += rowAt(t * ${K} + k, o.y);
        if (t + 1 < ${T}) result.zw += rowAt((t + 1) * ${K} + k, o.y);
      }
      setOutput(result);
    }`);
}

import * as tf from '@tensorflow/tfjs';
import { takeRows } from '../../src/backend-ops.js';
import { gate, gateBackward } from '../../src/moe/experts.js';
import { customOp, silu } from '../../src/ops.js';

/**
 * All routed experts at once, one batched matmul per weight, TF.js autodiff: xe [E, C, d], w1 and w3
 * [E, d, h], w2 [E, h, d] -> [E, C, d]. The batch dims match exactly (no broadcasting, whose BatchMatMul
 * gradient is broken). The oracle's readable reference (it was the library's path on GPU backends).
 */
export function expertsSwiGLU(xe: tf.Tensor3D, w1: tf.Tensor3D, w3: tf.Tensor3D, w2: tf.Tensor3D): tf.Tensor3D {
  return tf.matMul(tf.mul(silu(tf.matMul(xe, w1)), tf.matMul(xe, w3)), w2);
}

/** Concatenates f(0), ..., f(E - 1) along rows. */
const perExpert = (E: number, f: (e: number) => tf.Tensor2D): tf.Tensor2D => tf.concat(Array.from({ length: E }, (_, e) => f(e)), 0);

/** t [r, n] padded with zero rows to [C, n]. */
const padRows = (t: tf.Tensor2D | null, C: number, n: number): tf.Tensor2D =>
  t === null ? tf.zeros([C, n]) : t.shape[0] === C ? t : tf.concat([t, tf.zeros([C - t.shape[0], n])], 0);

/**
 * The same as expertsSwiGLU, for wasm: one 2-D matmul per expert (the only form XNNPACK runs there; batched
 * matmul falls back to a naive loop), elementwise work on whole tensors. When the tokens per expert are known
 * (`rows`, from dropless's one read), each expert computes only its real rows: slots past them are padding that
 * reads and returns zeros, about a quarter of the work at a fresh router's imbalance.
 */
function expertsSwiGLULooped(xe: tf.Tensor3D, w1: tf.Tensor3D, w3: tf.Tensor3D, w2: tf.Tensor3D, rows: number[] | null): tf.Tensor3D {
  const [E, C, d] = xe.shape;
  const h = w1.shape[2];
  const r = Array.from({ length: E }, (_, e) => Math.min(C, rows?.[e] ?? C)); // real rows per expert
  const offset = r.map((_, e) => r.slice(0, e).reduce((a, b) => a + b, 0)); // where expert e starts in [R, .]
  const live = r.map((n, e) => (n > 0 ? e : -1)).filter((e) => e >= 0);
  /** Concatenates f(e) over experts with rows (compact [R, n]). */
  const compact = (f: (e: number) => tf.Tensor2D): tf.Tensor2D => tf.concat(live.map(f), 0);
  const block = (t: tf.Tensor2D, start: number, n: number) => takeRows(t, start, n);
  const T = (t: tf.Tensor2D) => tf.transpose(t);
  const op = customOp(([xIn, w1In, w3In, w2In], save) => {
    const x = tf.reshape(xIn!, [E * C, d]) as tf.Tensor2D;
    const [u1, u3] = [w1In!, w3In!].map((w) => tf.reshape(w, [E * d, h]) as tf.Tensor2D);
    const u2 = tf.reshape(w2In!, [E * h, d]) as tf.Tensor2D;
    const xs = r.map((n, e) => (n > 0 ? block(x, e * C, n) : null)); // each expert's real rows, taken once
    const h1 = compact((e) => tf.matMul(xs[e]!, block(u1!, e * d, d))); // [R, h]
    const h3 = compact((e) => tf.matMul(xs[e]!, block(u3!, e * d, d)));
    const a = gate(h1, h3).a as tf.Tensor2D;
    save([xIn!, w1In!, w3In!, w2In!, h1, h3]);
    const y = (e: number) => (r[e]! > 0 ? (tf.matMul(block(a, offset[e]!, r[e]!), block(u2, e * h, h)) as tf.Tensor2D) : null);
    const value = tf.reshape(perExpert(E, (e) => padRows(y(e), C, d)), [E, C, d]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [x3, v1, v3, v2, g1, g3] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor2D, tf.Tensor2D];
      const dY = tf.reshape(dy, [E * C, d]) as tf.Tensor2D;
      const flat = (t: tf.Tensor, n: number) => tf.reshape(t, [-1, n]) as tf.Tensor2D;
      // Per-expert 2-D transposes: on wasm, 64 small ones cost a third of one [E, ., .] transpose.
      const [p1, p3, p2] = [flat(v1, h), flat(v3, h), flat(v2, d)]; // [E d, h], [E d, h], [E h, d]
      const xx = flat(x3, d); // [E C, d]
      const g = gate(g1, g3);
      const aa = g.a as tf.Tensor2D; // [R, h]
      const dYs = r.map((n, e) => (n > 0 ? block(dY, e * C, n) : null));
      const dA = compact((e) => tf.matMul(dYs[e]!, T(block(p2, e * h, h)))); // [R, h]
      const dW2 = perExpert(E, (e) => (r[e]! > 0 ? tf.matMul(T(block(aa, offset[e]!, r[e]!)), dYs[e]!) : tf.zeros([h, d])));
      const { dh1, dh3 } = gateBackward(dA, g1, g3, g);
      const [dH1, dH3] = [dh1 as tf.Tensor2D, dh3 as tf.Tensor2D];
      const dX = perExpert(E, (e) => {
        if (r[e] === 0) return tf.zeros([C, d]);
        const [q1, q3] = [block(dH1, offset[e]!, r[e]!), block(dH3, offset[e]!, r[e]!)];
        return padRows(tf.add(tf.matMul(q1, T(block(p1, e * d, d))), tf.matMul(q3, T(block(p3, e * d, d)))) as tf.Tensor2D, C, d);
      });
      const xT = r.map((n, e) => (n > 0 ? T(block(xx, e * C, n)) : null)); // [d, r_e], once per expert
      const dW = (dH: tf.Tensor2D) => perExpert(E, (e) => (r[e]! > 0 ? tf.matMul(xT[e]!, block(dH, offset[e]!, r[e]!)) : tf.zeros([d, h])));
      return [tf.reshape(dX, [E, C, d]), tf.reshape(dW(dH1), [E, d, h]), tf.reshape(dW(dH3), [E, d, h]), tf.reshape(dW2, [E, h, d])];
    };
    return { value, gradFunc };
  });
  return op(xe, w1, w3, w2) as tf.Tensor3D;
}

/**
 * The routed experts' compute for the fast dispatch paths: looped 2-D matmuls on wasm, batched elsewhere.
 * `rows` (tokens per expert, when known on the CPU) lets the looped path skip padding.
 */
export function routedExperts(
  xe: tf.Tensor3D, w1: tf.Tensor3D, w3: tf.Tensor3D, w2: tf.Tensor3D, rows: number[] | null = null,
): tf.Tensor3D {
  return tf.getBackend() === 'wasm' ? expertsSwiGLULooped(xe, w1, w3, w2, rows) : expertsSwiGLU(xe, w1, w3, w2);
}

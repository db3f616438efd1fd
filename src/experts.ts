import * as tf from '@tensorflow/tfjs';
import { matMulT, takeRows } from './kernels.js';
import { customOp, silu } from './ops.js';

/** silu(h1) * h3 and what its backward needs: a [N, h], plus sigmoid(h1) and silu(h1). */
function gate(h1: tf.Tensor, h3: tf.Tensor) {
  const sig = tf.sigmoid(h1);
  const s = tf.mul(h1, sig);
  return { sig, s, a: tf.mul(s, h3) };
}

/** d/dh1 and d/dh3 of silu(h1) * h3 given dA; silu'(h) = sig (1 + h (1 - sig)). */
function gateBackward(dA: tf.Tensor, h1: tf.Tensor, h3: tf.Tensor) {
  const { sig, s } = gate(h1, h3);
  const dh3 = tf.mul(dA, s);
  const dh1 = tf.mul(tf.mul(dA, h3), tf.mul(sig, tf.add(1, tf.mul(h1, tf.sub(1, sig)))));
  return { dh1, dh3 };
}

/**
 * One SwiGLU FFN, w2(silu(x w1) * (x w3)): x [N, d], w1 and w3 [d, h], w2 [h, d] -> [N, d]. The backward is
 * written out so its matmuls go through matMulT (fast on wasm); it is checked against TF.js autodiff.
 */
export function swiGLU(x: tf.Tensor2D, w1: tf.Tensor2D, w3: tf.Tensor2D, w2: tf.Tensor2D): tf.Tensor2D {
  const op = customOp(([xIn, w1In, w3In, w2In], save) => {
    const [xx, u1, u3, u2] = [xIn, w1In, w3In, w2In] as tf.Tensor2D[];
    const h1 = matMulT(xx!, u1!);
    const h3 = matMulT(xx!, u3!);
    save([xx!, u1!, u3!, u2!, h1, h3]);
    const value = matMulT(gate(h1, h3).a as tf.Tensor2D, u2!);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [x0, v1, v3, v2, g1, g3] = saved as tf.Tensor2D[];
      const a = gate(g1!, g3!).a as tf.Tensor2D;
      const dA = matMulT(dy as tf.Tensor2D, v2!, false, true); // [N, h]
      const { dh1, dh3 } = gateBackward(dA, g1!, g3!);
      const dx = tf.add(matMulT(dh1 as tf.Tensor2D, v1!, false, true), matMulT(dh3 as tf.Tensor2D, v3!, false, true));
      return [dx, matMulT(x0!, dh1 as tf.Tensor2D, true), matMulT(x0!, dh3 as tf.Tensor2D, true), matMulT(a, dy as tf.Tensor2D, true)];
    };
    return { value, gradFunc };
  });
  return op(x, w1, w3, w2) as tf.Tensor2D;
}

/**
 * All routed experts at once, one batched matmul per weight, TF.js autodiff: xe [E, C, d], w1 and w3
 * [E, d, h], w2 [E, h, d] -> [E, C, d]. The batch dims match exactly (no broadcasting, whose BatchMatMul
 * gradient is broken). The readable reference, and the fast path on GPU backends.
 */
export function expertsSwiGLU(xe: tf.Tensor3D, w1: tf.Tensor3D, w3: tf.Tensor3D, w2: tf.Tensor3D): tf.Tensor3D {
  return tf.matMul(tf.mul(silu(tf.matMul(xe, w1)), tf.matMul(xe, w3)), w2);
}

/** Concatenates f(0), ..., f(E - 1) along rows. */
const perExpert = (E: number, f: (e: number) => tf.Tensor2D): tf.Tensor2D => tf.concat(Array.from({ length: E }, (_, e) => f(e)), 0);

/**
 * The same as expertsSwiGLU, for wasm: one 2-D matmul per expert (the only form XNNPACK runs there; batched
 * matmul falls back to a naive loop), elementwise work on whole tensors, transposes done once per weight.
 */
function expertsSwiGLULooped(xe: tf.Tensor3D, w1: tf.Tensor3D, w3: tf.Tensor3D, w2: tf.Tensor3D): tf.Tensor3D {
  const [E, C, d] = xe.shape;
  const h = w1.shape[2];
  const op = customOp(([xIn, w1In, w3In, w2In], save) => {
    const x = tf.reshape(xIn!, [E * C, d]) as tf.Tensor2D;
    const [u1, u3] = [w1In!, w3In!].map((w) => tf.reshape(w, [E * d, h]) as tf.Tensor2D);
    const u2 = tf.reshape(w2In!, [E * h, d]) as tf.Tensor2D;
    const h1 = perExpert(E, (e) => tf.matMul(takeRows(x, e * C, C), takeRows(u1!, e * d, d))); // [E C, h]
    const h3 = perExpert(E, (e) => tf.matMul(takeRows(x, e * C, C), takeRows(u3!, e * d, d)));
    const a = gate(h1, h3).a as tf.Tensor2D;
    save([xIn!, w1In!, w3In!, w2In!, h1, h3]);
    const value = tf.reshape(perExpert(E, (e) => tf.matMul(takeRows(a, e * C, C), takeRows(u2, e * h, h))), [E, C, d]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [x3, v1, v3, v2, g1, g3] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor2D, tf.Tensor2D];
      const dY = tf.reshape(dy, [E * C, d]) as tf.Tensor2D;
      const rows = (t: tf.Tensor, n: number) => tf.reshape(t, [-1, n]) as tf.Tensor2D;
      // Per-expert 2-D transposes: on wasm, 64 small ones cost a third of one [E, ., .] transpose.
      const block = (t: tf.Tensor2D, e: number, n: number) => takeRows(t, e * n, n);
      const T = (t: tf.Tensor2D) => tf.transpose(t);
      const [u1, u3, u2] = [rows(v1, h), rows(v3, h), rows(v2, d)]; // [E d, h], [E d, h], [E h, d]
      const x = rows(x3, d); // [E C, d]
      const a = gate(g1, g3).a as tf.Tensor2D; // [E C, h]
      const dA = perExpert(E, (e) => tf.matMul(block(dY, e, C), T(block(u2, e, h)))); // [E C, h]
      const dW2 = perExpert(E, (e) => tf.matMul(T(block(a, e, C)), block(dY, e, C))); // [E h, d]
      const { dh1, dh3 } = gateBackward(dA, g1, g3);
      const [dH1, dH3] = [dh1 as tf.Tensor2D, dh3 as tf.Tensor2D];
      const dX = perExpert(E, (e) =>
        tf.add(tf.matMul(block(dH1, e, C), T(block(u1, e, d))), tf.matMul(block(dH3, e, C), T(block(u3, e, d)))),
      );
      const xT = Array.from({ length: E }, (_, e) => T(block(x, e, C))); // [d, C] each
      const dW1 = perExpert(E, (e) => tf.matMul(xT[e]!, block(dH1, e, C)));
      const dW3 = perExpert(E, (e) => tf.matMul(xT[e]!, block(dH3, e, C)));
      return [tf.reshape(dX, [E, C, d]), tf.reshape(dW1, [E, d, h]), tf.reshape(dW3, [E, d, h]), tf.reshape(dW2, [E, h, d])];
    };
    return { value, gradFunc };
  });
  return op(xe, w1, w3, w2) as tf.Tensor3D;
}

/** The routed experts' compute for the fast dispatch paths: looped 2-D matmuls on wasm, batched elsewhere. */
export function routedExperts(xe: tf.Tensor3D, w1: tf.Tensor3D, w3: tf.Tensor3D, w2: tf.Tensor3D): tf.Tensor3D {
  return tf.getBackend() === 'wasm' ? expertsSwiGLULooped(xe, w1, w3, w2) : expertsSwiGLU(xe, w1, w3, w2);
}

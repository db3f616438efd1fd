import * as tf from '@tensorflow/tfjs';
import { matMulT } from '../backend-ops.js';
import { customOp } from '../ops.js';

/** silu(h1) * h3 and what its backward needs: a [N, h], plus sigmoid(h1) and silu(h1). */
export function gate(h1: tf.Tensor, h3: tf.Tensor) {
  const sig = tf.sigmoid(h1);
  const s = tf.mul(h1, sig);
  return { sig, s, a: tf.mul(s, h3) };
}

/** d/dh1 and d/dh3 of silu(h1) * h3 given dA and gate(h1, h3); silu'(h) = sig (1 + h (1 - sig)). */
export function gateBackward(dA: tf.Tensor, h1: tf.Tensor, h3: tf.Tensor, { sig, s }: ReturnType<typeof gate>) {
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
      const g = gate(g1!, g3!);
      const a = g.a as tf.Tensor2D;
      const dA = matMulT(dy as tf.Tensor2D, v2!, false, true); // [N, h]
      const { dh1, dh3 } = gateBackward(dA, g1!, g3!, g);
      const dx = tf.add(matMulT(dh1 as tf.Tensor2D, v1!, false, true), matMulT(dh3 as tf.Tensor2D, v3!, false, true));
      return [dx, matMulT(x0!, dh1 as tf.Tensor2D, true), matMulT(x0!, dh3 as tf.Tensor2D, true), matMulT(a, dy as tf.Tensor2D, true)];
    };
    return { value, gradFunc };
  });
  return op(x, w1, w3, w2) as tf.Tensor2D;
}

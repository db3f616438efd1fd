import * as tf from '@tensorflow/tfjs';
import { silu } from './ops.js';

/** One SwiGLU FFN, w2(silu(x w1) * (x w3)): x [N, d], w1 and w3 [d, h], w2 [h, d] -> [N, d]. */
export function swiGLU(x: tf.Tensor2D, w1: tf.Tensor2D, w3: tf.Tensor2D, w2: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(tf.mul(silu(tf.matMul(x, w1)), tf.matMul(x, w3)), w2);
}

/**
 * All routed experts at once, one batched matmul per weight: xe [E, C, d], w1 and w3 [E, d, h], w2 [E, h, d]
 * -> [E, C, d]. The batch dims match exactly (no broadcasting, whose BatchMatMul gradient is broken).
 */
export function expertsSwiGLU(xe: tf.Tensor3D, w1: tf.Tensor3D, w3: tf.Tensor3D, w2: tf.Tensor3D): tf.Tensor3D {
  return tf.matMul(tf.mul(silu(tf.matMul(xe, w1)), tf.matMul(xe, w3)), w2);
}

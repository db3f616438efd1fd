/** The small pieces a transformer block is built from: RMSNorm, rotary embeddings, token embedding, loss. */
import * as tf from '@tensorflow/tfjs';
import { batchMatMul, gatherRows, linear, matMulT } from '../backend-ops.js';
import { customOp, oneHotFloat } from '../ops.js';

/** RMSNorm: x / sqrt(mean(x^2) + eps) * weight, over the last axis. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), weight);
}

/** The token embedding, table [V, d] at ids [N] (int32) -> [N, d]; backward dTable = onehot(ids)^T dy. */
export function embed(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const V = table.shape[0];
  const op = customOp(([t], save) => {
    save([ids]);
    const value = gatherRows(t as tf.Tensor2D, ids);
    // The stock gradient of tf.gather needs UnsortedSegmentSum, which the wasm backend lacks.
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => matMulT(oneHotFloat(saved[0]!, V) as tf.Tensor2D, dy as tf.Tensor2D, true);
    return { value, gradFunc };
  });
  return op(table) as tf.Tensor2D;
}

/**
 * Mean cross-entropy of logits [N, V] against targets [N] (int32). The gradient is written out,
 * (softmax - onehot) / N, instead of going back through logSumExp's max.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [N, V] = logits.shape;
  const op = customOp(([x], save) => {
    const oneHot = oneHotFloat(targets, V);
    save([x!, oneHot]);
    const value = tf.mean(tf.sub(tf.logSumExp(x!, -1), tf.sum(tf.mul(x!, oneHot), -1)));
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(tf.sub(tf.softmax(saved[0]!), saved[1]!), tf.div(dy, N));
    return { value, gradFunc };
  });
  return op(logits) as tf.Scalar;
}

/**
 * Rotary position embedding tables for positions [offset, offset + S) and width r (rotate-half pairing:
 * dimension j is paired with j + r/2). cos and sin are [S, r]; `rotate` [r, r] maps x to rotateHalf(x).
 */
export function ropeTables(S: number, r: number, theta: number, offset = 0) {
  const half = r / 2;
  const cos = new Float32Array(S * r);
  const sin = new Float32Array(S * r);
  for (let s = 0; s < S; s++) {
    for (let j = 0; j < half; j++) {
      const angle = (offset + s) * Math.pow(theta, (-2 * j) / r);
      cos[s * r + j] = cos[s * r + j + half] = Math.cos(angle);
      sin[s * r + j] = sin[s * r + j + half] = Math.sin(angle);
    }
  }
  const rotate = new Float32Array(r * r);
  for (let j = 0; j < half; j++) {
    rotate[j * r + j + half] = 1; // out[j + half] = x[j]
    rotate[(j + half) * r + j] = -1; // out[j] = -x[j + half]
  }
  return { cos: tf.tensor2d(cos, [S, r]), sin: tf.tensor2d(sin, [S, r]), rotate: tf.tensor2d(rotate, [r, r]) };
}

/**
 * Applies RoPE to x [B, S, H, r] at positions [offset, offset + S): x cos + rotateHalf(x) sin. The rotation
 * is a matmul by a fixed [r, r] matrix, so no slice or concat sits on the training path.
 */
export function applyRope(x: tf.Tensor4D, theta: number, offset = 0): tf.Tensor4D {
  const [B, S, H, r] = x.shape;
  const { cos, sin, rotate } = ropeTables(S, r, theta, offset);
  const rotated = tf.reshape(linear(tf.reshape(x, [B * S * H, r]) as tf.Tensor2D, rotate), [B, S, H, r]);
  const c = tf.reshape(cos, [1, S, 1, r]);
  const s = tf.reshape(sin, [1, S, 1, r]);
  return tf.add(tf.mul(x, c), tf.mul(rotated, s)) as tf.Tensor4D;
}

/**
 * Causal attention from raw scores, heads first: scores [G, S, Sk] (q . k, unscaled), v [G, Sk, dv] -> [G, S, dv].
 * Query i sits at position Sk - S + i and sees keys 0..Sk - S + i.
 */
export function attendCausal(scores: tf.Tensor3D, v: tf.Tensor3D, scale: number): tf.Tensor3D {
  const [, S, Sk] = scores.shape;
  return batchMatMul(tf.softmax(tf.add(tf.mul(scores, scale), causalMask(S, Sk))) as tf.Tensor3D, v);
}

/** 0 where query i may see key j (j <= i + Sk - S), a large negative number elsewhere: [S, Sk]. */
export function causalMask(S: number, Sk: number): tf.Tensor2D {
  const mask = new Float32Array(S * Sk);
  for (let i = 0; i < S; i++) for (let j = i + Sk - S + 1; j < Sk; j++) mask[i * Sk + j] = -1e9;
  return tf.tensor2d(mask, [S, Sk]);
}

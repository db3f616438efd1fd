import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { batchMatMul } from '../../src/backend-ops.js';
import { applyRope, crossEntropy } from '../../src/model/layers.js';
import { maxAbsDiff, nodeBackends } from '../helpers.js';

describe.each(nodeBackends)('model layers on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it.each([[false, false], [false, true], [true, false], [true, true]])(
    'batchMatMul(transposeA %s, transposeB %s) equals tf.matMul, value and gradients',
    async (ta, tb) => {
      const a = tf.randomNormal(ta ? [3, 5, 4] : [3, 4, 5], 0, 1, 'float32', 1) as tf.Tensor3D;
      const b = tf.randomNormal(tb ? [3, 6, 5] : [3, 5, 6], 0, 1, 'float32', 2) as tf.Tensor3D;
      const probe = tf.randomNormal([3, 4, 6], 0, 1, 'float32', 3);
      const loss = (f: typeof batchMatMul) => (x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.mul(f(x as tf.Tensor3D, y as tf.Tensor3D, ta, tb), probe));
      const reference = (x: tf.Tensor3D, y: tf.Tensor3D, p = false, q = false) => tf.matMul(x, y, p, q) as tf.Tensor3D;
      expect(await maxAbsDiff(batchMatMul(a, b, ta, tb), tf.matMul(a, b, ta, tb))).toBeLessThan(1e-5);
      const [da, db] = tf.grads(loss(batchMatMul))([a, b]);
      const [ra, rb] = tf.grads(loss(reference))([a, b]);
      expect(await maxAbsDiff(da!, ra!)).toBeLessThan(1e-5);
      expect(await maxAbsDiff(db!, rb!)).toBeLessThan(1e-5);
    },
  );

  it('cross-entropy: the hand-computed value, and a gradient of (softmax - onehot) / N', async () => {
    // Row 1: logits [0, ln 3], target 1 -> -ln(3/4); row 2: logits [0, 0], target 0 -> ln 2.
    const logits = tf.tensor2d([[0, Math.log(3)], [0, 0]]);
    const targets = tf.tensor1d([1, 0], 'int32');
    expect(crossEntropy(logits, targets).dataSync()[0]).toBeCloseTo((-Math.log(3 / 4) + Math.log(2)) / 2, 6);
    const g = tf.grad((x: tf.Tensor) => crossEntropy(x as tf.Tensor2D, targets))(logits);
    expect(Array.from(g.dataSync())).toEqual([0.25 / 2, -0.25 / 2, -0.5 / 2, 0.5 / 2].map((v) => expect.closeTo(v, 6)));
  });

  it('RoPE: the score of a query and a key depends on their distance only', () => {
    const S = 8;
    const q = tf.tile(tf.randomNormal([1, 1, 1, 8], 0, 1, 'float32', 4), [1, S, 1, 1]) as tf.Tensor4D;
    const k = tf.tile(tf.randomNormal([1, 1, 1, 8], 0, 1, 'float32', 5), [1, S, 1, 1]) as tf.Tensor4D;
    const [rq, rk] = [applyRope(q, 10_000), applyRope(k, 10_000)].map((t) => tf.reshape(t, [S, 8]));
    const scores = tf.matMul(rq!, rk!, false, true).arraySync() as number[][];
    expect(scores[5]![3]).toBeCloseTo(scores[2]![0]!, 4); // distance 2
    expect(scores[7]![2]).toBeCloseTo(scores[5]![0]!, 4); // distance 5
    expect(Math.abs(scores[5]![3]! - scores[5]![0]!)).toBeGreaterThan(1e-3); // distance matters
  });
});

import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { gradientStep } from 'deepseek-moe-tfjs/train';
import { nodeBackends } from '../helpers.js';

describe.each(nodeBackends)('gradientStep on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('keys gradients by the given names, reads every readout back by name in one read, and leaks nothing', async () => {
    const w = { 'layer.w': tf.variable(tf.tensor2d([[1, 2], [3, 4]])), 'layer.b': tf.variable(tf.tensor1d([0.5, -1])) };
    const before = tf.memory().numTensors;
    const x = tf.tensor2d([[1, -1], [2, 0.5]]);
    const step = gradientStep(w, () => {
      const y = tf.add(tf.matMul(x, w['layer.w']), w['layer.b']); // [[-1.5, -3], [4, 5]]
      const loss = tf.sum(tf.square(y)) as tf.Scalar;
      return { loss, readouts: { loss, y, empty: tf.zeros([0]) }, kept: { y: tf.clone(y) } };
    });
    // d/dy = 2y; d/dW = x^T 2y; d/db = sum_rows 2y.
    expect(Array.from(await step.grads['layer.w']!.data())).toEqual([13, 14, 7, 11]);
    expect(Array.from(await step.grads['layer.b']!.data())).toEqual([5, 4]);
    let reads = 0;
    const data = tf.Tensor.prototype.data;
    tf.Tensor.prototype.data = function (this: tf.Tensor) {
      reads++;
      return data.call(this);
    } as typeof data;
    const values = await step.read().finally(() => (tf.Tensor.prototype.data = data));
    expect(reads).toBe(1);
    expect(Object.keys(values)).toEqual(['gradNorm', 'loss', 'y', 'empty']);
    expect(values.loss![0]).toBeCloseTo(2.25 + 9 + 16 + 25, 4);
    expect(Array.from(values.y!)).toEqual([-1.5, -3, 4, 5]);
    expect(values.empty).toHaveLength(0);
    expect(values.gradNorm![0]).toBeCloseTo(Math.sqrt(13 ** 2 + 14 ** 2 + 7 ** 2 + 11 ** 2 + 5 ** 2 + 4 ** 2), 4);
    expect(Array.from(await step.kept.y!.data())).toEqual([-1.5, -3, 4, 5]);
    tf.dispose([...Object.values(step.grads), ...Object.values(step.kept), x]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(w));
  });
});

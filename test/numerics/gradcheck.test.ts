import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MoEConfigInput } from 'deepseek-moe-tfjs';
import { route } from 'deepseek-moe-tfjs';
import { backendsUnderTest, config, forBackend, probeLoss, seededWeights, useBackend } from '../helpers.js';

/**
 * Central differences along one random direction v through every weight and the input at once:
 * (f(θ + εv) - f(θ - εv)) / 2ε must equal <∇f, v>. The routing must not change between θ ± εv (checked), since
 * top-k is piecewise constant.
 */
describe.each(backendsUnderTest)('finite-difference gradient check on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  const cases: [string, MoEConfigInput][] = [
    ['dropless, softmax, shared, every loss', {
      dModel: 6, nRoutedExperts: 6, topK: 2, expertHiddenDim: 5, nSharedExperts: 1, nExpertGroups: 3, topKGroups: 2,
      alpha1: 0.1, alpha2: 0.1, seqAlpha: 0.1, zLossCoef: 0.01,
    }],
    ['capacity, sigmoid, normTopK, bias', {
      dModel: 6, nRoutedExperts: 6, topK: 2, expertHiddenDim: 5, scoreFunc: 'sigmoid', normTopK: true, routeScale: 1.5,
      auxFreeBias: true, dispatch: 'capacity', capacityFactor: 1,
    }],
  ];

  it.each(cases)('%s', async (_, input) => {
    const x0 = tf.randomNormal([2, 4, 6], 0, 1, 'float32', 21);
    const w = seededWeights(config(input), 5, 0.1);
    const { config: c, options } = await forBackend(backend, input, w, x0);
    const probe = tf.randomNormal([2, 4, 6], 0, 1, 'float32', 22);
    const { names, f, inputs } = probeLoss(w, c, options, probe);
    const theta = inputs(x0);
    const direction = theta.map((t, i) => tf.randomNormal(t.shape, 0, 1, 'float32', 40 + i));
    const eps = 1e-2;
    const shifted = (sign: number) => theta.map((t, i) => tf.add(t, tf.mul(direction[i]!, sign * eps)));
    const indicesAt = async (args: tf.Tensor[]) =>
      Array.from(await route(
        tf.reshape(args[0]!, [8, 6]) as tf.Tensor2D, args[1 + names.indexOf('routerKernel')] as tf.Tensor2D,
        w.expertBias, c, false,
      ).topKIndices.data());
    const [plus, minus] = [shifted(1), shifted(-1)];
    expect(await indicesAt(plus), 'routing is stable across the step').toEqual(await indicesAt(minus));
    const numeric = ((await f(...plus).data())[0]! - (await f(...minus).data())[0]!) / (2 * eps);
    const grads = tf.grads(f)(theta);
    // Summed in JS: tf.addN of eight scalars comes out wrong on webgpu (TF.js 4.22).
    const dots = await Promise.all(grads.map(async (g, i) => (await tf.sum(tf.mul(g, direction[i]!)).data())[0]!));
    const analytic = dots.reduce((a, b) => a + b, 0);
    expect(Math.abs(numeric - analytic) / Math.max(1, Math.abs(analytic))).toBeLessThan(5e-3);
  });
});

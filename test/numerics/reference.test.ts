import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  moeForward, swiGLU, type BackendName, type MoEConfigInput, type MoEWeights,
} from 'deepseek-moe-tfjs';
import {
  backendsUnderTest, config, forBackend, libraryForward, oracle, probeLoss, relDiff, seededWeights, useBackend,
} from '../helpers.js';

/** The library's dispatch modes, and 'masked': the oracle's every expert on every token (tools/oracle). */
const modes = ['masked', 'dropless', 'capacity'] as const;

/**
 * Output and the gradients of (sum(output * probe) + balance losses) w.r.t. every weight and the input, on the
 * library's path or (`masked`) the oracle's masked dense computation.
 */
async function outputAndGrads(
  backend: BackendName, input: MoEConfigInput, w: MoEWeights, x: tf.Tensor, probe: tf.Tensor, masked = false,
) {
  const { config: c, options } = await forBackend(backend, input, w, x);
  const forward = masked ? oracle({ path: 'masked' }) : libraryForward(options);
  const { names, f, inputs } = probeLoss(w, c, options, probe, forward);
  const output = forward(x, w, c, {}).output;
  const grads = tf.grads(f)(inputs(x));
  return {
    output,
    grads: new Map<string, tf.Tensor>([
      ['x', grads[0]!], ...names.map((n, i) => [n, grads[i + 1]!] as [string, tf.Tensor]),
    ]),
  };
}

describe.each(backendsUnderTest)('reference checks on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each(modes)('one routed expert, top-1, no shared expert equals a dense SwiGLU FFN (%s)', async (mode) => {
    const input = { dModel: 8, nRoutedExperts: 1, topK: 1, expertHiddenDim: 16, dispatch: mode === 'masked' ? 'dropless' : mode } as const;
    const w = seededWeights(config(input));
    const x = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 7);
    const probe = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 8);
    const moe = await outputAndGrads(backend, input, w, x, probe, mode === 'masked');

    const [w1, w3, w2] = [w.expertW1, w.expertW3, w.expertW2].map((t) => tf.squeeze(t, [0]) as tf.Tensor2D);
    const ffn = (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(tf.reshape(
        swiGLU(tf.reshape(xx, [10, 8]) as tf.Tensor2D, a as tf.Tensor2D, b as tf.Tensor2D, c as tf.Tensor2D), [2, 5, 8],
      ), probe)) as tf.Scalar;
    const denseOut = tf.reshape(swiGLU(tf.reshape(x, [10, 8]) as tf.Tensor2D, w1!, w3!, w2!), [2, 5, 8]);
    const [dx, d1, d3, d2] = tf.grads(ffn)([x, w1!, w3!, w2!]);

    expect(await relDiff(moe.output, denseOut)).toBeLessThan(1e-5);
    expect(await relDiff(moe.grads.get('x')!, dx!)).toBeLessThan(1e-5);
    expect(await relDiff(tf.squeeze(moe.grads.get('expertW1')!, [0]), d1!)).toBeLessThan(1e-5);
    expect(await relDiff(tf.squeeze(moe.grads.get('expertW3')!, [0]), d3!)).toBeLessThan(1e-5);
    expect(await relDiff(tf.squeeze(moe.grads.get('expertW2')!, [0]), d2!)).toBeLessThan(1e-5);
    // One expert under softmax always scores 1: the router gets no gradient.
    expect(await relDiff(moe.grads.get('routerKernel')!, tf.zerosLike(w.routerKernel))).toBeLessThan(1e-6);
  });

  const variants: [string, Partial<MoEConfigInput>][] = [
    ['softmax', { scoreFunc: 'softmax' }],
    ['sigmoid, normTopK, routeScale 2.5', { scoreFunc: 'sigmoid', normTopK: true, routeScale: 2.5 }],
    ['softmax, 4 groups pick 2', { scoreFunc: 'softmax', nExpertGroups: 4, topKGroups: 2 }],
    ['sigmoid, groups sumTop2, bias', {
      scoreFunc: 'sigmoid', normTopK: true, nExpertGroups: 4, topKGroups: 2, groupScoreFunc: 'sumTop2',
      auxFreeBias: true,
    }],
    ['softmax, bias, 2 shared experts', { scoreFunc: 'softmax', auxFreeBias: true, nSharedExperts: 2 }],
    ['sigmoid, shared, every balance loss', {
      scoreFunc: 'sigmoid', nSharedExperts: 1, nExpertGroups: 2, topKGroups: 2, alpha1: 0.01, alpha2: 0.01,
      seqAlpha: 0.01, zLossCoef: 0.001,
    }],
  ];

  it.each(variants)('the masked oracle, dropless and capacity (large factor) agree in outputs and gradients: %s', async (_, extra) => {
    const base: MoEConfigInput = { dModel: 16, nRoutedExperts: 8, topK: 3, expertHiddenDim: 8, ...extra };
    const w = seededWeights(config(base), 3, 0.2);
    const x = tf.randomNormal([3, 6, 16], 0, 1, 'float32', 11);
    const probe = tf.randomNormal([3, 6, 16], 0, 1, 'float32', 12);
    const dense = await outputAndGrads(backend, base, w, x, probe, true);
    for (const other of [{ dispatch: 'dropless' }, { dispatch: 'capacity', capacityFactor: 8 }] as const) {
      const fast = await outputAndGrads(backend, { ...base, ...other }, w, x, probe);
      expect(await relDiff(fast.output, dense.output), `${other.dispatch} output`).toBeLessThan(2e-5);
      for (const [name, g] of dense.grads) {
        expect(await relDiff(fast.grads.get(name)!, g), `${other.dispatch} d${name}`).toBeLessThan(2e-5);
      }
    }
  });

  it('dropless with idle experts (no tokens) still equals the masked oracle', async () => {
    const base: MoEConfigInput = { dModel: 16, nRoutedExperts: 8, topK: 2, expertHiddenDim: 8, nSharedExperts: 1, auxFreeBias: true };
    const w = seededWeights(config(base), 4, 0.2);
    // Experts 4..7 are pushed out of every selection by the bias, so they get no tokens at all.
    const weights = { ...w, expertBias: tf.tensor1d([0, 0, 0, 0, -10, -10, -10, -10]) };
    const x = tf.randomNormal([2, 9, 16], 0, 1, 'float32', 13);
    const probe = tf.randomNormal([2, 9, 16], 0, 1, 'float32', 14);
    const { config: c, options } = await forBackend(backend, { ...base, dispatch: 'dropless' }, weights, x);
    const counts = Array.from(await moeForward(x, weights, c, options).expertCounts.data());
    expect(counts.slice(4)).toEqual([0, 0, 0, 0]);
    const dense = await outputAndGrads(backend, base, weights, x, probe, true);
    const fast = await outputAndGrads(backend, { ...base, dispatch: 'dropless' }, weights, x, probe);
    expect(await relDiff(fast.output, dense.output)).toBeLessThan(2e-5);
    for (const [name, g] of dense.grads) expect(await relDiff(fast.grads.get(name)!, g), `d${name}`).toBeLessThan(2e-5);
  });
});

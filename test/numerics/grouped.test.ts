/**
 * The library's routed path (the grouped kernels) against the oracle (tools/oracle: the stock-op slots path it
 * replaced) on every backend: outputs, balance losses, statistics and every gradient, with drops, empty experts,
 * E = 1, K = E and E = 256.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { moeForward, type BackendName, type MoEConfigInput, type MoEWeights } from 'deepseek-moe-tfjs';
import {
  backendsUnderTest, config, forBackend, libraryForward, oracle, probeLoss, relDiff, seededWeights, useBackend,
} from '../helpers.js';
import { oracleForward } from '../../tools/oracle/forward.js';

const v3Gate = { scoreFunc: 'sigmoid', normTopK: true, routeScale: 2.5, auxFreeBias: true } as const;

const cases: [string, MoEConfigInput, number][] = [
  ['dropless, softmax, shared, every loss', {
    dModel: 12, nRoutedExperts: 6, topK: 2, expertHiddenDim: 8, nSharedExperts: 1,
    alpha1: 0.01, alpha2: 0.01, nExpertGroups: 2, topKGroups: 2, seqAlpha: 0.01, zLossCoef: 0.001,
  }, 1],
  ['dropless, V3 gate, groups', {
    dModel: 12, nRoutedExperts: 8, topK: 3, expertHiddenDim: 6, nExpertGroups: 4, topKGroups: 2, groupScoreFunc: 'sumTop2',
    alpha1: 0.01, alpha2: 0.01, seqAlpha: 0.01, ...v3Gate,
  }, 1],
  ['capacity with drops (factor 0.5)', {
    dModel: 10, nRoutedExperts: 4, topK: 2, expertHiddenDim: 6, dispatch: 'capacity', capacityFactor: 0.5, ...v3Gate,
  }, 1],
  ['empty experts (bias keeps most idle)', {
    dModel: 8, nRoutedExperts: 16, topK: 2, expertHiddenDim: 4, nSharedExperts: 2, ...v3Gate,
  }, 20],
  ['E = 1', { dModel: 8, nRoutedExperts: 1, topK: 1, expertHiddenDim: 8 }, 1],
  ['K = E', { dModel: 8, nRoutedExperts: 4, topK: 4, expertHiddenDim: 5, alpha1: 0.01 }, 1],
  ['E = 256, top-8 of 8 groups (DeepSeek-V3 shape)', {
    dModel: 16, nRoutedExperts: 256, topK: 8, expertHiddenDim: 4, nSharedExperts: 1,
    nExpertGroups: 8, topKGroups: 4, groupScoreFunc: 'sumTop2', seqAlpha: 0.001, ...v3Gate,
  }, 1],
];

/** Output, losses, statistics and gradients of the library's path or the oracle's. */
async function evaluate(
  backend: BackendName, input: MoEConfigInput, w: MoEWeights, x: tf.Tensor, probe: tf.Tensor, path: 'library' | 'oracle',
) {
  const { config: c, options, oracle: oracleOptions } = await forBackend(backend, input, w, x);
  const forward = path === 'library' ? libraryForward(options) : oracle(oracleOptions);
  const { names, f, inputs } = probeLoss(w, c, options, probe, forward);
  const out = forward(x, w, c, { training: true });
  const grads = tf.grads(f)(inputs(x));
  // The balance losses alone: their gradient is small beside the output's, so it gets a check of its own.
  const lossesOnly = (router: tf.Tensor) => forward(x, { ...w, routerKernel: router as tf.Tensor2D }, c, {}).losses.total;
  const anyLoss = c.alpha1 + c.alpha2 + c.seqAlpha + c.zLossCoef > 0;
  const routerGrad = anyLoss ? tf.grad(lossesOnly)(w.routerKernel) : tf.scalar(0);
  return {
    tensors: new Map<string, tf.Tensor>([
      ['output', out.output], ['loss', out.losses.total], ['load', out.stats.expertLoad], ['dropped', out.stats.droppedFraction],
      ['max violation', out.stats.maxViolation], ['router entropy', out.stats.routerEntropy],
      ['x grad', grads[0]!], ...names.map((n, i) => [`${n} grad`, grads[i + 1]!] as [string, tf.Tensor]),
    ]),
    // Small values (factors of 0.01), compared relative to their own size.
    small: new Map<string, tf.Tensor>([
      ['expert balance', out.losses.expertBalance], ['device balance', out.losses.deviceBalance],
      ['sequence balance', out.losses.seqBalance], ['z-loss', out.losses.zLoss],
      ['router grad of the balance losses', routerGrad],
    ]),
  };
}

/**
 * max |a - b| over max |b|: relative to the values' own size down to 1e-6 (K = E makes the expert loss a
 * constant, its gradient round-off).
 */
async function ownScaleDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const scale = (await tf.max(tf.abs(b)).data())[0]!;
  const diff = (await tf.max(tf.abs(tf.sub(a, b))).data())[0]!;
  return diff / Math.max(scale, 1e-6);
}

describe.each(backendsUnderTest)('the routed path against the oracle on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each(cases)('%s: outputs, losses, statistics and every gradient agree', async (_, input, biasScale) => {
    const w = seededWeights(config({ ...input, seed: 3 }), 3, biasScale * 0.05);
    const x = tf.randomNormal([2, 9, input.dModel], 0, 1, 'float32', 11);
    const probe = tf.randomNormal([2, 9, input.dModel], 0, 1, 'float32', 12);
    const grouped = await evaluate(backend, input, w, x, probe, 'library');
    const reference = await evaluate(backend, input, w, x, probe, 'oracle');
    for (const [name, t] of grouped.tensors) {
      expect.soft(await relDiff(t, reference.tensors.get(name)!), `${name}`).toBeLessThan(2e-5);
    }
    for (const [name, t] of grouped.small) {
      expect.soft(await ownScaleDiff(t, reference.small.get(name)!), `${name}`).toBeLessThan(1e-4);
    }
  });

  it('capacity drops the same assignments as the oracle, and reports the same share', async () => {
    const input: MoEConfigInput = {
      dModel: 8, nRoutedExperts: 4, topK: 2, expertHiddenDim: 4, dispatch: 'capacity', capacityFactor: 0.5, checkFinite: false,
    };
    const w = seededWeights(config(input), 5, 0.5);
    const x = tf.randomNormal([24, 8], 0, 1, 'float32', 13);
    const [g, r] = [moeForward(x, w, config(input), { training: true }), oracleForward(x, w, config(input), { training: true })];
    const dropped = (await g!.stats.droppedFraction.data())[0]!;
    expect(dropped).toBeGreaterThan(0.2); // capacity ceil(0.5 * 24 * 2 / 4) = 6 of 12 mean load
    expect(dropped).toBeCloseTo((await r!.stats.droppedFraction.data())[0]!, 6);
    expect(await relDiff(g!.output, r!.output)).toBeLessThan(2e-5);
  });

  it('is leak-free across training steps', async () => {
    const input: MoEConfigInput = {
      dModel: 8, nRoutedExperts: 8, topK: 2, expertHiddenDim: 4, nSharedExperts: 1, seqAlpha: 0.01, ...v3Gate, checkFinite: false,
    };
    const w = seededWeights(config(input), 7);
    const x = tf.randomNormal([3, 4, 8], 0, 1, 'float32', 14);
    const probe = tf.randomNormal([3, 4, 8], 0, 1, 'float32', 15);
    const { f, inputs } = probeLoss(w, config(input), {}, probe);
    const step = async () => {
      const grads = tf.grads(f)(inputs(x));
      await Promise.all(grads.map((g) => g.data()));
      tf.dispose(grads);
    };
    await step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await step();
    expect(tf.memory().numTensors).toBe(before);
  });
});

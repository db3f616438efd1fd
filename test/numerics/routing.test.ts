import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { moeForward, updateExpertBias, type MoEWeights } from 'deepseek-moe-tfjs';
import { route } from 'deepseek-moe-tfjs';
import { backendsUnderTest, config, forBackend, maxAbs, seededWeights, useBackend } from '../helpers.js';

describe.each(backendsUnderTest)('routing on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each([
    ['softmax, no bias', 'softmax', 0, 'max'],
    ['sigmoid, all-negative biased scores', 'sigmoid', -10, 'sumTop2'],
    ['sigmoid, mixed-sign bias', 'sigmoid', 0, 'max'],
  ] as const)('group-limited routing never touches more than topKGroups groups: %s', async (_, scoreFunc, biasShift, groupScoreFunc) => {
    const c = config({
      dModel: 8, nRoutedExperts: 16, topK: 4, expertHiddenDim: 4, nExpertGroups: 4, topKGroups: 2, scoreFunc,
      groupScoreFunc, auxFreeBias: true,
    });
    const w = seededWeights(c, 9);
    const bias = tf.add(tf.randomNormal([16], 0, 1, 'float32', 3), biasShift) as tf.Tensor1D;
    const x = tf.randomNormal([64, 8], 0, 1, 'float32', 4) as tf.Tensor2D;
    const indices = (await route(x, w.routerKernel, bias, c, false).topKIndices.array()) as number[][];
    for (const row of indices) {
      expect(new Set(row).size).toBe(4);
      expect(new Set(row.map((e) => Math.floor(e / 4))).size).toBeLessThanOrEqual(2);
    }
  });

  it.each(['dropless', 'capacity'] as const)('statistics of a %s forward match the chosen experts', async (dispatch) => {
    const input = { dModel: 8, nRoutedExperts: 8, topK: 2, expertHiddenDim: 4, scoreFunc: 'sigmoid', dispatch, capacityFactor: 4 } as const;
    const w = seededWeights(config(input), 6);
    const x = tf.randomNormal([2, 16, 8], 0, 1, 'float32', 7);
    const { config: c, options } = await forBackend(backend, input, w, x);
    const { stats, expertCounts } = moeForward(x, w, c, options);
    const indices = (await route(tf.reshape(x, [32, 8]) as tf.Tensor2D, w.routerKernel, null, c, false).topKIndices.array()) as number[][];
    const counts = new Array(8).fill(0);
    for (const row of indices) for (const e of row) counts[e]++;
    expect(Array.from(await expertCounts.data())).toEqual(counts);
    const load = Array.from(await stats.expertLoad.data());
    load.forEach((l, e) => expect(l).toBeCloseTo(counts[e] / 64, 6));
    const mean = 64 / 8;
    expect((await stats.maxViolation.data())[0]!).toBeCloseTo(Math.max(...counts) / mean - 1, 5);
    expect((await stats.droppedFraction.data())[0]!).toBe(0);
    const entropy = (await stats.routerEntropy.data())[0]!;
    expect(entropy).toBeGreaterThan(0);
    expect(entropy).toBeLessThanOrEqual(Math.log(8) + 1e-5);
  });

  it('router jitter perturbs the router input in training only, within (1 - j, 1 + j)', async () => {
    // A z-loss, so the router keeps its logits to look at.
    const c = config({ dModel: 8, nRoutedExperts: 8, topK: 2, expertHiddenDim: 4, routerJitter: 0.1, zLossCoef: 1e-3 });
    const w = seededWeights(c, 8);
    const x = tf.randomNormal([64, 8], 0, 1, 'float32', 9) as tf.Tensor2D;
    const plain = await route(x, w.routerKernel, null, c, false).logits!.array();
    const again = await route(x, w.routerKernel, null, c, false).logits!.array();
    expect(again).toEqual(plain); // inference: no jitter
    const jittered = route(x, w.routerKernel, null, c, true).logits!;
    expect(await maxAbs(tf.sub(jittered, tf.tensor2d(plain)))).toBeGreaterThan(1e-3);
    // Each logit is sum_i x_i U_i Wg_i with U in (0.9, 1.1): within 0.1 * sum_i |x_i Wg_i| of the plain one.
    const bound = tf.matMul(tf.abs(x), tf.abs(w.routerKernel));
    const excess = tf.sub(tf.abs(tf.sub(jittered, tf.tensor2d(plain))), tf.mul(bound, 0.1 + 1e-5));
    expect((await tf.max(excess).data())[0]!).toBeLessThanOrEqual(0);
    const off = config({ dModel: 8, nRoutedExperts: 8, topK: 2, expertHiddenDim: 4, zLossCoef: 1e-3 });
    expect(await route(x, w.routerKernel, null, off, true).logits!.array()).toEqual(plain); // jitter 0: none
  });

  it('the auxiliary-loss-free bias update moves load toward balance on a skewed router', async () => {
    const input = {
      dModel: 8, nRoutedExperts: 8, topK: 2, expertHiddenDim: 4, scoreFunc: 'sigmoid', auxFreeBias: true,
    } as const;
    const w = seededWeights(config(input), 2, 0) as MoEWeights;
    // Skew: every token leans toward experts 0 and 1.
    const skew = tf.tensor2d([[2, 1.5, 0, 0, 0, 0, 0, 0]]);
    const routerKernel = tf.add(w.routerKernel, skew) as tf.Tensor2D;
    const bias = tf.variable(tf.zeros([8]));
    const x = tf.add(tf.randomNormal([128, 8], 0, 1, 'float32', 5), 1);
    const { config: c, options } = await forBackend(backend, input, w, x);
    const violation = async () => {
      const { stats, expertCounts } = moeForward(x, { ...w, routerKernel, expertBias: bias as unknown as tf.Tensor1D }, c, options);
      return { v: (await stats.maxViolation.data())[0]!, counts: expertCounts };
    };
    const before = await violation();
    let counts = before.counts;
    for (let step = 0; step < 60; step++) {
      updateExpertBias(bias, counts, 0.05);
      counts = (await violation()).counts;
    }
    const after = (await violation()).v;
    expect(before.v).toBeGreaterThan(1.5);
    expect(after).toBeLessThan(before.v / 3);
    const b = await bias.data();
    expect(b[0]!).toBeLessThan(0); // the overloaded experts were pushed down
    expect(b[7]!).toBeGreaterThan(0);
  });

  it('capacity drops the overflow: routed output is zero for dropped tokens, the shared experts still see them', async () => {
    const input = {
      dModel: 4, nRoutedExperts: 2, topK: 1, expertHiddenDim: 3, nSharedExperts: 1, dispatch: 'capacity',
      capacityFactor: 0.5,
    } as const;
    const c = config(syncFree(backend, input));
    const w = seededWeights(c, 4);
    // Every token prefers expert 0: capacity ceil(0.5 * 8 * 1 / 2) = 2 slots, so 6 of 8 are dropped.
    const routerKernel = tf.tensor2d([[5, -5], [5, -5], [5, -5], [5, -5]]);
    const x = tf.abs(tf.randomNormal([8, 4], 0, 1, 'float32', 6));
    const { output, stats } = moeForward(x, { ...w, routerKernel }, c, { training: true }); // capacity: training only
    expect((await stats.droppedFraction.data())[0]!).toBeCloseTo(0.75, 6);
    const sharedOnly = moeForward(x, { ...w, routerKernel, expertW2: tf.zerosLike(w.expertW2) }, c, { training: true }).output;
    const rows = (await tf.sub(output, sharedOnly).abs().sum(1).array()) as number[];
    expect(rows.slice(0, 2).every((r) => r > 1e-4)).toBe(true); // first come, first served
    expect(rows.slice(2)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

function syncFree<T extends object>(backend: string, input: T): T {
  return backend === 'webgpu' ? { ...input, checkFinite: false } : input;
}

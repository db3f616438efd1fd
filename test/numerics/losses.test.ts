import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { balanceLosses, routingStats } from 'deepseek-moe-tfjs';
import { backendsUnderTest, config, useBackend } from '../helpers.js';
import { oracleBalanceLosses } from '../../tools/oracle/balance.js';

// Four tokens, four experts, top-2, worked out by hand in the comments.
const scores = [
  [0.4, 0.3, 0.2, 0.1], // chose 0, 1
  [0.1, 0.2, 0.3, 0.4], // chose 2, 3
  [0.5, 0.2, 0.2, 0.1], // chose 0, 1
  [0.25, 0.25, 0.25, 0.25], // chose 0, 2
];
const membership = [
  [1, 1, 0, 0],
  [0, 0, 1, 1],
  [1, 1, 0, 0],
  [1, 0, 1, 0],
];
const base = { dModel: 4, nRoutedExperts: 4, topK: 2, expertHiddenDim: 2 };

// The library's affinityBalance kernel, and the oracle's stock ops (tools/oracle).
const variants = backendsUnderTest.flatMap((b) => [[b, 'kernel'], [b, 'oracle']] as const);

describe.each(variants)('balance losses against hand-worked values on %s, %s', (backend, ops) => {
  beforeAll(() => useBackend(backend));
  const losses = (extra: object, s = scores, m = membership, nSequences = 1) =>
    (ops === 'kernel' ? balanceLosses : oracleBalanceLosses)(
      tf.zeros([s.length, 4]), tf.tensor2d(s), tf.sum(tf.tensor2d(m), 0),
      () => tf.sum(tf.reshape(tf.tensor2d(m), [nSequences, m.length / nSequences, 4]), 1),
      nSequences, config({ ...base, ...extra }),
    );
  const value = async (t: tf.Tensor) => (await t.data())[0]!;

  it('expert-level: counts [3,2,2,1] give f = [1.5,1,1,0.5], P = [.3125,.2375,.2375,.2125], sum f P = 1.05', async () => {
    const l = losses({ alpha1: 0.1 });
    expect(await value(l.expertBalance)).toBeCloseTo(0.105, 6);
    expect(await value(l.total)).toBeCloseTo(0.105, 6);
  });

  it("with the global batch's load: f from its counts and tokens, P from this call's tokens", async () => {
    const withLoad = (counts: number[], tokens: number, extra: object) => (ops === 'kernel' ? balanceLosses : oracleBalanceLosses)(
      tf.zeros([4, 4]), tf.tensor2d(scores), tf.sum(tf.tensor2d(membership), 0), () => tf.zeros([1, 4]), 1,
      config({ ...base, ...extra }), { counts: tf.tensor1d(counts), tokens },
    );
    // Counts [6,4,4,2] over 8 tokens give this call's f = [1.5,1,1,0.5]: the same 1.05.
    expect(await value(withLoad([6, 4, 4, 2], 8, { alpha1: 0.1 }).expertBalance)).toBeCloseTo(0.105, 6);
    // A balanced global batch, [4,4,4,4] over 8 tokens: f = 1 for all, sum f P = sum P = 1.
    expect(await value(withLoad([4, 4, 4, 4], 8, { alpha1: 0.1 }).expertBalance)).toBeCloseTo(0.1, 6);
    // Device level, groups {0,1},{2,3}: f' = [1, 1], P' = [0.55, 0.45]: 1.0.
    expect(await value(withLoad([4, 4, 4, 4], 8, { alpha2: 0.1, nExpertGroups: 2 }).deviceBalance)).toBeCloseTo(0.1, 6);
  });

  it('expert-level equals alpha1 at perfect balance', async () => {
    const uniform = Array.from({ length: 4 }, () => [0.25, 0.25, 0.25, 0.25]);
    const balanced = [[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]];
    expect(await value(losses({ alpha1: 0.3 }, uniform, balanced).expertBalance)).toBeCloseTo(0.3, 6);
  });

  it("device-level with groups {0,1},{2,3}: f' = [1.25,0.75], P' = [0.55,0.45], sum = 1.025", async () => {
    const l = losses({ alpha2: 0.1, nExpertGroups: 2, topKGroups: 2 });
    expect(await value(l.deviceBalance)).toBeCloseTo(0.1025, 6);
  });

  it('sequence-wise over two sequences of two tokens: 1.0 and 1.2, mean 1.1', async () => {
    expect(await value(losses({ seqAlpha: 0.1 }, scores, membership, 2).seqBalance)).toBeCloseTo(0.11, 6);
  });

  it('sigmoid scores are normalised per token first: sum f P = 1.15', async () => {
    const s = [[0.8, 0.2, 0.6, 0.4], [0.5, 0.5, 0.5, 0.5]];
    const m = [[1, 0, 1, 0], [1, 0, 0, 1]];
    expect(await value(losses({ alpha1: 1, scoreFunc: 'sigmoid' }, s, m).expertBalance)).toBeCloseTo(1.15, 6);
  });

  it('z-loss of zero logits is (log 4)^2', async () => {
    expect(await value(losses({ zLossCoef: 0.01 }).zLoss)).toBeCloseTo(0.01 * Math.log(4) ** 2, 6);
  });

  it('with every loss on, the total is the sum of its parts', async () => {
    const l = losses({ alpha1: 0.1, alpha2: 0.2, nExpertGroups: 2, topKGroups: 2, seqAlpha: 0.3, zLossCoef: 0.01 }, scores, membership, 2);
    const parts = await Promise.all([l.expertBalance, l.deviceBalance, l.seqBalance, l.zLoss].map(value));
    expect(parts.every((p) => p > 0)).toBe(true);
    expect(await value(l.total)).toBeCloseTo(0.105 + 0.205 + 0.33 + 0.01 * Math.log(4) ** 2, 5);
    expect(await value(l.total)).toBeCloseTo(parts.reduce((a, b) => a + b, 0), 6);
  });

  it('every loss is exactly 0 when its factor is 0', async () => {
    const l = losses({});
    for (const t of [l.expertBalance, l.deviceBalance, l.seqBalance, l.zLoss, l.total]) expect(await value(t)).toBe(0);
  });

  it('statistics: load [3,2,2,1]/8, max violation 0.5, entropy of a uniform token is log 4', async () => {
    const uniform = tf.fill([4, 4], 0.25) as tf.Tensor2D; // 4 tokens, K 2: the counts sum to 8
    const stats = routingStats(tf.tensor1d([3, 2, 2, 1]), uniform, tf.scalar(0.125), config(base));
    expect(Array.from(await stats.expertLoad.data())).toEqual([0.375, 0.25, 0.25, 0.125]);
    expect(await value(stats.maxViolation)).toBeCloseTo(0.5, 6);
    expect(await value(stats.routerEntropy)).toBeCloseTo(Math.log(4), 5);
    expect(await value(stats.droppedFraction)).toBeCloseTo(0.125, 6);
  });
});

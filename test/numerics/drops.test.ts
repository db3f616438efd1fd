/**
 * Token dropping (dispatch 'capacity'): which tokens an expert past capacity keeps under each dropPolicy, worked
 * by hand, on the library's path and the oracle's; capacity in training only; the shared-expert gate; the bias
 * update rules.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  moeForward, swiGLU, updateExpertBias, type BackendName, type DeepSeekMoEConfig, type MoEConfigInput, type MoEWeights,
} from 'deepseek-moe-tfjs';
import { backendsUnderTest, config, maxAbsDiff, relDiff, seededWeights, syncReads, useBackend } from '../helpers.js';
import { oracleForward, oracleSlots } from '../../tools/oracle/forward.js';

/**
 * Two experts, top-1, an identity router: token [a, b] has softmax affinities of (a, b). Expert 0 is chosen by
 * tokens 0, 1, 2 with affinities 0.731, 0.953, 0.881 (logit gaps 1, 3, 2); expert 1 by token 3. Capacity factor 1
 * gives ceil(1 * 4 * 1 / 2) = 2 slots per expert, so expert 0 drops one of its three tokens: 'position' drops the
 * latest (token 2), 'probs' the one of lowest affinity (token 0).
 */
const x = tf.tensor2d([[1, 0], [3, 0], [2, 0], [0, 1]]);
const base: MoEConfigInput = {
  dModel: 2, nRoutedExperts: 2, topK: 1, expertHiddenDim: 3, dispatch: 'capacity', capacityFactor: 1,
  checkFinite: false,
};

function weights(): MoEWeights {
  const w = seededWeights(config(base), 3, 0);
  tf.dispose(w.routerKernel);
  return { ...w, routerKernel: tf.tensor2d([[1, 0], [0, 1]]) };
}

/** Which of the 4 tokens got no routed output (all zero: no shared expert). */
async function droppedTokens(out: tf.Tensor): Promise<number[]> {
  const rows = (await out.array()) as number[][];
  return rows.flatMap((r, t) => (r.every((v) => v === 0) ? [t] : []));
}

const paths = ['library', 'oracle'] as const;

/** The layer on one path; the oracle's dropless slots are measured ahead where sync reads are not wanted. */
async function forward(
  path: (typeof paths)[number], backend: BackendName, xs: tf.Tensor, w: MoEWeights, c: DeepSeekMoEConfig, training = false,
) {
  if (path === 'library') return moeForward(xs, w, c, { training });
  const dropless = c.dispatch === 'dropless' || !training; // capacity applies in training only
  const slots = !syncReads(backend) && dropless ? await oracleSlots(xs, w, c) : undefined;
  return oracleForward(xs, w, c, { training, slots });
}

describe.each(backendsUnderTest)('token dropping on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each(paths)("'position' keeps each expert's earliest tokens, " +
    "'probs' its highest-affinity ones (%s)", async (path) => {
    const w = weights();
    for (const [policy, dropped] of [['position', [2]], ['probs', [0]]] as const) {
      const out = await forward(path, backend, x, w, config({ ...base, dropPolicy: policy }), true);
      expect(await droppedTokens(out.output), policy).toEqual(dropped);
      expect((await out.stats.droppedFraction.data())[0], policy).toBeCloseTo(0.25, 6);
      expect(Array.from(await out.expertCounts.data()), policy).toEqual([3, 1]); // counted before drops
    }
  });

  it.each(paths)("'probs' breaks ties by token order (%s)", async (path) => {
    const w = weights();
    const tied = tf.tensor2d([[2, 0], [2, 0], [2, 0], [0, 1]]); // expert 0: three equal affinities, two slots
    const out = await forward(path, backend, tied, w, config({ ...base, dropPolicy: 'probs' }), true);
    expect(await droppedTokens(out.output)).toEqual([2]);
  });

  it("the library and the oracle keep the same tokens under 'probs' (outputs and gradients)", async () => {
    const input: MoEConfigInput = {
      dModel: 8, nRoutedExperts: 6, topK: 2, expertHiddenDim: 4, dispatch: 'capacity', capacityFactor: 0.6,
      dropPolicy: 'probs', scoreFunc: 'sigmoid', normTopK: true, auxFreeBias: true, alpha1: 0.01, checkFinite: false,
    };
    const w = seededWeights(config(input), 9, 0.3);
    const xs = tf.randomNormal([30, 8], 0, 1, 'float32', 21);
    const probe = tf.randomNormal([30, 8], 0, 1, 'float32', 22);
    const run = (layer: typeof moeForward) => {
      const c = config(input);
      const f = (xIn: tf.Tensor, w1: tf.Tensor, router: tf.Tensor) => {
        const out = layer(xIn, { ...w, expertW1: w1 as tf.Tensor3D, routerKernel: router as tf.Tensor2D }, c, { training: true });
        return tf.add(tf.sum(tf.mul(out.output, probe)), out.losses.total) as tf.Scalar;
      };
      const out = layer(xs, w, c, { training: true });
      return { out, grads: tf.grads(f)([xs, w.expertW1, w.routerKernel]) };
    };
    const g = run(moeForward);
    const r = run(oracleForward);
    expect((await g.out.stats.droppedFraction.data())[0]).toBeGreaterThan(0.1);
    expect(await relDiff(g.out.output, r.out.output)).toBeLessThan(2e-5);
    for (let i = 0; i < 3; i++) expect(await relDiff(g.grads[i]!, r.grads[i]!), `gradient ${i}`).toBeLessThan(1e-4);
  });

  it.each(paths)('capacity applies in training only: evaluation runs dropless (%s)', async (path) => {
    const w = weights();
    const capacity = await forward(path, backend, x, w, config(base));
    const dropless = await forward(path, backend, x, w, config({ ...base, dispatch: 'dropless' }));
    expect(await droppedTokens(capacity.output)).toEqual([]);
    expect((await capacity.stats.droppedFraction.data())[0]).toBe(0);
    expect(await maxAbsDiff(capacity.output, dropless.output)).toBeLessThan(1e-6);
  });

  it.each(paths)('the shared-expert gate scales the shared output by sigmoid(x w_g) (%s)', async (path) => {
    const input: MoEConfigInput = {
      dModel: 6, nRoutedExperts: 4, topK: 2, expertHiddenDim: 3, nSharedExperts: 2, checkFinite: false,
    };
    const gated = config({ ...input, sharedExpertGate: true });
    const w = seededWeights(gated, 4);
    expect(w.sharedGate!.shape).toEqual([6, 1]);
    const xs = tf.randomNormal([5, 6], 0, 1, 'float32', 5);
    const withGate = (await forward(path, backend, xs, w, gated)).output;
    const withoutGate = (await forward(path, backend, xs, { ...w, sharedGate: null }, config(input))).output;
    const shared = swiGLU(xs as tf.Tensor2D, w.sharedW1!, w.sharedW3!, w.sharedW2!);
    // gated - ungated = (sigmoid(x w_g) - 1) * shared
    const expected = tf.mul(tf.sub(tf.sigmoid(tf.matMul(xs, w.sharedGate!)), 1), shared);
    expect(await relDiff(tf.sub(withGate, withoutGate), expected)).toBeLessThan(1e-5);
  });
});

describe('the bias update rules', () => {
  // counts [4, 1, 1, 2]: mean 2, sign(mean - c) = [-1, 1, 1, 0]; its mean is 0.25.
  it.each([
    ['sign', [-1, 1, 1, 0]],
    ['signCentered', [-1.25, 0.75, 0.75, -0.25]],
  ] as const)('%s moves the bias by gamma times %j', async (rule, step) => {
    const bias = tf.variable(tf.zeros([4]));
    updateExpertBias(bias, tf.tensor1d([4, 1, 1, 2]), 0.01, rule);
    const got = Array.from(await bias.data());
    step.forEach((s, i) => expect(got[i]).toBeCloseTo(0.01 * s, 7));
    bias.dispose();
  });
});

/**
 * Upcycling: the grown model's first forward equals the dense model's (logits, MTP logits) in every exact
 * setting on every backend; the weights are the dense FFN's slices and copies as worked by hand; the header says
 * where the model came from and AdamW starts fresh while the run's step goes on; bad settings are refused by name.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { readCheckpoint } from 'deepseek-moe-tfjs/config';
import {
  DeepSeekLM, denseTwin, encode, mtpForward, preset, resolveModelConfig, type ModelConfigInput,
} from 'deepseek-moe-tfjs/model';
import {
  loadModel, resolveUpcycle, TextDataset, Trainer, upcycle, upcycleWeights, type UpcycleConfigInput,
} from 'deepseek-moe-tfjs/train';
import { maxAbsDiff, nodeBackends } from '../helpers.js';

const tiny = preset('tiny');
/** The tiny preset with its MoE blocks dense, of hidden width 48 (3 slices of 16, or 4 of 12, or 6 of 8). */
const dense = (extra: Partial<ModelConfigInput> = {}): ModelConfigInput =>
  ({ ...tiny, ffn: 'dense', twinInterDim: 48, ...extra });

const exact: [string, Partial<ModelConfigInput>, UpcycleConfigInput][] = [
  ['fine-grained, every slice kept: m 4, 4 experts, top-4', {}, {
    granularity: 4, moe: { nSharedExperts: 0, nRoutedExperts: 4, topK: 4 },
  }],
  ['DeepSeekMoE: m 3, 1 shared, 4 copies of 2 slices, top-2', {}, {
    granularity: 3, moe: { nSharedExperts: 1, nRoutedExperts: 8, topK: 2 },
  }],
  ['sparse upcycling: 3 copies of the FFN, top-1, routeScale 1', {}, {
    granularity: 1, moe: { nSharedExperts: 0, nRoutedExperts: 3, topK: 1, routeScale: 1 },
  }],
  ['sparse upcycling: 4 copies, top-2', {}, { granularity: 1, moe: { nSharedExperts: 0, nRoutedExperts: 4, topK: 2 } }],
  ['a gated shared expert, softmax scores, 2 groups of whole copies', {}, {
    granularity: 3, moe: {
      nSharedExperts: 1, nRoutedExperts: 8, topK: 4, sharedExpertGate: true, scoreFunc: 'softmax',
      nExpertGroups: 2, topKGroups: 2,
    },
  }],
  ['with an MTP module (its block grows too)', { mtpDepth: 1 }, {
    granularity: 3, moe: { nSharedExperts: 1, nRoutedExperts: 8, topK: 2 },
  }],
];

async function denseCheckpoint(config: ModelConfigInput, steps = 3): Promise<Uint8Array> {
  const model = new DeepSeekLM(config);
  const text = 'The cat sat on the mat. 猫坐在垫子上。 12+34=46; def f(x): return x\n'.repeat(20);
  const trainer = new Trainer(model, new TextDataset({ a: text }, { seqLen: 16 }), {
    steps, batchSize: 2, seqLen: 16, evalEvery: 1000, learningRate: 1e-2, warmupSteps: 0,
  });
  await trainer.run();
  const bytes = await trainer.checkpoint();
  trainer.dispose();
  model.dispose();
  return bytes;
}

const ids = tf.tensor2d([Array.from(encode('Upcycled: 猫 12+3=15 ok')).slice(0, 24)], [1, 24], 'int32');

describe.each(nodeBackends)('upcycle on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it.each(exact)('%s: the first forward equals the dense model\'s', async (_name, extra, settings) => {
    const bytes = await denseCheckpoint(dense(extra));
    const { checkpoint, plan } = upcycle(bytes, settings);
    expect(plan.exact, plan.why).toBe(true);
    const [before, after] = [loadModel(bytes), loadModel(checkpoint)];
    expect(after.config.ffn).toBe('moe');
    const a = before.forward(ids);
    const b = after.forward(ids);
    expect(await maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-4);
    if (after.config.mtpDepth > 0) {
      const targets = tf.concat([tf.slice(ids, [0, 1], [1, 23]), tf.tensor2d([[0]], [1, 1], 'int32')], 1) as tf.Tensor2D;
      const ma = mtpForward(before.view, before.config, a.hidden, targets);
      const mb = mtpForward(after.view, after.config, b.hidden, targets);
      expect(await maxAbsDiff(ma.depthLogits[0]!, mb.depthLogits[0]!)).toBeLessThan(1e-4);
    }
    before.dispose();
    after.dispose();
  });
});

describe('upcycle: weights, header, refusals', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('cuts the dense FFN into slices and copies, scales the routed outputs and ties the router per copy', () => {
    const plan = resolveUpcycle(resolveModelConfig(dense()), {
      granularity: 3, moe: { nSharedExperts: 1, nRoutedExperts: 4, topK: 2, routeScale: 4 },
    });
    expect(plan).toMatchObject({ granularity: 3, sliceWidth: 16, routedSlices: 2, copies: 2, expertOutputScale: 0.5 });
    // Dense block 1: w1[k, j] = 1000 k + j, w3 = -w1, w2[j, k] = j + k / 100 (d 32, H 48).
    const d = 32;
    const H = 48;
    const w1 = Float32Array.from({ length: d * H }, (_, i) => 1000 * Math.floor(i / H) + (i % H));
    const w2 = Float32Array.from({ length: H * d }, (_, i) => Math.floor(i / d) + (i % d) / 100);
    const model = new DeepSeekLM(dense());
    const weights = new Map(model.weightNames.map((n) => [n, Float32Array.from(model.weights[n]!.dataSync())]));
    model.dispose();
    weights.set('blocks.1.ffn.w1', w1).set('blocks.1.ffn.w3', w1.map((x) => -x)).set('blocks.1.ffn.w2', w2);
    const grown = upcycleWeights(plan, weights);
    const at = (name: string, ...index: number[]) => {
      const shape = { expertW1: [4, d, 16], expertW2: [4, 16, d], sharedW1: [d, 16], sharedW2: [16, d], routerKernel: [d, 4] }[name]!;
      const flat = index.reduce((a, x, i) => a * shape[i]! + x, 0);
      return grown.get(`blocks.1.moe.${name}`)![flat]!;
    };
    // Shared: slice 0 (hidden units 0-15); expert e: slice 1 + e mod 2 (units 16-31 or 32-47), copy-major.
    expect(at('sharedW1', 5, 3)).toBe(5003);
    expect(at('sharedW2', 3, 7)).toBeCloseTo(3.07, 5);
    expect(at('expertW1', 0, 5, 3)).toBe(5019);
    expect(at('expertW1', 1, 5, 3)).toBe(5035);
    expect(at('expertW1', 2, 5, 3)).toBe(5019); // the second copy
    expect(grown.get('blocks.1.moe.expertW3')![5 * 16 + 3]).toBe(-5019);
    // expertW2 times G / routeScale = 2 / 4.
    expect(at('expertW2', 3, 2, 7)).toBeCloseTo(0.5 * (34 + 0.07), 5);
    // The router: experts 0 and 1 (copy 0) share a column, 2 and 3 (copy 1) another.
    for (let k = 0; k < d; k++) {
      expect(at('routerKernel', k, 1)).toBe(at('routerKernel', k, 0));
      expect(at('routerKernel', k, 3)).toBe(at('routerKernel', k, 2));
    }
    expect(at('routerKernel', 0, 2)).not.toBe(at('routerKernel', 0, 0));
    expect(grown.get('blocks.1.moe.expertBias')).toEqual(new Float32Array(4));
    // Everything else is the dense model's.
    for (const name of ['embed', 'blocks.0.ffn.w1', 'blocks.1.attn.wo', 'blocks.1.ffnNorm', 'head']) {
      expect(grown.get(name), name).toBe(weights.get(name));
    }
  });

  it('a top-K that cuts through copies is not exact, and says why', () => {
    const plan = resolveUpcycle(resolveModelConfig(dense()), {
      granularity: 3, moe: { nSharedExperts: 1, nRoutedExperts: 8, topK: 3 },
    });
    expect(plan.exact).toBe(false);
    expect(plan.why).toMatch(/topK 3 is not a multiple of the 2 routed slices per copy/);
  });

  it('grows the dense twin of a preset back into the preset, exactly, with its defaults', async () => {
    const twin = denseTwin(tiny, 'upcycle');
    expect(twin.twinInterDim).toBe((1 + 2) * 16);
    const { checkpoint, plan, modelConfig } = upcycle(await denseCheckpoint(twin, 1));
    expect(plan).toMatchObject({ granularity: 3, routedSlices: 2, copies: 4, expertOutputScale: 1, exact: true });
    expect(resolveModelConfig(modelConfig).moeConfig).toEqual(resolveModelConfig(tiny).moeConfig);
    expect(loadModel(checkpoint).config.ffn).toBe('moe');
  });

  it('keeps the run\'s step, schedule and sampler; AdamW restarts at 0; the source is recorded and kept', async () => {
    const bytes = await denseCheckpoint(dense(), 3);
    const source = readCheckpoint(bytes).header;
    expect(source.optimizerStep).toBeUndefined(); // equal to step: not written
    expect(source.version).toBe(2); // readable by older builds

    const { checkpoint } = upcycle(bytes, { granularity: 3 });
    const { header, tensors } = readCheckpoint(checkpoint);
    expect(header).toMatchObject({
      version: 3, step: 3, rngState: source.rngState, trainConfig: source.trainConfig, optimizerStep: 0,
      upcycledFrom: { step: 3, checksum: source.checksum, modelConfig: source.modelConfig, granularity: 3, exact: true },
    });
    for (const [name, values] of tensors) if (name.startsWith('adam.')) expect(values.every((x) => x === 0), name).toBe(true);
    // Restored and trained two more steps: the run's step goes 3 -> 5, AdamW's 0 -> 2, the source stays.
    const model = loadModel(checkpoint);
    const text = 'The cat sat on the mat. 猫坐在垫子上。 12+34=46\n'.repeat(20);
    const trainer = new Trainer(model, new TextDataset({ a: text }, { seqLen: 16 }), { ...header.trainConfig, steps: 5 });
    trainer.restore(checkpoint);
    await trainer.run();
    const after = readCheckpoint(await trainer.checkpoint()).header;
    expect(after).toMatchObject({ step: 5, optimizerStep: 2, upcycledFrom: header.upcycledFrom });
    trainer.dispose();
    model.dispose();
    expect(() => upcycle(checkpoint)).toThrow(/upcycle: expected a dense model, but this checkpoint was already upcycled/);
  });

  it.each([
    [{ granularity: 5 }, /expected granularity to be a positive integer dividing the dense FFN width \(twinInterDim 48\), but got 5/],
    [{ granularity: 3, moe: { nSharedExperts: 3 } }, /expected nSharedExperts \(3\) below granularity \(3\)/],
    [{ granularity: 3, moe: { nSharedExperts: 1, nRoutedExperts: 7 } }, /multiple of granularity - nSharedExperts \(2\), but got 7/],
    [{ granularity: 3, moe: { normTopK: false } }, /expected moe.normTopK true .* but got false/],
    [{ granularity: 3, moe: { expertHiddenDim: 12 } }, /expected moe.expertHiddenDim to be twinInterDim \/ granularity = 16, but got 12/],
    [{ granularity: 3, moe: { topK: 99 } }, /upcycle: the grown model's config is not valid: .*topK/],
  ] as [UpcycleConfigInput, RegExp][])('refuses %j by name', (settings, message) => {
    expect(() => resolveUpcycle(resolveModelConfig(dense()), settings)).toThrow(message);
  });

  it('refuses an unknown setting and a seed that is not a count, by name', () => {
    const c = resolveModelConfig(dense());
    expect(() => resolveUpcycle(c, { granularty: 3 } as UpcycleConfigInput))
      .toThrow(/upcycle: unknown setting 'granularty'; known settings are moe, granularity, seed/);
    expect(() => resolveUpcycle(c, { granularity: 3, seed: -1 })).toThrow(/expected seed to be a non-negative integer, but got -1/);
  });

  it('refuses a MoE model', async () => {
    expect(() => resolveUpcycle(resolveModelConfig(tiny))).toThrow(/expected a dense model \(ffn 'dense'\), but got ffn 'moe'/);
  });
});

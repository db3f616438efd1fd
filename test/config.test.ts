import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  deepSeekMoE, moeForward, resolveMoEConfig, createMoEWeights, initBackend, type MoEConfigInput,
} from 'deepseek-moe-tfjs';

const ok: MoEConfigInput = { dModel: 8, nRoutedExperts: 8, topK: 2, expertHiddenDim: 4 };

describe('config validation', () => {
  it.each([
    ['topK > nRoutedExperts', { topK: 9 }, /topK \(9\) to be at most nRoutedExperts \(8\)/],
    ['topKGroups > nExpertGroups', { nExpertGroups: 2, topKGroups: 3 }, /topKGroups \(3\) to be at most nExpertGroups \(2\)/],
    ['nRoutedExperts not divisible by nExpertGroups', { nExpertGroups: 3 }, /nRoutedExperts \(8\) to be divisible by nExpertGroups \(3\)/],
    ['topK beyond the reachable experts', { nExpertGroups: 4, topKGroups: 1, topK: 3 },
      /topK \(3\) to be at most topKGroups \(1\) \* experts per group \(nRoutedExperts \/ nExpertGroups = 2\) = 2/],
    ['fractional topK', { topK: 1.5 }, /expected topK to be a positive integer, but got 1\.5/],
    ['zero dModel', { dModel: 0 }, /expected dModel to be a positive integer, but got 0/],
    ['negative nSharedExperts', { nSharedExperts: -1 }, /expected nSharedExperts to be a non-negative integer, but got -1/],
    ['negative alpha1', { alpha1: -0.1 }, /expected alpha1 to be a finite number >= 0, but got -0\.1/],
    ['negative seqAlpha', { seqAlpha: -1 }, /expected seqAlpha to be a finite number >= 0, but got -1/],
    ['negative zLossCoef', { zLossCoef: -1 }, /expected zLossCoef/],
    ['negative biasUpdateSpeed', { biasUpdateSpeed: -0.001 }, /expected biasUpdateSpeed to be a finite number >= 0, but got -0\.001/],
    ['negative capacityFactor', { capacityFactor: -1 }, /expected capacityFactor to be a finite number > 0, but got -1/],
    ['NaN routeScale', { routeScale: NaN }, /expected routeScale to be a finite number > 0, but got NaN/],
    ['jitter of 1', { routerJitter: 1 }, /expected routerJitter to be below 1, but got 1/],
    ['unknown scoreFunc', { scoreFunc: 'relu' }, /expected scoreFunc to be one of 'softmax', 'sigmoid', but got 'relu'/],
    ['unknown dispatch', { dispatch: 'sparse' }, /expected dispatch to be one of 'dropless', 'capacity', but got 'sparse'/],
    ['non-boolean normTopK', { normTopK: 1 }, /expected normTopK to be a boolean, but got 1/],
    ['a misspelt field', { topk: 2 }, /unknown field 'topk'/],
    ['unknown dropPolicy', { dropPolicy: 'random' }, /expected dropPolicy to be one of 'position', 'probs', but got 'random'/],
    ['unknown balanceScope', { balanceScope: 'sequence' },
      /expected balanceScope to be one of 'microBatch', 'globalBatch', but got 'sequence'/],
    ['unknown biasUpdate', { biasUpdate: 'adam' }, /expected biasUpdate to be one of 'sign', 'signCentered', but got 'adam'/],
    ['a shared-expert gate without shared experts', { sharedExpertGate: true },
      /expected nSharedExperts >= 1 for sharedExpertGate, but got 0/],
    ['non-boolean sharedExpertGate', { sharedExpertGate: 'yes' }, /expected sharedExpertGate to be a boolean, but got 'yes'/],
  ])('rejects %s', (_, extra, message) => {
    expect(() => resolveMoEConfig({ ...ok, ...extra } as MoEConfigInput)).toThrow(message);
    expect(() => deepSeekMoE({ ...ok, ...extra } as MoEConfigInput)).toThrow(message);
  });

  it('fills defaults and freezes the result', () => {
    const c = resolveMoEConfig(ok);
    expect(c).toMatchObject({ nSharedExperts: 0, scoreFunc: 'softmax', dispatch: 'dropless', nExpertGroups: 1 });
    expect(Object.isFrozen(c)).toBe(true);
  });
});

describe('input validation', () => {
  beforeAll(() => initBackend('cpu'));
  const c = resolveMoEConfig(ok);

  it.each([
    ['rank 1', () => tf.ones([8]), /expected rank 2 \[tokens, dModel\] or 3 \[batch, seq, dModel\], but got shape \[8\]/],
    ['rank 4', () => tf.ones([1, 2, 3, 8]), /but got shape \[1,2,3,8\]/],
    ['wrong last dim', () => tf.ones([4, 7]), /expected last dimension dModel = 8, but got shape \[4,7\]/],
    ['int32 input', () => tf.ones([4, 8], 'int32'), /expected dtype float32, but got int32/],
    ['NaN input', () => tf.fill([4, 8], NaN), /expected finite values, but got NaN or Infinity/],
    ['Infinity input', () => tf.fill([4, 8], Infinity), /expected finite values/],
  ])('moeForward rejects %s', (_, make, message) => {
    const w = createMoEWeights(c);
    expect(() => moeForward(make(), w, c)).toThrow(message);
  });

  it('NaN input is caught with capacity dispatch too', () => {
    const cc = resolveMoEConfig({ ...ok, dispatch: 'capacity' });
    expect(() => moeForward(tf.fill([4, 8], NaN), createMoEWeights(cc), cc)).toThrow(/expected finite values/);
  });

  it("configs saved with retired fields keep loading, with a note: expertCompute, dispatch 'dense'", () => {
    const notes: string[] = [];
    const info = console.info;
    console.info = (message: string) => notes.push(message);
    try {
      const retired = { ...ok, expertCompute: 'reference', dispatch: 'dense' } as unknown as MoEConfigInput;
      const c = resolveMoEConfig(retired);
      expect(c.dispatch).toBe('dropless'); // the masked computation gave what dropless gives
      expect('expertCompute' in c).toBe(false);
      expect(notes.join('\n')).toMatch(/expertCompute \('reference'\) is no longer a setting/);
      expect(notes.join('\n')).toMatch(/dispatch 'dense' .* runs as 'dropless'/);
      expect(() => resolveMoEConfig({ ...ok, expertCompute: 'grouped', frobnicate: 1 } as unknown as MoEConfigInput))
        .toThrow(/frobnicate/);
    } finally {
      console.info = info;
    }
  });

  it('the layer rejects a wrong last dimension when built', () => {
    expect(() => deepSeekMoE(ok).apply(tf.ones([2, 5]))).toThrow(/expected last dimension dModel = 8, but got shape \[2,5\]/);
  });

  it('a rejected input changes nothing: the bias and pending load stay as they were', async () => {
    const layer = deepSeekMoE({ ...ok, auxFreeBias: true });
    layer.apply(tf.ones([4, 8]), { training: true });
    layer.updateBias();
    const bias = Array.from(await layer.biasValues());
    expect(() => layer.apply(tf.fill([4, 8], NaN), { training: true })).toThrow(/finite/);
    layer.updateBias();
    expect(Array.from(await layer.biasValues())).toEqual(bias);
  });
});

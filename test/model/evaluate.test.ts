import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, crossEntropy, evaluateText, forward, preset } from 'deepseek-moe-tfjs/model';

let model: DeepSeekLM;
beforeAll(async () => {
  await initBackend('cpu');
  model = new DeepSeekLM({ ...preset('tiny'), seed: 5 });
});

const bytesOf = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) % 256);

/** The reference: each window's mean cross-entropy (the training loss), weighted by the bytes it predicts. */
function reference(bytes: Uint8Array, L: number): number {
  let sum = 0;
  let count = 0;
  for (let s = 0; s < bytes.length; s += L) {
    const w = bytes.subarray(s, s + L);
    if (w.length < 2) continue;
    const loss = tf.tidy(() => {
      const logits = forward(model.weights, model.config, tf.tensor2d(Int32Array.from(w), [1, w.length], 'int32')).logits;
      return crossEntropy(tf.slice(logits, [0, 0], [w.length - 1, 256]), tf.tensor1d(Int32Array.from(w.subarray(1)),
        'int32')).dataSync()[0]!;
    });
    sum += loss * (w.length - 1);
    count += w.length - 1;
  }
  return sum / count;
}

describe('evaluateText', () => {
  it.each([
    [70, 32, 3, 31 + 31 + 5], // two full windows and a tail of 6
    [65, 32, 2, 62], // a tail of one byte predicts nothing
    [10, 32, 1, 9], // shorter than a window: one window
    [64, 16, 4, 60],
  ])('%i bytes in windows of %i: %i windows, %i predicted, the training loss per predicted byte', async (n, L, windows, predicted) => {
    const bytes = bytesOf(n);
    const score = await evaluateText(model.view, model.config, bytes, { seqLen: L, batchSize: 3 });
    expect(score).toMatchObject({ bytes: n, windows, predicted });
    expect(score.nll).toBeCloseTo(reference(bytes, L), 5);
  });

  it('gives the same score whatever the batch size, and leaks no tensor', async () => {
    const bytes = bytesOf(200);
    const before = tf.memory().numTensors;
    const one = await evaluateText(model.view, model.config, bytes, { batchSize: 1 });
    const many = await evaluateText(model.view, model.config, bytes, { batchSize: 8 });
    expect(many.nll).toBeCloseTo(one.nll, 5);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a window longer than maxSeqLen, a text of one byte and a bad batch size', async () => {
    await expect(evaluateText(model.view, model.config, bytesOf(100),
      { seqLen: 33 })).rejects.toThrow(/expected seqLen to be an integer in \[2, maxSeqLen = 32\], but got 33/);
    await expect(evaluateText(model.view, model.config, bytesOf(1))).rejects.toThrow(/expected a text of at least 2 bytes, but got 1/);
    await expect(evaluateText(model.view, model.config, bytesOf(9),
      { batchSize: 0 })).rejects.toThrow(/expected batchSize to be an integer >= 1/);
  });
});

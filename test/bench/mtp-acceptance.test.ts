// Teacher-forced MTP acceptance (tools/claims/mtp-acceptance.ts) against a prefix-by-prefix reference.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, generate, mtpForward, preset } from 'deepseek-moe-tfjs/model';
import { bootstrapInterval, teacherForcedAcceptance } from '../../tools/claims/mtp-acceptance.js';

beforeAll(async () => {
  await initBackend('cpu');
});

/** g_i and d_i of one window, each from a forward of its own prefix (causal: the same values as in the window). */
function byPrefix(model: DeepSeekLM, w: number[]): { greedy: number[]; drafts: number[] } {
  const S = w.length - 1;
  const greedy: number[] = [];
  const drafts: number[] = [];
  for (let n = 1; n <= S; n++) {
    tf.tidy(() => {
      const out = model.forward(tf.tensor2d([w.slice(0, n)], [1, n], 'int32'));
      greedy.push((tf.argMax(out.logits, 1).arraySync() as number[])[n - 1]!);
      if (n >= 2) {
        const targets = tf.tensor2d([w.slice(1, n + 1)], [1, n], 'int32');
        const mtp = mtpForward(model.view, model.config, out.hidden, targets);
        drafts.push((tf.argMax(mtp.depthLogits[0]!, 1).arraySync() as number[])[n - 2]!);
      }
    });
  }
  return { greedy, drafts };
}

describe('teacher-forced MTP acceptance', () => {
  it('counts, where the greedy token is the true one, whether the draft is the next greedy token', async () => {
    const model = new DeepSeekLM({ ...preset('tiny'), mtpDepth: 1, seed: 3 });
    // The model's own greedy text: its greedy token is the true one almost everywhere, so most positions count.
    const prompt = Array.from(new TextEncoder().encode('The '));
    const text = [...prompt, ...(await generate(model, prompt, { maxNewTokens: 21, temperature: 0 }))];
    const S = 8;
    const bytes = new Uint8Array(text.slice(0, 3 * S + 1));
    const counted = await teacherForcedAcceptance(model, bytes, S, { batchSize: 2 });
    expect(counted.windows).toHaveLength(3);
    let [eligible, accepted] = [0, 0];
    for (let k = 0; k < 3; k++) {
      const w = Array.from(bytes.slice(k * S, k * S + S + 1));
      const { greedy, drafts } = byPrefix(model, w);
      let [e, a] = [0, 0];
      for (let i = 0; i < S - 1; i++) {
        if (greedy[i] !== w[i + 1]) continue;
        e++;
        if (drafts[i] === greedy[i + 1]) a++;
      }
      expect(counted.windows[k]).toEqual([e, a]);
      [eligible, accepted] = [eligible + e, accepted + a];
    }
    expect(counted).toMatchObject({ eligible, accepted });
    expect(eligible).toBeGreaterThan(10);
    model.dispose();
  });

  it('bootstraps an interval around the pooled rate, reproducibly', () => {
    const windows: [number, number][] = Array.from({ length: 40 }, (_, i) => [10, i % 2 === 0 ? 9 : 5]);
    const [low, high] = bootstrapInterval(windows);
    expect(low).toBeLessThan(0.7);
    expect(high).toBeGreaterThan(0.7);
    expect(high - low).toBeLessThan(0.15);
    expect(bootstrapInterval(windows)).toEqual([low, high]);
    expect(bootstrapInterval([[10, 10], [10, 10]])).toEqual([1, 1]);
  });
});

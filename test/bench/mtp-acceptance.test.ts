// MTP acceptance: teacher-forced (tools/claims/mtp-acceptance.ts) against a prefix-by-prefix reference, and
// free-running (free-running.ts) against plain greedy decoding and hand-worked repeats.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, generate, generateWithStats, mtpForward, preset } from 'deepseek-moe-tfjs/model';
import { freeRunningAcceptance } from '../../tools/claims/free-running.js';
import { teacherForcedAcceptance } from '../../tools/claims/mtp-acceptance.js';
import { promptsFrom, repeatedMask } from '../../tools/claims/repeats.js';
import { bootstrapInterval } from '../../tools/claims/stats.js';

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

describe('free-running MTP acceptance', () => {
  it('marks the bytes inside an 8-gram seen before, as worked by hand', () => {
    const bytes = (s: string) => Array.from(new TextEncoder().encode(s));
    // "abcdefgh" again after the prompt "abcdefghX": its 8 bytes are a repeat, "Y" is not.
    expect(repeatedMask(bytes('abcdefghXabcdefghY'), 9)).toEqual([...Array(8).fill(true), false]);
    // A run of 9 equal bytes: the 8-gram at 1 repeats the one at 0 (overlapping); a run of 8 has one 8-gram.
    expect(repeatedMask(bytes('aaaaaaaaa'), 0)).toEqual([false, ...Array(8).fill(true)]);
    expect(repeatedMask(bytes('aaaaaaaa'), 0)).toEqual(Array(8).fill(false));
    // Only bytes from `start` on are reported; a repeat reaching back into the prompt marks its generated part.
    expect(repeatedMask(bytes('0123456789 0123456789'), 15)).toEqual(Array(6).fill(true));
    expect(repeatedMask(bytes('0123456ab0123456cd'), 9)).toEqual(Array(9).fill(false)); // 7-grams only
  });

  it('cuts prompts evenly from each domain, whole characters only', () => {
    const enc = new TextEncoder();
    const texts = [
      { domain: 'english', bytes: enc.encode('The quick brown fox jumps over the lazy dog. '.repeat(8)) },
      { domain: 'chinese', bytes: enc.encode('子曰：学而时习之，不亦说乎？有朋自远方来，不亦乐乎？'.repeat(6)) },
    ];
    const prompts = promptsFrom(texts, 5, 16);
    expect(prompts.map((p) => p.domain)).toEqual(['english', 'english', 'english', 'chinese', 'chinese']);
    for (const p of prompts) {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(p.bytes); // throws on a cut character
      expect(p.bytes.length).toBeGreaterThan(12);
      expect(p.bytes.length).toBeLessThanOrEqual(16);
      expect(texts.find((t) => t.domain === p.domain)!.bytes.toString()).toContain(p.bytes.toString());
      expect(text.length).toBeGreaterThan(0);
    }
    expect(new Set(prompts.map((p) => p.bytes.toString())).size).toBe(5); // from different places
  });

  it('counts drafts inside and outside repeats of greedy decoding, which it stores', async () => {
    const model = new DeepSeekLM({ ...preset('tiny'), mtpDepth: 1, seed: 4 });
    const enc = new TextEncoder();
    const prompts = ['The cat ', 'def f(x):'].map((s) => ({ domain: 'x', bytes: enc.encode(s) }));
    const run = await freeRunningAcceptance(model, prompts, 40);
    expect(run.samples).toHaveLength(2);
    let [drafted, inRepeat, acceptedInRepeat, repeated] = [0, 0, 0, 0];
    for (const [i, p] of prompts.entries()) {
      const ids = Array.from(p.bytes);
      const greedy = await generate(model, ids, { maxNewTokens: 40, temperature: 0 });
      const sample = run.samples[i]!;
      expect(sample.text).toBe(new TextDecoder().decode(Uint8Array.from(greedy)));
      const mask = repeatedMask([...ids, ...greedy], ids.length);
      expect(sample.repeated).toBe(mask.filter(Boolean).length);
      const { stats } = await generateWithStats(model, ids, { maxNewTokens: 40, temperature: 0, speculative: true });
      const inside = stats!.drafts.filter((d) => mask[d.position]);
      expect(sample).toMatchObject({
        drafted: stats!.drafted, accepted: stats!.accepted, draftedInRepeat: inside.length,
        acceptedInRepeat: inside.filter((d) => d.accepted).length,
      });
      [drafted, inRepeat, repeated] = [drafted + sample.drafted, inRepeat + inside.length, repeated + sample.repeated];
      acceptedInRepeat += sample.acceptedInRepeat;
    }
    expect(run).toMatchObject({ generated: 80, drafted, draftedInRepeat: inRepeat, acceptedInRepeat, repeated });
    expect(drafted).toBeGreaterThan(10);
    model.dispose();
  });
});

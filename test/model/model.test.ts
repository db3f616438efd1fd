import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMoEWeights, disposeMoEWeights, resolveMoEConfig, initBackend } from 'deepseek-moe-tfjs';
import {
  DeepSeekLM, decode, denseTwin, encode, forwardCached, preset, resolveModelConfig, type KVCache, type ModelConfigInput,
} from 'deepseek-moe-tfjs/model';
import { maxAbsDiff, nodeBackends } from '../helpers.js';

const tiny = preset('tiny');
const variants: [string, ModelConfigInput][] = [
  ['mla', tiny],
  ['mla with low-rank query', { ...tiny, qLoraRank: 12 }],
  ['mha', { ...tiny, attention: 'mha', headDim: 16 }],
  ['dense twin', denseTwin(tiny, 'activated')],
];
const ids = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32');
const text = Array.from(encode('The cat sat; 猫坐着. 12+34=46'));

describe.each(nodeBackends)('the DeepSeek-style LM on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it.each(variants)('%s: logits [B S, V], one report per MoE block, finite balance loss', (_name, config) => {
    const model = new DeepSeekLM(config);
    const out = model.forward(ids([text.slice(0, 16), text.slice(8, 24)]));
    expect(out.logits.shape).toEqual([32, 256]);
    const moeBlocks = model.config.ffn === 'moe' ? model.config.nLayers - model.config.nDenseLayers : 0;
    expect(out.moe.map((m) => m.block)).toEqual(Array.from({ length: moeBlocks }, (_, i) => model.config.nDenseLayers + i));
    expect(Number.isFinite(out.balanceLoss.dataSync()[0])).toBe(true);
    tf.dispose(out as unknown as tf.TensorContainer);
    model.dispose();
  });

  it.each(variants)('%s: the KV cache gives the logits of a full forward', async (_name, config) => {
    const model = new DeepSeekLM(config);
    const seq = text.slice(0, 20);
    const full = tf.tidy(() => model.forward(ids([seq])).logits);
    // A 7-token prefill, then one token at a time (MLA in its absorbed form).
    const rows: tf.Tensor[] = [];
    let cache: KVCache | null = null;
    for (const chunk of [seq.slice(0, 7), ...seq.slice(7).map((t) => [t])]) {
      const input = tf.tensor1d(chunk, 'int32');
      const step = forwardCached(model.weights, model.config, input, cache);
      input.dispose();
      tf.dispose([step.balanceLoss, step.moe] as unknown as tf.TensorContainer);
      rows.push(step.logits);
      cache = step.cache;
    }
    const incremental = tf.concat(rows);
    expect(await maxAbsDiff(full, incremental)).toBeLessThan(1e-4);
    tf.dispose([full, incremental, ...rows]);
    model.dispose();
  });

  it('cache bytes per token: MLA caches the latent and the rotary key, MHA every key and value', () => {
    const mla = new DeepSeekLM(tiny);
    const mha = new DeepSeekLM({ ...tiny, attention: 'mha', headDim: 16 });
    expect(mla.cacheBytesPerToken).toBe(4 * tiny.nLayers * (tiny.kvLoraRank + tiny.qkRopeHeadDim)); // 4 * 2 * (16 + 8)
    expect(mha.cacheBytesPerToken).toBe(4 * tiny.nLayers * 2 * tiny.nHeads * 16);
    mla.dispose();
    mha.dispose();
  });

  it('the same seed gives the same weights, seed 0 included (TF.js reads a 0 seed as unseeded)', async () => {
    const [a, b] = [new DeepSeekLM(tiny), new DeepSeekLM(tiny)];
    for (const name of a.weightNames) expect(await a.weights[name]!.data()).toEqual(await b.weights[name]!.data());
    const moe = resolveMoEConfig({ dModel: 8, nRoutedExperts: 4, topK: 1, expertHiddenDim: 4, seed: 0 });
    const [u, v] = [createMoEWeights(moe), createMoEWeights(moe)];
    expect(await u.routerKernel.data()).toEqual(await v.routerKernel.data());
    [a, b].forEach((m) => m.dispose());
    [u, v].forEach(disposeMoEWeights);
  });

  it('a weight starts from the same values whatever other weights the config adds (seeded by its name)', async () => {
    const base = new DeepSeekLM({ ...tiny, moe: { ...tiny.moe, auxFreeBias: false } });
    // An expertBias per MoE block and an MTP module: more weights, some listed before the head.
    const more = new DeepSeekLM({ ...tiny, moe: { ...tiny.moe, auxFreeBias: true }, mtpDepth: 1 });
    expect(more.weightNames.length).toBeGreaterThan(base.weightNames.length);
    expect(more.weightNames.filter((n) => n.includes('expertBias'))).not.toEqual([]);
    for (const name of base.weightNames) {
      expect(await more.weights[name]!.data(), name).toEqual(await base.weights[name]!.data());
    }
    const other = new DeepSeekLM({ ...tiny, seed: 1 });
    expect(await other.weights.head!.data()).not.toEqual(await base.weights.head!.data());
    // Two weights of one shape draw different values.
    const [first, second] = [base.weights['blocks.0.attn.wDkv']!, base.weights['blocks.1.attn.wDkv']!];
    expect(await first.data()).not.toEqual(await second.data());
    [base, more, other].forEach((m) => m.dispose());
  });

  it('rejects bad token ids before computing anything', () => {
    const model = new DeepSeekLM(tiny);
    expect(() => model.forward(tf.tensor2d([[1.5]], [1, 1]) as tf.Tensor2D)).toThrow(/expected int32 token ids, but got float32/);
    expect(() => model.forward(ids([Array.from({ length: 33 }, () => 1)])))
      .toThrow(/at most maxSeqLen = 32 tokens per sequence, but got 33/);
    model.dispose();
  });

  afterAll(() => {
    tf.disposeVariables();
  });
});

describe('model config', () => {
  it.each([
    [{ ...tiny, nDenseLayers: 3 }, /expected nDenseLayers \(3\) to be at most nLayers \(2\)/],
    [{ ...tiny, attention: 'gqa' }, /expected attention to be one of 'mha', 'mla', but got 'gqa'/],
    [{ ...tiny, qkRopeHeadDim: 7 }, /expected qkRopeHeadDim to be even/],
    [{ ...tiny, moe: { ...tiny.moe, topK: 9 } }, /model config: moe: expected topK \(9\) to be at most nRoutedExperts \(8\)/],
    [{ ...tiny, moe: { ...tiny.moe, dModel: 3 } }, /expected moe not to set dModel/],
    [{ ...tiny, depth: 3 }, /unknown field 'depth'/],
    [{ ...tiny, ffn: 'dense' }, /expected twinInterDim to be set \(a positive integer\) when ffn is 'dense', but got 0/],
    [{ ...tiny, mtpDepth: -1 }, /expected mtpDepth to be a non-negative integer, but got -1/],
    [{ ...tiny, mtpDepth: 32 }, /expected mtpDepth \(32\) to be below maxSeqLen \(32\)/],
    [{ ...tiny, mtpLambda: -0.1 }, /expected mtpLambda to be a finite number >= 0, but got -0\.1/],
  ])('rejects %#', (input, message) => {
    expect(() => resolveModelConfig(input as ModelConfigInput)).toThrow(message);
  });

  it('presets resolve, and an unknown preset names the known ones', () => {
    expect(preset('small').moeConfig.nRoutedExperts).toBeGreaterThanOrEqual(16);
    expect(() => preset('huge')).toThrow(/expected one of 'tiny', 'small', but got 'huge'/);
  });
});

describe('byte tokenizer', () => {
  it.each(['hello', '子曰：学而时习之', 'x = 1; // ✓', ''])('round-trips %j', (s) => {
    expect(decode(encode(s))).toBe(s);
    expect(encode(s).length).toBe(new TextEncoder().encode(s).length);
  });
  it('turns a cut-off character into U+FFFD instead of throwing', () => {
    expect(decode(encode('猫').slice(0, 2))).toBe('\uFFFD');
  });
});

/**
 * The Hugging Face export and import without Python: the file's keys against the Hub's documented layout, the
 * round trip bit for bit, the scores of an exported-then-imported model, and every refusal. transformers itself is
 * the judge in transformers.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { fromHuggingFace, parseSafetensors, toHuggingFace, writeSafetensors, type HfSource } from 'deepseek-moe-tfjs/hf';
import {
  DeepSeekLM, denseTwin, evaluateText, exportHuggingFace, importHuggingFace, preset, resolveModelConfig, type ModelConfigInput,
} from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer, readCheckpoint, resolveTrainConfig } from 'deepseek-moe-tfjs/train';

const source = (files: Record<string, Uint8Array>): HfSource => ({
  names: Object.keys(files),
  read: async (name) => {
    const f = files[name];
    if (!f) throw new Error(`no file ${name}`);
    return f;
  },
});
const text = new TextEncoder().encode(
  'The quick brown fox jumps over the lazy dog. 敏捷的棕色狐狸跳过了懒狗。 1 + 2 = 3; '.repeat(3),
);

/** tiny with every part the format has: a compressed query, groups, the bias, shared experts, a dense first block. */
const full: ModelConfigInput = {
  ...preset('tiny'), nLayers: 3, qLoraRank: 8,
  moe: { ...preset('tiny').moe, nExpertGroups: 4, topKGroups: 2, groupScoreFunc: 'sumTop2', nSharedExperts: 2 },
};

/** A model whose weights are random at a visible scale (the bias too), so a misplaced row shows in the scores. */
function randomModel(input: ModelConfigInput, seed = 3): DeepSeekLM {
  const model = new DeepSeekLM(input);
  Object.values(model.weights).forEach((v, i) => {
    tf.tidy(() => v.assign(tf.randomNormal(v.shape, v.shape.length === 1 ? 1 : 0, v.shape.length === 1 ? 0.1 : 0.3,
      'float32', seed * 1000 + i)));
  });
  return model;
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe('Hugging Face export', () => {
  it("writes exactly the Hub's DeepSeek-V3 keys, in PyTorch's [out, in] shapes", async () => {
    const model = randomModel(full);
    const { files, modelType } = await exportHuggingFace(model);
    expect(modelType).toBe('deepseek_v3');
    expect(Object.keys(files).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors',
      'tokenizer.json', 'tokenizer_config.json']);
    const entries = parseSafetensors(files['model.safetensors']!).entries;
    const shapes = Object.fromEntries([...entries].map(([k, e]) => [k, e.shape]));
    // d 32, H 2, dq 8, dc 16, nope 16, rope 8, dv 16, inter 64, E 8 of h 16, 2 shared.
    const expected: Record<string, number[]> = { 'model.embed_tokens.weight': [256, 32], 'model.norm.weight': [32],
      'lm_head.weight': [256, 32] };
    for (let i = 0; i < 3; i++) {
      const l = `model.layers.${i}`;
      Object.assign(expected, {
        [`${l}.input_layernorm.weight`]: [32], [`${l}.post_attention_layernorm.weight`]: [32],
        [`${l}.self_attn.q_a_proj.weight`]: [8, 32], [`${l}.self_attn.q_a_layernorm.weight`]: [8],
        [`${l}.self_attn.q_b_proj.weight`]: [2 * 24, 8], [`${l}.self_attn.kv_a_proj_with_mqa.weight`]: [16 + 8, 32],
        [`${l}.self_attn.kv_a_layernorm.weight`]: [16], [`${l}.self_attn.kv_b_proj.weight`]: [2 * 32, 16],
        [`${l}.self_attn.o_proj.weight`]: [32, 32],
      });
      if (i === 0) {
        Object.assign(expected, { [`${l}.mlp.gate_proj.weight`]: [64, 32], [`${l}.mlp.up_proj.weight`]: [64, 32],
          [`${l}.mlp.down_proj.weight`]: [32, 64] });
        continue;
      }
      Object.assign(expected, {
        [`${l}.mlp.gate.weight`]: [8, 32], [`${l}.mlp.gate.e_score_correction_bias`]: [8],
        [`${l}.mlp.shared_experts.gate_proj.weight`]: [32, 32], [`${l}.mlp.shared_experts.up_proj.weight`]: [32, 32],
        [`${l}.mlp.shared_experts.down_proj.weight`]: [32, 32],
      });
      for (let e = 0; e < 8; e++) {
        const x = `${l}.mlp.experts.${e}`;
        Object.assign(expected, { [`${x}.gate_proj.weight`]: [16, 32], [`${x}.up_proj.weight`]: [16, 32],
          [`${x}.down_proj.weight`]: [32, 16] });
      }
    }
    expect(shapes).toEqual(expected);
    const config = JSON.parse(new TextDecoder().decode(files['config.json']));
    expect(config).toMatchObject({
      model_type: 'deepseek_v3', topk_method: 'noaux_tc', n_routed_experts: 8, n_shared_experts: 2, num_experts_per_tok: 2,
      n_group: 4, topk_group: 2, norm_topk_prob: true, routed_scaling_factor: 2, first_k_dense_replace: 1,
      moe_intermediate_size: 16, intermediate_size: 64, q_lora_rank: 8, kv_lora_rank: 16, qk_nope_head_dim: 16,
      qk_rope_head_dim: 8, v_head_dim: 16, rms_norm_eps: 1e-6, rope_theta: 10000, rope_interleave: true,
      tie_word_embeddings: false, vocab_size: 256, num_nextn_predict_layers: 0,
    });
    expect(new TextDecoder().decode(files['config.json'])).toMatch(/"routed_scaling_factor": 2\.0,/); // typed as a float
    model.dispose();
  });

  it("writes an MTP module under DeepSeek-V3's keys: model.layers.{n}.enorm, hnorm, eh_proj, shared_head, the block", async () => {
    const model = randomModel({ ...full, mtpDepth: 1 });
    const { files } = await exportHuggingFace(model);
    const entries = parseSafetensors(files['model.safetensors']!).entries;
    const shape = (k: string) => entries.get(k)?.shape;
    const l = 'model.layers.3';
    expect(shape(`${l}.enorm.weight`)).toEqual([32]);
    expect(shape(`${l}.hnorm.weight`)).toEqual([32]);
    expect(shape(`${l}.eh_proj.weight`)).toEqual([32, 64]); // [out, in]: its input is [enorm(embedding); hnorm(hidden)]
    expect(shape(`${l}.shared_head.norm.weight`)).toEqual([32]);
    expect(shape(`${l}.shared_head.head.weight`)).toEqual([256, 32]);
    expect(shape(`${l}.embed_tokens.weight`)).toEqual([256, 32]);
    expect(shape(`${l}.mlp.gate.e_score_correction_bias`)).toEqual([8]); // the module's block is a MoE block
    expect(shape(`${l}.mlp.experts.7.down_proj.weight`)).toEqual([32, 16]);
    expect(shape(`${l}.self_attn.kv_b_proj.weight`)).toEqual([2 * 32, 16]);
    expect([...entries.keys()].filter((k) => k.startsWith('model.layers.4'))).toEqual([]);
    const { readFloat32 } = await import('deepseek-moe-tfjs/hf');
    const file = parseSafetensors(files['model.safetensors']!);
    expect(readFloat32(file, `${l}.shared_head.head.weight`)).toEqual(readFloat32(file, 'lm_head.weight')); // shared
    const ehProj = readFloat32(file, `${l}.eh_proj.weight`);
    const ours = await model.weights['blocks.3.ehProj']!.data(); // [64, 32]
    expect(ehProj[5 * 64 + 40]).toBe(ours[40 * 32 + 5]);
    expect(JSON.parse(new TextDecoder().decode(files['config.json'])).num_nextn_predict_layers).toBe(1);
    model.dispose();
  });

  it('stores the rotary rows in interleaved pairs and [out, in] orientation (one head worked by hand)', async () => {
    const model = randomModel(preset('tiny'));
    const { files } = await exportHuggingFace(model);
    const file = parseSafetensors(files['model.safetensors']!);
    const { readFloat32 } = await import('deepseek-moe-tfjs/hf');
    const kvA = readFloat32(file, 'model.layers.0.self_attn.kv_a_proj_with_mqa.weight'); // [16 + 8, 32]
    const wKr = await model.weights['blocks.0.attn.wKr']!.data(); // [32, 8]
    const wDkv = await model.weights['blocks.0.attn.wDkv']!.data(); // [32, 16]
    // File row 16 + 2j holds our rotary column j, row 16 + 2j + 1 our column j + 4; rows 0..15 the latent.
    for (let j = 0; j < 4; j++) {
      for (let i = 0; i < 32; i++) {
        expect(kvA[(16 + 2 * j) * 32 + i]).toBe(wKr[i * 8 + j]);
        expect(kvA[(16 + 2 * j + 1) * 32 + i]).toBe(wKr[i * 8 + j + 4]);
      }
    }
    expect(kvA[5 * 32 + 7]).toBe(wDkv[7 * 16 + 5]);
    model.dispose();
  });

  it('round-trips through the folder bit for bit (float32) and within bfloat16 rounding', async () => {
    for (const input of [full, preset('tiny'), preset('small'), { ...full, mtpDepth: 1 }]) {
      const model = randomModel(input);
      const back = await fromHuggingFace(source((await exportHuggingFace(model)).files));
      // Everything the forward pass depends on comes back (training-only fields such as the bias speed do not travel).
      const { moe: ourMoE, ...ours } = model.plainConfig;
      const { moe: backMoE, ...theirs } = back.modelConfig;
      expect({ ...theirs, seed: ours.seed }).toEqual(ours);
      const inference = ['nRoutedExperts', 'nSharedExperts', 'topK', 'expertHiddenDim', 'scoreFunc', 'normTopK', 'routeScale',
        'nExpertGroups', 'topKGroups', 'groupScoreFunc', 'auxFreeBias'] as const;
      const pick = (m: { nExpertGroups: number }) => Object.fromEntries(inference.map((k) =>
        [k, k === 'groupScoreFunc' && m.nExpertGroups === 1 ? 'no groups' : (m as Record<string, unknown>)[k]]));
      expect(pick(resolveModelConfig(back.modelConfig).moeConfig)).toEqual(pick(model.config.moeConfig));
      for (const [name, v] of Object.entries(model.weights)) expect(back.tensors.get(name), name).toEqual(await v.data());
      const half = await fromHuggingFace(source((await exportHuggingFace(model, { dtype: 'bfloat16' })).files));
      for (const [name, v] of Object.entries(model.weights)) {
        const exact = await v.data();
        half.tensors.get(name)!.forEach((x, i) => expect(Math.abs(x - exact[i]!)).toBeLessThanOrEqual(Math.abs(exact[i]!) * 2 ** -8));
      }
      model.dispose();
    }
  });

  it('exports a dense twin as an all-dense DeepSeek model, padding the narrower FFN with zero units that change nothing', async () => {
    const twin = denseTwin(preset('tiny'), 'total');
    expect(twin.twinInterDim).not.toBe(twin.interDim);
    const model = randomModel(twin);
    const { files, notes } = await exportHuggingFace(model);
    const config = JSON.parse(new TextDecoder().decode(files['config.json']));
    expect(config.first_k_dense_replace).toBe(2);
    expect(config.intermediate_size).toBe(Math.max(twin.interDim, twin.twinInterDim));
    expect(notes.join(' ')).toMatch(/padded with zero units/);
    const { model: back } = await importHuggingFace(source(files));
    expect(back.config.nDenseLayers).toBe(2);
    const a = await evaluateText(model.view, model.config, text);
    const b = await evaluateText(back.view, back.config, text);
    expect(Math.abs(a.nll - b.nll)).toBeLessThan(1e-5);
    model.dispose();
    back.dispose();
  });

  it.each([
    [{ attention: 'mha' },
      /expected attention to be 'mla' \(DeepSeek-V2 and V3 checkpoints hold only multi-head latent attention\), but got 'mha'/],
    [{ vocabSize: 300 }, /expected vocabSize to be 256/],
    [{ moe: { ...preset('tiny').moe, scoreFunc: 'softmax', normTopK: true, auxFreeBias: false } },
      /expected moe.normTopK to be false with softmax scores/],
    [{ moe: { ...preset('tiny').moe, scoreFunc: 'softmax', normTopK: false } }, /expected moe.auxFreeBias to be false with softmax scores/],
    [{ moe: { ...preset('tiny').moe, nExpertGroups: 2, topKGroups: 1, groupScoreFunc: 'max' } },
      /expected moe.groupScoreFunc to be 'sumTop2' with sigmoid scores and groups/],
  ] as [Partial<ModelConfigInput>, RegExp][])('refuses what DeepSeek-V2/V3 cannot express: %j', (change, message) => {
    const modelConfig = { ...preset('tiny'), ...change } as never;
    expect(() => toHuggingFace({ modelConfig, tensors: new Map() })).toThrow(message);
  });

  it('exports a softmax model as DeepSeek-V2 (greedy or group-limited greedy)', () => {
    const moe = { ...preset('tiny').moe, scoreFunc: 'softmax' as const, normTopK: false, auxFreeBias: false,
      nExpertGroups: 2, topKGroups: 1 };
    const model = randomModel({ ...preset('tiny'), moe });
    return exportHuggingFace(model).then(async ({ files, modelType }) => {
      expect(modelType).toBe('deepseek_v2');
      const config = JSON.parse(new TextDecoder().decode(files['config.json']));
      expect(config).toMatchObject({ model_type: 'deepseek_v2', topk_method: 'group_limited_greedy', scoring_func: 'softmax', n_group: 2 });
      expect(config.rope_interleave).toBeUndefined();
      const back = await importHuggingFace(source(files));
      const [a, b] = [await evaluateText(model.view, model.config, text), await evaluateText(back.model.view, back.model.config, text)];
      expect(a.nll).toBe(b.nll);
      model.dispose();
      back.model.dispose();
    });
  });
});

describe('Hugging Face import', () => {
  let files: Record<string, Uint8Array>;
  let config: Record<string, unknown>;
  beforeAll(async () => {
    const model = randomModel(full);
    files = (await exportHuggingFace(model)).files;
    config = JSON.parse(new TextDecoder().decode(files['config.json']));
    model.dispose();
  });
  const withConfig = (change: Record<string, unknown>): Record<string, Uint8Array> => ({ ...files,
    'config.json': new TextEncoder().encode(JSON.stringify({ ...config, ...change })) });
  const tensorsOf = (bytes: Uint8Array) => {
    const file = parseSafetensors(bytes);
    return [...file.entries.keys()].map((name) => ({ name, shape: file.entries.get(name)!.shape,
      values: new Float32Array(file.bytes.slice(file.dataStart + file.entries.get(name)!.data_offsets[0],
        file.dataStart + file.entries.get(name)!.data_offsets[1]).buffer) }));
  };

  it('reads several shards through model.safetensors.index.json, and transformers 5 rope_parameters', async () => {
    const all = tensorsOf(files['model.safetensors']!);
    const half = Math.floor(all.length / 2);
    const shards = { 'model-00001-of-00002.safetensors': all.slice(0, half), 'model-00002-of-00002.safetensors': all.slice(half) };
    const weightMap = Object.fromEntries(Object.entries(shards).flatMap(([file, ts]) => ts.map((t) => [t.name, file])));
    const { 'model.safetensors': _, ...rest } = withConfig({ rope_theta: undefined, rope_scaling: undefined,
      rope_parameters: { rope_type: 'default', rope_theta: 10000 } });
    const sharded: Record<string, Uint8Array> = {
      ...rest,
      'model.safetensors.index.json': new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: weightMap })),
      ...Object.fromEntries(Object.entries(shards).map(([f, ts]) => [f, writeSafetensors(ts)])),
    };
    const whole = await fromHuggingFace(source(files));
    const split = await fromHuggingFace(source(sharded));
    expect(split.modelConfig).toEqual(whole.modelConfig);
    for (const [name, v] of whole.tensors) expect(split.tensors.get(name), name).toEqual(v);
    const { 'model-00002-of-00002.safetensors': __, ...missing } = sharded;
    await expect(fromHuggingFace(source(missing))).rejects.toThrow(
      /shard 'model-00002-of-00002.safetensors' \(holding '.*'\) is missing from the folder/,
    );
  });

  it('reads a tied head (tie_word_embeddings, no lm_head.weight) as a copy of the embedding', async () => {
    const all = tensorsOf(files['model.safetensors']!).filter((t) => t.name !== 'lm_head.weight');
    const tied = { ...withConfig({ tie_word_embeddings: true }), 'model.safetensors': writeSafetensors(all) };
    const read = await fromHuggingFace(source(tied));
    const embed = read.tensors.get('embed')!; // [256, 32]
    const head = read.tensors.get('head')!; // [32, 256]
    for (const [v, i] of [[0, 0], [65, 7], [255, 31]] as const) expect(head[i * 256 + v]).toBe(embed[v * 32 + i]);
    expect(read.notes.join(' ')).toMatch(/tie_word_embeddings: the output head starts as a copy of the embedding/);
    await expect(fromHuggingFace(source({ ...files, 'model.safetensors': writeSafetensors(all) })))
      .rejects.toThrow("expected tensor 'lm_head.weight' in the folder, but no file holds it");
  });

  it('imports without MTP modules, and says so, when the folder lacks some MTP tensors', async () => {
    const all = tensorsOf(files['model.safetensors']!);
    const mtp = [{ name: 'model.layers.3.eh_proj.weight', shape: [32, 64], values: new Float32Array(32 * 64) }];
    const read = await fromHuggingFace(source({ ...withConfig({ num_nextn_predict_layers: 1 }),
      'model.safetensors': writeSafetensors([...all, ...mtp]) }));
    expect(read.modelConfig.mtpDepth).toBe(0);
    const mtpNote = /config.json has 1 MTP layer\(s\), but the folder lacks \d+ of their tensors \(e.g. 'model.layers.3.enorm.weight'\)/;
    expect(read.notes.join(' ')).toMatch(mtpNote);
  });

  it.each([
    ['YaRN', { rope_scaling: { type: 'yarn', factor: 40 } },
      /expected config.json's rope_scaling.type to be 'default' \(plain RoPE\) \(this library computes plain RoPE only, without YaRN context extension\), but got 'yarn'/],
    ['YaRN (transformers 5)', { rope_parameters: { rope_type: 'yarn', factor: 4, rope_theta: 1e4 } },
      /rope_parameters.rope_type to be 'default'.*but got 'yarn'/],
    ['FP8', { quantization_config: { quant_method: 'fp8', fmt: 'e4m3' } }, /expected config.json's quantization_config to be absent \(FP8/],
    ['a vocabulary of 129280', { vocab_size: 129280 }, /expected config.json's vocab_size to be 256 .*but got 129280/],
    ['another model', { model_type: 'llama' }, /expected config.json's model_type to be 'deepseek_v2' or 'deepseek_v3', but got 'llama'/],
    ['a V2 norm_topk_prob', { model_type: 'deepseek_v2', topk_method: 'greedy', scoring_func: 'softmax',
      norm_topk_prob: true }, /norm_topk_prob to be false for deepseek_v2/],
  ])('refuses %s before reading any weight', async (_what, change, message) => {
    let reads = 0;
    const src = source(withConfig(change));
    await expect(fromHuggingFace({ names: src.names, read: (n) => (n.endsWith('.safetensors') && reads++,
      src.read(n)) })).rejects.toThrow(message);
    expect(reads).toBe(0);
  });

  it('refuses a wrong shape, a wrong dtype, a truncated file, a missing tensor and an unexpected one, naming it', async () => {
    const all = tensorsOf(files['model.safetensors']!);
    const bias = 'model.layers.1.mlp.gate.e_score_correction_bias';
    const swap = (list: typeof all) => ({ ...files, 'model.safetensors': writeSafetensors(list) });
    const wrongShape = all.map((t) => (t.name === bias ? { ...t, shape: [4, 2] } : t));
    await expect(fromHuggingFace(source(swap(wrongShape)))).rejects.toThrow(`expected tensor '${bias}' to have shape [8], but got [4,2]`);
    await expect(fromHuggingFace(source(swap(all.filter((t) => t.name !== bias))))).rejects.toThrow(
      `expected tensor '${bias}' in the folder, but no file holds it`,
    );
    const extra = [...all, {
      name: 'model.layers.1.mlp.experts.8.up_proj.weight', shape: [16, 32], values: new Float32Array(512),
    }];
    await expect(fromHuggingFace(source(swap(extra)))).rejects.toThrow(
      /unexpected tensor\(s\) 'model.layers.1.mlp.experts.8.up_proj.weight'/,
    );
    const bytes = files['model.safetensors']!;
    await expect(fromHuggingFace(source({ ...files, 'model.safetensors': bytes.subarray(0, bytes.length - 100) })))
      .rejects.toThrow(/model.safetensors: not a valid safetensors file \(tensor 'lm_head.weight' ends at byte \d+ .*truncated\)/);
    // An int32 tensor where a weight belongs: rewrite one entry's dtype in the header (same byte size).
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer,
      bytes.byteOffset).getBigUint64(0, true))));
    const i32 = header.replace(`"${bias}":{"dtype":"F32"`, `"${bias}":{"dtype":"I32"`);
    const retyped = new Uint8Array(bytes);
    retyped.set(new TextEncoder().encode(i32), 8);
    await expect(fromHuggingFace(source({ ...files,
      'model.safetensors': retyped }))).rejects.toThrow(`expected tensor '${bias}' to be F32, F16 or BF16, but got I32`);
  });

  it('makes a checkpoint that trains, checkpoints and resumes here', async () => {
    const read = await fromHuggingFace(source(files));
    const contents = readCheckpoint(read.checkpoint);
    expect(contents.header.step).toBe(0);
    expect(contents.header.trainConfig.seqLen).toBe(32); // the default 64 would not fit the model's maxSeqLen
    expect(() => resolveTrainConfig(contents.header.trainConfig)).not.toThrow();
    const corpus = { a: 'abcdefghij '.repeat(200), b: '0123456789 '.repeat(200) };
    const train = () => {
      const model = new DeepSeekLM(read.modelConfig);
      return { model, trainer: new Trainer(model, new TextDataset(corpus, { seqLen: 16 }), { steps: 2, batchSize: 2,
        seqLen: 16, evalEvery: 100 }) };
    };
    const first = train();
    first.trainer.restore(read.checkpoint);
    expect(await first.model.weights['blocks.1.moe.expertBias']!.data()).toEqual(read.tensors.get('blocks.1.moe.expertBias'));
    await first.trainer.run();
    expect(first.trainer.step).toBe(2);
    const saved = await first.trainer.checkpoint();
    const second = train();
    second.trainer.restore(saved);
    expect(second.trainer.step).toBe(2);
    for (const t of [first, second]) {
      t.trainer.dispose();
      t.model.dispose();
    }
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { countModelParams, denseTwin, preset, presets } from 'deepseek-moe-tfjs/model';

const published = (file: string) =>
  JSON.parse(readFileSync(new URL(`../../data/published/${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;
const rel = (a: number, b: number) => Math.abs(a - b) / b;

describe('countModelParams for whole models', () => {
  // Published figures: totals to three or four significant digits, activated to two (2.4B, 21B, 37B).
  it.each([
    ['DeepSeek-V2-Lite', 'deepseek-v2-lite.json', 15.7e9, 2.4e9],
    ['DeepSeek-V2', 'deepseek-v2.json', 236e9, 21e9],
    ['DeepSeek-V3', 'deepseek-v3.json', 671e9, 37e9],
  ])('%s from its published config: total within 0.5%%, activated within the published precision', (_name, file, total, activated) => {
    const p = countModelParams(published(file));
    expect(rel(p.total, total)).toBeLessThan(0.005);
    // Two significant digits: 2.4B stands for [2.35, 2.45), so this is as close as the published figure allows.
    expect(rel(p.activated, activated)).toBeLessThan(0.025);
  });

  it('DeepSeek-V3 part by part, worked out by hand', () => {
    const p = countModelParams(published('deepseek-v3.json'));
    const d = 7168;
    // MLA per layer: W^DQ 7168x1536, W^UQ + W^QR 1536x(128 x 192), W^DKV + W^KR 7168x576, W^UK + W^UV 512x(128 x 256), W^O 16384x7168.
    const attention = d * 1536 + 1536 * 128 * 192 + d * 576 + 512 * 128 * 256 + 128 * 128 * d;
    expect(attention).toBe(187_105_280);
    const expert = 3 * d * 2048;
    expect(p.totalParts).toEqual({
      embeddings: 129280 * d,
      attention: 61 * attention,
      denseFfn: 3 * 3 * d * 18432,
      routedExperts: 58 * 256 * expert,
      sharedExperts: 58 * expert,
      router: 58 * (d * 256 + 256), // gate weight + the aux-loss-free bias (score_func sigmoid)
      norms: 61 * (2 * d + 1536 + 512) + d,
      head: 129280 * d,
    });
    expect(p.activatedParts.embeddings).toBe(0);
    expect(p.activatedParts.routedExperts).toBe(58 * 8 * expert);
    expect(p.activatedParts.head).toBe(129280 * d);
    expect(p.kvCachePerToken).toBe(61 * (512 + 64));
    expect(p.mtp).toBeNull();
  });

  it('reads Hugging Face config.json names, and reports multi-token prediction apart', () => {
    const hf = {
      vocab_size: 129280, hidden_size: 7168, intermediate_size: 18432, moe_intermediate_size: 2048, num_hidden_layers: 61,
      first_k_dense_replace: 3, num_attention_heads: 128, n_routed_experts: 256, n_shared_experts: 1, num_experts_per_tok: 8,
      q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128,
      topk_method: 'noaux_tc', moe_layer_freq: 1, num_nextn_predict_layers: 1, tie_word_embeddings: false,
    };
    const fromHf = countModelParams(hf);
    const fromInference = countModelParams(published('deepseek-v3.json'));
    expect(fromHf.total).toBe(fromInference.total);
    expect(fromHf.activated).toBe(fromInference.activated);
    const d = 7168;
    const moeBlock = 187_105_280 + 2 * d + 1536 + 512 + 257 * 3 * d * 2048 + d * 256 + 256;
    expect(fromHf.mtp).toEqual({
      modules: 1, total: moeBlock + 2 * d * d + 3 * d, activated: moeBlock - 248 * 3 * d * 2048 + 2 * d * d + 3 * d,
    });
    const lite = countModelParams({
      ...hf, vocab_size: 102400, hidden_size: 2048, intermediate_size: 10944, moe_intermediate_size: 1408,
      num_hidden_layers: 27, first_k_dense_replace: 1, num_attention_heads: 16, n_routed_experts: 64,
      n_shared_experts: 2, num_experts_per_tok: 6, q_lora_rank: null, topk_method: 'greedy', num_nextn_predict_layers: 0,
    });
    expect(lite.total).toBe(countModelParams(published('deepseek-v2-lite.json')).total);
  });

  it('counts a tied output projection once in the total but as activated (it multiplies every token)', () => {
    const hf = {
      vocab_size: 1000, hidden_size: 64, intermediate_size: 128, moe_intermediate_size: 32, num_hidden_layers: 2,
      first_k_dense_replace: 1, num_attention_heads: 4, n_routed_experts: 8, n_shared_experts: 1, num_experts_per_tok: 2,
      q_lora_rank: null, kv_lora_rank: 16, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16, topk_method: 'greedy',
    };
    const untied = countModelParams({ ...hf, tie_word_embeddings: false });
    const tied = countModelParams({ ...hf, tie_word_embeddings: true });
    expect(tied.total).toBe(untied.total - 1000 * 64);
    expect(tied.activated).toBe(untied.activated);
    expect(tied.activatedParts.head).toBe(1000 * 64);
    expect(tied.totalParts.head).toBe(0);
  });

  it.each([
    [{ dim: 64 }, /DeepSeek inference config\): expected vocab_size to be an integer >= 1, but got nothing/],
    [{ ...published('deepseek-v3.json'), n_layers: 0 }, /expected n_layers to be an integer >= 1, but got 0/],
    [{ hidden_size: 64, vocab_size: 10, num_hidden_layers: 'two' }, /Hugging Face config\): expected num_hidden_layers .* but got "two"/],
    [
      { width: 3 },
      /expected a model config with dModel \(ours\), dim \(DeepSeek inference\) or hidden_size \(Hugging Face\), but got fields width/,
    ],
  ])('rejects a bad config: %j', (config, message) => {
    expect(() => countModelParams(config)).toThrow(message);
  });

  it.each(Object.keys(presets))('preset %s: the dense twins hold the MoE activated and total parameters', (name) => {
    const moe = countModelParams(preset(name));
    const active = countModelParams(denseTwin(preset(name), 'activated'));
    const total = countModelParams(denseTwin(preset(name), 'total'));
    expect(moe.activated).toBeLessThan(moe.total);
    expect(rel(active.activated, moe.activated)).toBeLessThan(0.01);
    expect(rel(total.total, moe.total)).toBeLessThan(0.01);
    expect(active.total - active.totalParts.embeddings).toBe(active.activated); // dense: all but the embedding lookup
    expect(active.totalParts.embeddings).toBe(moe.totalParts.embeddings);
  });
});

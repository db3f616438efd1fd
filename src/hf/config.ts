/**
 * Our model config against Hugging Face's `config.json` for DeepSeek-V2 (`deepseek_v2`: softmax scores, greedy or
 * group-limited greedy) and DeepSeek-V3 (`deepseek_v3`: sigmoid scores, selection bias, `noaux_tc`). What one side
 * cannot express is refused up front with an error naming the field. TF.js-free.
 */
import { resolveModelConfig, type ModelConfig, type ResolvedModelConfig } from '../model/config.js';
import { show } from '../validate.js';

/** The two Hugging Face model types this module reads and writes. */
export type HfModelType = 'deepseek_v2' | 'deepseek_v3';

/** A config.json, as parsed JSON. */
export type HfConfig = Record<string, unknown>;

/** What exporting a model config decides: the config.json, and how the weights must be laid out for it. */
export interface HfExportPlan {
  modelType: HfModelType;
  config: HfConfig;
  /** Width of every dense FFN in the file (intermediate_size); narrower ones are padded with zeros. */
  denseWidth: number;
  /** Blocks that keep the DeepSeekMoE layer (the rest are dense). */
  moeBlocks: number[];
  /** What the reader should know (padding, dropless evaluation, fields left behind). */
  notes: string[];
}

const refuse = (field: string, expected: string, got: unknown, why = ''): never => {
  throw new Error(`Hugging Face export: expected ${field} to be ${expected}${why}, but got ${show(got)}.`);
};

/** The config.json of a model of ours, after checking that DeepSeek-V2 or V3 can express it. */
export function exportConfig(input: ModelConfig | ResolvedModelConfig): HfExportPlan {
  const c = resolveModelConfig(input);
  const m = c.moeConfig;
  const notes: string[] = [];
  if (c.attention !== 'mla') {
    refuse('attention', "'mla'", c.attention,
      ' (DeepSeek-V2 and V3 checkpoints hold only multi-head latent attention)');
  }
  if (c.vocabSize !== 256) {
    refuse('vocabSize', '256', c.vocabSize, ' (the byte-level tokenizer written beside the weights)');
  }
  const blocks = Array.from({ length: c.nLayers }, (_, i) => i);
  // The MTP modules' blocks are MoE blocks too (DeepSeek-V3's layer 61 is).
  const moeBlocks = [...blocks, ...Array.from({ length: c.mtpDepth }, (_, k) => c.nLayers + k)]
    .filter((i) => i >= c.nDenseLayers && c.ffn === 'moe');
  const sigmoid = m.scoreFunc === 'sigmoid';
  const modelType: HfModelType = sigmoid ? 'deepseek_v3' : 'deepseek_v2';
  if (moeBlocks.length > 0) {
    const grouped = m.nExpertGroups > 1;
    if (sigmoid && grouped && m.groupScoreFunc !== 'sumTop2') {
      refuse('moe.groupScoreFunc', "'sumTop2'", m.groupScoreFunc,
        " with sigmoid scores and groups (DeepSeek-V3's noaux_tc)");
    }
    if (sigmoid && m.nRoutedExperts < 2) {
      refuse('moe.nRoutedExperts', 'at least 2', m.nRoutedExperts, ' (DeepSeek-V3 scores a group by its top two)');
    }
    if (!sigmoid && grouped && m.groupScoreFunc !== 'max') {
      refuse('moe.groupScoreFunc', "'max'", m.groupScoreFunc,
        " with softmax scores and groups (DeepSeek-V2's group_limited_greedy)");
    }
    if (!sigmoid && m.normTopK) {
      refuse('moe.normTopK', 'false', m.normTopK,
        " with softmax scores (transformers' DeepSeek-V2 does not renormalise the top-k weights)");
    }
    if (!sigmoid && m.auxFreeBias) {
      refuse('moe.auxFreeBias', 'false', m.auxFreeBias,
        ' with softmax scores (DeepSeek-V2 has no selection bias; V3 needs sigmoid scores)');
    }
    if (m.sharedExpertGate) {
      refuse('moe.sharedExpertGate', 'false', true,
        " (DeepSeek-V2/V3 files have no shared-expert gate; it is Qwen2-MoE's)");
    }
    if (m.dispatch === 'capacity') {
      notes.push("moe.dispatch is 'capacity': drops apply in training only; transformers, like this library's " +
        'evaluation and generation, runs every token through its chosen experts (dropless).');
    }
  }
  if (!sigmoid && c.dModel % c.nHeads !== 0) {
    refuse('dModel', `a multiple of nHeads (${c.nHeads})`, c.dModel, " (transformers' DeepSeek-V2 config requires it)");
  }
  const widths = blocks.filter((i) => !moeBlocks.includes(i))
    .map((i) => (i < c.nDenseLayers ? c.interDim : c.twinInterDim));
  const denseWidth = widths.length > 0 ? Math.max(...widths) : c.interDim;
  if (widths.some((w) => w !== denseWidth)) {
    notes.push(`The dense FFNs are ${[...new Set(widths)].join(' and ')} wide; the file holds one width ` +
      `(intermediate_size ${denseWidth}), so the narrower are padded with zero units, which add exactly nothing.`);
  }
  const moe = {
    n_routed_experts: m.nRoutedExperts, n_shared_experts: m.nSharedExperts, num_experts_per_tok: m.topK,
    moe_intermediate_size: m.expertHiddenDim, routed_scaling_factor: m.routeScale,
    n_group: m.nExpertGroups, topk_group: m.topKGroups, norm_topk_prob: m.normTopK,
    first_k_dense_replace: moeBlocks.length > 0 ? moeBlocks[0]! : c.nLayers, moe_layer_freq: 1, ep_size: 1,
  };
  const config: HfConfig = {
    architectures: [sigmoid ? 'DeepseekV3ForCausalLM' : 'DeepseekV2ForCausalLM'],
    model_type: modelType,
    vocab_size: c.vocabSize, hidden_size: c.dModel, intermediate_size: denseWidth, num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads, num_key_value_heads: c.nHeads,
    ...moe,
    ...(sigmoid
      ? { topk_method: 'noaux_tc', scoring_func: 'sigmoid', seq_aux: true, aux_loss_alpha: m.seqAlpha }
      : {
        topk_method: m.nExpertGroups > 1 ? 'group_limited_greedy' : 'greedy', scoring_func: 'softmax',
        seq_aux: m.seqAlpha > 0, aux_loss_alpha: m.seqAlpha > 0 ? m.seqAlpha : m.alpha1,
      }),
    q_lora_rank: c.qLoraRank > 0 ? c.qLoraRank : null, kv_lora_rank: c.kvLoraRank,
    qk_nope_head_dim: c.qkNopeHeadDim, qk_rope_head_dim: c.qkRopeHeadDim, v_head_dim: c.vHeadDim,
    hidden_act: 'silu', max_position_embeddings: c.maxSeqLen, rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta, rope_scaling: null, ...(sigmoid ? { rope_interleave: true } : {}),
    attention_bias: false, attention_dropout: 0, ...(sigmoid ? {} : { mlp_bias: false }),
    tie_word_embeddings: false, initializer_range: 0.02, use_cache: true,
    bos_token_id: null, eos_token_id: null, pad_token_id: null,
    num_nextn_predict_layers: c.mtpDepth, torch_dtype: 'float32',
  };
  return { modelType, config, denseWidth, moeBlocks, notes };
}

/** What reading a config.json decides. */
export interface HfImportPlan {
  modelType: HfModelType;
  modelConfig: ModelConfig;
  /** The rotary rows of q and k are stored in DeepSeek's interleaved pairs (true for V2, and V3 by default). */
  ropeInterleaved: boolean;
  tieEmbeddings: boolean;
  /** Multi-token-prediction layers after the main model (stored as model.layers.{nLayers..}); skipped. */
  mtpLayers: number;
  notes: string[];
}

/** transformers' defaults for fields a config.json leaves out (save_pretrained writes them all). */
const v3Defaults: Record<string, number> = {
  n_group: 8, topk_group: 4, routed_scaling_factor: 2.5, first_k_dense_replace: 3, n_shared_experts: 1,
  max_position_embeddings: 4096, num_nextn_predict_layers: 1, rms_norm_eps: 1e-6, rope_theta: 10_000, aux_loss_alpha: 0,
};
const v2Defaults: Record<string, number> = {
  n_group: 1, topk_group: 1, routed_scaling_factor: 1, first_k_dense_replace: 0, n_shared_experts: 2,
  max_position_embeddings: 2048, num_nextn_predict_layers: 0, rms_norm_eps: 1e-6, rope_theta: 10_000, aux_loss_alpha: 0,
};

const isObject = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v);

/** Our model config from a DeepSeek-V2 or V3 config.json (transformers 4's rope_scaling or 5's rope_parameters). */
export function importConfig(json: unknown): HfImportPlan {
  const no = (field: string, expected: string, got: unknown, why = ''): never => {
    throw new Error(`Hugging Face import: expected config.json's ${field} to be ${expected}${why}, but got ` +
      `${show(got)}.`);
  };
  if (!isObject(json)) return no('contents', 'an object', json);
  const j = json;
  const modelType = j.model_type;
  if (modelType !== 'deepseek_v2' && modelType !== 'deepseek_v3') {
    no('model_type', "'deepseek_v2' or 'deepseek_v3'", modelType);
  }
  const v3 = modelType === 'deepseek_v3';
  const defaults = v3 ? v3Defaults : v2Defaults;
  const int = (name: string, min = 1, fallback = defaults[name]): number => {
    const v = j[name] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) no(name, `an integer >= ${min}`, j[name]);
    return v as number;
  };
  const num = (name: string, fallback = defaults[name]): number => {
    const v = j[name] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) no(name, 'a number', j[name]);
    return v as number;
  };
  if (j.quantization_config != null) {
    no('quantization_config', 'absent', j.quantization_config,
      ' (FP8 and other quantised weights are not read; dequantise to bfloat16 first)');
  }
  if (j.vocab_size !== 256) {
    no('vocab_size', '256', j.vocab_size, ' (this library reads byte-level models: id = byte value)');
  }
  if ((j.hidden_act ?? 'silu') !== 'silu') no('hidden_act', "'silu'", j.hidden_act);
  if (j.attention_bias === true) no('attention_bias', 'false', j.attention_bias);
  if (j.mlp_bias === true) no('mlp_bias', 'false', j.mlp_bias);
  if ((j.moe_layer_freq ?? 1) !== 1) no('moe_layer_freq', '1', j.moe_layer_freq);
  const nHeads = int('num_attention_heads');
  if (j.num_key_value_heads != null && j.num_key_value_heads !== nHeads) {
    no('num_key_value_heads', `num_attention_heads (${nHeads})`, j.num_key_value_heads,
      " (MLA's keys and values have every head)");
  }
  // transformers 5 writes rope_parameters { rope_type, rope_theta }, 4 wrote rope_theta and rope_scaling.
  const rope = isObject(j.rope_parameters) ? j.rope_parameters : isObject(j.rope_scaling) ? j.rope_scaling : null;
  const ropeType = rope ? (rope.rope_type ?? rope.type ?? 'default') : 'default';
  if (ropeType !== 'default') {
    no(isObject(j.rope_parameters) ? 'rope_parameters.rope_type' : 'rope_scaling.type', "'default' (plain RoPE)",
      ropeType,
      ropeType === 'yarn' ? ' (this library computes plain RoPE only, without YaRN context extension)' : '');
  }
  const ropeTheta = typeof rope?.rope_theta === 'number' ? rope.rope_theta : num('rope_theta');
  const nLayers = int('num_hidden_layers');
  const topkMethod = j.topk_method ?? (v3 ? 'noaux_tc' : 'greedy');
  if (v3 && topkMethod !== 'noaux_tc') no('topk_method', "'noaux_tc' for deepseek_v3", topkMethod);
  if (!v3 && topkMethod !== 'greedy' && topkMethod !== 'group_limited_greedy') {
    no('topk_method', "'greedy' or 'group_limited_greedy' for deepseek_v2", topkMethod);
  }
  if (j.scoring_func != null && j.scoring_func !== (v3 ? 'sigmoid' : 'softmax')) {
    no('scoring_func', v3 ? "'sigmoid' for deepseek_v3" : "'softmax' for deepseek_v2", j.scoring_func);
  }
  if (!v3 && j.norm_topk_prob === true) {
    no('norm_topk_prob', 'false for deepseek_v2', true,
      " (transformers' DeepSeek-V2 ignores it, so the two would disagree)");
  }
  const grouped = v3 || topkMethod === 'group_limited_greedy';
  const auxAlpha = num('aux_loss_alpha');
  const seqAux = j.seq_aux !== false;
  const notes: string[] = [];
  const mtpLayers = typeof j.num_mtp_layers === 'number' && j.num_nextn_predict_layers == null
    ? int('num_mtp_layers', 0) : int('num_nextn_predict_layers', 0);
  const modelConfig: ModelConfig = {
    vocabSize: 256, dModel: int('hidden_size'), nLayers,
    nDenseLayers: Math.min(int('first_k_dense_replace', 0), nLayers),
    interDim: int('intermediate_size'), nHeads, maxSeqLen: int('max_position_embeddings', 2),
    attention: 'mla', headDim: 32,
    qLoraRank: j.q_lora_rank == null ? 0 : int('q_lora_rank'), kvLoraRank: int('kv_lora_rank'),
    qkNopeHeadDim: int('qk_nope_head_dim'), qkRopeHeadDim: int('qk_rope_head_dim', 2), vHeadDim: int('v_head_dim'),
    ropeTheta, normEps: num('rms_norm_eps'), ffn: 'moe', twinInterDim: 0, seed: 0,
    // MTP modules are imported only when the folder holds their tensors (fromHuggingFace decides).
    mtpDepth: 0, mtpLambda: 0.3,
    moe: {
      nRoutedExperts: int('n_routed_experts'), nSharedExperts: int('n_shared_experts', 0),
      topK: int('num_experts_per_tok'),
      expertHiddenDim: int('moe_intermediate_size'), scoreFunc: v3 ? 'sigmoid' : 'softmax',
      normTopK: v3 ? j.norm_topk_prob !== false : false, routeScale: num('routed_scaling_factor'),
      nExpertGroups: grouped ? int('n_group') : 1, topKGroups: grouped ? int('topk_group') : 1,
      groupScoreFunc: v3 ? 'sumTop2' : 'max', auxFreeBias: v3,
      // Training only: V3's sequence-wise loss at the paper's 0.0001 beside the bias; V2's loss as its config says.
      seqAlpha: v3 ? 0.0001 : seqAux ? auxAlpha : 0, alpha1: !v3 && !seqAux ? auxAlpha : 0,
    },
  };
  try {
    resolveModelConfig(modelConfig);
  } catch (e) {
    throw new Error(`Hugging Face import: config.json makes an invalid model: ${(e as Error).message}`);
  }
  const ropeInterleaved = v3 ? j.rope_interleave !== false : true;
  const tieEmbeddings = j.tie_word_embeddings === true;
  if (tieEmbeddings) {
    notes.push('tie_word_embeddings: the output head starts as a copy of the embedding and trains apart from it.');
  }
  return { modelType: modelType as HfModelType, modelConfig, ropeInterleaved, tieEmbeddings, mtpLayers, notes };
}

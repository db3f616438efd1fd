/**
 * Parameter accounting for whole models: ours (ModelConfig), DeepSeek-V3's `inference/configs/*.json`, and
 * Hugging Face `config.json`. Activated parameters follow the DeepSeek papers: the input embedding is a lookup
 * and does not count; the output head does; a MoE block activates its router, shared experts and topK routed
 * experts. Multi-token-prediction (MTP) modules are reported apart from the main model.
 */
import { resolveModelConfig, type ModelConfigInput } from './config.js';

/** Where the parameters sit. */
export interface ModelParamParts {
  embeddings: number;
  attention: number;
  denseFfn: number;
  routedExperts: number;
  sharedExperts: number;
  /** Router weights plus, where the model has one, the aux-loss-free selection bias. */
  router: number;
  norms: number;
  head: number;
}

/** A whole model's parameter count (see countModelParams). */
export interface ModelParamCount {
  total: number;
  activated: number;
  /** activated / total. */
  activatedRatio: number;
  totalParts: ModelParamParts;
  activatedParts: ModelParamParts;
  /** KV-cache numbers per token, all layers (MLA: latent + rotary key; MHA: every head's key and value). */
  kvCachePerToken: number;
  /** The MTP modules (a block, a projection [2d, d] and two norms each; embedding and head shared), or null. */
  mtp: { modules: number; total: number; activated: number } | null;
}

/** The architecture facts the count needs, whatever config format they came from. */
export interface Architecture {
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nDenseLayers: number;
  interDim: number;
  nHeads: number;
  attention:
    | { kind: 'mha'; headDim: number }
    | { kind: 'mla'; qLoraRank: number; kvLoraRank: number; qkNopeHeadDim: number; qkRopeHeadDim: number; vHeadDim: number };
  /** null: the blocks after nDenseLayers are dense FFNs of width twinInterDim. */
  moe: {
    nRoutedExperts: number; nSharedExperts: number; topK: number; expertHiddenDim: number; selectionBias: boolean;
    /** Qwen2-MoE's shared-expert gate w_g [d, 1]. */
    sharedGate?: boolean;
  } | null;
  twinInterDim: number;
  tieEmbeddings: boolean;
  mtpModules: number;
}

type Json = Record<string, unknown>;

function field(config: Json, name: string, format: string, min = 1): number {
  const v = config[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new Error(`countParams (${format} config): expected ${name} to be an integer >= ${min}, but got ` +
      `${v === undefined ? 'nothing' : JSON.stringify(v)}.`);
  }
  return v;
}

/** DeepSeek-V3 repository format: inference/configs/config_*.json. */
function fromInferenceConfig(j: Json): Architecture {
  const f = (n: string, min = 1) => field(j, n, 'DeepSeek inference', min);
  return {
    vocabSize: f('vocab_size'), dModel: f('dim'), nLayers: f('n_layers'), nDenseLayers: f('n_dense_layers', 0),
    interDim: f('inter_dim'), nHeads: f('n_heads'),
    attention: {
      kind: 'mla', qLoraRank: j.q_lora_rank == null ? 0 : f('q_lora_rank', 0), kvLoraRank: f('kv_lora_rank'),
      qkNopeHeadDim: f('qk_nope_head_dim'), qkRopeHeadDim: f('qk_rope_head_dim'), vHeadDim: f('v_head_dim'),
    },
    moe: {
      nRoutedExperts: f('n_routed_experts'), nSharedExperts: f('n_shared_experts', 0), topK: f('n_activated_experts'),
      expertHiddenDim: f('moe_inter_dim'), selectionBias: j.score_func === 'sigmoid',
    },
    twinInterDim: 0, tieEmbeddings: false, mtpModules: 0,
  };
}

/** Hugging Face config.json of DeepSeek-V2 / V3 (DeepseekV2Config, DeepseekV3Config). */
function fromHuggingFaceConfig(j: Json): Architecture {
  const f = (n: string, min = 1) => field(j, n, 'Hugging Face', min);
  const layers = f('num_hidden_layers');
  const moeLayers = j.n_routed_experts != null;
  if (j.moe_layer_freq != null && j.moe_layer_freq !== 1) {
    throw new Error(`countParams (Hugging Face config): expected moe_layer_freq to be 1, but got ${JSON.stringify(j.moe_layer_freq)}.`);
  }
  return {
    vocabSize: f('vocab_size'), dModel: f('hidden_size'), nLayers: layers,
    nDenseLayers: moeLayers ? f('first_k_dense_replace', 0) : layers,
    interDim: f('intermediate_size'), nHeads: f('num_attention_heads'),
    attention: {
      kind: 'mla', qLoraRank: j.q_lora_rank == null ? 0 : f('q_lora_rank', 0), kvLoraRank: f('kv_lora_rank'),
      qkNopeHeadDim: f('qk_nope_head_dim'), qkRopeHeadDim: f('qk_rope_head_dim'), vHeadDim: f('v_head_dim'),
    },
    moe: moeLayers
      ? {
          nRoutedExperts: f('n_routed_experts'), nSharedExperts: j.n_shared_experts == null ? 0 : f('n_shared_experts', 0),
          topK: f('num_experts_per_tok'), expertHiddenDim: f('moe_intermediate_size'), selectionBias: j.topk_method === 'noaux_tc',
        }
      : null,
    twinInterDim: 0, tieEmbeddings: j.tie_word_embeddings === true,
    mtpModules: j.num_nextn_predict_layers == null ? 0 : f('num_nextn_predict_layers', 0),
  };
}

function fromModelConfig(input: ModelConfigInput): Architecture {
  const c = resolveModelConfig(input);
  const m = c.moeConfig;
  return {
    vocabSize: c.vocabSize, dModel: c.dModel, nLayers: c.nLayers, nDenseLayers: c.nDenseLayers, interDim: c.interDim, nHeads: c.nHeads,
    attention: c.attention === 'mha'
      ? { kind: 'mha', headDim: c.headDim }
      : {
        kind: 'mla', qLoraRank: c.qLoraRank, kvLoraRank: c.kvLoraRank, qkNopeHeadDim: c.qkNopeHeadDim,
        qkRopeHeadDim: c.qkRopeHeadDim, vHeadDim: c.vHeadDim,
      },
    moe: c.ffn === 'moe'
      ? {
        nRoutedExperts: m.nRoutedExperts, nSharedExperts: m.nSharedExperts, topK: m.topK,
        expertHiddenDim: m.expertHiddenDim, selectionBias: m.auxFreeBias, sharedGate: m.sharedExpertGate,
      }
      : null,
    twinInterDim: c.twinInterDim, tieEmbeddings: false, mtpModules: c.mtpDepth,
  };
}

/** Reads any of the three formats: Hugging Face (hidden_size), DeepSeek inference (dim), or ours (dModel). */
export function architectureOf(config: ModelConfigInput | Json): Architecture {
  if (config == null || typeof config !== 'object') throw new Error(`countParams: expected a config object, but got ${String(config)}.`);
  if ('hidden_size' in config) return fromHuggingFaceConfig(config as Json);
  if ('dim' in config) return fromInferenceConfig(config as Json);
  if ('dModel' in config) return fromModelConfig(config as ModelConfigInput);
  throw new Error(`countParams: expected a model config with dModel (ours), dim (DeepSeek inference) or hidden_size ` +
    `(Hugging Face), but got fields ${Object.keys(config).join(', ')}.`);
}

const zeroParts = (): ModelParamParts => ({
  embeddings: 0, attention: 0, denseFfn: 0, routedExperts: 0, sharedExperts: 0, router: 0, norms: 0, head: 0,
});
const sumParts = (p: ModelParamParts) => Object.values(p).reduce((a, b) => a + b, 0);

function attentionParams(a: Architecture): { params: number; norms: number; cache: number } {
  const { dModel: d, nHeads: H } = a;
  const at = a.attention;
  if (at.kind === 'mha') return { params: 4 * d * H * at.headDim, norms: 0, cache: 2 * H * at.headDim };
  const qk = at.qkNopeHeadDim + at.qkRopeHeadDim;
  const query = at.qLoraRank > 0 ? d * at.qLoraRank + at.qLoraRank * H * qk : d * H * qk;
  const kv = d * (at.kvLoraRank + at.qkRopeHeadDim) + at.kvLoraRank * H * (at.qkNopeHeadDim + at.vHeadDim);
  return { params: query + kv + H * at.vHeadDim * d, norms: at.qLoraRank + at.kvLoraRank, cache: at.kvLoraRank + at.qkRopeHeadDim };
}

/** Adds one block (attention + FFN + its norms) to the total and activated parts. */
function addBlock(a: Architecture, sparse: boolean, total: ModelParamParts, activated: ModelParamParts): void {
  const d = a.dModel;
  const att = attentionParams(a);
  const both = (key: keyof ModelParamParts, t: number, act = t) => {
    total[key] += t;
    activated[key] += act;
  };
  both('attention', att.params);
  both('norms', 2 * d + att.norms);
  if (!sparse) return both('denseFfn', 3 * d * a.interDim);
  if (!a.moe) return both('denseFfn', 3 * d * a.twinInterDim);
  const expert = 3 * d * a.moe.expertHiddenDim;
  both('routedExperts', a.moe.nRoutedExperts * expert, a.moe.topK * expert);
  both('sharedExperts', a.moe.nSharedExperts * expert + (a.moe.sharedGate ? d : 0));
  both('router', d * a.moe.nRoutedExperts + (a.moe.selectionBias ? a.moe.nRoutedExperts : 0));
}

/** Total and activated parameters of a whole model, per part; see the file header for the conventions. */
export function countModelParams(config: ModelConfigInput | Json): ModelParamCount {
  const a = architectureOf(config);
  const totalParts = zeroParts();
  const activatedParts = zeroParts();
  totalParts.embeddings = a.vocabSize * a.dModel;
  for (let i = 0; i < a.nLayers; i++) addBlock(a, i >= a.nDenseLayers, totalParts, activatedParts);
  totalParts.norms += a.dModel;
  activatedParts.norms += a.dModel;
  // Tied: the output projection is the embedding matrix, stored once (under embeddings) but multiplied by every
  // token, so it counts as activated while the lookup does not.
  totalParts.head = a.tieEmbeddings ? 0 : a.vocabSize * a.dModel;
  activatedParts.head = a.vocabSize * a.dModel;
  let mtp: ModelParamCount['mtp'] = null;
  if (a.mtpModules > 0) {
    const t = zeroParts();
    const act = zeroParts();
    addBlock(a, a.nLayers >= a.nDenseLayers, t, act);
    const extra = 2 * a.dModel * a.dModel + 3 * a.dModel; // eh_proj, enorm, hnorm, the head's norm
    mtp = { modules: a.mtpModules, total: a.mtpModules * (sumParts(t) + extra), activated: a.mtpModules * (sumParts(act) + extra) };
  }
  const total = sumParts(totalParts);
  const activated = sumParts(activatedParts);
  return {
    total, activated, activatedRatio: activated / total, totalParts, activatedParts,
    kvCachePerToken: a.nLayers * attentionParams(a).cache, mtp,
  };
}

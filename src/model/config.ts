/**
 * The DeepSeek-style language model's configuration: one plain, JSON-safe object, validated by
 * `resolveModelConfig`. Names follow DeepSeek-V3's `inference/model.py` ModelArgs in camelCase.
 */
import { ConfigChecker, show } from '../validate.js';
import { resolveMoEConfig, type DeepSeekMoEConfig, type MoEConfigInput } from '../moe/config.js';

/** 'mha': multi-head attention with RoPE; 'mla': DeepSeek-V2's multi-head latent attention. */
export type AttentionKind = 'mha' | 'mla';

/** The language model's configuration: one plain, JSON-safe object (what presets, checkpoints and workers carry). */
export interface ModelConfig {
  /** Token vocabulary; 256 for the byte-level tokenizer. */
  vocabSize: number;
  /** Model width d. */
  dModel: number;
  nLayers: number;
  /** The first nDenseLayers blocks use a dense SwiGLU FFN of width interDim; the rest use the FFN below. */
  nDenseLayers: number;
  /** Hidden width of the dense FFN in the first nDenseLayers blocks. */
  interDim: number;
  nHeads: number;
  /** Longest sequence the model is trained and sampled on (the size of the rotary tables). */
  maxSeqLen: number;
  /** 'mha': multi-head attention with RoPE; 'mla': DeepSeek-V2's multi-head latent attention. */
  attention: AttentionKind;
  /** 'mha' only: the width of each head's query, key and value. */
  headDim: number;
  /** 'mla' only: rank of the low-rank query compression (0: a full-rank query projection, as in V2-Lite). */
  qLoraRank: number;
  /** 'mla' only: width of the compressed KV latent c^KV, the part of the cache that stands in for all heads. */
  kvLoraRank: number;
  /** 'mla' only: per-head query/key width without position information. */
  qkNopeHeadDim: number;
  /** 'mla' only: width of the decoupled rotary query/key; the rotary key is shared by all heads. */
  qkRopeHeadDim: number;
  /** 'mla' only: per-head value width. */
  vHeadDim: number;
  ropeTheta: number;
  /** The eps of the blocks' and the final RMSNorm (MLA's latent norms use 1e-6, as DeepSeek's code does). */
  normEps: number;
  /**
   * What blocks nDenseLayers.. use: 'moe' (the DeepSeekMoE layer below) or 'dense' (a SwiGLU FFN of width
   * twinInterDim; see `denseTwin`).
   */
  ffn: 'moe' | 'dense';
  /** With ffn 'dense': the hidden width that stands in for the MoE. */
  twinInterDim: number;
  /** The DeepSeekMoE layer of blocks nDenseLayers..; dModel comes from the model. */
  moe: Omit<MoEConfigInput, 'dModel'>;
  /**
   * DeepSeek-V3's multi-token prediction: D modules after the main model. Module k combines RMSNorm of the previous
   * depth's hidden state with RMSNorm of the embedding of the token k ahead ([2d] -> d), runs one transformer block
   * (MoE when ffn is 'moe') and predicts the token k + 1 ahead through the shared head. 0 turns it off.
   */
  mtpDepth: number;
  /** The MTP loss factor lambda: training adds lambda / D * sum_k L_MTP^k (DeepSeek-V3: 0.3, then 0.1). */
  mtpLambda: number;
  /** Seed of the weight initialisers. */
  seed: number;
}

/** What a user writes: the shape fields are required, the rest have defaults. */
export type ModelConfigInput = Pick<ModelConfig, 'dModel' | 'nLayers' | 'nHeads' | 'interDim' | 'maxSeqLen' | 'moe'> &
  Partial<ModelConfig>;

/** The defaults of every optional model field. */
export const modelConfigDefaults = {
  vocabSize: 256,
  nDenseLayers: 1,
  attention: 'mla' as AttentionKind,
  headDim: 32,
  qLoraRank: 0,
  kvLoraRank: 32,
  qkNopeHeadDim: 32,
  qkRopeHeadDim: 16,
  vHeadDim: 32,
  ropeTheta: 10_000,
  normEps: 1e-6,
  ffn: 'moe' as 'moe' | 'dense',
  twinInterDim: 0,
  mtpDepth: 0,
  mtpLambda: 0.3,
  seed: 0,
};

/** A resolved model config plus the resolved MoE config of its sparse blocks. */
export interface ResolvedModelConfig extends Readonly<ModelConfig> {
  readonly moeConfig: DeepSeekMoEConfig;
}

const keys = ['dModel', 'nLayers', 'nHeads', 'interDim', 'maxSeqLen', 'moe', ...Object.keys(modelConfigDefaults)];
const check: ConfigChecker = new ConfigChecker('model config');
const fail = (message: string): never => check.fail(message);

/** Validates a model config, fills defaults, and resolves its MoE part. Throws naming the field. */
export function resolveModelConfig(input: ModelConfigInput): ResolvedModelConfig {
  check.fields(input, keys, ['moeConfig']); // moeConfig: a resolved config passed back in
  const c: ModelConfig = { ...modelConfigDefaults, ...(input as ModelConfigInput) };
  check.int('vocabSize', c.vocabSize, 2);
  check.int('dModel', c.dModel, 1);
  check.int('nLayers', c.nLayers, 1);
  check.int('nDenseLayers', c.nDenseLayers, 0);
  if (c.nDenseLayers > c.nLayers) fail(`expected nDenseLayers (${c.nDenseLayers}) to be at most nLayers (${c.nLayers}).`);
  check.int('interDim', c.interDim, 1);
  check.int('nHeads', c.nHeads, 1);
  check.int('maxSeqLen', c.maxSeqLen, 2);
  check.oneOf('attention', c.attention, ['mha', 'mla']);
  check.int('headDim', c.headDim, 2);
  if (c.attention === 'mha' && c.headDim % 2 !== 0) fail(`expected headDim to be even (rotary pairs), but got ${c.headDim}.`);
  check.int('qLoraRank', c.qLoraRank, 0);
  check.int('kvLoraRank', c.kvLoraRank, 1);
  check.int('qkNopeHeadDim', c.qkNopeHeadDim, 1);
  check.int('qkRopeHeadDim', c.qkRopeHeadDim, 2);
  if (c.qkRopeHeadDim % 2 !== 0) fail(`expected qkRopeHeadDim to be even (rotary pairs), but got ${c.qkRopeHeadDim}.`);
  check.int('vHeadDim', c.vHeadDim, 1);
  for (const name of ['ropeTheta', 'normEps'] as const) check.number(name, c[name], { min: 0, minOpen: true });
  check.oneOf('ffn', c.ffn, ['moe', 'dense']);
  if (c.ffn === 'dense' && c.twinInterDim === 0) {
    fail("expected twinInterDim to be set (a positive integer) when ffn is 'dense', but got 0.");
  }
  check.int('twinInterDim', c.twinInterDim, c.ffn === 'dense' ? 1 : 0);
  check.int('mtpDepth', c.mtpDepth, 0);
  check.number('mtpLambda', c.mtpLambda, { min: 0 });
  if (c.mtpDepth >= c.maxSeqLen) fail(`expected mtpDepth (${c.mtpDepth}) to be below maxSeqLen (${c.maxSeqLen}).`);
  check.int('seed', c.seed, 0);
  if (c.moe == null || typeof c.moe !== 'object' || Array.isArray(c.moe)) fail(`expected moe to be an object, but got ${show(c.moe)}.`);
  if ('dModel' in c.moe) {
    fail(`expected moe not to set dModel (it is the model's), but got moe.dModel = ${show((c.moe as MoEConfigInput).dModel)}.`);
  }
  let moeConfig: DeepSeekMoEConfig;
  try {
    moeConfig = resolveMoEConfig({ seed: c.seed, ...c.moe, dModel: c.dModel });
  } catch (e) {
    return fail(`moe: ${(e as Error).message.replace(/^DeepSeekMoE config: /, '')}`);
  }
  return Object.freeze({ ...c, moe: Object.freeze({ ...c.moe }), moeConfig });
}

/** The JSON-safe config (what checkpoints, presets and workers carry): the resolved one without moeConfig. */
export function plainModelConfig(c: ResolvedModelConfig): ModelConfig {
  const { moeConfig: _derived, ...plain } = c;
  return JSON.parse(JSON.stringify(plain)) as ModelConfig;
}

/** Parameters of one SwiGLU FFN of hidden width h. */
const ffnParams = (d: number, h: number) => 3 * d * h;

/**
 * The dense twin: the same model with every MoE block replaced by a dense SwiGLU FFN holding the MoE's
 * 'activated' parameters (router, shared and topK routed experts) or its 'total' parameters (all experts), or
 * for 'upcycle' of width (nSharedExperts + topK) h: the activated experts without the router, the dense model that
 * upcycling (train/upcycle.ts) grows back into this MoE, its first forward unchanged.
 */
export function denseTwin(input: ModelConfigInput, matches: 'activated' | 'total' | 'upcycle'): ResolvedModelConfig {
  const c = resolveModelConfig(input);
  if (matches !== 'activated' && matches !== 'total' && matches !== 'upcycle') {
    fail(`expected denseTwin to match 'activated', 'total' or 'upcycle', but got ${show(matches)}.`);
  }
  const m = c.moeConfig;
  if (matches === 'upcycle') {
    return resolveModelConfig({
      ...plainModelConfig(c), ffn: 'dense', twinInterDim: (m.nSharedExperts + m.topK) * m.expertHiddenDim,
    });
  }
  const experts = m.nSharedExperts + (matches === 'activated' ? m.topK : m.nRoutedExperts);
  const params = experts * ffnParams(c.dModel, m.expertHiddenDim) + c.dModel * m.nRoutedExperts; // + router
  return resolveModelConfig({ ...plainModelConfig(c), ffn: 'dense', twinInterDim: Math.round(params / ffnParams(c.dModel, 1)) });
}

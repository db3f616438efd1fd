/**
 * deepseek-moe-tfjs/model: a tiny DeepSeek-style language model (MLA or multi-head attention, dense then
 * DeepSeekMoE blocks), its forward passes, loss and generation, byte-level tokenizer, weights and configs.
 */
export {
  DeepSeekLM, forward, forwardCached, languageModelLoss, disposeCache, checkFiniteInputs, mtpForward, mtpCached,
  truncateCache,
} from './model.js';
export type { ForwardOutput, ForwardOptions, MoEBlockReport, KVCache, MtpOutput } from './model.js';
export type { LayerCache } from './attention.js';
export { crossEntropy } from './layers.js';
export { generate, generateWithStats, maxGenerated, sampleToken } from './generate.js';
export { evaluateText } from './evaluate.js';
export { traceRouting, maxTraceBytes } from './routing-trace.js';
export type { RoutingTraceOptions } from './routing-trace.js';
export {
  characterSpans, topExpert, characterExpert, characterKind, expertLegend, expertColour,
} from './routing-view.js';
export type { RoutingTrace, BlockRouting, CharacterSpan, ExpertLegendEntry } from './routing-view.js';
export { exportHuggingFace, importHuggingFace } from './hf.js';
export type { EvaluateOptions, TextScore } from './evaluate.js';
export type { SampleOptions, SpeculationStats } from './generate.js';
export { encode, decode } from './tokenizer.js';
export { modelWeightSpecs, modelView } from './weights.js';
export type {
  ModelWeightSpec, ModelWeights, ModelView, BlockWeights, AttentionWeights, FfnWeights, MtpWeights,
} from './weights.js';
export { resolveModelConfig, denseTwin, plainModelConfig, modelConfigDefaults } from './config.js';
export type { ModelConfig, ModelConfigInput, ResolvedModelConfig, AttentionKind } from './config.js';
export { presets, preset } from './presets.js';
export { countModelParams, architectureOf } from './params.js';
export type { ModelParamCount, ModelParamParts, Architecture } from './params.js';

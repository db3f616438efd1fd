/**
 * deepseek-moe-tfjs/config: what a page needs without loading TF.js. The layer, model and trainer configs with
 * their validation, the presets, parameter accounting (ours, DeepSeek's inference configs, Hugging Face's
 * config.json), the checkpoint file's header, the trainer's event types and the byte tokenizer. Nothing here
 * imports TF.js (a test bundles this entry and checks).
 */
export { resolveMoEConfig, moeConfigDefaults } from './moe/config.js';
export type { DeepSeekMoEConfig, MoEConfigInput, ScoreFunc, GroupScoreFunc, DispatchMode } from './moe/config.js';
export { countLayerParams } from './moe/params.js';
export type { MoEParamCount, MoEParamParts } from './moe/params.js';
export { resolveModelConfig, denseTwin, plainModelConfig, modelConfigDefaults } from './model/config.js';
export type { ModelConfig, ModelConfigInput, ResolvedModelConfig, AttentionKind } from './model/config.js';
export { presets, preset } from './model/presets.js';
export { countModelParams, architectureOf } from './model/params.js';
export type { ModelParamCount, ModelParamParts, Architecture } from './model/params.js';
export { resolveTrainConfig, trainConfigDefaults, learningRateAt } from './train/config.js';
export type { TrainConfig, TrainConfigInput } from './train/config.js';
export { readCheckpoint, writeCheckpoint, checkpointFormat, checkpointVersion } from './train/checkpoint.js';
export type { CheckpointHeader, CheckpointContents, UpcycledFrom } from './train/checkpoint.js';
export type {
  TrainerEvent, TrainerEventMap, StepEvent, EvalEvent, CheckpointEvent, DoneEvent, ErrorEvent, LayerReport,
} from './train/events.js';
export type { BlockSpecialisation } from './train/specialisation.js';
export { resolveUpcycle } from './train/upcycle.js';
export type { UpcycleConfigInput, UpcyclePlan } from './train/upcycle.js';
export { encode, decode } from './model/tokenizer.js';
export {
  characterSpans, topExpert, characterExpert, characterKind, expertLegend, expertColour,
} from './model/routing-view.js';
export type { RoutingTrace, BlockRouting, CharacterSpan, ExpertLegendEntry } from './model/routing-view.js';
export { ConfigChecker, show } from './validate.js';
export type { NumberRange } from './validate.js';

/**
 * deepseek-moe-tfjs: the DeepSeekMoE layer for TensorFlow.js (shared experts, fine-grained routed experts chosen
 * top-K per token, balance losses and the auxiliary-loss-free bias), its stages, weights, losses, statistics and
 * parameter count, and the backend set-up. The language model is in `deepseek-moe-tfjs/model`, its trainer in
 * `deepseek-moe-tfjs/train`, and the configs, presets and accounting a page needs without TF.js in
 * `deepseek-moe-tfjs/config`.
 */
export { resolveMoEConfig, moeConfigDefaults } from './moe/config.js';
export type {
  DeepSeekMoEConfig, MoEConfigInput, ScoreFunc, GroupScoreFunc, DispatchMode, DropPolicy, BalanceScope,
  BiasUpdate,
} from './moe/config.js';
export { DeepSeekMoE, deepSeekMoE, expertBiasUpdate, moeLayersOf } from './moe/layer.js';
export type { DeepSeekMoELayerArgs, LayerArgs } from './moe/layer.js';
export { moeForward, checkInputFinite } from './moe/moe.js';
export type { MoEWeights, MoEOutput, MoEForwardOptions, BalanceLoad, TokenRoutes } from './moe/moe.js';
export { route } from './moe/router.js';
export type { RouterOutput } from './moe/router.js';
export {
  selectExperts, countExperts, routingPlan, gateWeightsOf, expertsUp, expertsDown, combineRows, groupedExperts,
  sharedExperts, affinityBalance,
} from './moe/grouped.js';
export type { GroupedRoute } from './moe/grouped.js';
export { nativeKernels } from './moe/kernels/index.js';
export { swiGLU } from './moe/experts.js';
export { createMoEWeights, disposeMoEWeights, moeWeightSpecs } from './moe/weights.js';
export type { MoEWeightSpec } from './moe/specs.js';
export { balanceLosses, meanRouterEntropy, routingStats, updateExpertBias } from './moe/balance.js';
export type { BalanceLosses, RoutingStats } from './moe/balance.js';
export { countLayerParams } from './moe/params.js';
export type { MoEParamCount, MoEParamParts } from './moe/params.js';
export { initBackend, backendNames, backendAvailability, backendOrder } from './backend.js';
export type { BackendName, BackendAvailability, InitBackendOptions } from './backend.js';

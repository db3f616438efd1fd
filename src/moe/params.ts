import { resolveMoEConfig, type MoEConfigInput } from './config.js';
import type { ModelConfigInput } from '../model/config.js';
import { countModelParams, type ModelParamCount } from '../model/params.js';

export interface MoEParamParts {
  router: number;
  routedExperts: number;
  sharedExperts: number;
  /** The auxiliary-loss-free selection bias (not trainable, but stored and used at every token). */
  bias: number;
}

export interface MoEParamCount {
  total: number;
  activated: number;
  totalParts: MoEParamParts;
  activatedParts: MoEParamParts;
  /** Forward FLOPs per token (2 per multiply-add of the router and the activated experts' matmuls). */
  flopsPerToken: number;
  /** activated / total. */
  activatedRatio: number;
}

/**
 * Total and activated parameters. Of one DeepSeekMoE layer for a layer config (a token activates the router,
 * its K routed experts and the shared experts; each SwiGLU expert holds 3 d h weights), or of a whole model for
 * a model config: ours, DeepSeek-V3's inference format or Hugging Face's config.json (see countModelParams).
 */
export function countParams(input: MoEConfigInput): MoEParamCount;
export function countParams(input: ModelConfigInput | Record<string, unknown>): ModelParamCount;
export function countParams(input: MoEConfigInput | ModelConfigInput | Record<string, unknown>): MoEParamCount | ModelParamCount {
  // A layer config is the one with expertHiddenDim at the top level; anything else is read as a whole model.
  if (input != null && typeof input === 'object' && 'expertHiddenDim' in input) return countLayerParams(input as MoEConfigInput);
  return countModelParams(input as ModelConfigInput | Record<string, unknown>);
}

function countLayerParams(input: MoEConfigInput): MoEParamCount {
  const c = resolveMoEConfig(input);
  const d = c.dModel;
  const expert = 3 * d * c.expertHiddenDim;
  const router = d * c.nRoutedExperts;
  const shared = c.nSharedExperts * expert;
  const bias = c.auxFreeBias ? c.nRoutedExperts : 0;
  const totalParts = { router, routedExperts: c.nRoutedExperts * expert, sharedExperts: shared, bias };
  const activatedParts = { router, routedExperts: c.topK * expert, sharedExperts: shared, bias };
  const sum = (p: MoEParamParts) => p.router + p.routedExperts + p.sharedExperts + p.bias;
  const total = sum(totalParts);
  const activated = sum(activatedParts);
  const flopsPerToken = 2 * (router + activatedParts.routedExperts + shared);
  return { total, activated, totalParts, activatedParts, flopsPerToken, activatedRatio: activated / total };
}

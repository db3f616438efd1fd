/** Parameter accounting of one DeepSeekMoE layer (whole models: src/model/params.ts). */
import { resolveMoEConfig, type MoEConfigInput } from './config.js';

/** Parameters by part of the layer. */
export interface MoEParamParts {
  router: number;
  routedExperts: number;
  sharedExperts: number;
  /** The auxiliary-loss-free selection bias (not trainable, but stored and used at every token). */
  bias: number;
}

/** One layer's parameter count: totals, activated per token, by part, and forward FLOPs per token. */
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
 * Total and activated parameters of one DeepSeekMoE layer: a token activates the router, its K routed experts and
 * the shared experts; each SwiGLU expert holds 3 d h weights.
 */
export function countLayerParams(input: MoEConfigInput): MoEParamCount {
  const c = resolveMoEConfig(input);
  const d = c.dModel;
  const expert = 3 * d * c.expertHiddenDim;
  const router = d * c.nRoutedExperts;
  const shared = c.nSharedExperts * expert + (c.sharedExpertGate ? d : 0); // + Qwen2-MoE's gate w_g [d, 1]
  const bias = c.auxFreeBias ? c.nRoutedExperts : 0;
  const totalParts = { router, routedExperts: c.nRoutedExperts * expert, sharedExperts: shared, bias };
  const activatedParts = { router, routedExperts: c.topK * expert, sharedExperts: shared, bias };
  const sum = (p: MoEParamParts) => p.router + p.routedExperts + p.sharedExperts + p.bias;
  const total = sum(totalParts);
  const activated = sum(activatedParts);
  const flopsPerToken = 2 * (router + activatedParts.routedExperts + shared);
  return { total, activated, totalParts, activatedParts, flopsPerToken, activatedRatio: activated / total };
}

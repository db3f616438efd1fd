/**
 * Upcycling: a dense checkpoint grown into a DeepSeekMoE (sparse upcycling, Komatsuzaki et al. 2022; Megatron-core's
 * --moe-use-upcycling; Qwen1.5-MoE). Each formerly dense FFN of hidden width H is cut into m slices of width
 * h = H / m (its hidden units are independent, so the slices sum to the FFN exactly): the first S slices become
 * the shared experts and the other G = m - S form one copy of routed experts; the E routed experts are R = E / G
 * copies, copy-major (expert r G + g holds slice S + g). m = 1 is sparse upcycling (copies of the whole FFN).
 *
 * The first forward equals the dense model's when a token takes whole copies: the router's columns are equal
 * within a copy (one draw per copy, Megatron's virtual groups), so a copy's G experts tie and top-K (ties to the
 * lower index) takes whole copies when G divides K. Under normTopK the routed gates then sum to routeScale, shared
 * equally by each slice's copies, so each routed expertW2 is scaled by G / routeScale. TF.js-free: plain arrays.
 */
import { plainModelConfig, resolveModelConfig, type ModelConfig, type ResolvedModelConfig } from '../model/config.js';
import { isMoEBlock, modelWeightSpecs, weightSeed } from '../model/specs.js';
import type { MoEConfigInput } from '../moe/config.js';
import { truncatedNormal } from '../rng.js';
import { writeCheckpoint, type CheckpointHeader } from './checkpoint.js';
import { readModelCheckpoint } from './model-checkpoint.js';

/** How a dense model grows: JSON-safe (the CLI's flags, the lab's worker command, the claims table). */
export interface UpcycleConfigInput {
  /**
   * The grown blocks' MoE layer (experts, top-K, gate, balancing), over the dense config's own `moe`. Its
   * expertHiddenDim, if given, must be the dense width / granularity.
   */
  moe?: Partial<Omit<MoEConfigInput, 'dModel'>>;
  /** m: the dense FFN cut into m slices (1: copies of the whole FFN). Default: dense width / moe.expertHiddenDim. */
  granularity?: number;
  /** Seeds the router's draw. Default: the dense model's seed. */
  seed?: number;
}

/** What resolveUpcycle derives from a dense config and the settings. */
export interface UpcyclePlan {
  dense: ResolvedModelConfig;
  /** The grown model: the dense config with ffn 'moe'. */
  modelConfig: ResolvedModelConfig;
  /** m, and each slice's width h = H / m. */
  granularity: number;
  sliceWidth: number;
  /** G = m - S routed slices per copy, and R = E / G copies. */
  routedSlices: number;
  copies: number;
  /** G / routeScale: what each routed expertW2 is multiplied by. */
  expertOutputScale: number;
  seed: number;
  /** Whether the first forward equals the dense model's; `why` says which condition fails when it does not. */
  exact: boolean;
  why: string;
}

const fail = (message: string): never => {
  throw new Error(`upcycle: ${message}`);
};

/** The grown model's config and the slicing, every setting checked; throws naming the field. */
export function resolveUpcycle(dense: ResolvedModelConfig, input: UpcycleConfigInput = {}): UpcyclePlan {
  const known = ['moe', 'granularity', 'seed'];
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) fail(`unknown setting '${key}'; known settings are ${known.join(', ')}.`);
  }
  if (input.seed !== undefined && !(Number.isInteger(input.seed) && input.seed >= 0)) {
    fail(`expected seed to be a non-negative integer, but got ${String(input.seed)}.`);
  }
  if (dense.ffn !== 'dense') fail(`expected a dense model (ffn 'dense'), but got ffn '${dense.ffn}'.`);
  const H = dense.twinInterDim;
  const moe = { ...dense.moe, ...input.moe };
  const hGiven = input.moe?.expertHiddenDim;
  let m = input.granularity;
  if (m === undefined) {
    const h = hGiven ?? dense.moe.expertHiddenDim ?? 0;
    m = h > 0 && H % h === 0 ? H / h : fail(`expected granularity, or moe.expertHiddenDim dividing the dense FFN ` +
      `width (twinInterDim ${H}), but got expertHiddenDim ${h}.`);
  }
  if (!Number.isInteger(m) || m < 1 || H % m !== 0) {
    fail(`expected granularity to be a positive integer dividing the dense FFN width (twinInterDim ${H}), but got ` +
      `${m}.`);
  }
  const h = H / m!;
  if (hGiven !== undefined && hGiven !== h) {
    fail(`expected moe.expertHiddenDim to be twinInterDim / granularity = ${h}, but got ${hGiven}.`);
  }
  let modelConfig: ResolvedModelConfig;
  try {
    modelConfig = resolveModelConfig({
      ...plainModelConfig(dense), ffn: 'moe', twinInterDim: 0, moe: { ...moe, expertHiddenDim: h },
    });
  } catch (e) {
    return fail(`the grown model's config is not valid: ${(e as Error).message}`);
  }
  const c = modelConfig.moeConfig;
  const S = c.nSharedExperts;
  if (S >= m!) fail(`expected nSharedExperts (${S}) below granularity (${m}): at least one slice is routed.`);
  const G = m! - S;
  if (c.nRoutedExperts % G !== 0) {
    const E = c.nRoutedExperts;
    fail(`expected nRoutedExperts to be a multiple of granularity - nSharedExperts (${G}), but got ${E}.`);
  }
  if (!c.normTopK) {
    fail('expected moe.normTopK true (the routed gates then sum to routeScale, which the expert outputs are scaled ' +
      'by), but got false.');
  }
  const perGroup = c.nRoutedExperts / c.nExpertGroups;
  const why = c.topK % G !== 0
    ? `topK ${c.topK} is not a multiple of the ${G} routed slices per copy, so a token can take part of a copy`
    : perGroup % G !== 0
      ? `an expert group (${perGroup} experts) does not hold whole copies of ${G} slices`
      : '';
  return {
    dense, modelConfig, granularity: m!, sliceWidth: h, routedSlices: G, copies: c.nRoutedExperts / G,
    expertOutputScale: G / c.routeScale, seed: input.seed ?? dense.seed, exact: why === '', why,
  };
}

/** Columns [from, from + n) of a row-major [rows, cols] matrix. */
function columns(w: Float32Array, rows: number, cols: number, from: number, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) out.set(w.subarray(r * cols + from, r * cols + from + n), r * n);
  return out;
}

/** Rows [from, from + n) of a row-major matrix of `cols` columns, times `scale`. */
const rowsOf = (w: Float32Array, cols: number, from: number, n: number, scale = 1) =>
  w.slice(from * cols, (from + n) * cols).map((x) => x * scale);

/**
 * The grown model's weights from the dense ones, by checkpoint name: every weight the two share is copied; each
 * formerly dense FFN becomes shared and routed experts (slices, copies, the output scale) and a router whose
 * columns repeat one truncated-normal draw per copy.
 */
export function upcycleWeights(plan: UpcyclePlan, dense: Map<string, Float32Array>): Map<string, Float32Array> {
  const c = plan.modelConfig;
  const { dModel: d } = c;
  const { nRoutedExperts: E, nSharedExperts: S, sharedExpertGate } = c.moeConfig;
  const { sliceWidth: h, routedSlices: G, copies: R } = plan;
  const H = plan.dense.twinInterDim;
  const out = new Map<string, Float32Array>();
  for (let i = 0; i < c.nLayers + c.mtpDepth; i++) {
    if (!isMoEBlock(c, i)) continue;
    const get = (w: string) => dense.get(`blocks.${i}.ffn.${w}`) ?? fail(`the dense weights lack blocks.${i}.ffn.${w}.`);
    const [w1, w3, w2] = [get('w1'), get('w3'), get('w2')];
    const p = `blocks.${i}.moe`;
    if (S > 0) {
      out.set(`${p}.sharedW1`, columns(w1, d, H, 0, S * h));
      out.set(`${p}.sharedW3`, columns(w3, d, H, 0, S * h));
      // A gated shared expert starts at sigmoid(0) = 1/2, so its output weights double.
      out.set(`${p}.sharedW2`, rowsOf(w2, d, 0, S * h, sharedExpertGate ? 2 : 1));
    }
    if (sharedExpertGate) out.set(`${p}.sharedGate`, new Float32Array(d));
    const expertW1 = new Float32Array(E * d * h);
    const expertW3 = new Float32Array(E * d * h);
    const expertW2 = new Float32Array(E * h * d);
    for (let e = 0; e < E; e++) {
      const slice = S + (e % G);
      expertW1.set(columns(w1, d, H, slice * h, h), e * d * h);
      expertW3.set(columns(w3, d, H, slice * h, h), e * d * h);
      expertW2.set(rowsOf(w2, d, slice * h, h, plan.expertOutputScale), e * h * d);
    }
    out.set(`${p}.expertW1`, expertW1);
    out.set(`${p}.expertW3`, expertW3);
    out.set(`${p}.expertW2`, expertW2);
    const draw = truncatedNormal(d * R, 1 / Math.sqrt(d), weightSeed(plan.seed, `${p}.routerKernel`)); // [d, R]
    const router = new Float32Array(d * E);
    for (let k = 0; k < d; k++) for (let e = 0; e < E; e++) router[k * E + e] = draw[k * R + Math.floor(e / G)]!;
    out.set(`${p}.routerKernel`, router);
    if (c.moeConfig.auxFreeBias) out.set(`${p}.expertBias`, new Float32Array(E));
  }
  for (const s of modelWeightSpecs(c)) {
    if (out.has(s.name)) continue;
    out.set(s.name, dense.get(s.name) ?? fail(`the dense weights lack '${s.name}'.`));
  }
  return out;
}

/** What upcycle returns. */
export interface Upcycled {
  checkpoint: Uint8Array;
  /** The run's step, the dense file's and the grown one's. */
  step: number;
  modelConfig: ModelConfig;
  plan: UpcyclePlan;
}

/**
 * A dense checkpoint file grown into a MoE one: the run's step, schedule, settings and sampler state go on; AdamW's
 * moments start at zero with its own step count at 0 (header.optimizerStep); header.upcycledFrom records the
 * source. The file and every setting are checked before anything is built.
 */
export function upcycle(denseCheckpoint: Uint8Array, input: UpcycleConfigInput = {}): Upcycled {
  const { header, tensors, modelConfig: dense } = readModelCheckpoint(denseCheckpoint);
  if (header.upcycledFrom) fail('expected a dense model, but this checkpoint was already upcycled.');
  const plan = resolveUpcycle(dense, input);
  const weights = upcycleWeights(plan, tensors);
  const specs = modelWeightSpecs(plan.modelConfig);
  const zeros = (shape: number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1));
  const grown: Omit<CheckpointHeader, 'format' | 'version' | 'tensors' | 'checksum'> = {
    modelConfig: plainModelConfig(plan.modelConfig), trainConfig: header.trainConfig, step: header.step,
    rngState: header.rngState, optimizerStep: 0,
    upcycledFrom: {
      step: header.step, checksum: header.checksum,
      modelConfig: header.modelConfig, granularity: plan.granularity, exact: plan.exact,
    },
  };
  const checkpoint = writeCheckpoint(grown, [
    ...specs.map((s) => ({ name: s.name, shape: s.shape, values: weights.get(s.name)! })),
    ...specs.filter((s) => s.trainable).flatMap((s) => [
      { name: `adam.m/${s.name}`, shape: s.shape, values: zeros(s.shape) },
      { name: `adam.v/${s.name}`, shape: s.shape, values: zeros(s.shape) },
    ]),
  ]);
  return { checkpoint, step: header.step, modelConfig: grown.modelConfig, plan };
}

/** The model's weight list (checkpoint names, shapes, initialisation), TF.js-free so file formats can use it. */
import { moeWeightSpecs } from '../moe/specs.js';
import { fnv1a, mixSeeds } from '../rng.js';
import type { ResolvedModelConfig } from './config.js';

/**
 * The seed of a weight's initial values: the config's seed mixed with a hash of the weight's name, so a weight
 * starts the same whatever other weights the config adds or removes (an `expertBias`, an MTP module), and two
 * models that differ in one setting start from the same draws elsewhere. Never 0 (TF.js: "unseeded").
 */
export function weightSeed(seed: number, name: string): number {
  return mixSeeds(seed, fnv1a(new TextEncoder().encode(name))) || 1;
}

/** One model weight: its name (as checkpoints store it), shape, initial std (0: ones for norms, zeros for bias). */
export interface ModelWeightSpec {
  name: string;
  shape: number[];
  /** 'normal': truncated normal of std `std`; 'ones': norm gains; 'zeros': the MoE selection bias. */
  init: 'normal' | 'ones' | 'zeros';
  std: number;
  trainable: boolean;
  /** AdamW's decoupled weight decay applies to matrices only, not to norm gains. */
  decay: boolean;
}

const matrix = (name: string, shape: number[], std: number): ModelWeightSpec => ({
  name, shape, init: 'normal', std, trainable: true, decay: true,
});
const norm = (name: string, n: number): ModelWeightSpec => ({ name, shape: [n], init: 'ones', std: 0, trainable: true, decay: false });

/** The attention weights of block i, in the DeepSeek-V2 paper's names (W^DQ, W^UQ, W^QR, W^DKV, W^UK, W^UV, W^KR, W^O). */
function attentionSpecs(c: ResolvedModelConfig, p: string): ModelWeightSpec[] {
  const { dModel: d, nHeads: H } = c;
  const out = 1 / Math.sqrt(2 * c.nLayers); // residual-branch outputs start small, as in GPT-2
  if (c.attention === 'mha') {
    const hd = c.headDim;
    return [
      matrix(`${p}.wq`, [d, H * hd], 1 / Math.sqrt(d)),
      matrix(`${p}.wk`, [d, H * hd], 1 / Math.sqrt(d)),
      matrix(`${p}.wv`, [d, H * hd], 1 / Math.sqrt(d)),
      matrix(`${p}.wo`, [H * hd, d], out / Math.sqrt(H * hd)),
    ];
  }
  const { qLoraRank: dq, kvLoraRank: dc, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: dv } = c;
  const qIn = dq > 0 ? dq : d;
  const query = dq > 0
    ? [matrix(`${p}.wDq`, [d, dq], 1 / Math.sqrt(d)), norm(`${p}.qNorm`, dq), matrix(`${p}.wUq`, [dq, H * nope], 1 / Math.sqrt(dq))]
    : [matrix(`${p}.wq`, [d, H * nope], 1 / Math.sqrt(d))];
  return [
    ...query,
    matrix(`${p}.wQr`, [qIn, H * rope], 1 / Math.sqrt(qIn)),
    matrix(`${p}.wDkv`, [d, dc], 1 / Math.sqrt(d)),
    norm(`${p}.kvNorm`, dc),
    matrix(`${p}.wKr`, [d, rope], 1 / Math.sqrt(d)),
    matrix(`${p}.wUk`, [dc, H * nope], 1 / Math.sqrt(dc)),
    matrix(`${p}.wUv`, [dc, H * dv], 1 / Math.sqrt(dc)),
    matrix(`${p}.wo`, [H * dv, d], out / Math.sqrt(H * dv)),
  ];
}

function ffnSpecs(c: ResolvedModelConfig, p: string, h: number): ModelWeightSpec[] {
  const d = c.dModel;
  return [
    matrix(`${p}.w1`, [d, h], 1 / Math.sqrt(d)),
    matrix(`${p}.w3`, [d, h], 1 / Math.sqrt(d)),
    matrix(`${p}.w2`, [h, d], 1 / Math.sqrt(2 * c.nLayers * h)),
  ];
}

/** True when block i uses the DeepSeekMoE layer. */
export const isMoEBlock = (c: ResolvedModelConfig, i: number) => i >= c.nDenseLayers && c.ffn === 'moe';

/** Block i's weights: its norms, attention, and dense FFN or DeepSeekMoE layer. */
function blockSpecs(c: ResolvedModelConfig, i: number): ModelWeightSpec[] {
  const d = c.dModel;
  const p = `blocks.${i}`;
  const specs = [norm(`${p}.attnNorm`, d), ...attentionSpecs(c, `${p}.attn`), norm(`${p}.ffnNorm`, d)];
  if (!isMoEBlock(c, i)) {
    return [...specs, ...ffnSpecs(c, `${p}.ffn`, i < c.nDenseLayers ? c.interDim : c.twinInterDim)];
  }
  for (const s of moeWeightSpecs(c.moeConfig)) {
    const std = s.name === 'expertW2' || s.name === 'sharedW2' ? s.initStd / Math.sqrt(2 * c.nLayers) : s.initStd;
    specs.push({
      name: `${p}.moe.${s.name}`, shape: s.shape, std, trainable: s.trainable,
      init: s.initStd === 0 ? 'zeros' : 'normal', decay: s.trainable,
    });
  }
  return specs;
}

/**
 * Every weight of the model, in a fixed order (checkpoints and optimizers rely on it). MTP module k (1-based) is
 * block nLayers + k - 1, as DeepSeek-V3 numbers it (model.layers.61 after 61 layers), plus enorm, hnorm, ehProj
 * [2d, d] (its input is [enorm(embedding); hnorm(hidden)], as DeepSeek-V3's engines concatenate) and headNorm.
 */
export function modelWeightSpecs(c: ResolvedModelConfig): ModelWeightSpec[] {
  const d = c.dModel;
  const specs: ModelWeightSpec[] = [matrix('embed', [c.vocabSize, d], 1)];
  for (let i = 0; i < c.nLayers; i++) specs.push(...blockSpecs(c, i));
  specs.push(norm('finalNorm', d), matrix('head', [d, c.vocabSize], 1 / Math.sqrt(d)));
  for (let i = c.nLayers; i < c.nLayers + c.mtpDepth; i++) {
    const p = `blocks.${i}`;
    specs.push(norm(`${p}.enorm`, d), norm(`${p}.hnorm`, d), matrix(`${p}.ehProj`, [2 * d, d], 1 / Math.sqrt(2 * d)));
    specs.push(...blockSpecs(c, i), norm(`${p}.headNorm`, d));
  }
  return specs;
}

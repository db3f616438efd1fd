import * as tf from '@tensorflow/tfjs';
import type { MoEWeights } from '../moe/moe.js';
import { checkWeightSizes } from '../validate.js';
import type { ResolvedModelConfig } from './config.js';
import { isMoEBlock, modelWeightSpecs, weightSeed } from './specs.js';

export { isMoEBlock, modelWeightSpecs, weightSeed, type ModelWeightSpec } from './specs.js';

/** The model's variables by checkpoint name ('embed', 'blocks.0.attn.wq', ..., 'head'). */
export type ModelWeights = Record<string, tf.Variable>;

/** Fresh variables from the config's seed, each weight's draw seeded by its name (weightSeed). */
export function createModelWeights(c: ResolvedModelConfig): ModelWeights {
  const specs = modelWeightSpecs(c);
  checkWeightSizes('model config', specs);
  const weights: ModelWeights = {};
  try {
    specs.forEach((s) => {
      const value = tf.tidy(() =>
        s.init === 'ones' ? tf.ones(s.shape)
          : s.init === 'zeros' ? tf.zeros(s.shape)
            : tf.truncatedNormal(s.shape, 0, s.std, 'float32', weightSeed(c.seed, s.name)),
      );
      weights[s.name] = tf.variable(value, s.trainable);
      value.dispose();
    });
  } catch (e) {
    tf.dispose(Object.values(weights)); // an allocation failed part way: nothing is left behind
    throw e;
  }
  return weights;
}

type T1 = tf.Tensor1D;
type T2 = tf.Tensor2D;

/** One block's attention weights, by the DeepSeek-V2 paper's names. */
export type AttentionWeights =
  | { kind: 'mha'; wq: T2; wk: T2; wv: T2; wo: T2 }
  | {
    kind: 'mla';
    /** The query: wq [d, H nope] without compression (qLoraRank 0), else wDq [d, dq], qNorm [dq], wUq [dq, H nope]. */
    wq: T2 | null; wDq: T2 | null; qNorm: T1 | null; wUq: T2 | null;
    wQr: T2; wDkv: T2; kvNorm: T1; wKr: T2; wUk: T2; wUv: T2; wo: T2;
  };

/** A dense SwiGLU FFN: w1, w3 [d, h], w2 [h, d]. */
export interface FfnWeights {
  w1: T2;
  w3: T2;
  w2: T2;
}

/** One block's weights: exactly one of ffn and moe is set. */
export interface BlockWeights {
  attnNorm: T1;
  attn: AttentionWeights;
  ffnNorm: T1;
  ffn: FfnWeights | null;
  moe: MoEWeights | null;
}

/** One multi-token-prediction module (DeepSeek-V3): two input norms, the projection, a block, the head's norm. */
export interface MtpWeights {
  /** RMSNorm of the embedding of the token k ahead, and of the previous depth's hidden state: [d] each. */
  enorm: T1;
  hnorm: T1;
  /** [enorm(embedding); hnorm(hidden)] [2d] -> d: [2d, d]. */
  ehProj: T2;
  block: BlockWeights;
  /** The norm before the shared output head: [d]. */
  headNorm: T1;
}

/** The model's weights as typed views (the same variables as the flat, checkpoint-named record). */
export interface ModelView {
  embed: T2;
  blocks: BlockWeights[];
  finalNorm: T1;
  head: T2;
  /** The MTP modules, depth 1 first (empty when mtpDepth is 0). */
  mtp: MtpWeights[];
}

/** Typed per-block views of the flat record: the one place that knows the checkpoint names' layout. */
export function modelView(w: ModelWeights, c: ResolvedModelConfig): ModelView {
  const get = <T extends tf.Tensor>(name: string): T => {
    const t = w[name];
    if (!t) throw new Error(`model weights: expected a weight '${name}', but there is none.`);
    return t as unknown as T;
  };
  const maybe = <T extends tf.Tensor>(name: string): T | null => (w[name] as unknown as T | undefined) ?? null;
  const block = (i: number): BlockWeights => {
    const p = `blocks.${i}`;
    const a = `${p}.attn`;
    const attn: AttentionWeights = c.attention === 'mha'
      ? { kind: 'mha', wq: get(`${a}.wq`), wk: get(`${a}.wk`), wv: get(`${a}.wv`), wo: get(`${a}.wo`) }
      : {
        kind: 'mla', wq: maybe(`${a}.wq`), wDq: maybe(`${a}.wDq`), qNorm: maybe(`${a}.qNorm`), wUq: maybe(`${a}.wUq`),
        wQr: get(`${a}.wQr`), wDkv: get(`${a}.wDkv`), kvNorm: get(`${a}.kvNorm`), wKr: get(`${a}.wKr`),
        wUk: get(`${a}.wUk`), wUv: get(`${a}.wUv`), wo: get(`${a}.wo`),
      };
    const moe: MoEWeights | null = isMoEBlock(c, i)
      ? {
        routerKernel: get(`${p}.moe.routerKernel`), expertW1: get(`${p}.moe.expertW1`), expertW3: get(`${p}.moe.expertW3`),
        expertW2: get(`${p}.moe.expertW2`), sharedW1: maybe(`${p}.moe.sharedW1`), sharedW3: maybe(`${p}.moe.sharedW3`),
        sharedW2: maybe(`${p}.moe.sharedW2`), sharedGate: maybe<T2>(`${p}.moe.sharedGate`),
        expertBias: maybe(`${p}.moe.expertBias`),
      }
      : null;
    const ffn = moe ? null : { w1: get<T2>(`${p}.ffn.w1`), w3: get<T2>(`${p}.ffn.w3`), w2: get<T2>(`${p}.ffn.w2`) };
    return { attnNorm: get(`${p}.attnNorm`), attn, ffnNorm: get(`${p}.ffnNorm`), ffn, moe };
  };
  const blocks = Array.from({ length: c.nLayers }, (_, i) => block(i));
  const mtp = Array.from({ length: c.mtpDepth }, (_, k): MtpWeights => {
    const i = c.nLayers + k;
    const p = `blocks.${i}`;
    return {
      enorm: get(`${p}.enorm`), hnorm: get(`${p}.hnorm`), ehProj: get(`${p}.ehProj`), block: block(i),
      headNorm: get(`${p}.headNorm`),
    };
  });
  return { embed: get('embed'), blocks, finalNorm: get('finalNorm'), head: get('head'), mtp };
}

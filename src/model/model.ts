/**
 * The DeepSeek-style decoder: token embedding, nLayers pre-norm blocks (attention, then a dense SwiGLU FFN for
 * the first nDenseLayers and the DeepSeekMoE layer after), a final RMSNorm and the output head.
 */
import * as tf from '@tensorflow/tfjs';
import type { RoutingStats } from '../moe/balance.js';
import { swiGLU } from '../moe/experts.js';
import { linear } from '../kernels.js';
import { moeForward, type MoEWeights } from '../moe/moe.js';
import { attention, attentionStep, cacheWidth, type LayerCache } from './attention.js';
import { plainModelConfig, resolveModelConfig, type ModelConfig, type ModelConfigInput, type ResolvedModelConfig } from './config.js';
import { crossEntropy, embed, rmsNorm } from './layers.js';
import { createModelWeights, isMoEBlock, modelWeightSpecs, type ModelWeights } from './weights.js';

/** What one MoE block reports from a forward pass (tensors; nothing is read back). */
export interface MoEBlockReport {
  /** Block index in the model. */
  block: number;
  stats: RoutingStats;
  /** Tokens each expert was chosen for: [E]. */
  expertCounts: tf.Tensor1D;
}

export interface ForwardOutput {
  /** Next-token logits: [B * S, V]. */
  logits: tf.Tensor2D;
  /** The MoE blocks' balance losses, summed (a scalar 0 without MoE blocks). */
  balanceLoss: tf.Scalar;
  moe: MoEBlockReport[];
}

/** The MoE weights of block i, viewed out of the model's flat weight record. */
export function moeWeightsOf(w: ModelWeights, i: number): MoEWeights {
  const get = (n: string) => (w[`blocks.${i}.moe.${n}`] as tf.Tensor | undefined) ?? null;
  return {
    routerKernel: get('routerKernel'), expertW1: get('expertW1'), expertW3: get('expertW3'), expertW2: get('expertW2'),
    sharedW1: get('sharedW1'), sharedW3: get('sharedW3'), sharedW2: get('sharedW2'), expertBias: get('expertBias'),
  } as MoEWeights;
}

/** The dense SwiGLU FFN of block i: x [N, d] -> [N, d]. */
function denseFfn(x: tf.Tensor2D, w: ModelWeights, i: number): tf.Tensor2D {
  const W = (n: string) => w[`blocks.${i}.ffn.${n}`] as tf.Tensor2D;
  return swiGLU(x, W('w1'), W('w3'), W('w2'));
}

function checkIds(ids: tf.Tensor, c: ResolvedModelConfig): void {
  if (!(ids instanceof tf.Tensor) || ids.rank !== 2 || ids.shape[1] === undefined) throw new Error(`model input: expected token ids of shape [batch, seq], but got ${ids instanceof tf.Tensor ? `shape [${ids.shape}]` : typeof ids}.`);
  if (ids.dtype !== 'int32') throw new Error(`model input: expected int32 token ids, but got ${ids.dtype}.`);
  if (ids.shape[1]! > c.maxSeqLen) throw new Error(`model input: expected at most maxSeqLen = ${c.maxSeqLen} tokens per sequence, but got ${ids.shape[1]}.`);
}

export interface ForwardOptions {
  /** Enables router jitter. */
  training?: boolean;
}

/** The whole model on ids [B, S] (int32). */
export function forward(w: ModelWeights, c: ResolvedModelConfig, ids: tf.Tensor2D, options: ForwardOptions = {}): ForwardOutput {
  checkIds(ids, c);
  const [B, S] = ids.shape;
  const d = c.dModel;
  let h = tf.reshape(embed(w.embed as tf.Tensor2D, tf.reshape(ids, [B * S])), [B * S, d]) as tf.Tensor2D;
  let balanceLoss: tf.Scalar = tf.scalar(0);
  const moe: MoEBlockReport[] = [];
  for (let i = 0; i < c.nLayers; i++) {
    const p = `blocks.${i}`;
    const a = rmsNorm(h, w[`${p}.attnNorm`] as tf.Tensor1D, c.normEps);
    h = tf.add(h, attention(tf.reshape(a, [B, S, d]), w, c, `${p}.attn`));
    const f = rmsNorm(h, w[`${p}.ffnNorm`] as tf.Tensor1D, c.normEps) as tf.Tensor2D;
    if (isMoEBlock(c, i)) {
      const out = moeForward(tf.reshape(f, [B, S, d]), moeWeightsOf(w, i), c.moeConfig, { training: options.training ?? false });
      h = tf.add(h, tf.reshape(out.output, [B * S, d]));
      balanceLoss = tf.add(balanceLoss, out.losses.total);
      moe.push({ block: i, stats: out.stats, expertCounts: out.expertCounts });
    } else {
      h = tf.add(h, denseFfn(f, w, i));
    }
  }
  const logits = linear(rmsNorm(h, w.finalNorm as tf.Tensor1D, c.normEps) as tf.Tensor2D, w.head as tf.Tensor2D);
  return { logits, balanceLoss, moe };
}

/** Next-token cross-entropy of ids [B, S] against targets [B, S]. */
export function languageModelLoss(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return crossEntropy(logits, tf.reshape(targets, [-1]));
}

/** Per-block caches of one sequence being generated, and how many positions they hold. */
export interface KVCache {
  layers: LayerCache[];
  length: number;
}

/**
 * Logits for new tokens ids [S] (int32) of one sequence, continuing `cache` (null to start): the incremental
 * forward that generation uses. Returns logits [S, V] and the extended cache; the old one is disposed.
 */
export function forwardCached(w: ModelWeights, c: ResolvedModelConfig, ids: tf.Tensor1D, cache: KVCache | null): { logits: tf.Tensor2D; cache: KVCache } {
  const S = ids.shape[0];
  const offset = cache?.length ?? 0;
  if (offset + S > c.maxSeqLen) throw new Error(`forwardCached: expected at most maxSeqLen = ${c.maxSeqLen} positions, but got ${offset + S}.`);
  const layers: LayerCache[] = [];
  const result = tf.tidy(() => {
    let h = embed(w.embed as tf.Tensor2D, ids); // [S, d]
    for (let i = 0; i < c.nLayers; i++) {
      const p = `blocks.${i}`;
      const a = rmsNorm(h, w[`${p}.attnNorm`] as tf.Tensor1D, c.normEps) as tf.Tensor2D;
      const step = attentionStep(a, w, c, `${p}.attn`, cache?.layers[i] ?? null, offset);
      layers.push(step.cache);
      for (const t of Object.values(step.cache)) if (t instanceof tf.Tensor) tf.keep(t);
      h = tf.add(h, step.y);
      const f = rmsNorm(h, w[`${p}.ffnNorm`] as tf.Tensor1D, c.normEps) as tf.Tensor2D;
      h = tf.add(h, isMoEBlock(c, i) ? (moeForward(f, moeWeightsOf(w, i), c.moeConfig).output as tf.Tensor2D) : denseFfn(f, w, i));
    }
    return linear(rmsNorm(h, w.finalNorm as tf.Tensor1D, c.normEps) as tf.Tensor2D, w.head as tf.Tensor2D);
  });
  if (cache) disposeCache(cache);
  return { logits: result, cache: { layers, length: offset + S } };
}

export function disposeCache(cache: KVCache): void {
  for (const layer of cache.layers) for (const t of Object.values(layer)) if (t instanceof tf.Tensor) t.dispose();
}

/** The model: a resolved config and its variables. */
export class DeepSeekLM {
  readonly config: ResolvedModelConfig;
  readonly weights: ModelWeights;

  constructor(input: ModelConfigInput) {
    this.config = resolveModelConfig(input);
    this.weights = createModelWeights(this.config);
  }

  /** Weight names in checkpoint order. */
  get weightNames(): string[] {
    return modelWeightSpecs(this.config).map((s) => s.name);
  }

  /** The plain JSON config (for checkpoints, workers and presets). */
  get plainConfig(): ModelConfig {
    return plainModelConfig(this.config);
  }

  forward(ids: tf.Tensor2D, options: ForwardOptions = {}): ForwardOutput {
    return forward(this.weights, this.config, ids, options);
  }

  /**
   * KV-cache bytes per generated token (float32, all layers): MLA caches the latent and the rotary key,
   * MHA every head's key and value.
   */
  get cacheBytesPerToken(): number {
    return 4 * this.config.nLayers * cacheWidth(this.config);
  }

  dispose(): void {
    for (const v of Object.values(this.weights)) v.dispose();
  }
}

/**
 * The DeepSeek-style decoder: token embedding, nLayers pre-norm blocks (attention, then a dense SwiGLU FFN for
 * the first nDenseLayers and the DeepSeekMoE layer after), a final RMSNorm and the output head.
 */
import * as tf from '@tensorflow/tfjs';
import type { RoutingStats } from '../moe/balance.js';
import { swiGLU } from '../moe/experts.js';
import { linear } from '../kernels.js';
import { mixSeeds } from '../rng.js';
import { moeForward } from '../moe/moe.js';
import { attention, attentionStep, cacheWidth, type LayerCache } from './attention.js';
import { plainModelConfig, resolveModelConfig, type ModelConfig, type ModelConfigInput, type ResolvedModelConfig } from './config.js';
import { crossEntropy, embed, rmsNorm } from './layers.js';
import {
  createModelWeights, modelView, modelWeightSpecs, type AttentionWeights, type ModelView, type ModelWeights,
} from './weights.js';

/** What one MoE block reports from a forward pass (tensors; nothing is read back). */
export interface MoEBlockReport {
  /** Block index in the model. */
  block: number;
  stats: RoutingStats;
  /** Tokens each expert was chosen for: [E]. */
  expertCounts: tf.Tensor1D;
  /**
   * NaN or infinite values in the block's MoE input (a scalar; 0 when checkFinite is off). The model reads
   * nothing back itself: read these with your other values and pass them to checkFiniteInputs.
   */
  nonFiniteInputs: tf.Scalar;
}

/** Throws naming the first MoE block whose input held non-finite values; `counts` are their nonFiniteInputs, read. */
export function checkFiniteInputs(blocks: number[], counts: ArrayLike<number>): void {
  blocks.forEach((block, i) => {
    const n = counts[i] ?? 0;
    if (n > 0) throw new Error(`DeepSeekMoE input of block ${block}: expected finite values, but got ${n} NaN or infinite.`);
  });
}

/** What a forward pass returns (tensors; nothing is read back). */
export interface ForwardOutput {
  /** Next-token logits: [B * S, V]. */
  logits: tf.Tensor2D;
  /** The MoE blocks' balance losses, summed (a scalar 0 without MoE blocks). */
  balanceLoss: tf.Scalar;
  moe: MoEBlockReport[];
}

function checkIds(ids: tf.Tensor, c: ResolvedModelConfig): void {
  if (!(ids instanceof tf.Tensor) || ids.rank !== 2 || ids.shape[1] === undefined) {
    throw new Error(`model input: expected token ids of shape [batch, seq], but got ` +
      `${ids instanceof tf.Tensor ? `shape [${ids.shape}]` : typeof ids}.`);
  }
  if (ids.dtype !== 'int32') throw new Error(`model input: expected int32 token ids, but got ${ids.dtype}.`);
  if (ids.shape[1]! > c.maxSeqLen) {
    throw new Error(`model input: expected at most maxSeqLen = ${c.maxSeqLen} tokens per sequence, but got ${ids.shape[1]}.`);
  }
}

/** Options of forward (and of DeepSeekLM.forward). */
export interface ForwardOptions {
  /** Enables router jitter. */
  training?: boolean;
  /** Seeds router jitter (each block draws from its own seed mixed from it), so a run repeats and resumes bit for bit. */
  jitterSeed?: number;
}

/** How a block attends: over whole sequences, or for a sequence's new tokens against its cache. */
type Attend = (i: number, a: tf.Tensor2D, w: AttentionWeights) => tf.Tensor2D;

/**
 * The blocks, shared by the full and the KV-cached forward: h [B S, d] through attention (by `attend`) and the
 * dense FFN or the DeepSeekMoE layer, each pre-norm with a residual. MoE inputs go in as [B, S, d] so the
 * sequence-wise balance loss sees the sequences; nothing is read back (the finite check is deferred).
 */
function runBlocks(view: ModelView, c: ResolvedModelConfig, h: tf.Tensor2D, B: number, attend: Attend, options: ForwardOptions) {
  const d = c.dModel;
  const S = h.shape[0] / B;
  let balanceLoss: tf.Scalar = tf.scalar(0);
  const moe: MoEBlockReport[] = [];
  view.blocks.forEach((w, i) => {
    h = tf.add(h, attend(i, rmsNorm(h, w.attnNorm, c.normEps) as tf.Tensor2D, w.attn));
    const f = rmsNorm(h, w.ffnNorm, c.normEps) as tf.Tensor2D;
    if (w.moe) {
      const jitterSeed = options.jitterSeed === undefined ? undefined : mixSeeds(options.jitterSeed, i);
      const moeOptions = { training: options.training ?? false, jitterSeed, deferFiniteCheck: true };
      const out = moeForward(tf.reshape(f, [B, S, d]), w.moe, c.moeConfig, moeOptions);
      h = tf.add(h, tf.reshape(out.output, [B * S, d]));
      balanceLoss = tf.add(balanceLoss, out.losses.total);
      moe.push({ block: i, stats: out.stats, expertCounts: out.expertCounts, nonFiniteInputs: out.nonFiniteInputs! });
    } else {
      h = tf.add(h, swiGLU(f, w.ffn!.w1, w.ffn!.w3, w.ffn!.w2));
    }
  });
  const logits = linear(rmsNorm(h, view.finalNorm, c.normEps) as tf.Tensor2D, view.head);
  return { logits, balanceLoss, moe };
}

/** The typed views of `w`, built once by DeepSeekLM (and here for a flat record): no lookup per step or token. */
const viewOf = (w: ModelWeights | ModelView, c: ResolvedModelConfig): ModelView =>
  Array.isArray((w as ModelView).blocks) ? (w as ModelView) : modelView(w as ModelWeights, c);

/** The whole model on ids [B, S] (int32); `w` is the flat record or its views (DeepSeekLM.view). */
export function forward(
  w: ModelWeights | ModelView, c: ResolvedModelConfig, ids: tf.Tensor2D, options: ForwardOptions = {},
): ForwardOutput {
  checkIds(ids, c);
  const [B, S] = ids.shape;
  const view = viewOf(w, c);
  const h = tf.reshape(embed(view.embed, tf.reshape(ids, [B * S])), [B * S, c.dModel]) as tf.Tensor2D;
  const attend: Attend = (_i, a, attn) => attention(tf.reshape(a, [B, S, c.dModel]), attn, c);
  return runBlocks(view, c, h, B, attend, options);
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
 * forward that generation uses, on the same block code as `forward`. Returns what `forward` returns for the new
 * tokens (logits [S, V], the MoE blocks' reports) and the extended cache; the old one is disposed.
 */
export function forwardCached(
  w: ModelWeights | ModelView, c: ResolvedModelConfig, ids: tf.Tensor1D, cache: KVCache | null,
): ForwardOutput & { cache: KVCache } {
  const S = ids.shape[0];
  const offset = cache?.length ?? 0;
  if (offset + S > c.maxSeqLen) {
    throw new Error(`forwardCached: expected at most maxSeqLen = ${c.maxSeqLen} positions, but got ${offset + S}.`);
  }
  const view = viewOf(w, c);
  const layers: LayerCache[] = [];
  const attend: Attend = (i, a, attn) => {
    const step = attentionStep(a, attn, c, cache?.layers[i] ?? null, offset);
    layers.push(step.cache);
    for (const t of Object.values(step.cache)) if (t instanceof tf.Tensor) tf.keep(t);
    return step.y;
  };
  const run = () => runBlocks(view, c, embed(view.embed, ids) as tf.Tensor2D, 1, attend, {});
  const out = tf.tidy(run as unknown as () => tf.TensorContainerObject) as unknown as ForwardOutput;
  if (cache) disposeCache(cache);
  return { ...out, cache: { layers, length: offset + S } };
}

/** Frees a KV cache's tensors. */
export function disposeCache(cache: KVCache): void {
  for (const layer of cache.layers) for (const t of Object.values(layer)) if (t instanceof tf.Tensor) t.dispose();
}

/** The model: a resolved config and its variables. */
export class DeepSeekLM {
  readonly config: ResolvedModelConfig;
  /** The variables by checkpoint name. */
  readonly weights: ModelWeights;
  /** The same variables as typed per-block views. */
  readonly view: ModelView;

  constructor(input: ModelConfigInput) {
    this.config = resolveModelConfig(input);
    this.weights = createModelWeights(this.config);
    this.view = modelView(this.weights, this.config);
  }

  /** Weight names in checkpoint order. */
  get weightNames(): string[] {
    return modelWeightSpecs(this.config).map((s) => s.name);
  }

  /** The plain JSON config (for checkpoints, workers and presets). */
  get plainConfig(): ModelConfig {
    return plainModelConfig(this.config);
  }

  /**
   * Sets every weight from float32 values by checkpoint name (a checkpoint's, an imported folder's). All names and
   * sizes are checked before any weight changes.
   */
  setWeights(values: Map<string, Float32Array>): void {
    const specs = modelWeightSpecs(this.config);
    for (const s of specs) {
      const v = values.get(s.name);
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (!v || v.length !== n) {
        throw new Error(`DeepSeekLM.setWeights: expected '${s.name}' of shape [${s.shape}] (${n} values), but got ` +
          `${v ? `${v.length} values` : 'none'}.`);
      }
    }
    for (const s of specs) {
      const v = this.weights[s.name]!;
      tf.tidy(() => v.assign(tf.tensor(values.get(s.name)!, s.shape, 'float32')));
    }
  }

  forward(ids: tf.Tensor2D, options: ForwardOptions = {}): ForwardOutput {
    return forward(this.view, this.config, ids, options);
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

/**
 * The DeepSeek-style decoder: token embedding, nLayers pre-norm blocks (attention, then a dense SwiGLU FFN for
 * the first nDenseLayers and the DeepSeekMoE layer after), a final RMSNorm and the output head.
 */
import * as tf from '@tensorflow/tfjs';
import type { RoutingStats } from '../moe/balance.js';
import { swiGLU } from '../moe/experts.js';
import { linear } from '../backend-ops.js';
import { mixSeeds } from '../rng.js';
import { moeForward } from '../moe/moe.js';
import { attention, attentionStep, cacheWidth, type LayerCache } from './attention.js';
import { plainModelConfig, resolveModelConfig, type ModelConfig, type ModelConfigInput, type ResolvedModelConfig } from './config.js';
import { crossEntropy, embed, rmsNorm } from './layers.js';
import type { BalanceLoad, TokenRoutes } from '../moe/moe.js';
import {
  createModelWeights, modelView, modelWeightSpecs, type AttentionWeights, type BlockWeights, type ModelView,
  type ModelWeights,
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
  /** With ForwardOptions.tokenRoutes: each token's experts, gates, drops and shared share (routing-trace.ts). */
  routes?: TokenRoutes;
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
  /** The final hidden state after the final norm, what the head reads and the first MTP module takes: [B * S, d]. */
  hidden: tf.Tensor2D;
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
  /** Enables router jitter and capacity drops. */
  training?: boolean;
  /** Seeds router jitter (each block draws from its own seed mixed from it), so a run repeats and resumes bit for bit. */
  jitterSeed?: number;
  /**
   * Per MoE block index, the load its balance losses count f_i from (balanceScope 'globalBatch' under gradient
   * accumulation: the whole global batch's). Blocks not listed use their own call's.
   */
  balanceLoads?: Map<number, BalanceLoad>;
  /** Each MoE block's report also carries every token's routes (MoEBlockReport.routes). */
  tokenRoutes?: boolean;
}

/** How a block attends: over whole sequences, or for a sequence's new tokens against its cache. */
type Attend = (i: number, a: tf.Tensor2D, w: AttentionWeights) => tf.Tensor2D;

/**
 * Block i, shared by the full and the KV-cached forward and by the MTP modules: h [B S, d] through attention (by
 * `attend`) and the dense FFN or the DeepSeekMoE layer, each pre-norm with a residual. MoE inputs go in as
 * [B, S, d] so the sequence-wise balance loss sees the sequences; nothing is read back (the finite check is
 * deferred). Returns the new h and, for a MoE block, its balance loss and report.
 */
function applyBlock(
  w: BlockWeights, i: number, c: ResolvedModelConfig, h: tf.Tensor2D, B: number, attend: Attend,
  options: ForwardOptions,
): { h: tf.Tensor2D; balanceLoss: tf.Scalar | null; report: MoEBlockReport | null } {
  const d = c.dModel;
  const S = h.shape[0] / B;
  h = tf.add(h, attend(i, rmsNorm(h, w.attnNorm, c.normEps) as tf.Tensor2D, w.attn));
  const f = rmsNorm(h, w.ffnNorm, c.normEps) as tf.Tensor2D;
  if (!w.moe) return { h: tf.add(h, swiGLU(f, w.ffn!.w1, w.ffn!.w3, w.ffn!.w2)), balanceLoss: null, report: null };
  const jitterSeed = options.jitterSeed === undefined ? undefined : mixSeeds(options.jitterSeed, i);
  const balanceLoad = options.balanceLoads?.get(i);
  const moeOptions = {
    training: options.training ?? false, jitterSeed, deferFiniteCheck: true, balanceLoad,
    tokenRoutes: options.tokenRoutes ?? false,
  };
  const out = moeForward(tf.reshape(f, [B, S, d]), w.moe, c.moeConfig, moeOptions);
  const report: MoEBlockReport = {
    block: i, stats: out.stats, expertCounts: out.expertCounts, nonFiniteInputs: out.nonFiniteInputs!,
    ...(out.routes ? { routes: out.routes } : {}),
  };
  return { h: tf.add(h, tf.reshape(out.output, [B * S, d])), balanceLoss: out.losses.total, report };
}

/** The main model's blocks, the final norm and the head (see applyBlock). */
function runBlocks(
  view: ModelView, c: ResolvedModelConfig, h: tf.Tensor2D, B: number, attend: Attend, options: ForwardOptions,
) {
  let balanceLoss: tf.Scalar = tf.scalar(0);
  const moe: MoEBlockReport[] = [];
  view.blocks.forEach((w, i) => {
    const out = applyBlock(w, i, c, h, B, attend, options);
    h = out.h;
    if (out.balanceLoss) balanceLoss = tf.add(balanceLoss, out.balanceLoss);
    if (out.report) moe.push(out.report);
  });
  const hidden = rmsNorm(h, view.finalNorm, c.normEps) as tf.Tensor2D;
  return { logits: linear(hidden, view.head), hidden, balanceLoss, moe };
}

/**
 * MTP module `m` (depth m + 1) on hidden [B S, d] (the main model's normed final state, or the previous module's
 * output) and the embeddings of `ahead` [B S] (the token k ahead of each position): h' = ehProj [enorm(emb);
 * hnorm(h)], then its block. Returns the block output (the next depth's input) and its logits through headNorm
 * and the shared head.
 */
function applyMtp(
  view: ModelView, c: ResolvedModelConfig, m: number, hidden: tf.Tensor2D, ahead: tf.Tensor1D, B: number,
  attend: Attend, options: ForwardOptions,
) {
  const w = view.mtp[m]!;
  const e = rmsNorm(embed(view.embed, ahead), w.enorm, c.normEps);
  const joined = tf.concat([e, rmsNorm(hidden, w.hnorm, c.normEps)], 1) as tf.Tensor2D; // [B S, 2d]
  const out = applyBlock(w.block, c.nLayers + m, c, linear(joined, w.ehProj), B, attend, options);
  const logits = linear(rmsNorm(out.h, w.headNorm, c.normEps) as tf.Tensor2D, view.head);
  return { ...out, logits };
}

/** What the MTP modules add to a training forward (tensors). */
export interface MtpOutput {
  /** lambda / D * sum_k L_MTP^k: add it to the loss. */
  loss: tf.Scalar;
  /** L_MTP^k per depth (cross-entropy of the token k + 1 ahead), depth 1 first. */
  depthLosses: tf.Scalar[];
  /** Per depth k, the logits [B (S - k), V] of token i + k + 1 at each position i < S - k (row b (S - k) + i). */
  depthLogits: tf.Tensor2D[];
  /** The MoE blocks' balance losses, summed. */
  balanceLoss: tf.Scalar;
  /** Reports of the modules' MoE blocks (block index nLayers + k - 1). */
  moe: MoEBlockReport[];
}

/**
 * The MTP loss of a training batch (DeepSeek-V3 section 2.2): depth k sees positions i < S - k, pairs the
 * previous depth's state at i with the embedding of t_(i+k) and predicts t_(i+k+1). `hidden` is the main
 * forward's [B S, d]; `targets` [B, S] are the next tokens (targets[i] = t_(i+1)), so t_(i+k) = targets[i + k - 1].
 */
export function mtpForward(
  w: ModelWeights | ModelView, c: ResolvedModelConfig, hidden: tf.Tensor2D, targets: tf.Tensor2D,
  options: ForwardOptions = {},
): MtpOutput {
  const view = viewOf(w, c);
  const D = c.mtpDepth;
  const [B, S] = targets.shape;
  if (D === 0) throw new Error('mtpForward: expected a model with mtpDepth >= 1, but mtpDepth is 0.');
  if (S <= D) throw new Error(`mtpForward: expected sequences longer than mtpDepth (${D}), but got ${S} tokens.`);
  const d = c.dModel;
  let h = tf.reshape(hidden, [B, S, d]) as tf.Tensor3D;
  let balanceLoss: tf.Scalar = tf.scalar(0);
  const depthLosses: tf.Scalar[] = [];
  const depthLogits: tf.Tensor2D[] = [];
  const moe: MoEBlockReport[] = [];
  for (let k = 1; k <= D; k++) {
    const n = S - k; // positions with a token k + 1 ahead
    const prev = tf.reshape(tf.slice(h, [0, 0, 0], [B, n, d]), [B * n, d]) as tf.Tensor2D;
    const ahead = tf.reshape(tf.slice(targets, [0, k - 1], [B, n]), [B * n]) as tf.Tensor1D;
    const attend: Attend = (_i, a, attn) => attention(tf.reshape(a, [B, n, d]), attn, c);
    const out = applyMtp(view, c, k - 1, prev, ahead, B, attend, options);
    depthLosses.push(languageModelLoss(out.logits, tf.slice(targets, [0, k], [B, n]) as tf.Tensor2D));
    depthLogits.push(out.logits);
    if (out.balanceLoss) balanceLoss = tf.add(balanceLoss, out.balanceLoss);
    if (out.report) moe.push(out.report);
    h = tf.reshape(out.h, [B, n, d]) as tf.Tensor3D;
  }
  const loss = tf.mul(c.mtpLambda / D, depthLosses.reduce((a, b) => tf.add(a, b))) as tf.Scalar;
  return { loss, depthLosses, depthLogits, balanceLoss, moe };
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

/**
 * The first MTP module on new positions of one sequence, continuing its own `cache` (null to start): hidden
 * [S, d] (the main model's normed states at those positions) and `ahead` [S] (the token after each). Returns the
 * logits [S, V] of the token two ahead (the draft) and the extended cache; the old one is disposed.
 */
export function mtpCached(
  w: ModelWeights | ModelView, c: ResolvedModelConfig, hidden: tf.Tensor2D, ahead: tf.Tensor1D, cache: KVCache | null,
): { logits: tf.Tensor2D; cache: KVCache } {
  if (c.mtpDepth === 0) throw new Error('mtpCached: expected a model with mtpDepth >= 1, but mtpDepth is 0.');
  const S = ahead.shape[0];
  const offset = cache?.length ?? 0;
  if (offset + S > c.maxSeqLen) {
    throw new Error(`mtpCached: expected at most maxSeqLen = ${c.maxSeqLen} positions, but got ${offset + S}.`);
  }
  const view = viewOf(w, c);
  let layer: LayerCache | null = null;
  const attend: Attend = (_i, a, attn) => {
    const step = attentionStep(a, attn, c, cache?.layers[0] ?? null, offset);
    layer = step.cache;
    for (const t of Object.values(step.cache)) if (t instanceof tf.Tensor) tf.keep(t);
    return step.y;
  };
  const logits = tf.tidy(() => applyMtp(view, c, 0, hidden, ahead, 1, attend, {}).logits);
  if (cache) disposeCache(cache);
  return { logits, cache: { layers: [layer!], length: offset + S } };
}

/** The first `length` positions of a cache (a rejected draft's are dropped); the old cache is disposed. */
export function truncateCache(cache: KVCache, length: number): KVCache {
  if (length === cache.length) return cache;
  const layers = cache.layers.map((layer): LayerCache => (layer.kind === 'mha'
    ? {
      kind: 'mha', k: tf.slice(layer.k, [0, 0, 0], [-1, length, -1]), v: tf.slice(layer.v, [0, 0, 0], [-1, length, -1]),
    }
    : {
      kind: 'mla', cKv: tf.slice(layer.cKv, [0, 0], [length, -1]), kRope: tf.slice(layer.kRope, [0, 0], [length, -1]),
    }));
  disposeCache(cache);
  return { layers, length };
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

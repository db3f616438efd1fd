/**
 * One optimizer step's gradients over a global batch, in micro-batches (gradient accumulation): every loss of the
 * model (next-token, balance, MTP) per micro-batch, scaled by its share, summed by gradientStep. With balanceScope
 * 'globalBatch' the balance losses count f_i over the whole global batch, so the gradients equal one pass over
 * the concatenated batch however it is split (Megatron shipped this 1 / dp too small, PR #3769; tested here).
 */
import * as tf from '@tensorflow/tfjs';
import {
  languageModelLoss, mtpForward, type DeepSeekLM, type ForwardOptions, type MoEBlockReport,
} from '../model/model.js';
import type { ResolvedModelConfig } from '../model/config.js';
import type { ModelView } from '../model/weights.js';
import type { BalanceLoad, MoEWeights } from '../moe/moe.js';
import type { Batch } from '../data/dataset.js';
import { mixSeeds } from '../rng.js';
import { gradientStep, type GradientStep } from './step.js';

/** B sequences of S tokens: ids and their next tokens, flat [B S] (the dataset's batch, or part of one). */
export type TokenBatch = Pick<Batch, 'ids' | 'targets'>;

/** Every loss of one forward pass (tensors). */
export interface BatchLosses {
  /** Next-token cross-entropy. */
  lmLoss: tf.Scalar;
  /** Balance losses of every MoE block, the MTP modules' included. */
  balanceLoss: tf.Scalar;
  /** L_MTP^k per depth (empty without MTP). */
  mtpLosses: tf.Scalar[];
  /** lmLoss + balanceLoss + lambda / D sum_k L_MTP^k: what is differentiated. */
  total: tf.Scalar;
  /** Every MoE block's report, main blocks first. */
  moe: MoEBlockReport[];
}

/** A MoE block's layer weights: a main block's, or an MTP module's (blocks nLayers..). */
export function moeBlockWeights(view: ModelView, block: number): MoEWeights {
  const w = block < view.blocks.length ? view.blocks[block]! : view.mtp[block - view.blocks.length]!.block;
  if (!w.moe) throw new Error(`moeBlockWeights: expected block ${block} to be a MoE block, but it is dense.`);
  return w.moe;
}

/** The forward pass and every loss of B sequences of S tokens. */
export function batchLosses(
  model: DeepSeekLM, batch: TokenBatch, B: number, S: number, options: ForwardOptions,
): BatchLosses {
  const ids = tf.tensor2d(batch.ids, [B, S], 'int32');
  const targets = tf.tensor2d(batch.targets, [B, S], 'int32');
  const out = model.forward(ids, options);
  const lmLoss = languageModelLoss(out.logits, targets);
  if (model.config.mtpDepth === 0) {
    return {
      lmLoss, balanceLoss: out.balanceLoss, mtpLosses: [], total: tf.add(lmLoss, out.balanceLoss), moe: out.moe,
    };
  }
  const mtp = mtpForward(model.view, model.config, out.hidden, targets, options);
  const balanceLoss = tf.add(out.balanceLoss, mtp.balanceLoss) as tf.Scalar;
  const total = tf.add(tf.add(lmLoss, balanceLoss), mtp.loss) as tf.Scalar;
  return { lmLoss, balanceLoss, mtpLosses: mtp.depthLosses, total, moe: [...out.moe, ...mtp.moe] };
}

/** Options of accumulatedStep. */
export interface AccumulateOptions {
  /** Micro-batches the global batch is split into (consecutive sequences); must divide its batch size. */
  microBatches: number;
  /** Router jitter's seed: micro-batch 0 draws from it, micro-batch m from it mixed with m. */
  jitterSeed?: number;
}

/**
 * The gradients of one optimizer step on `batch` (B = batch.ids.length / S sequences): each micro-batch's total
 * loss times 1 / microBatches, summed. `readouts(losses, m)` picks what micro-batch m reports (averaged over the
 * micro-batches by gradientStep); every MoE block's expert counts are kept, summed: the global batch's load, which
 * the bias update reads. One read (GradientStep.read).
 */
export function accumulatedStep(
  model: DeepSeekLM, trainable: Record<string, tf.Variable>, batch: TokenBatch, S: number, options: AccumulateOptions,
  readouts: (losses: BatchLosses, m: number) => Record<string, tf.Tensor>,
): GradientStep {
  const N = options.microBatches;
  const B = batch.ids.length / S;
  if (!Number.isInteger(N) || N < 1 || B % N !== 0) {
    throw new Error(`accumulatedStep: expected microBatches to divide the batch's ${B} sequences, but got ${N}.`);
  }
  const b = B / N;
  const micro = Array.from({ length: N }, (_, m): TokenBatch => ({
    ids: batch.ids.subarray(m * b * S, (m + 1) * b * S), targets: batch.targets.subarray(m * b * S, (m + 1) * b * S),
  }));
  const seed = options.jitterSeed;
  const jitterSeed = (m: number) => (seed === undefined ? undefined : m === 0 ? seed : mixSeeds(seed, m));
  const loads = globalBalanceLoads(model, micro, b, S, jitterSeed);
  try {
    return gradientStep(trainable, micro.map((mb, m) => () => {
      const losses = batchLosses(model, mb, b, S, {
        training: true, jitterSeed: jitterSeed(m), ...(loads ? { balanceLoads: loads } : {}),
      });
      const kept = Object.fromEntries(losses.moe.map((r) => [String(r.block), r.expertCounts]));
      // Each micro-batch's share of the global batch's mean loss.
      const loss = (N === 1 ? losses.total : tf.mul(losses.total, 1 / N)) as tf.Scalar;
      return { loss, readouts: readouts(losses, m), kept };
    }));
  } finally {
    if (loads) tf.dispose([...loads.values()].map((l) => l.counts));
  }
}

/**
 * balanceScope 'globalBatch' over several micro-batches: each MoE block's load over the whole global batch,
 * counted by a forward of every micro-batch (no tape, the same jitter) before any gradient, so each micro-batch's
 * balance loss uses the global f_i; it costs one forward per micro-batch. Null when the scope is the micro-batch,
 * when there is one micro-batch (the two scopes then agree), or when no loss uses f_i.
 */
function globalBalanceLoads(
  model: DeepSeekLM, micro: TokenBatch[], b: number, S: number, jitterSeed: (m: number) => number | undefined,
): Map<number, BalanceLoad> | null {
  const m = model.config.moeConfig;
  if (m.balanceScope !== 'globalBatch' || micro.length === 1 || (m.alpha1 === 0 && m.alpha2 === 0)) return null;
  const counts = new Map<number, tf.Tensor1D>();
  tf.tidy(() => {
    micro.forEach((mb, i) => {
      for (const r of batchLosses(model, mb, b, S, { training: true, jitterSeed: jitterSeed(i) }).moe) {
        const sum = counts.get(r.block);
        counts.set(r.block, sum ? tf.add(sum, r.expertCounts) : r.expertCounts);
      }
    });
    for (const c of counts.values()) tf.keep(c);
  });
  const tokens = (block: number) => micro.length * countedTokens(b, S, block, model.config);
  return new Map([...counts].map(([block, c]) => [block, { counts: c, tokens: tokens(block) }]));
}

/** Tokens a MoE block routes for B sequences of S: all of them, or S - k per sequence in MTP module k. */
function countedTokens(B: number, S: number, block: number, c: ResolvedModelConfig): number {
  return B * (block < c.nLayers ? S : S - (block - c.nLayers + 1));
}

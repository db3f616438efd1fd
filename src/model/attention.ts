/**
 * Causal self-attention, in two kinds: multi-head attention with RoPE ('mha'), and DeepSeek-V2's multi-head
 * latent attention ('mla'): keys and values are rebuilt from a compressed latent c^KV [dc] per token, and the
 * position signal travels in a separate rotary key k^R [dr] shared by all heads. Generation caches only those
 * two for MLA, against H (dk + dv) numbers per token for MHA.
 */
import * as tf from '@tensorflow/tfjs';
import { batchMatMul, linear } from '../backend-ops.js';
import type { ResolvedModelConfig } from './config.js';
import { applyRope, attendCausal, causalMask, rmsNorm } from './layers.js';
import type { AttentionWeights } from './weights.js';

/**
 * The eps of MLA's latent norms (of c^Q and c^KV): 1e-6 whatever normEps is, as in DeepSeek's inference code and
 * transformers' DeepSeek-V2/V3, so an exported model computes what it computed here.
 */
export const latentNormEps = 1e-6;

/** [B, S, H * n] -> heads first [B * H, S, n]. */
function headsFirst(t: tf.Tensor, B: number, S: number, H: number, n: number): tf.Tensor3D {
  return tf.reshape(tf.transpose(tf.reshape(t, [B, S, H, n]), [0, 2, 1, 3]), [B * H, S, n]);
}

/** [B * H, S, n] -> [B * S, H * n]. */
function headsLast(t: tf.Tensor, B: number, S: number, H: number, n: number): tf.Tensor2D {
  return tf.reshape(tf.transpose(tf.reshape(t, [B, H, S, n]), [0, 2, 1, 3]), [B * S, H * n]);
}

/** The MLA query input and its no-position part: q^C = RMSNorm(x W^DQ) when compressed, else x. */
function mlaQuery(x: tf.Tensor2D, w: Extract<AttentionWeights, { kind: 'mla' }>, c: ResolvedModelConfig) {
  const qIn = w.wDq && w.qNorm ? (rmsNorm(linear(x, w.wDq), w.qNorm, latentNormEps) as tf.Tensor2D) : x;
  return { qIn, qNope: linear(qIn, (w.wUq ?? w.wq)!) }; // [N, H nope]
}

/** Attention over a whole sequence (training, evaluation): x [B, S, d] -> [B * S, d]. */
export function attention(x: tf.Tensor3D, w: AttentionWeights, c: ResolvedModelConfig): tf.Tensor2D {
  const [B, S, d] = x.shape;
  const H = c.nHeads;
  const x2 = tf.reshape(x, [B * S, d]) as tf.Tensor2D;
  if (w.kind === 'mha') {
    const hd = c.headDim;
    const q = applyRope(tf.reshape(linear(x2, w.wq), [B, S, H, hd]), c.ropeTheta);
    const k = applyRope(tf.reshape(linear(x2, w.wk), [B, S, H, hd]), c.ropeTheta);
    const v = linear(x2, w.wv);
    const scores = batchMatMul(headsFirst(q, B, S, H, hd), headsFirst(k, B, S, H, hd), false, true); // [B H, S, S]
    const o = attendCausal(scores, headsFirst(v, B, S, H, hd), 1 / Math.sqrt(hd));
    return linear(headsLast(o, B, S, H, hd), w.wo);
  }
  const { qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: dv } = c;
  const query = mlaQuery(x2, w, c);
  const qNope = tf.reshape(query.qNope, [B, S, H, nope]);
  const qRope = applyRope(tf.reshape(linear(query.qIn, w.wQr), [B, S, H, rope]), c.ropeTheta);
  const cKv = rmsNorm(linear(x2, w.wDkv), w.kvNorm, latentNormEps) as tf.Tensor2D; // [B S, dc]
  const kRope = applyRope(tf.reshape(linear(x2, w.wKr), [B, S, 1, rope]), c.ropeTheta); // one rotary key for all heads
  const kNope = linear(cKv, w.wUk); // [B S, H nope]
  const v = linear(cKv, w.wUv);
  // q . k = qNope . kNope + qRope . kRope; the rotary part is one [H S, S] product per sequence, since all
  // heads share kRope, so no key is broadcast or concatenated.
  const nopeScores = batchMatMul(headsFirst(qNope, B, S, H, nope), headsFirst(kNope, B, S, H, nope), false, true); // [B H, S, S]
  const qRopeRows = tf.reshape(headsFirst(qRope, B, S, H, rope), [B, H * S, rope]) as tf.Tensor3D;
  const ropeScores = batchMatMul(qRopeRows, tf.reshape(kRope, [B, S, rope]) as tf.Tensor3D, false, true); // [B, H S, S]
  const scores = tf.add(nopeScores, tf.reshape(ropeScores, [B * H, S, S])) as tf.Tensor3D;
  const o = attendCausal(scores, headsFirst(v, B, S, H, dv), 1 / Math.sqrt(nope + rope));
  return linear(headsLast(o, B, S, H, dv), w.wo);
}

/** One layer's cache for a single sequence: MHA keeps keys and values, MLA the latent and the rotary key. */
export type LayerCache =
  | { kind: 'mha'; k: tf.Tensor3D; v: tf.Tensor3D } // [H, L, hd] each
  | { kind: 'mla'; cKv: tf.Tensor2D; kRope: tf.Tensor2D }; // [L, dc], [L, dr]

/** Numbers cached per token per layer; MLA's (dc + dr) against MHA's 2 H hd. */
export function cacheWidth(c: ResolvedModelConfig): number {
  return c.attention === 'mha' ? 2 * c.nHeads * c.headDim : c.kvLoraRank + c.qkRopeHeadDim;
}

/**
 * Attention for the new tokens x [S, d] of one sequence at positions [offset, offset + S), reading and
 * extending `cache` (null at the start). Returns [S, d] and the longer cache; the caller disposes the old one.
 * MLA runs in its absorbed form: W^UK is folded into the query and W^UV applied after attending, so the
 * keys and values of past tokens are never rebuilt.
 */
export function attentionStep(
  x: tf.Tensor2D, w: AttentionWeights, c: ResolvedModelConfig, cache: LayerCache | null, offset: number,
): { y: tf.Tensor2D; cache: LayerCache } {
  const [S] = x.shape;
  const H = c.nHeads;
  const grow = (old: tf.Tensor | undefined, next: tf.Tensor, axis: number) => (old ? tf.concat([old, next], axis) : next);
  if (w.kind === 'mha') {
    const hd = c.headDim;
    const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [S, H, hd]), [1, 0, 2]) as tf.Tensor3D; // [H, S, hd]
    const q = heads(applyRope(tf.reshape(linear(x, w.wq), [1, S, H, hd]), c.ropeTheta, offset));
    const kNew = heads(applyRope(tf.reshape(linear(x, w.wk), [1, S, H, hd]), c.ropeTheta, offset));
    const old = cache?.kind === 'mha' ? cache : null;
    const k = grow(old?.k, kNew, 1) as tf.Tensor3D;
    const v = grow(old?.v, heads(linear(x, w.wv)), 1) as tf.Tensor3D;
    const o = attendCausal(tf.matMul(q, k, false, true), v, 1 / Math.sqrt(hd)); // [H, S, hd]
    const y = linear(tf.reshape(tf.transpose(o, [1, 0, 2]), [S, H * hd]) as tf.Tensor2D, w.wo);
    return { y, cache: { kind: 'mha', k, v } };
  }
  const { kvLoraRank: dc, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: dv } = c;
  const query = mlaQuery(x, w, c);
  const qNope = tf.transpose(tf.reshape(query.qNope, [S, H, nope]), [1, 0, 2]); // [H, S, nope]
  const qRope = tf.reshape(
    tf.transpose(applyRope(tf.reshape(linear(query.qIn, w.wQr), [1, S, H, rope]), c.ropeTheta, offset), [0, 2, 1, 3]),
    [H * S, rope],
  );
  const old = cache?.kind === 'mla' ? cache : null;
  const cKv = grow(old?.cKv, rmsNorm(linear(x, w.wDkv), w.kvNorm, latentNormEps), 0) as tf.Tensor2D; // [L, dc]
  const kRope = grow(
    old?.kRope, tf.reshape(applyRope(tf.reshape(linear(x, w.wKr), [1, S, 1, rope]), c.ropeTheta, offset), [S, rope]), 0,
  ) as tf.Tensor2D;
  const L = cKv.shape[0];
  // Absorb W^UK: q^C_h = q_h W^UK_h^T, so q_h . k_h = q^C_h . c^KV for every past token at once.
  const wUk = tf.transpose(tf.reshape(w.wUk, [dc, H, nope]), [1, 2, 0]); // [H, nope, dc]
  const qLatent = tf.reshape(tf.matMul(qNope, wUk), [H * S, dc]);
  const scores = tf.add(tf.matMul(qLatent, cKv, false, true), tf.matMul(qRope, kRope, false, true)); // [H S, L]
  const scaled = tf.reshape(tf.mul(scores, 1 / Math.sqrt(nope + rope)), [H, S, L]);
  const probs = tf.softmax(tf.add(scaled, causalMask(S, L)));
  const oLatent = tf.matMul(tf.reshape(probs, [H * S, L]), cKv); // [H S, dc]
  const wUv = tf.transpose(tf.reshape(w.wUv, [dc, H, dv]), [1, 0, 2]); // [H, dc, dv]
  const o = tf.matMul(tf.reshape(oLatent, [H, S, dc]), wUv); // [H, S, dv]
  const y = linear(tf.reshape(tf.transpose(o, [1, 0, 2]), [S, H * dv]) as tf.Tensor2D, w.wo);
  return { y, cache: { kind: 'mla', cKv, kRope } };
}


/**
 * How often DeepSeek-V3's speculative decoding would accept the MTP module's draft, measured teacher-forced over a
 * text rather than over a few greedy samples (which fall into repetition loops, where both heads agree).
 *
 * At each position i of a window: the main model's greedy token for i + 1 is g_i = argmax main(x_<=i). Where it is
 * the true token (g_i = x_(i+1): the context a greedy decoder would have), the depth-1 module drafts
 * d_i = argmax mtp(h_i, x_(i+1)) for token i + 2, and the draft is accepted when the main model's greedy token
 * there agrees, d_i = g_(i+1).
 */
import * as tf from '@tensorflow/tfjs';
import { mtpForward, type DeepSeekLM } from 'deepseek-moe-tfjs/model';

/** Drafts counted and accepted, in total and per window (for the bootstrap). */
export interface AcceptanceCount {
  eligible: number;
  accepted: number;
  /** [eligible, accepted] of each window. */
  windows: [number, number][];
}

/** Teacher-forced acceptance over consecutive windows of seqLen + 1 bytes of `bytes` (at most `maxWindows`). */
export async function teacherForcedAcceptance(
  model: DeepSeekLM, bytes: Uint8Array, seqLen: number, options: { batchSize?: number; maxWindows?: number } = {},
): Promise<AcceptanceCount> {
  if (model.config.mtpDepth < 1) throw new Error('claims: teacher-forced acceptance needs a model with an MTP module.');
  const S = seqLen;
  const total = Math.min(Math.floor((bytes.length - 1) / S), options.maxWindows ?? Infinity);
  const batchSize = options.batchSize ?? 16;
  const windows: [number, number][] = [];
  for (let first = 0; first < total; first += batchSize) {
    const B = Math.min(batchSize, total - first);
    const ids = new Int32Array(B * S);
    const targets = new Int32Array(B * S);
    for (let b = 0; b < B; b++) {
      const start = (first + b) * S;
      for (let i = 0; i < S; i++) {
        ids[b * S + i] = bytes[start + i]!;
        targets[b * S + i] = bytes[start + i + 1]!;
      }
    }
    const [greedy, drafts] = tf.tidy(() => {
      const out = model.forward(tf.tensor2d(ids, [B, S], 'int32'));
      const mtp = mtpForward(model.view, model.config, out.hidden, tf.tensor2d(targets, [B, S], 'int32'));
      return [tf.argMax(out.logits, 1), tf.argMax(mtp.depthLogits[0]!, 1)];
    });
    const g = (await greedy.data()) as Int32Array; // [B S]
    const d = (await drafts.data()) as Int32Array; // [B (S - 1)]
    tf.dispose([greedy, drafts]);
    for (let b = 0; b < B; b++) {
      let eligible = 0;
      let accepted = 0;
      for (let i = 0; i < S - 1; i++) {
        if (g[b * S + i] !== targets[b * S + i]) continue;
        eligible++;
        if (d[b * (S - 1) + i] === g[b * S + i + 1]) accepted++;
      }
      windows.push([eligible, accepted]);
    }
  }
  const sum = (k: 0 | 1) => windows.reduce((a, w) => a + w[k], 0);
  return { eligible: sum(0), accepted: sum(1), windows };
}

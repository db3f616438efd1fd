/**
 * What anyone compares two language models by: the mean negative log-likelihood, in nats per predicted byte, of a
 * text. The text is cut into consecutive windows of seqLen bytes (the last may be shorter; a text shorter than a
 * window is one window), and each window predicts its bytes after the first, from the bytes before them in it.
 */
import * as tf from '@tensorflow/tfjs';
import { oneHotFloat } from '../ops.js';
import type { ResolvedModelConfig } from './config.js';
import { forward } from './model.js';
import type { ModelView, ModelWeights } from './weights.js';

/** Options of evaluateText. */
export interface EvaluateOptions {
  /** Window length in bytes (default: the model's maxSeqLen). */
  seqLen?: number;
  /** Windows per forward pass (default 8). */
  batchSize?: number;
}

/** The score of a text: bytes read, bytes predicted, windows, and the mean NLL (nats per predicted byte). */
export interface TextScore {
  bytes: number;
  predicted: number;
  windows: number;
  nll: number;
}

/** Sum of -log p(next byte) over windows ids [B, L] (each predicting its L - 1 bytes after the first): a scalar. */
function windowNll(w: ModelWeights | ModelView, c: ResolvedModelConfig, ids: tf.Tensor2D): tf.Scalar {
  const [B, L] = ids.shape;
  const logits = tf.reshape(forward(w, c, ids).logits, [B, L, c.vocabSize]);
  const inputs = tf.reshape(tf.slice(logits, [0, 0, 0], [B, L - 1, c.vocabSize]), [B * (L - 1), c.vocabSize]);
  const targets = tf.reshape(tf.slice(ids, [0, 1], [B, L - 1]), [B * (L - 1)]);
  return tf.sum(tf.sub(tf.logSumExp(inputs, -1), tf.sum(tf.mul(inputs, oneHotFloat(targets, c.vocabSize)), -1)));
}

/** Scores the bytes of a text with a model (its weights or typed views and config); reads one number per batch. */
export async function evaluateText(
  w: ModelWeights | ModelView, c: ResolvedModelConfig, bytes: Uint8Array, options: EvaluateOptions = {},
): Promise<TextScore> {
  const L = options.seqLen ?? c.maxSeqLen;
  const batch = options.batchSize ?? 8;
  if (!Number.isInteger(L) || L < 2 || L > c.maxSeqLen) {
    throw new Error(`evaluateText: expected seqLen to be an integer in [2, maxSeqLen = ${c.maxSeqLen}], but got ${L}.`);
  }
  if (!Number.isInteger(batch) || batch < 1) {
    throw new Error(`evaluateText: expected batchSize to be an integer >= 1, but got ${batch}.`);
  }
  if (!(bytes instanceof Uint8Array) || bytes.length < 2) {
    const got = bytes instanceof Uint8Array ? bytes.length : typeof bytes;
    throw new Error(`evaluateText: expected a text of at least 2 bytes, but got ${got}.`);
  }
  const full = Math.floor(bytes.length / L);
  const tail = bytes.length - full * L; // a last, shorter window (1 byte predicts nothing)
  let sum = 0;
  const run = async (start: number, count: number, length: number) => {
    const ids = new Int32Array(count * length);
    for (let b = 0; b < count; b++) ids.set(bytes.subarray(start + b * length, start + (b + 1) * length), b * length);
    const nll = tf.tidy(() => windowNll(w, c, tf.tensor2d(ids, [count, length], 'int32')));
    sum += (await nll.data())[0]!;
    nll.dispose();
  };
  for (let b = 0; b < full; b += batch) await run(b * L, Math.min(batch, full - b), L);
  if (tail >= 2) await run(full * L, 1, tail);
  const windows = full + (tail >= 2 ? 1 : 0);
  const predicted = full * (L - 1) + (tail >= 2 ? tail - 1 : 0);
  return { bytes: bytes.length, predicted, windows, nll: sum / predicted };
}

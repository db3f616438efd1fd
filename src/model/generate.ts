import * as tf from '@tensorflow/tfjs';
import { Rng } from '../rng.js';
import { show } from '../validate.js';
import { disposeCache, forwardCached, type DeepSeekLM, type KVCache } from './model.js';

/** How generate and Trainer.sample draw tokens. */
export interface SampleOptions {
  /** Tokens to generate. */
  maxNewTokens: number;
  /** Softmax temperature; 0 picks the most likely token. Default 1. */
  temperature?: number;
  /** Sample among the topK most likely tokens only; 0 keeps all. Default 0. */
  topK?: number;
  /** A generator to draw from (its state advances), or a seed. Default seed 0. */
  rng?: Rng | number;
}

/** Draws one token from logits (a plain array) with temperature and top-k. */
export function sampleToken(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature === 0) return best;
  let order = Array.from(logits.keys());
  if (topK > 0 && topK < logits.length) order = order.sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, topK);
  const weights = order.map((i) => Math.exp((logits[i]! - logits[best]!) / temperature));
  let r = rng.next() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < order.length; j++) {
    r -= weights[j]!;
    if (r < 0) return order[j]!;
  }
  return order[order.length - 1]!;
}

/** The most tokens one call generates (a page's worker stays busy until they are all out). */
export const maxGenerated = 100_000;

/**
 * Continues `prompt` (token ids) with the KV cache: one forward over the prompt, then one position per new
 * token. When the cache reaches maxSeqLen, the last half of the context is re-read into a fresh cache.
 * Returns the new tokens only.
 */
export async function generate(model: DeepSeekLM, prompt: ArrayLike<number>, options: SampleOptions): Promise<number[]> {
  if (options == null || typeof options !== 'object') throw new Error(`generate: expected an options object, but got ${show(options)}.`);
  const { maxNewTokens, temperature = 1, topK = 0 } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0 || maxNewTokens > maxGenerated) {
    throw new Error(`generate: expected maxNewTokens to be an integer in [0, ${maxGenerated}], but got ${show(maxNewTokens)}.`);
  }
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new Error(`generate: expected temperature to be a finite number >= 0, but got ${show(temperature)}.`);
  }
  if (!Number.isInteger(topK) || topK < 0) throw new Error(`generate: expected topK to be a non-negative integer, but got ${show(topK)}.`);
  const V = model.config.vocabSize;
  for (const t of Array.from(prompt)) {
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`generate: expected prompt token ids in [0, ${V}), but got ${show(t)}.`);
  }
  const rng = options.rng instanceof Rng ? options.rng : new Rng(options.rng ?? 0);
  const context = Array.from(prompt);
  if (context.length === 0) context.push(10); // an empty prompt starts from a newline
  const maxLen = model.config.maxSeqLen;
  let cache: KVCache | null = null;
  let pending = context.slice(-maxLen);
  const out: number[] = [];
  try {
    while (out.length < maxNewTokens) {
      if (cache && cache.length + pending.length > maxLen) {
        disposeCache(cache);
        cache = null;
        pending = context.slice(-Math.floor(maxLen / 2));
      }
      const ids = tf.tensor1d(pending, 'int32');
      const step = forwardCached(model.view, model.config, ids, cache);
      ids.dispose();
      cache = step.cache;
      // One read per token: the last position's logits and the MoE blocks' non-finite input counts.
      const last = tf.tidy(() => tf.concat([
        tf.reshape(tf.slice(step.logits, [step.logits.shape[0] - 1, 0], [1, V]), [V]),
        tf.reshape(step.moe.reduce((n: tf.Tensor, m) => tf.add(n, m.nonFiniteInputs), tf.scalar(0)), [1]),
      ]));
      tf.dispose([step.logits, step.balanceLoss, step.moe] as unknown as tf.TensorContainer); // all but the cache
      const read = (await last.data()) as Float32Array;
      last.dispose();
      if (read[V]! > 0) throw new Error(`generate: expected finite MoE inputs, but got ${read[V]} NaN or infinite values.`);
      const logits = read.subarray(0, V);
      const token = sampleToken(logits, temperature, topK, rng);
      out.push(token);
      context.push(token);
      pending = [token];
    }
  } finally {
    if (cache) disposeCache(cache);
  }
  return out;
}

import * as tf from '@tensorflow/tfjs';
import { maskToFloat, rangeInt } from '../ops.js';

/** `capacity` mode: ceil(capacityFactor * T * K / E), never more than T (an expert sees each token once). */
export function capacityFor(T: number, K: number, E: number, capacityFactor: number): number {
  return Math.max(1, Math.min(T, Math.ceil((capacityFactor * T * K) / E)));
}

/**
 * dropPolicy 'probs': which assignments survive when each expert keeps only its `capacity` tokens of highest
 * affinity (Megatron's topk over tokens per expert). Ties go to the earlier token, as tf.topk orders them. The
 * affinities `scores` [T, E] must be off the tape; `membership` [T, E] is 1 where token t chose expert e.
 * Returns keep [T, K]: 1 for a kept assignment (t, k), else 0.
 */
export function keepByAffinity(
  scores: tf.Tensor2D, topKIndices: tf.Tensor2D, membership: tf.Tensor2D, capacity: number,
): tf.Tensor2D {
  const [T, E] = scores.shape;
  const K = topKIndices.shape[1];
  const C = Math.min(capacity, T);
  const key = tf.where(tf.greater(membership, 0), scores, tf.fill([T, E], -1)); // affinities are >= 0
  const best = tf.topk(tf.transpose(key), C); // [E, C], descending, ties by token order
  const threshold = tf.slice(best.values, [0, C - 1], [E, 1]); // [E, 1]: the C-th best affinity (-1: room for all)
  const tied = tf.equal(best.values, threshold);
  const lastTied = tf.max(tf.where(tied, tf.cast(best.indices, 'float32'), tf.fill([E, C], -1)), 1); // [E]
  const token = tf.reshape(tf.range(0, T, 1, 'float32'), [T, 1]);
  const above = tf.greater(key, tf.reshape(threshold, [1, E]));
  const tiedAndEarly = tf.logicalAnd(
    tf.equal(key, tf.reshape(threshold, [1, E])), tf.lessEqual(token, tf.reshape(lastTied, [1, E])),
  );
  const keptTE = tf.logicalAnd(tf.greater(membership, 0), tf.logicalOr(above, tiedAndEarly)); // [T, E]
  const choiceToScore = tf.reshape(tf.add(tf.reshape(rangeInt(T, E), [T, 1]), topKIndices), [T * K]);
  return tf.reshape(tf.gather(tf.reshape(maskToFloat(keptTE), [T * E]), choiceToScore), [T, K]) as tf.Tensor2D;
}

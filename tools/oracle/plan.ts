import * as tf from '@tensorflow/tfjs';
import { sumOverChoices } from '../../src/backend-ops.js';
import { maskToFloat, oneHotFloat, rangeInt } from '../../src/ops.js';

/**
 * Where each (token, choice) assignment goes, built from the detached top-k indices. All index maps have a
 * sentinel that points at an appended zero row, so dropped or empty entries need no masks and every backward
 * pass is a gather (training works on wasm, which has no UnsortedSegmentSum).
 *
 * T tokens, K choices each, A = T * K assignments, E experts with C slots each.
 */
export interface RoutingPlan {
  capacity: number;
  /** Flat index t * E + e of each choice, to gather its score: [T * K]. */
  choiceToScore: tf.Tensor1D;
  /** Flat index t * (K + 1) + k of the choice that picked expert e, or the sentinel k = K: [T * E]. */
  scoreToChoice: tf.Tensor1D;
  /** The token in each expert slot, or T (sentinel) for an empty slot: [E * C]. */
  slotToToken: tf.Tensor1D;
  /** The assignment t * K + k in each expert slot, or A (sentinel): [E * C]. */
  slotToAssignment: tf.Tensor1D;
  /** The slot e * C + c of each assignment, or E * C (sentinel) when capacity dropped it: [T * K]. */
  assignmentToSlot: tf.Tensor1D;
  /** Share of assignments dropped for capacity: scalar. */
  droppedFraction: tf.Scalar;
}

/** The choices as masks, shared by every dispatch mode. */
export interface Choices {
  /** 1 where choice k of token t is expert e: [T, K, E]. */
  choiceMask: tf.Tensor3D;
  /** 1 where token t chose expert e: [T, E]. */
  membership: tf.Tensor2D;
  /** Tokens per expert before any drop: [E]. */
  expertCounts: tf.Tensor1D;
}

export function choicesOf(topKIndices: tf.Tensor2D, E: number): Choices {
  const choiceMask = oneHotFloat(topKIndices, E) as tf.Tensor3D; // [T, K, E]
  const membership = sumOverChoices(choiceMask); // [T, E]
  return { choiceMask, membership, expertCounts: tf.sum(membership, 0) as tf.Tensor1D };
}

/**
 * Builds the slot maps for `capacity` slots per expert. Slots fill first-come in token order: slot c of expert e
 * holds its c-th earliest token, found with a per-expert top-C over the token order (no scatter, which webgl
 * runs as a loop over every update for every output element). With `keep` [T, K] (dropPolicy 'probs') only the
 * kept assignments take slots, still in token order; without it an expert keeps its first `capacity` tokens.
 */
export function buildRoutingPlan(
  topKIndices: tf.Tensor2D, choices: Choices, capacity: number, keep?: tf.Tensor2D,
): RoutingPlan {
  const [T, K] = topKIndices.shape;
  const E = choices.membership.shape[1];
  const A = T * K;
  const C = capacity;
  const { choiceMask } = choices; // [T, K, E]
  // Tokens that hold a slot of expert e: [T, E].
  const membership = keep
    ? sumOverChoices(tf.mul(choiceMask, tf.expandDims(keep, 2)) as tf.Tensor3D)
    : choices.membership;

  // choiceIndex[t, e] = k if token t chose e as its k-th choice, else K.
  const kPlusOne = tf.reshape(tf.range(1, K + 1, 1, 'float32'), [1, K, 1]);
  const choiceIndex = tf.sub(sumOverChoices(tf.mul(choiceMask, kPlusOne) as tf.Tensor3D), 1); // [T, E], -1 where not chosen
  const choiceOrSentinel = tf.where(tf.greater(choices.membership, 0), choiceIndex, tf.fill([T, E], K)); // [T, E]
  const tokenRows = tf.reshape(tf.range(0, T, 1, 'float32'), [T, 1]);
  const scoreToChoice = tf.cast(tf.reshape(tf.add(tf.mul(tokenRows, K + 1), choiceOrSentinel), [T * E]), 'int32') as tf.Tensor1D;

  const rowOffsets = tf.reshape(rangeInt(T, E), [T, 1]);
  const choiceToScore = tf.reshape(tf.add(rowOffsets, topKIndices), [A]) as tf.Tensor1D; // [A] int32

  // Key A - a for each member (a = t * K + k), 0 for non-members: top-C per expert gives earliest tokens first.
  const assignmentId = tf.add(tf.mul(tokenRows, K), choiceIndex); // [T, E]
  const key = tf.transpose(tf.mul(membership, tf.sub(A, assignmentId))); // [E, T]
  const slotKeys = tf.topk(key, C).values; // [E, C]
  const slotAssignment = tf.where(tf.greater(slotKeys, 0), tf.sub(A, slotKeys), tf.fill([E, C], A)); // [E, C]
  const slotToAssignment = tf.cast(tf.reshape(slotAssignment, [E * C]), 'int32') as tf.Tensor1D;
  const slotToToken = tf.cast(tf.floor(tf.div(tf.reshape(slotAssignment, [E * C]), K)), 'int32') as tf.Tensor1D;

  // Position of each assignment in its expert's queue: exclusive cumsum over tokens (on the last axis, where
  // tf.cumsum is exact; the plan is off the tape so its broken off-axis gradient never matters).
  const position = tf.transpose(tf.cumsum(tf.transpose(membership), 1, true)); // [T, E]
  const positionOfChoice = tf.reshape(tf.gather(tf.reshape(position, [T * E]), choiceToScore), [T, K]);
  const expertOfChoice = tf.cast(topKIndices, 'float32');
  const kept = keep ? tf.greater(keep, 0) : tf.less(positionOfChoice, C);
  const slot = tf.where(kept, tf.add(tf.mul(expertOfChoice, C), positionOfChoice), tf.fill([T, K], E * C));
  const assignmentToSlot = tf.cast(tf.reshape(slot, [A]), 'int32') as tf.Tensor1D;
  const droppedFraction = tf.sub(1, tf.mean(maskToFloat(kept))) as tf.Scalar;

  return {
    capacity: C,
    choiceToScore,
    scoreToChoice,
    slotToToken,
    slotToAssignment,
    assignmentToSlot,
    droppedFraction,
  };
}

/**
 * `dropless` mode sizes slots to the busiest expert, rounded up to a multiple of 8 (never past T): padding stays
 * small, and webgl and webgpu see few distinct shapes, so compiled shaders are reused.
 */
export function droplessCapacity(maxCount: number, T: number): number {
  return Math.max(1, Math.min(T, Math.ceil(maxCount / 8) * 8));
}

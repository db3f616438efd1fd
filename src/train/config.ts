import { ConfigChecker } from '../validate.js';

/** The trainer's configuration: one plain, JSON-safe object, validated by `resolveTrainConfig`. */
export interface TrainConfig {
  /** Optimizer steps of the whole run (the cosine schedule ends here). */
  steps: number;
  /** Sequences per optimizer step (the global batch). */
  batchSize: number;
  /**
   * Gradient accumulation: each optimizer step runs batchSize / gradAccumSteps sequences at a time and sums their
   * gradients, so it equals one step on the whole batch in less memory. Must divide batchSize.
   */
  gradAccumSteps: number;
  /** Tokens per sequence; at most the model's maxSeqLen. */
  seqLen: number;
  /** Peak learning rate, reached after warmupSteps. */
  learningRate: number;
  /** The cosine decay ends at learningRate * minLearningRateRatio. */
  minLearningRateRatio: number;
  warmupSteps: number;
  /** AdamW's decoupled weight decay, applied to matrices (not norm gains). */
  weightDecay: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Clip the global gradient norm to this; 0 turns clipping off. */
  gradClip: number;
  /** Evaluate on the validation split every this many steps (0: only at the end). */
  evalEvery: number;
  /** Validation windows per domain at each evaluation. */
  evalWindows: number;
  /** Emit a checkpoint event every this many steps (0: never; `checkpoint()` works any time). */
  checkpointEvery: number;
  /** Seed of the batch sampler. */
  seed: number;
}

/** A trainer config as a user writes it: any subset of the fields. */
export type TrainConfigInput = Partial<TrainConfig>;

/** The defaults of every trainer field. */
export const trainConfigDefaults: TrainConfig = {
  steps: 200,
  batchSize: 8,
  gradAccumSteps: 1,
  seqLen: 64,
  learningRate: 3e-3,
  minLearningRateRatio: 0.1,
  warmupSteps: 20,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.95,
  epsilon: 1e-8,
  gradClip: 1,
  evalEvery: 50,
  evalWindows: 8,
  checkpointEvery: 0,
  seed: 0,
};

const check: ConfigChecker = new ConfigChecker('train config');

/** Validates a trainer config and fills its defaults; throws naming the field (see src/validate.ts). */
export function resolveTrainConfig(input: TrainConfigInput = {}): Readonly<TrainConfig> {
  check.fields(input, Object.keys(trainConfigDefaults));
  const c: TrainConfig = { ...trainConfigDefaults, ...input };
  check.int('steps', c.steps, 1);
  check.int('batchSize', c.batchSize, 1);
  check.int('gradAccumSteps', c.gradAccumSteps, 1);
  check.require(c.batchSize % c.gradAccumSteps === 0,
    `expected gradAccumSteps to divide batchSize (${c.batchSize}), but got ${c.gradAccumSteps}.`);
  check.int('seqLen', c.seqLen, 1);
  check.number('learningRate', c.learningRate, { min: 0, max: Number.MAX_VALUE, minOpen: true });
  check.number('minLearningRateRatio', c.minLearningRateRatio, { min: 0, max: 1 });
  check.int('warmupSteps', c.warmupSteps, 0);
  check.number('weightDecay', c.weightDecay, { min: 0, max: 1 });
  check.number('beta1', c.beta1, { min: 0, max: 0.999999 });
  check.number('beta2', c.beta2, { min: 0, max: 0.999999 });
  check.number('epsilon', c.epsilon, { min: 0, max: 1, minOpen: true });
  check.number('gradClip', c.gradClip, { min: 0 });
  check.int('evalEvery', c.evalEvery, 0);
  check.int('evalWindows', c.evalWindows, 1);
  check.int('checkpointEvery', c.checkpointEvery, 0);
  check.int('seed', c.seed, 0);
  const maxTokens = 2 ** 24; // a step's ids and targets are typed arrays of batchSize * seqLen
  for (const [name, n] of [['batchSize', c.batchSize], ['evalWindows', c.evalWindows]] as const) {
    check.require(n * c.seqLen <= maxTokens, `expected ${name} * seqLen to be at most ${maxTokens} tokens, but got ${n} * ${c.seqLen}.`);
  }
  return Object.freeze(c);
}

/**
 * The learning rate of step `step` (0-based): linear warm-up to the peak at step warmupSteps - 1, then cosine
 * decay from the peak at step warmupSteps to the floor at the last step, steps - 1 (when that is a later step).
 */
export function learningRateAt(step: number, c: TrainConfig): number {
  if (step < c.warmupSteps) return (c.learningRate * (step + 1)) / c.warmupSteps;
  const span = c.steps - 1 - c.warmupSteps;
  // One step after warm-up (or none): it runs at the peak; a one-step run does not train at the floor.
  const progress = span <= 0 ? 0 : Math.min(1, (step - c.warmupSteps) / span);
  const floor = c.learningRate * c.minLearningRateRatio;
  return floor + 0.5 * (c.learningRate - floor) * (1 + Math.cos(Math.PI * progress));
}

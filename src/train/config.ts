/** The trainer's configuration: one plain, JSON-safe object, validated by `resolveTrainConfig`. */

export interface TrainConfig {
  /** Optimizer steps of the whole run (the cosine schedule ends here). */
  steps: number;
  /** Sequences per step. */
  batchSize: number;
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

export type TrainConfigInput = Partial<TrainConfig>;

export const trainConfigDefaults: TrainConfig = {
  steps: 200,
  batchSize: 8,
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

const fail = (message: string): never => {
  throw new Error(`train config: ${message}`);
};

export function resolveTrainConfig(input: TrainConfigInput = {}): Readonly<TrainConfig> {
  if (input == null || typeof input !== 'object') fail(`expected a config object, but got ${String(input)}.`);
  for (const key of Object.keys(input)) {
    if (!(key in trainConfigDefaults)) fail(`unknown field '${key}'; known fields are ${Object.keys(trainConfigDefaults).join(', ')}.`);
  }
  const c: TrainConfig = { ...trainConfigDefaults, ...input };
  const int = (name: keyof TrainConfig, min: number) => {
    const v = c[name];
    if (!Number.isInteger(v) || v < min) fail(`expected ${name} to be an integer >= ${min}, but got ${JSON.stringify(v)}.`);
  };
  const num = (name: keyof TrainConfig, lo: number, hi: number, loOpen = false) => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo)) {
      fail(`expected ${name} to be a number in ${loOpen ? '(' : '['}${lo}, ${hi}], but got ${JSON.stringify(v)}.`);
    }
  };
  int('steps', 1);
  int('batchSize', 1);
  int('seqLen', 1);
  num('learningRate', 0, Number.MAX_VALUE, true);
  num('minLearningRateRatio', 0, 1);
  int('warmupSteps', 0);
  num('weightDecay', 0, 1);
  num('beta1', 0, 0.999999);
  num('beta2', 0, 0.999999);
  num('epsilon', 0, 1, true);
  num('gradClip', 0, Number.MAX_VALUE);
  int('evalEvery', 0);
  int('evalWindows', 1);
  int('checkpointEvery', 0);
  int('seed', 0);
  return Object.freeze(c);
}

/** Linear warm-up to the peak, then cosine decay to the floor at the last step. */
export function learningRateAt(step: number, c: TrainConfig): number {
  if (step < c.warmupSteps) return (c.learningRate * (step + 1)) / c.warmupSteps;
  const progress = Math.min(1, (step - c.warmupSteps) / Math.max(1, c.steps - c.warmupSteps));
  const floor = c.learningRate * c.minLearningRateRatio;
  return floor + 0.5 * (c.learningRate - floor) * (1 + Math.cos(Math.PI * progress));
}

/**
 * deepseek-moe-tfjs/train: the trainer (AdamW, warm-up and cosine decay, clipping, balance losses, the bias
 * update, evaluation, checkpoints, typed events), the text dataset, the seeded generator and the checkpoint file.
 */
export { Trainer } from './trainer.js';
export type { TrainerListener } from './trainer.js';
export { AdamW, variableOf } from './adamw.js';
export { RunControl } from './run-control.js';
export { gradientStep } from './step.js';
export type { GradientStep, StepOutputs } from './step.js';
export { accumulatedStep, batchLosses, moeBlockWeights } from './accumulate.js';
export type { AccumulateOptions, BatchLosses, TokenBatch } from './accumulate.js';
export { maxViolation } from './trainer.js';
export { resolveTrainConfig, trainConfigDefaults, learningRateAt } from './config.js';
export type { TrainConfig, TrainConfigInput } from './config.js';
export type {
  TrainerEvent, TrainerEventMap, StepEvent, EvalEvent, CheckpointEvent, DoneEvent, ErrorEvent, LayerReport,
} from './events.js';
export { checkpointMagic, readCheckpoint, writeCheckpoint } from './checkpoint.js';
export { loadModel } from './load.js';
export { configDifference, readModelCheckpoint } from './model-checkpoint.js';
export type { ModelCheckpoint } from './model-checkpoint.js';
export type { CheckpointHeader, CheckpointContents, UpcycledFrom } from './checkpoint.js';
export { specialisationReport } from './specialisation.js';
export { upcycle, upcycleWeights, resolveUpcycle } from './upcycle.js';
export type { UpcycleConfigInput, UpcyclePlan, Upcycled } from './upcycle.js';
export type { BlockSpecialisation } from './specialisation.js';
export { TextDataset } from '../data/dataset.js';
export type { Batch, DatasetOptions } from '../data/dataset.js';
export { Rng } from '../rng.js';

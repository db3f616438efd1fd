/** The trainer's events: plain numbers and arrays only, so they print, chart or cross postMessage unchanged. */

/** One MoE block's routing in a step. */
export interface LayerReport {
  /** Index of the block in the model. */
  block: number;
  /** Share of the step's assignments each expert took: [E], sums to 1. */
  expertLoad: number[];
  /** Share of assignments dropped for capacity. */
  droppedFraction: number;
  /** MaxVio_batch (Loss-Free Balancing): max load / mean load - 1 over the step's whole (global) batch. */
  maxViolation: number;
  /** Mean routing entropy (nats). */
  routerEntropy: number;
  /** The auxiliary-loss-free selection bias this step routed with, before its update: [E] (empty when off). */
  bias: number[];
}

/** After every optimizer step. */
export interface StepEvent {
  type: 'step';
  /** Steps completed, this one included. */
  step: number;
  /** Next-token cross-entropy (nats per byte). */
  loss: number;
  /** The balance losses, summed over MoE blocks. */
  balanceLoss: number;
  /** The MTP losses L_MTP^k per depth (cross-entropy of the token k + 1 ahead), depth 1 first; empty without MTP. */
  mtpLosses: number[];
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  tokensPerSecond: number;
  msPerStep: number;
  layers: LayerReport[];
}

/** After every evaluation on the validation split. */
export interface EvalEvent {
  type: 'eval';
  step: number;
  /** Mean validation cross-entropy over domains. */
  valLoss: number;
  /** Validation cross-entropy per domain. */
  domainLoss: Record<string, number>;
  /**
   * MaxVio_global (Loss-Free Balancing): max load / mean load - 1 of each MoE block over the whole validation set,
   * main blocks first (then the MTP modules'). The validation set gives every domain the same windows; a model
   * that specialises by domain is judged on that balanced mix (`maxVioGlobal`) and on the mix it trained on, each
   * domain weighed by its share of the training bytes (`maxVioGlobalTrainingMix`).
   */
  layers: { block: number; maxVioGlobal: number; maxVioGlobalTrainingMix: number }[];
  /** The mean of the blocks' MaxVio_global (0 without MoE blocks). */
  maxVioGlobal: number;
  /** The mean of the blocks' MaxVio_global with the domains in their training proportions. */
  maxVioGlobalTrainingMix: number;
}

/** Every checkpointEvery steps: the checkpoint file. */
export interface CheckpointEvent {
  type: 'checkpoint';
  step: number;
  /** The checkpoint file (see checkpoint.ts); the listener decides where it goes. */
  bytes: Uint8Array;
}

/** When run() ends without an error. */
export interface DoneEvent {
  type: 'done';
  step: number;
  /** True when stop() ended the run before config.steps. */
  stopped: boolean;
}

/** When run() ends with an error (a non-finite loss, a throw mid-step). */
export interface ErrorEvent {
  type: 'error';
  /** Steps completed in the state the trainer holds after the error (the last good state, when it put one back). */
  step: number;
  message: string;
}

/** Every event the trainer emits. */
export type TrainerEvent = StepEvent | EvalEvent | CheckpointEvent | DoneEvent | ErrorEvent;
/** Events by their type, for Trainer.on's typing. */
export type TrainerEventMap = { [E in TrainerEvent as E['type']]: E };

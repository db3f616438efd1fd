/** The trainer's events: plain numbers and arrays only, so they print, chart or cross postMessage unchanged. */

/** One MoE block's routing in a step. */
export interface LayerReport {
  /** Index of the block in the model. */
  block: number;
  /** Share of the step's assignments each expert took: [E], sums to 1. */
  expertLoad: number[];
  /** Share of assignments dropped for capacity. */
  droppedFraction: number;
  /** max load / mean load - 1. */
  maxViolation: number;
  /** Mean routing entropy (nats). */
  routerEntropy: number;
  /** The auxiliary-loss-free selection bias this step routed with, before its update: [E] (empty when off). */
  bias: number[];
}

export interface StepEvent {
  type: 'step';
  /** Steps completed, this one included. */
  step: number;
  /** Next-token cross-entropy (nats per byte). */
  loss: number;
  /** The balance losses, summed over MoE blocks. */
  balanceLoss: number;
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  tokensPerSecond: number;
  msPerStep: number;
  layers: LayerReport[];
}

export interface EvalEvent {
  type: 'eval';
  step: number;
  /** Mean validation cross-entropy over domains. */
  valLoss: number;
  /** Validation cross-entropy per domain. */
  domainLoss: Record<string, number>;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  step: number;
  /** The checkpoint file (see checkpoint.ts); the listener decides where it goes. */
  bytes: Uint8Array;
}

export interface DoneEvent {
  type: 'done';
  step: number;
  /** True when stop() ended the run before config.steps. */
  stopped: boolean;
}

export interface ErrorEvent {
  type: 'error';
  step: number;
  message: string;
}

export type TrainerEvent = StepEvent | EvalEvent | CheckpointEvent | DoneEvent | ErrorEvent;
export type TrainerEventMap = { [E in TrainerEvent as E['type']]: E };

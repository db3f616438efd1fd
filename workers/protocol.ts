/**
 * What a page and the training worker say to each other. Everything here is plain, JSON-safe data (typed arrays
 * aside, which are transferred), so it crosses postMessage in a browser and worker_threads in Node unchanged.
 */
import type { BackendAvailability, BackendName, InitBackendOptions } from 'deepseek-moe-tfjs';
import type {
  BlockSpecialisation, DoneEvent, ErrorEvent, EvalEvent, ModelConfigInput, StepEvent, TrainConfigInput,
} from 'deepseek-moe-tfjs/config';
import type { RoutingTrace, RoutingTraceOptions, SampleOptions, SpeculationStats } from 'deepseek-moe-tfjs/model';
import type { UpcycleConfigInput } from 'deepseek-moe-tfjs/train';
import type { BenchMode, BenchProgress } from '../tools/bench-suite/index.js';
import type { BenchResult } from '../tools/bench-suite/schema.js';
import type { ClaimProgress } from '../tools/claims/run.js';
import type { ClaimResult } from '../tools/claims/schema.js';
import type { ClaimName } from '../tools/claims/tables.js';
import type { PlaneClassifierConfigInput, PlaneStepReport, RoutingMap } from './playground/classifier.js';

/** Train the DeepSeek-style language model on a text corpus (domain name to text). */
export interface LabJob {
  kind: 'lab';
  model: ModelConfigInput;
  train: TrainConfigInput;
  corpus: Record<string, string>;
}

/** Train the routing playground's 2-D classifier, painting the plane every `mapEvery` steps. */
export interface PlaygroundJob {
  kind: 'playground';
  classifier: PlaneClassifierConfigInput;
  steps: number;
  mapEvery: number;
  /** The painted grid is mapResolution x mapResolution. */
  mapResolution: number;
}

export type Job = LabJob | PlaygroundJob;

export interface PlaneStepMessage {
  type: 'planeStep';
  report: PlaneStepReport;
}

export interface RoutingMapMessage {
  type: 'routingMap';
  step: number;
  map: RoutingMap;
}

/** Everything a job streams back: the trainer's events, the playground's, and the end of either. */
export type WorkerEvent = StepEvent | EvalEvent | DoneEvent | ErrorEvent | PlaneStepMessage | RoutingMapMessage;

export type JobState = 'idle' | 'running' | 'paused' | 'finished';

export type { BenchMode, BenchProgress, BenchResult, ClaimName, ClaimProgress, ClaimResult };

/** The worker's commands. Every method rejects with a readable message on bad input, before changing anything. */
export interface TrainingWorkerApi {
  /** Which backends exist here (a cheap probe; starting one may still fail, and setBackend says why). */
  backends(): Promise<BackendAvailability[]>;
  /** Starts a backend for the next job; ends a finished or paused job first. Refused while a job runs. */
  setBackend(name: BackendName, options?: InitBackendOptions): Promise<BackendName>;
  /** Builds the job's model and starts training; resolves once it runs. Events arrive through onEvent. */
  start(job: Job, onEvent: (event: WorkerEvent) => void): Promise<void>;
  /** Resolves once no step is in flight and onEvent has taken every event sent before. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
  state(): Promise<JobState>;
  /** Text from the lab's model (any state but idle). */
  sample(prompt: string, options: SampleOptions): Promise<string>;
  /** The same, and with `speculative` (a model with MTP modules, temperature 0) how the drafts fared. */
  sampleWithStats(prompt: string, options: SampleOptions): Promise<{ text: string; stats: SpeculationStats | null }>;
  /** Where each domain's validation tokens are routed, per MoE block (the lab; any state but idle). */
  specialisation(): Promise<BlockSpecialisation[]>;
  /** Where the lab's model routes each byte of `text`, per MoE block (traceRouting; any state but idle). */
  route(text: string, options?: RoutingTraceOptions): Promise<RoutingTrace>;
  /**
   * Grows the paused lab job's dense model into a DeepSeekMoE (upcycle; `settings` over the dense model's own moe)
   * and replaces the job with the grown one, held paused at the same step after one evaluation (the MoE's first
   * point; with an exact setting, the dense model's loss). Its events go to onEvent. Returns the step. Refused
   * unless the job is a paused dense language model; a refused or failed grow changes nothing.
   */
  grow(settings: UpcycleConfigInput, onEvent: (event: WorkerEvent) => void): Promise<{ step: number; exact: boolean }>;
  /** The lab's checkpoint file (transferred). */
  save(): Promise<Uint8Array>;
  /** Restores a checkpoint into the lab's model (paused or finished); returns its step. */
  load(bytes: Uint8Array): Promise<number>;
  /** Tensors alive in the worker (leak checks). */
  numTensors(): Promise<number>;
  /**
   * Holds the Web Lock `name` until the worker ends (lifeline.ts), so the page sees a death that sends no error
   * event. Resolves once held; rejects where there are no Web Locks (Node, whose threads report their exit).
   */
  lifeline(name: string): Promise<void>;
  /**
   * Runs the bench suite (bench/suite, the same as `npm run bench`) on the current backend, ending a paused or
   * finished job first; every progress tick reaches onProgress before the result. Refused while a job runs.
   */
  bench(mode: BenchMode, onProgress: (p: BenchProgress) => void): Promise<BenchResult>;
  /**
   * Runs the small (--quick) version of one claim table of `npm run bench:claims` on the current backend, on
   * `corpus` (domain name to text), ending a paused or finished job first; progress reaches onProgress as each
   * step ends. Refused while a job runs.
   */
  claims(name: ClaimName, corpus: Record<string, string>, onProgress: (p: ClaimProgress) => void): Promise<ClaimResult>;
}

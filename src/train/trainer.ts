/**
 * The training loop: AdamW with warm-up and cosine decay, gradient clipping, the balance losses, the
 * auxiliary-loss-free bias update after each step, periodic evaluation and checkpoints. It prints nothing:
 * everything it has to say goes out as typed events (events.ts). One GPU-to-CPU read per step (the loss,
 * gradient norm, routing statistics and biases together, awaited); the MoE blocks' finite check rides on it.
 */
import * as tf from '@tensorflow/tfjs';
import { updateExpertBias } from '../moe/balance.js';
import type { TextDataset } from '../data/dataset.js';
import { generateWithStats, type SampleOptions, type SpeculationStats } from '../model/generate.js';
import { checkFiniteInputs, languageModelLoss, mtpForward, type DeepSeekLM } from '../model/model.js';
import { plainModelConfig, resolveModelConfig } from '../model/config.js';
import { decode, encode } from '../model/tokenizer.js';
import { modelWeightSpecs } from '../model/weights.js';
import { mixSeeds, Rng } from '../rng.js';
import { AdamW } from './adamw.js';
import { accumulatedStep, moeBlockWeights } from './accumulate.js';
import { canonicalJson, writeCheckpoint, type UpcycledFrom } from './checkpoint.js';
import { configDifference, readModelCheckpoint } from './model-checkpoint.js';
import { learningRateAt, resolveTrainConfig, type TrainConfig, type TrainConfigInput } from './config.js';
import { RunControl } from './run-control.js';
import type { EvalEvent, LayerReport, TrainerEvent, TrainerEventMap } from './events.js';
import { specialisationReport, type BlockSpecialisation } from './specialisation.js';

/** A function called with each event of kind K. */
export type TrainerListener<K extends keyof TrainerEventMap> = (event: TrainerEventMap[K]) => void;

/**
 * The whole training state before an update: the model's weights (the bias included) and AdamW's moments as
 * zero-copy clones (assign() swaps a variable's buffer, so a clone keeps the old values), the counters, and the
 * sampler's state before it drew that step's batch. A checkpoint taken after putting it back equals one taken then.
 */
interface GoodState {
  weights: Record<string, tf.Tensor>;
  m: Record<string, tf.Tensor>;
  v: Record<string, tf.Tensor>;
  step: number;
  optimizerStep: number;
  rngState: number;
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** MaxVio (Loss-Free Balancing): max load / mean load - 1, from the load shares (mean 1 / E). */
export function maxViolation(load: ArrayLike<number>): number {
  return load.length === 0 ? 0 : Math.max(...Array.from(load)) * load.length - 1;
}

/** Trains a DeepSeekLM on a TextDataset; see the file header. Events: step, eval, checkpoint, done, error. */
export class Trainer {
  readonly config: Readonly<TrainConfig>;
  /** Optimizer steps completed. */
  step = 0;
  private readonly rng: Rng;
  private readonly optimizer: AdamW;
  private readonly trainable: Record<string, tf.Variable>;
  private readonly listeners = new Map<string, Set<(e: TrainerEvent) => void>>();
  /** The state before the latest update: put back when the next loss is not finite. */
  private lastGood: GoodState | null = null;
  /** Where the model was grown from (a restored upcycled checkpoint's), written into every later checkpoint. */
  upcycledFrom: UpcycledFrom | null = null;
  /** The sampler's state before the step in flight drew its batch (null between steps). */
  private stepRngState: number | null = null;
  private readonly control = new RunControl();
  private running = false;

  constructor(readonly model: DeepSeekLM, readonly dataset: TextDataset, config: TrainConfigInput = {}) {
    this.config = resolveTrainConfig(config);
    if (this.config.seqLen > model.config.maxSeqLen) {
      throw new Error(`train config: expected seqLen to be at most the model's maxSeqLen ` +
        `(${model.config.maxSeqLen}), but got ${this.config.seqLen}.`);
    }
    if (this.config.seqLen <= model.config.mtpDepth) {
      throw new Error(`train config: expected seqLen to exceed the model's mtpDepth (${model.config.mtpDepth}), ` +
        `but got ${this.config.seqLen}.`);
    }
    if (this.config.seqLen > dataset.seqLen) {
      throw new Error(`train config: expected seqLen to be at most the dataset's seqLen (${dataset.seqLen}), but ` +
        `got ${this.config.seqLen}.`);
    }
    const specs = modelWeightSpecs(model.config);
    this.trainable = Object.fromEntries(specs.filter((s) => s.trainable).map((s) => [s.name, model.weights[s.name]!]));
    const decays = new Set(specs.filter((s) => s.decay).map((s) => s.name));
    this.optimizer = new AdamW(this.trainable, decays, this.config.beta1, this.config.beta2, this.config.epsilon);
    this.rng = new Rng(this.config.seed);
  }

  on<K extends keyof TrainerEventMap>(type: K, listener: TrainerListener<K>): () => void {
    const set = this.listeners.get(type) ?? new Set();
    set.add(listener as (e: TrainerEvent) => void);
    this.listeners.set(type, set);
    return () => set.delete(listener as (e: TrainerEvent) => void);
  }

  private emit(event: TrainerEvent): void {
    for (const listener of this.listeners.get(event.type) ?? []) listener(event);
  }

  /** Ends run() after the step in progress (a paused run ends at once). */
  stop(): void {
    this.control.stop();
  }

  /**
   * Holds run() after the step in progress until resume(); resolves once no step is in flight. sample(),
   * checkpoint(), evaluate() and restore() work meanwhile.
   */
  pause(): Promise<void> {
    return this.control.pause();
  }

  resume(): void {
    this.control.resume();
  }

  get paused(): boolean {
    return this.control.paused;
  }

  /**
   * Trains until config.steps (or stop()). Resolves after the 'done' or 'error' event; a non-finite loss or
   * gradient stops the run with an 'error' event, and the weights are put back to the last ones whose loss was
   * finite.
   */
  async run(): Promise<void> {
    if (this.running) throw new Error('trainer: run() is already in progress.');
    this.running = true;
    this.control.begin();
    try {
      while (this.step < this.config.steps) {
        if (!(await this.control.boundary())) break;
        const ok = await this.trainStep();
        if (!ok) return;
        const { evalEvery, checkpointEvery } = this.config;
        if (evalEvery > 0 && this.step % evalEvery === 0 && this.step < this.config.steps) await this.evaluate();
        if (checkpointEvery > 0 && this.step % checkpointEvery === 0) {
          this.emit({ type: 'checkpoint', step: this.step, bytes: await this.checkpointFile() });
        }
      }
      if (this.step >= this.config.steps) await this.evaluate();
      this.emit({ type: 'done', step: this.step, stopped: this.step < this.config.steps });
    } catch (e) {
      // A throw mid-step (the MoE layer's finite check, a backend failure) also puts back the last good weights.
      const restored = this.restoreLastGood();
      const note = restored ? ` Training stopped; ${this.restoredNote()}` : '';
      this.emit({ type: 'error', step: this.step, message: `${(e as Error).message}${note}` });
    } finally {
      this.running = false;
      this.control.end();
    }
  }

  /** One optimizer step; false (after an 'error' event) when the loss or gradient was not finite. */
  private async trainStep(): Promise<boolean> {
    const c = this.config;
    const { batchSize: B, seqLen: S } = c;
    const start = now();
    const rngState = this.rng.state;
    this.stepRngState = rngState;
    const batch = this.dataset.sampleBatch(B, S, this.rng);
    const blocks: number[] = [];
    // Router jitter's noise follows the seed and the step, so a resumed run draws what an unbroken one would.
    const options = { microBatches: c.gradAccumSteps, jitterSeed: mixSeeds(c.seed, this.step) };
    const step = accumulatedStep(this.model, this.trainable, batch, S, options, (out, m) => {
      const readouts: Record<string, tf.Tensor> = { loss: out.lmLoss, balanceLoss: out.balanceLoss };
      if (out.mtpLosses.length > 0) readouts.mtpLosses = tf.stack(out.mtpLosses);
      for (const r of out.moe) {
        if (m === 0) blocks.push(r.block);
        const bias = moeBlockWeights(this.model.view, r.block).expertBias;
        Object.assign(readouts, {
          [`${r.block}.expertLoad`]: r.stats.expertLoad, [`${r.block}.droppedFraction`]: r.stats.droppedFraction,
          [`${r.block}.routerEntropy`]: r.stats.routerEntropy, [`${r.block}.nonFiniteInputs`]: r.nonFiniteInputs,
          ...(m === 0 ? { [`${r.block}.bias`]: bias ? tf.clone(bias) : tf.zeros([0]) } : {}),
        });
      }
      return readouts;
    });
    const discard = () => tf.dispose([...Object.values(step.grads), ...Object.values(step.kept)]);
    const values = await step.read().catch((e: unknown) => {
      discard(); // a lost device: nothing of the step outlives it
      throw e;
    });
    const [gradNorm = NaN, loss = NaN, balanceLoss = NaN] = [values.gradNorm![0], values.loss![0], values.balanceLoss![0]];
    const nonFinite = blocks.map((b) => values[`${b}.nonFiniteInputs`]![0]!);
    if (nonFinite.some((n) => n > 0)) {
      discard();
      checkFiniteInputs(blocks, nonFinite); // throws; run() puts back the last good state
    }
    const lr = learningRateAt(this.step, c);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm) || !Number.isFinite(balanceLoss)) {
      discard();
      const failedStep = this.step + 1;
      const restored = this.restoreLastGood();
      this.emit({
        type: 'error', step: this.step,
        message: `trainer: the loss or gradient became non-finite at step ${failedStep} (loss ${loss}, gradient norm ${gradNorm}); ` +
          (restored ? `training stopped, and ${this.restoredNote()}` : 'training stopped before any update.'),
      });
      return false;
    }
    this.keepGoodState(rngState);
    const scale = c.gradClip > 0 && gradNorm > c.gradClip ? c.gradClip / gradNorm : 1;
    this.optimizer.apply(this.trainable, step.grads, lr, c.weightDecay, scale);
    tf.dispose(Object.values(step.grads));
    const { biasUpdateSpeed, biasUpdate } = this.model.config.moeConfig;
    const layers: LayerReport[] = blocks.map((b) => {
      const bias = moeBlockWeights(this.model.view, b).expertBias as tf.Variable | null;
      const counts = step.kept[b] as tf.Tensor1D; // the whole global batch's load
      if (bias) updateExpertBias(bias, counts, biasUpdateSpeed, biasUpdate);
      counts.dispose();
      const value = (name: string) => values[`${b}.${name}`]!;
      const expertLoad = Array.from(value('expertLoad'));
      return {
        block: b, expertLoad, droppedFraction: value('droppedFraction')[0]!, maxViolation: maxViolation(expertLoad),
        routerEntropy: value('routerEntropy')[0]!, bias: Array.from(value('bias')),
      };
    });
    this.step += 1;
    this.stepRngState = null;
    const ms = now() - start;
    this.emit({
      type: 'step', step: this.step, loss, balanceLoss, mtpLosses: Array.from(values.mtpLosses ?? []),
      learningRate: lr, gradNorm, tokensPerSecond: (B * S * 1000) / ms, msPerStep: ms, layers,
    });
    return true;
  }

  /** Snapshots the state before the update about to be applied (cheap: clones share their buffers). */
  private keepGoodState(rngState: number): void {
    this.dropGoodState();
    const clones = (vars: Record<string, tf.Tensor>) => Object.fromEntries(Object.entries(vars).map(([n, t]) => [n, tf.clone(t)]));
    this.lastGood = {
      weights: clones(this.model.weights), m: clones(this.optimizer.m), v: clones(this.optimizer.v),
      step: this.step, optimizerStep: this.optimizer.step, rngState,
    };
  }

  /**
   * Puts back the whole state from before the latest update; false when there is no snapshot. Either way the
   * sampler goes back to before the failed step's batch, so the step count and the sampler agree.
   */
  private restoreLastGood(): boolean {
    const good = this.lastGood;
    if (this.stepRngState !== null) this.rng.state = this.stepRngState;
    this.stepRngState = null;
    if (!good) return false;
    const put = (vars: Record<string, tf.Variable>, values: Record<string, tf.Tensor>) => {
      for (const [name, value] of Object.entries(values)) vars[name]!.assign(value);
    };
    put(this.model.weights, good.weights);
    put(this.optimizer.m, good.m);
    put(this.optimizer.v, good.v);
    this.step = good.step;
    this.optimizer.step = good.optimizerStep;
    this.rng.state = good.rngState;
    this.dropGoodState();
    return true;
  }

  private dropGoodState(): void {
    if (this.lastGood) {
      tf.dispose([
        ...Object.values(this.lastGood.weights), ...Object.values(this.lastGood.m), ...Object.values(this.lastGood.v),
      ]);
    }
    this.lastGood = null;
  }

  /** Says what restoreLastGood() put back. */
  private restoredNote(): string {
    return `the trainer is back to its state before step ${this.step + 1} (weights, optimizer moments, step count and ` +
      'sampler), the last with a finite loss.';
  }

  /** Validation loss over config.evalWindows fixed windows per domain; emits and returns an 'eval' event. */
  async evaluate(): Promise<EvalEvent> {
    const { evalWindows, seqLen } = this.config;
    const D = this.dataset.domains.length;
    let blocks: number[] = [];
    const E = this.model.config.moeConfig.nRoutedExperts;
    // One read: each domain's loss, each domain's non-finite MoE input counts per block, then each block's expert
    // counts per domain (MaxVio_global over the whole validation set). Evaluation runs dropless.
    const read = tf.tidy(() => {
      const losses: tf.Tensor[] = [];
      const nonFinite: tf.Tensor[] = [];
      const counts: tf.Tensor[][] = []; // [block][domain]: [E]
      for (let i = 0; i < D; i++) {
        const b = this.dataset.validationBatch(i, evalWindows, seqLen);
        const targets = tf.tensor2d(b.targets, [b.batchSize, seqLen], 'int32');
        const out = this.model.forward(tf.tensor2d(b.ids, [b.batchSize, seqLen], 'int32'));
        losses.push(languageModelLoss(out.logits, targets));
        const moe = this.model.config.mtpDepth > 0
          ? [...out.moe, ...mtpForward(this.model.view, this.model.config, out.hidden, targets).moe]
          : out.moe;
        nonFinite.push(...moe.map((m) => m.nonFiniteInputs));
        moe.forEach((m, j) => (counts[j] ??= []).push(tf.reshape(m.expertCounts, [E])));
        blocks = moe.map((m) => m.block);
      }
      return tf.concat([tf.stack([...losses, ...nonFinite]), ...counts.flat()]);
    });
    const all = (await read.data()) as Float32Array;
    read.dispose();
    const nb = blocks.length;
    for (let i = 0; i < D; i++) checkFiniteInputs(blocks, all.subarray(D + i * nb, D + (i + 1) * nb));
    const values = Array.from(all.subarray(0, D));
    const domainLoss = Object.fromEntries(this.dataset.domains.map((d, i) => [d, values[i]!]));
    // Every domain gives the same windows; the training mix weighs each by its share of the training bytes.
    const train = this.dataset.sizes.map((z) => z.train);
    const mix = train.map((n) => (D * n) / train.reduce((a, b) => a + b, 0));
    const maxVioOf = (j: number, weights: number[]) => {
      const loads = new Float64Array(E);
      for (let i = 0; i < D; i++) {
        const at = D + D * nb + (j * D + i) * E;
        for (let e = 0; e < E; e++) loads[e] = loads[e]! + weights[i]! * all[at + e]!;
      }
      const total = loads.reduce((a, b) => a + b, 0);
      return maxViolation(Array.from(loads, (n) => n / total));
    };
    const layers = blocks.map((block, j) => ({
      block, maxVioGlobal: maxVioOf(j, mix.map(() => 1)), maxVioGlobalTrainingMix: maxVioOf(j, mix),
    }));
    const meanOf = (f: (l: (typeof layers)[number]) => number) =>
      nb === 0 ? 0 : layers.reduce((a, l) => a + f(l), 0) / nb;
    const maxVioGlobal = meanOf((l) => l.maxVioGlobal);
    const maxVioGlobalTrainingMix = meanOf((l) => l.maxVioGlobalTrainingMix);
    const valLoss = values.reduce((a, b) => a + b, 0) / values.length;
    const event: EvalEvent = {
      type: 'eval', step: this.step, valLoss, domainLoss, layers, maxVioGlobal, maxVioGlobalTrainingMix,
    };
    this.emit(event);
    return event;
  }

  /** Where each domain's tokens go, per MoE block (validation windows). */
  specialisation(windows = this.config.evalWindows): Promise<BlockSpecialisation[]> {
    return specialisationReport(this.model, this.dataset, windows, this.config.seqLen);
  }

  /** Text continuing `prompt`. */
  async sample(prompt: string, options: SampleOptions): Promise<string> {
    return (await this.sampleWithStats(prompt, options)).text;
  }

  /** Text continuing `prompt` and, with `speculative`, how the MTP module's drafts fared (else stats is null). */
  async sampleWithStats(
    prompt: string, options: SampleOptions,
  ): Promise<{ text: string; stats: SpeculationStats | null }> {
    if (typeof prompt !== 'string') throw new Error(`trainer.sample: expected prompt to be a string, but got ${typeof prompt}.`);
    const { tokens, stats } = await generateWithStats(this.model, encode(prompt), options);
    return { text: decode(tokens), stats };
  }

  /**
   * The whole training state as a checkpoint file. Called while run() is stepping, it holds the run at its next
   * boundary for the reads (a step in flight has already drawn its batch) and then lets it go on.
   */
  async checkpoint(): Promise<Uint8Array> {
    if (this.control.idle) return this.checkpointFile();
    const wasPaused = this.control.paused;
    await this.control.pause();
    try {
      return await this.checkpointFile();
    } finally {
      if (!wasPaused) this.control.resume();
    }
  }

  /** The checkpoint file of the state right now; only between steps. */
  private async checkpointFile(): Promise<Uint8Array> {
    const specs = modelWeightSpecs(this.model.config);
    const entries: { name: string; tensor: tf.Tensor }[] = [
      ...specs.map((s) => ({ name: s.name, tensor: this.model.weights[s.name]! as tf.Tensor })),
      ...Object.keys(this.trainable).flatMap((n) => [
        { name: `adam.m/${n}`, tensor: this.optimizer.m[n]! as tf.Tensor },
        { name: `adam.v/${n}`, tensor: this.optimizer.v[n]! as tf.Tensor },
      ]),
    ];
    // Zero-copy clones and the counters are taken now, so a resume() during the reads cannot mix a step in.
    const header = {
      modelConfig: this.model.plainConfig, trainConfig: { ...this.config }, step: this.step, rngState: this.rng.state,
      ...(this.optimizer.step !== this.step ? { optimizerStep: this.optimizer.step } : {}),
      ...(this.upcycledFrom ? { upcycledFrom: this.upcycledFrom } : {}),
    };
    const snapshot = entries.map((e) => tf.clone(e.tensor));
    try {
      const values = await Promise.all(snapshot.map((t) => t.data() as Promise<Float32Array>));
      return writeCheckpoint(header, entries.map((e, i) => ({ name: e.name, shape: e.tensor.shape, values: values[i]! })));
    } finally {
      tf.dispose(snapshot);
    }
  }

  /**
   * Restores a checkpoint: weights, optimizer state, step and sampler state. Everything is checked first (file
   * integrity, the model config, every tensor's presence and shape); on any mismatch it throws and nothing
   * changes.
   */
  restore(bytes: Uint8Array): void {
    if (!this.control.idle) throw new Error('trainer: cannot restore while a step is in flight; await pause() or stop() first.');
    const { header, tensors, modelConfig } = readModelCheckpoint(bytes);
    // The seed only chose the initial weights, which the checkpoint replaces; every other field must match.
    const shape = (c: object) => JSON.parse(canonicalJson({ ...c, seed: undefined })) as object;
    // Resolved, so fields added since the file was written (with defaults that keep its model) compare equal.
    const difference = configDifference(shape(this.model.plainConfig), shape(plainModelConfig(modelConfig)));
    if (difference) {
      throw new Error(`checkpoint: expected a checkpoint of this model, but its config differs (this model against ` +
        `the checkpoint's): ${difference}.`);
    }
    const targets: [string, tf.Variable][] = [
      ...modelWeightSpecs(this.model.config).map((s) => [s.name, this.model.weights[s.name]!] as [string, tf.Variable]),
      ...Object.keys(this.trainable).flatMap((n) => [
        [`adam.m/${n}`, this.optimizer.m[n]!], [`adam.v/${n}`, this.optimizer.v[n]!],
      ] as [string, tf.Variable][]),
    ];
    const shapes = new Map(header.tensors.map((t) => [t.name, t.shape]));
    for (const [name, variable] of targets) {
      const shape = shapes.get(name);
      if (!shape) throw new Error(`checkpoint: expected a tensor '${name}', but the file has none.`);
      if (!tf.util.arraysEqual(shape, variable.shape)) {
        throw new Error(`checkpoint: expected '${name}' to have shape [${variable.shape}], but got [${shape}].`);
      }
    }
    for (const [name, variable] of targets) {
      tf.tidy(() => variable.assign(tf.tensor(tensors.get(name)!, variable.shape, 'float32')));
    }
    this.dropGoodState();
    this.stepRngState = null;
    this.step = header.step;
    this.optimizer.step = header.optimizerStep ?? header.step;
    this.upcycledFrom = header.upcycledFrom ?? null;
    this.rng.state = header.rngState >>> 0;
  }

  /** Frees the optimizer state (the model is the caller's). */
  dispose(): void {
    this.optimizer.dispose();
    this.dropGoodState();
  }
}

/**
 * The training loop: AdamW with warm-up and cosine decay, gradient clipping, the balance losses, the
 * auxiliary-loss-free bias update after each step, periodic evaluation and checkpoints. It prints nothing:
 * everything it has to say goes out as typed events (events.ts). One GPU-to-CPU read per step (the loss,
 * gradient norm, routing statistics and biases together, awaited), plus the reads the MoE dispatch mode makes.
 */
import * as tf from '@tensorflow/tfjs';
import { updateExpertBias } from '../moe/balance.js';
import type { TextDataset } from '../data/dataset.js';
import { generate, type SampleOptions } from '../model/generate.js';
import { languageModelLoss, type DeepSeekLM } from '../model/model.js';
import { decode, encode } from '../model/tokenizer.js';
import { modelWeightSpecs } from '../model/weights.js';
import { Rng } from '../rng.js';
import { AdamW } from './adamw.js';
import { canonicalJson, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { learningRateAt, resolveTrainConfig, type TrainConfig, type TrainConfigInput } from './config.js';
import { RunControl } from './run-control.js';
import type { EvalEvent, LayerReport, TrainerEvent, TrainerEventMap } from './events.js';
import { specialisationReport, type BlockSpecialisation } from './specialisation.js';

type Listener<K extends keyof TrainerEventMap> = (event: TrainerEventMap[K]) => void;

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

export class Trainer {
  readonly config: Readonly<TrainConfig>;
  /** Optimizer steps completed. */
  step = 0;
  private readonly rng: Rng;
  private readonly optimizer: AdamW;
  private readonly trainable: Record<string, tf.Variable>;
  private readonly listeners = new Map<string, Set<(e: TrainerEvent) => void>>();
  /** The weights before the latest update (zero-copy clones): put back when the next loss is not finite. */
  private lastGood: Record<string, tf.Tensor> | null = null;
  private readonly control = new RunControl();
  private running = false;

  constructor(readonly model: DeepSeekLM, readonly dataset: TextDataset, config: TrainConfigInput = {}) {
    this.config = resolveTrainConfig(config);
    if (this.config.seqLen > model.config.maxSeqLen) {
      throw new Error(`train config: expected seqLen to be at most the model's maxSeqLen (${model.config.maxSeqLen}), but got ${this.config.seqLen}.`);
    }
    const specs = modelWeightSpecs(model.config);
    this.trainable = Object.fromEntries(specs.filter((s) => s.trainable).map((s) => [s.name, model.weights[s.name]!]));
    const decays = new Set(specs.filter((s) => s.decay).map((s) => s.name));
    this.optimizer = new AdamW(this.trainable, decays, this.config.beta1, this.config.beta2, this.config.epsilon);
    this.rng = new Rng(this.config.seed);
  }

  on<K extends keyof TrainerEventMap>(type: K, listener: Listener<K>): () => void {
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
      const note = restored ? ` Training stopped; the weights are back to those before step ${this.step}, the last with a finite loss.` : '';
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
    const batch = this.dataset.sampleBatch(B, S, this.rng);
    const moeBlocks: { block: number; counts: tf.Tensor1D }[] = [];
    const names = Object.keys(this.trainable);
    const { summary, grads } = tf.tidy(() => {
      const ids = tf.tensor2d(batch.ids, [B, S], 'int32');
      const targets = tf.tensor2d(batch.targets, [B, S], 'int32');
      let parts: tf.Tensor[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const out = this.model.forward(ids, { training: true });
        const lmLoss = languageModelLoss(out.logits, targets);
        parts = [lmLoss, out.balanceLoss];
        for (const m of out.moe) {
          moeBlocks.push({ block: m.block, counts: tf.keep(m.expertCounts) });
          const bias = this.model.weights[`blocks.${m.block}.moe.expertBias`];
          parts.push(m.stats.expertLoad, m.stats.droppedFraction, m.stats.maxViolation, m.stats.routerEntropy, bias ? tf.clone(bias) : tf.zeros([0]));
        }
        parts.forEach((t) => tf.keep(t));
        return tf.add(lmLoss, out.balanceLoss) as tf.Scalar;
      }, Object.values(this.trainable));
      value.dispose();
      // variableGrads keys gradients by the engine's variable names; ours are the checkpoint names.
      const named: Record<string, tf.Tensor> = {};
      for (const name of names) named[name] = grads[this.trainable[name]!.name]!;
      const gradNorm = tf.sqrt(Object.values(named).reduce((acc: tf.Tensor, g) => tf.add(acc, tf.sum(tf.square(g))), tf.scalar(0)));
      const summary = tf.concat([gradNorm, ...parts].map((t) => tf.reshape(t, [-1])));
      parts.forEach((t) => t.dispose());
      return { summary, grads: named };
    });
    const values = (await summary.data()) as Float32Array;
    summary.dispose();
    const [gradNorm = NaN, loss = NaN, balanceLoss = NaN] = values;
    const lr = learningRateAt(this.step, c);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm) || !Number.isFinite(balanceLoss)) {
      tf.dispose(grads);
      moeBlocks.forEach((m) => m.counts.dispose());
      const restored = this.restoreLastGood();
      this.emit({
        type: 'error', step: this.step,
        message: `trainer: the loss or gradient became non-finite at step ${this.step + 1} (loss ${loss}, gradient norm ${gradNorm}); ` +
          (restored
            ? `training stopped, and the weights are back to those before step ${this.step}, the last with a finite loss.`
            : 'training stopped before any update.'),
      });
      return false;
    }
    // Cheap snapshot: assign() swaps a variable's buffer, so clones keep the old values without copying them.
    if (this.lastGood) tf.dispose(this.lastGood);
    this.lastGood = Object.fromEntries(Object.entries(this.model.weights).map(([n, w]) => [n, tf.clone(w)]));
    const scale = c.gradClip > 0 && gradNorm > c.gradClip ? c.gradClip / gradNorm : 1;
    this.optimizer.apply(this.trainable, grads, lr, c.weightDecay, scale);
    tf.dispose(grads);
    const layers: LayerReport[] = [];
    let offset = 3;
    for (const m of moeBlocks) {
      const E = m.counts.shape[0];
      const bias = this.model.weights[`blocks.${m.block}.moe.expertBias`];
      if (bias) updateExpertBias(bias, m.counts, this.model.config.moeConfig.biasUpdateSpeed);
      m.counts.dispose();
      const nBias = bias ? E : 0;
      layers.push({
        block: m.block,
        expertLoad: Array.from(values.subarray(offset, offset + E)),
        droppedFraction: values[offset + E]!,
        maxViolation: values[offset + E + 1]!,
        routerEntropy: values[offset + E + 2]!,
        bias: Array.from(values.subarray(offset + E + 3, offset + E + 3 + nBias)),
      });
      offset += E + 3 + nBias;
    }
    this.step += 1;
    const ms = now() - start;
    this.emit({
      type: 'step', step: this.step, loss, balanceLoss, learningRate: lr, gradNorm,
      tokensPerSecond: (B * S * 1000) / ms, msPerStep: ms, layers,
    });
    return true;
  }

  /** Puts back the weights from before the latest update; false when there is no snapshot. */
  private restoreLastGood(): boolean {
    if (!this.lastGood) return false;
    for (const [name, value] of Object.entries(this.lastGood)) this.model.weights[name]!.assign(value);
    tf.dispose(this.lastGood);
    this.lastGood = null;
    return true;
  }

  /** Validation loss over config.evalWindows fixed windows per domain; emits and returns an 'eval' event. */
  async evaluate(): Promise<EvalEvent> {
    const { evalWindows, seqLen } = this.config;
    const losses = tf.tidy(() =>
      tf.stack(this.dataset.domains.map((_, i) => {
        const b = this.dataset.validationBatch(i, evalWindows, seqLen);
        const ids = tf.tensor2d(b.ids, [b.batchSize, seqLen], 'int32');
        return languageModelLoss(this.model.forward(ids).logits, tf.tensor2d(b.targets, [b.batchSize, seqLen], 'int32'));
      })),
    );
    const values = Array.from(await losses.data());
    losses.dispose();
    const domainLoss = Object.fromEntries(this.dataset.domains.map((d, i) => [d, values[i]!]));
    const event: EvalEvent = { type: 'eval', step: this.step, valLoss: values.reduce((a, b) => a + b, 0) / values.length, domainLoss };
    this.emit(event);
    return event;
  }

  /** Where each domain's tokens go, per MoE block (validation windows). */
  specialisation(windows = this.config.evalWindows): Promise<BlockSpecialisation[]> {
    return specialisationReport(this.model, this.dataset, windows, this.config.seqLen);
  }

  /** Text continuing `prompt`. */
  async sample(prompt: string, options: SampleOptions): Promise<string> {
    return decode(await generate(this.model, encode(prompt), options));
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
    const header = { modelConfig: this.model.plainConfig, trainConfig: { ...this.config }, step: this.step, rngState: this.rng.state };
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
    const { header, tensors } = readCheckpoint(bytes);
    // The seed only chose the initial weights, which the checkpoint replaces; every other field must match.
    const shape = (c: object) => canonicalJson({ ...c, seed: undefined });
    const mine = shape(this.model.plainConfig);
    if (shape(header.modelConfig ?? {}) !== mine) {
      throw new Error(`checkpoint: expected a checkpoint of model config ${mine}, but got one of ${shape(header.modelConfig ?? {})}.`);
    }
    if (!Number.isInteger(header.step) || header.step < 0) throw new Error(`checkpoint: expected step to be a non-negative integer, but got ${header.step}.`);
    const targets: [string, tf.Variable][] = [
      ...modelWeightSpecs(this.model.config).map((s) => [s.name, this.model.weights[s.name]!] as [string, tf.Variable]),
      ...Object.keys(this.trainable).flatMap((n) => [[`adam.m/${n}`, this.optimizer.m[n]!], [`adam.v/${n}`, this.optimizer.v[n]!]] as [string, tf.Variable][]),
    ];
    for (const [name, variable] of targets) {
      const values = tensors.get(name);
      if (!values) throw new Error(`checkpoint: expected a tensor '${name}', but the file has none.`);
      if (values.length !== variable.size) throw new Error(`checkpoint: expected '${name}' to hold ${variable.size} values (shape [${variable.shape}]), but got ${values.length}.`);
    }
    for (const [name, variable] of targets) {
      tf.tidy(() => variable.assign(tf.tensor(tensors.get(name)!, variable.shape, 'float32')));
    }
    if (this.lastGood) tf.dispose(this.lastGood);
    this.lastGood = null;
    this.step = header.step;
    this.optimizer.step = header.step;
    this.rng.state = header.rngState >>> 0;
  }

  /** Frees the optimizer state (the model is the caller's). */
  dispose(): void {
    this.optimizer.dispose();
    if (this.lastGood) tf.dispose(this.lastGood);
    this.lastGood = null;
  }
}

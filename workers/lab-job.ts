/** The language model lab's job: the library's Trainer on a corpus, its events passed on as they come. */
import { DeepSeekLM, traceRouting, type RoutingTraceOptions, type SampleOptions } from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer, resolveTrainConfig } from 'deepseek-moe-tfjs/train';
import type { JobState, LabJob, WorkerEvent } from './protocol.js';

export class LabRun {
  private readonly model: DeepSeekLM;
  private readonly trainer: Trainer;
  private finished = false;
  private stopRequested = false;

  /** Validates and builds everything (throwing on bad input) before any training starts. */
  constructor(readonly job: LabJob, private readonly emit: (event: WorkerEvent) => void) {
    const dataset = new TextDataset(job.corpus, { seqLen: resolveTrainConfig(job.train).seqLen });
    this.model = new DeepSeekLM(job.model);
    try {
      this.trainer = new Trainer(this.model, dataset, job.train);
    } catch (e) {
      this.model.dispose();
      throw e;
    }
    for (const type of ['step', 'eval', 'done', 'error'] as const) this.trainer.on(type, (e) => this.emit(e));
  }

  /** Trains until the config's steps, stop() or an error; never rejects (errors arrive as events). */
  async run(): Promise<void> {
    try {
      await this.trainer.evaluate(); // the starting validation loss, so the curve has its first point
      // A stop() during that evaluation came before run() could see it.
      if (this.stopRequested) this.emit({ type: 'done', step: this.trainer.step, stopped: true });
      else await this.trainer.run();
    } catch (e) {
      this.emit({ type: 'error', step: this.trainer.step, message: (e as Error).message });
    } finally {
      this.finished = true;
    }
  }

  /** The model's plain config (a dense one can grow into a MoE: workers/training.ts grow). */
  get modelConfig() {
    return this.model.plainConfig;
  }

  get state(): JobState {
    return this.finished ? 'finished' : this.trainer.paused ? 'paused' : 'running';
  }

  pause = () => this.trainer.pause();
  resume = () => this.trainer.resume();
  stop = () => {
    this.stopRequested = true;
    this.trainer.stop();
  };
  sample = (prompt: string, options: SampleOptions) => this.trainer.sample(prompt, options);
  sampleWithStats = (prompt: string, options: SampleOptions) => this.trainer.sampleWithStats(prompt, options);
  save = () => this.trainer.checkpoint();
  specialisation = () => this.trainer.specialisation();
  route = (text: string, options: RoutingTraceOptions) => traceRouting(this.model, text, options);

  load(bytes: Uint8Array): number {
    this.trainer.restore(bytes);
    return this.trainer.step;
  }

  dispose(): void {
    this.trainer.dispose();
    this.model.dispose();
  }
}

/** The routing playground's job: PlaneClassifier steps, a report per step and a painted plane now and then. */
import * as Comlink from 'comlink';
import { RunControl } from 'deepseek-moe-tfjs/train';
import type { JobState, PlaygroundJob, WorkerEvent } from '../protocol.js';
import { PlaneClassifier } from './classifier.js';

export class PlaygroundRun {
  private readonly classifier: PlaneClassifier;
  private readonly control = new RunControl();
  private finished = false;

  constructor(private readonly job: PlaygroundJob, private readonly emit: (event: WorkerEvent) => void) {
    const { steps, mapEvery, mapResolution } = job;
    if (!Number.isInteger(steps) || steps < 1) {
      throw new Error(`playground job: expected steps to be a positive integer, but got ${steps}.`);
    }
    if (!Number.isInteger(mapEvery) || mapEvery < 1) {
      throw new Error(`playground job: expected mapEvery to be a positive integer, but got ${mapEvery}.`);
    }
    if (!Number.isInteger(mapResolution) || mapResolution < 2 || mapResolution > 256) {
      throw new Error(`playground job: expected mapResolution to be an integer in [2, 256], but got ${mapResolution}.`);
    }
    this.classifier = new PlaneClassifier(job.classifier);
  }

  private async paint(): Promise<void> {
    const map = await this.classifier.routingMap(this.job.mapResolution);
    const message: WorkerEvent = { type: 'routingMap', step: this.classifier.step, map };
    this.emit(Comlink.transfer(message, [map.expert.buffer, map.confidence.buffer, map.predicted.buffer]));
  }

  async run(): Promise<void> {
    this.control.begin();
    try {
      await this.paint();
      while (this.classifier.step < this.job.steps) {
        if (!(await this.control.boundary())) break;
        const report = await this.classifier.trainStep();
        if (!Number.isFinite(report.loss)) {
          throw new Error(`playground: the loss became non-finite at step ${report.step} (${report.loss}).`);
        }
        this.emit({ type: 'planeStep', report });
        if (report.step % this.job.mapEvery === 0 || report.step === this.job.steps) await this.paint();
      }
      const step = this.classifier.step;
      this.emit({ type: 'done', step, stopped: step < this.job.steps });
    } catch (e) {
      this.emit({ type: 'error', step: this.classifier.step, message: (e as Error).message });
    } finally {
      this.control.end();
      this.finished = true;
    }
  }

  get state(): JobState {
    return this.finished ? 'finished' : this.control.paused ? 'paused' : 'running';
  }

  pause = () => this.control.pause();
  resume = () => this.control.resume();
  stop = () => this.control.stop();

  dispose(): void {
    this.classifier.dispose();
  }
}

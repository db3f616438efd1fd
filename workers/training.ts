/**
 * The training worker's commands (protocol.ts), independent of how they are exposed: train.worker.ts puts them
 * behind comlink in a web worker or a Node worker thread. One job at a time; the backend is chosen before it.
 */
import * as tf from '@tensorflow/tfjs';
import * as Comlink from 'comlink';
import { browserEnvironment } from '../tools/bench-suite/environment.js';
import { runBenchSuite } from '../tools/bench-suite/index.js';
import { pageRunSettings, runClaim, type ClaimProgress } from '../tools/claims/run.js';
import type { ClaimResult } from '../tools/claims/schema.js';
import { claimTable, type ClaimName } from '../tools/claims/tables.js';
import {
  backendAvailability, backendNames, initBackend, type BackendName, type InitBackendOptions,
} from 'deepseek-moe-tfjs';
import type { RoutingTraceOptions, SampleOptions } from 'deepseek-moe-tfjs/model';
import { upcycle, type UpcycleConfigInput } from 'deepseek-moe-tfjs/train';
import { LabRun } from './lab-job.js';
import { holdLifeline } from './lifeline.js';
import { PlaygroundRun } from './playground/job.js';
import type { BenchMode, BenchProgress, BenchResult, Job, JobState, TrainingWorkerApi, WorkerEvent } from './protocol.js';

const runtime = globalThis as { process?: { versions?: { node?: string } } };

export function createTrainingWorker(): TrainingWorkerApi {
  let run: LabRun | PlaygroundRun | null = null;
  let benchRunning = false;

  const busy = () => benchRunning || (run !== null && run.state === 'running');
  const lab = (what: string): LabRun => {
    if (!(run instanceof LabRun)) {
      throw new Error(`${what}: needs a language model job, but ${run ? 'the job is the playground' : 'no job has started'}.`);
    }
    return run;
  };
  const current = (what: string) => {
    if (!run) throw new Error(`${what}: no job has started.`);
    return run;
  };
  /** The job whose events reach the page; a replaced job's late events (its 'done') are dropped. */
  let live: object | null = null;
  /**
   * The caller's answer to the last event or progress tick sent. Under comlink a listener is a proxy with its own
   * message channel, which a command's answer could overtake; a command that reports a boundary (pause, bench)
   * waits for it, so the caller has every event from before the boundary (the channel is in order).
   */
  let lastDelivery: unknown;
  const delivered = async () => {
    await Promise.resolve(lastDelivery).catch(() => {}); // a listener that throws is the caller's own failure
  };
  /** The emitter of a new job's events: only the live job's reach the caller. */
  const listen = (onEvent: (event: WorkerEvent) => void) => {
    const token = {};
    const emit = (event: WorkerEvent) => {
      if (live === token) lastDelivery = onEvent(event);
    };
    return { token, emit };
  };
  /** Ends the current job once no step is in flight, and frees it. */
  const endRun = async () => {
    const old = run;
    run = null;
    live = null;
    if (!old) return;
    await old.pause();
    old.stop();
    old.dispose();
  };

  return {
    async backends() {
      return Promise.all(backendNames().map(backendAvailability));
    },

    async setBackend(name: BackendName, options?: InitBackendOptions) {
      if (busy()) throw new Error(`setBackend: a job is running; pause or stop it before switching to '${name}'.`);
      const names = backendNames();
      if (!names.includes(name)) throw new Error(`setBackend: expected one of ${names.join(', ')}, but got ${JSON.stringify(name)}.`);
      // Refused before the job is ended: a backend that cannot start here changes nothing.
      const availability = await backendAvailability(name);
      if (!availability.available) throw new Error(`setBackend: backend '${name}' is not available here (${availability.reason}).`);
      await endRun(); // a job's tensors live on the backend that made them
      return initBackend(name, options);
    },

    async start(job: Job, onEvent: (event: WorkerEvent) => void) {
      if (busy()) throw new Error('start: a job is already running; stop it first.');
      const kind = (job as { kind?: unknown } | null)?.kind;
      if (kind !== 'lab' && kind !== 'playground') {
        throw new Error(`start: expected job.kind to be 'lab' or 'playground', but got ${JSON.stringify(kind)}.`);
      }
      await tf.ready();
      const { token, emit } = listen(onEvent);
      const next = job.kind === 'lab' ? new LabRun(job, emit) : new PlaygroundRun(job, emit); // throws before anything changes
      await endRun();
      run = next;
      live = token;
      void next.run();
    },

    async grow(settings: UpcycleConfigInput, onEvent: (event: WorkerEvent) => void) {
      const job = lab('grow');
      if (job.state !== 'paused') throw new Error(`grow: expected a paused job, but it is ${job.state}.`);
      if (job.modelConfig.ffn !== 'dense') {
        throw new Error("grow: expected a dense model (the lab's FFN 'dense'), but the job's model is a MoE already.");
      }
      const grown = upcycle(await job.save(), settings); // throws before anything changes
      const { token, emit } = listen(onEvent);
      const next = new LabRun({ ...job.job, model: grown.modelConfig }, emit);
      try {
        next.load(grown.checkpoint);
        await next.pause();
      } catch (e) {
        next.dispose();
        throw e;
      }
      await endRun();
      run = next;
      live = token;
      void next.run(); // its first evaluation is the grown model's point at the same step; then held
      return { step: grown.step, exact: grown.plan.exact };
    },

    async pause() {
      await current('pause').pause();
      await delivered();
    },
    async resume() {
      current('resume').resume();
    },
    async stop() {
      current('stop').stop();
    },
    async state(): Promise<JobState> {
      return run ? run.state : 'idle';
    },
    async sample(prompt: string, options: SampleOptions) {
      return lab('sample').sample(prompt, options);
    },
    async sampleWithStats(prompt: string, options: SampleOptions) {
      return lab('sampleWithStats').sampleWithStats(prompt, options);
    },
    async specialisation() {
      return lab('specialisation').specialisation();
    },
    async route(text: string, options: RoutingTraceOptions = {}) {
      return lab('route').route(text, options);
    },
    async save() {
      const bytes = await lab('save').save();
      return Comlink.transfer(bytes, [bytes.buffer]);
    },
    async load(bytes: Uint8Array) {
      const job = lab('load');
      if (job.state === 'running') throw new Error('load: the job is running; pause or stop it first.');
      return job.load(bytes);
    },
    async numTensors() {
      return tf.memory().numTensors;
    },
    lifeline(name: string) {
      return holdLifeline(name);
    },

    async bench(mode: BenchMode, onProgress: (p: BenchProgress) => void): Promise<BenchResult> {
      if (busy()) throw new Error('bench: a job is running; stop it first.');
      if (mode !== 'quick' && mode !== 'full') throw new Error(`bench: expected mode 'quick' or 'full', but got ${JSON.stringify(mode)}.`);
      benchRunning = true;
      try {
        await endRun();
        const environment = runtime.process?.versions?.node
          ? {
            runtime: 'node' as const, description: `Node v${runtime.process.versions.node} (worker thread)`,
            cores: null, device: null, tfjsVersion: tf.version_core,
          }
          : await browserEnvironment();
        const result = await runBenchSuite({ mode, environment, onProgress: (p) => void (lastDelivery = onProgress(p)) });
        await delivered();
        return result;
      } finally {
        benchRunning = false;
      }
    },

    async claims(
      name: ClaimName, corpus: Record<string, string>, onProgress: (p: ClaimProgress) => void,
    ): Promise<ClaimResult> {
      if (busy()) throw new Error('claims: a job is running; stop it first.');
      const table = claimTable(name, true);
      benchRunning = true;
      try {
        await endRun();
        const result = await runClaim(table, pageRunSettings, corpus, (p) => void (lastDelivery = onProgress(p)));
        await delivered();
        return result;
      } finally {
        benchRunning = false;
      }
    },
  };
}

import * as Comlink from 'comlink';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { plainModelConfig, readCheckpoint } from 'deepseek-moe-tfjs/config';
import { denseTwin, preset } from 'deepseek-moe-tfjs/model';
import { loadModel, TextDataset, Trainer } from 'deepseek-moe-tfjs/train';
import type { BenchProgress, TrainingWorkerApi, WorkerEvent } from '../../workers/protocol.js';
import { benchTaskCount } from '../../tools/bench-suite/index.js';
import { validateBenchResult } from '../../tools/bench-suite/validate.js';
import { bundledCorpus } from '../../tools/corpus.js';
import { startNodeTrainingWorker, type NodeTrainingWorker } from '../../workers/node-thread.js';

describe('the training worker under worker_threads', () => {
  // The browser's worker module, as a Node worker thread.
  let worker: NodeTrainingWorker;
  let api: Comlink.Remote<TrainingWorkerApi>;

  beforeAll(() => {
    worker = startNodeTrainingWorker();
    api = worker.api;
  });
  afterAll(async () => {
    await worker.terminate();
  });

  /** A listener to pass to start(), the events it got, and a promise of the run's end; `takeMs` makes it slow. */
  const collect = (takeMs = 0) => {
    const events: WorkerEvent[] = [];
    let end = () => {};
    const ended = new Promise<void>((resolve) => (end = resolve));
    const listener = Comlink.proxy(async (e: WorkerEvent) => {
      if (takeMs > 0) await new Promise((resolve) => setTimeout(resolve, takeMs));
      events.push(e);
      if (e.type === 'done' || e.type === 'error') end();
    });
    return { events, ended: Promise.race([ended, worker.failed]), listener };
  };

  it('lists the backends a Node worker can use and starts wasm', async () => {
    const backends = await api.backends();
    expect(backends.map((b) => b.name)).toEqual(['tensorflow', 'wasm', 'cpu', 'webgpu']); // webgpu through Dawn
    expect(backends.find((b) => b.name === 'wasm')!.available).toBe(true);
    await expect(api.setBackend('webgpu')).rejects.toThrow(/backend 'webgpu' is not available here/);
    expect(await api.setBackend('wasm')).toBe('wasm');
  });

  it('trains the language model a few steps, pauses, samples, saves and restores the same sample', async () => {
    const { events, ended, listener } = collect(50); // pause() answers only after the listener took every step
    const corpus = bundledCorpus();
    await api.start({
      kind: 'lab', model: preset('tiny'),
      train: { steps: 12, batchSize: 4, seqLen: 32, evalEvery: 6, evalWindows: 2, warmupSteps: 2 }, corpus,
    }, listener);
    await api.pause();
    expect(await api.state()).toBe('paused');
    const steps = events.filter((e) => e.type === 'step');
    const bytes = await api.save();
    const sample = await api.sample('the ', { maxNewTokens: 12, temperature: 0 });
    await api.resume();
    await ended;
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    const all = events.filter((e) => e.type === 'step');
    expect(all).toHaveLength(12);
    expect(all[11]!.loss).toBeLessThan(all[0]!.loss);
    expect(events.filter((e) => e.type === 'eval').length).toBeGreaterThanOrEqual(2);
    expect(await api.sample('the ', { maxNewTokens: 12, temperature: 0 })).not.toBe(sample); // it trained on
    expect(await api.load(bytes)).toBe(steps.length);
    expect(await api.sample('the ', { maxNewTokens: 12, temperature: 0 })).toBe(sample);
  });

  it('grows a paused dense lab job into a MoE that starts at the dense loss and trains on', async () => {
    const dense = collect(20);
    const corpus = bundledCorpus();
    const train = { steps: 12, batchSize: 4, seqLen: 32, evalEvery: 100, evalWindows: 2, warmupSteps: 2 };
    await api.start({ kind: 'lab', model: plainModelConfig(denseTwin(preset('tiny'), 'upcycle')), train, corpus }, dense.listener);
    await expect(api.grow({}, Comlink.proxy(() => {}))).rejects.toThrow(/grow: expected a paused job, but it is running/);
    await api.pause();
    const denseBytes = await api.save();
    const at = readCheckpoint(denseBytes).header.step;
    // The dense model's validation loss at that step, here on cpu, as the trainer evaluates it.
    await initBackend('cpu');
    const model = loadModel(denseBytes);
    const trainer = new Trainer(model, new TextDataset(corpus, { seqLen: 32 }), train);
    trainer.restore(denseBytes);
    const denseLoss = (await trainer.evaluate()).valLoss;
    trainer.dispose();
    model.dispose();
    const grown = collect();
    expect(await api.grow({}, grown.listener)).toEqual({ step: at, exact: true });
    expect(await api.state()).toBe('paused');
    await expect(api.grow({}, Comlink.proxy(() => {}))).rejects.toThrow(/expected a dense model .* is a MoE already/);
    await api.resume();
    await grown.ended;
    const evals = grown.events.filter((e) => e.type === 'eval');
    expect(evals[0]!.step).toBe(at);
    expect(Math.abs(evals[0]!.valLoss - denseLoss)).toBeLessThan(1e-4);
    expect(evals[0]!.layers.length).toBe(1); // the MoE block's report
    const steps = grown.events.filter((e) => e.type === 'step').map((e) => e.step);
    expect(steps).toEqual(Array.from({ length: 12 - at }, (_, i) => at + 1 + i));
    expect(dense.events.filter((e) => e.type === 'done')).toEqual([]); // the dense job was ended quietly
    const { header } = readCheckpoint(await api.save());
    expect(header).toMatchObject({ step: 12, optimizerStep: 12 - at, upcycledFrom: { step: at, exact: true } });
  });

  it('trains the playground, transfers its routing maps, and frees a job when the next replaces it', async () => {
    const job = { kind: 'playground', classifier: { task: 'spirals' }, steps: 60, mapEvery: 30, mapResolution: 16 } as const;
    const first = collect();
    await api.start(job, first.listener);
    await first.ended;
    const reports = first.events.flatMap((e) => (e.type === 'planeStep' ? [e.report] : []));
    const maps = first.events.flatMap((e) => (e.type === 'routingMap' ? [e.map] : []));
    expect(reports).toHaveLength(60);
    expect(reports[59]!.loss).toBeLessThan(reports[0]!.loss);
    expect(maps.map((m) => m.expert.length)).toEqual([256, 256, 256]); // before training, at step 30 and 60
    expect(maps[2]!.expert).toBeInstanceOf(Uint8Array);
    const held = await api.numTensors();
    const second = collect();
    await api.start(job, second.listener);
    await second.ended;
    expect(await api.numTensors()).toBe(held);
  });

  it('a job replaced while paused is ended quietly: its late events never reach the old listener', async () => {
    const first = collect(50);
    await api.start({
      kind: 'lab', model: preset('tiny'), train: { steps: 1000, batchSize: 2, seqLen: 16, evalEvery: 0 },
      corpus: bundledCorpus(),
    }, first.listener);
    await api.pause();
    const seen = first.events.length;
    const second = collect();
    await api.start({ kind: 'playground', classifier: {}, steps: 10, mapEvery: 10, mapResolution: 8 }, second.listener);
    await second.ended;
    expect(second.events.filter((e) => e.type === 'planeStep')).toHaveLength(10);
    expect(first.events).toHaveLength(seen); // no 'done' from the lab job it replaced
  });

  it('rejects bad commands with a readable message and keeps the job', async () => {
    await expect(api.sample('x', { maxNewTokens: 2 })).rejects.toThrow(/sample: needs a language model job, but the job is the playground/);
    await expect(api.start(
      { kind: 'lab', model: preset('tiny'), train: { seqLen: 32 }, corpus: { tiny: 'too short' } },
      Comlink.proxy(() => {}),
    )).rejects.toThrow(/dataset: expected domain 'tiny' to hold at least 660 bytes .* but got 9/);
    await expect(api.start({ kind: 'quiz' } as never, Comlink.proxy(() => {})))
      .rejects.toThrow(/expected job.kind to be 'lab' or 'playground', but got "quiz"/);
    expect(await api.state()).toBe('finished');
    const { ended, listener } = collect();
    await api.start({ kind: 'playground', classifier: {}, steps: 100_000, mapEvery: 1000, mapResolution: 8 }, listener);
    await expect(api.setBackend('cpu')).rejects.toThrow(/setBackend: a job is running; pause or stop it before switching to 'cpu'/);
    await expect(api.bench('quick', Comlink.proxy(() => {}))).rejects.toThrow(/bench: a job is running/);
    await api.stop();
    await ended;
    expect(await api.state()).toBe('finished');
  });

  it('runs the bench suite on its backend, reports progress, and returns a result in the schema', async () => {
    const progress: BenchProgress[] = [];
    // The last tick is taken slowly: the result must still wait for it.
    const onProgress = async (p: BenchProgress) => {
      if (p.done === p.total) await new Promise((resolve) => setTimeout(resolve, 300));
      progress.push(p);
    };
    const result = await api.bench('quick', Comlink.proxy(onProgress));
    expect(validateBenchResult(result)).toBe(result);
    expect(result.backend).toBe('wasm');
    expect(result.mode).toBe('quick');
    expect(result.environment.runtime).toBe('node');
    expect(progress.map((p) => p.done)).toEqual(Array.from({ length: benchTaskCount('quick') }, (_, i) => i + 1));
    await expect(api.bench('huge' as never, Comlink.proxy(() => {})))
      .rejects.toThrow(/bench: expected mode 'quick' or 'full', but got "huge"/);
    expect(await api.numTensors()).toBe(0);
  });
});

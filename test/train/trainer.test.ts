import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DeepSeekLM, TextDataset, Trainer, initBackend, learningRateAt, preset, readCheckpoint, resolveTrainConfig,
  type ErrorEvent, type EvalEvent, type ModelConfigInput, type StepEvent, type TrainConfigInput,
} from 'deepseek-moe-tfjs';
import { bundledCorpus } from '../../cli/corpus.js';

const tiny = preset('tiny');
const corpus = bundledCorpus();
const dataset = new TextDataset(corpus, { seqLen: 32 });
const base: TrainConfigInput = { batchSize: 4, seqLen: 32, evalEvery: 0, evalWindows: 2, warmupSteps: 3 };

function setup(config: TrainConfigInput, model: ModelConfigInput = tiny) {
  const m = new DeepSeekLM(model);
  const trainer = new Trainer(m, dataset, { ...base, ...config });
  const steps: StepEvent[] = [];
  const evals: EvalEvent[] = [];
  const errors: ErrorEvent[] = [];
  trainer.on('step', (e) => steps.push(e));
  trainer.on('eval', (e) => evals.push(e));
  trainer.on('error', (e) => errors.push(e));
  const done = () => {
    trainer.dispose();
    m.dispose();
  };
  return { model: m, trainer, steps, evals, errors, done };
}

async function weightValues(model: DeepSeekLM): Promise<Float32Array[]> {
  return Promise.all(model.weightNames.map((n) => model.weights[n]!.data() as Promise<Float32Array>));
}

describe.each(['cpu', 'wasm'] as const)('Trainer on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it.each([
    ['mla', tiny],
    ['mha', { ...tiny, attention: 'mha', headDim: 16 } as ModelConfigInput],
  ])('lowers the validation loss of the tiny preset (%s) within 40 steps, with a stable tensor count', async (_name, model) => {
    const run = setup({ steps: 40, evalEvery: 20, learningRate: 3e-3 }, model);
    const before = (await run.trainer.evaluate()).valLoss;
    const counts: number[] = [];
    run.trainer.on('step', () => counts.push(tf.memory().numTensors));
    await run.trainer.run();
    expect(run.errors).toEqual([]);
    expect(run.steps).toHaveLength(40);
    const after = run.evals[run.evals.length - 1]!.valLoss;
    expect(before).toBeGreaterThan(5); // about ln 256 = 5.55 at the start
    expect(after).toBeLessThan(before - 0.6);
    expect(new Set(counts.slice(2)).size).toBe(1); // no tensor growth across steps
    const layer = run.steps[39]!.layers[0]!;
    expect(layer.expertLoad.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(layer.bias.some((b) => b !== 0)).toBe(true); // the aux-loss-free bias moved
    run.done();
  });

  it('resuming from a checkpoint continues bit for bit as if never stopped', async () => {
    const config = { steps: 10, seed: 7 };
    const unbroken = setup(config);
    await unbroken.trainer.run();
    const first = setup(config);
    first.trainer.on('step', (e) => {
      if (e.step === 4) first.trainer.stop();
    });
    await first.trainer.run();
    expect(first.trainer.step).toBe(4);
    const bytes = await first.trainer.checkpoint();
    first.done();
    const resumed = setup(config, { ...tiny, seed: 99 }); // different initial weights, overwritten by the checkpoint
    resumed.trainer.restore(bytes);
    await resumed.trainer.run();
    expect(resumed.steps.map((e) => e.loss)).toEqual(unbroken.steps.slice(4).map((e) => e.loss));
    expect(resumed.steps.map((e) => e.layers[0]!.bias)).toEqual(unbroken.steps.slice(4).map((e) => e.layers[0]!.bias));
    expect(await weightValues(resumed.model)).toEqual(await weightValues(unbroken.model));
    unbroken.done();
    resumed.done();
  });

  it('frees everything it made: a trainer built, stepped and disposed leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    const run = setup({ steps: 2 });
    await run.trainer.run();
    run.done();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('pause() holds the run between steps, sampling works meanwhile, and resume() continues bit for bit', async () => {
    const config = { steps: 8, seed: 5 };
    const unbroken = setup(config);
    await unbroken.trainer.run();
    const paused = setup(config);
    let held: Promise<void> | null = null;
    paused.trainer.on('step', (e) => {
      if (e.step === 3) held = paused.trainer.pause();
    });
    const running = paused.trainer.run();
    while (held === null) await new Promise((r) => setTimeout(r, 5));
    await held;
    await new Promise((r) => setTimeout(r, 50));
    expect(paused.trainer.paused).toBe(true);
    expect(paused.steps).toHaveLength(3); // nothing ran while paused
    expect(await paused.trainer.sample('the ', { maxNewTokens: 4, rng: 1 })).toHaveLength(4);
    paused.trainer.resume();
    await running;
    expect(paused.steps.map((e) => e.loss)).toEqual(unbroken.steps.map((e) => e.loss));
    const stopped = setup(config);
    void stopped.trainer.pause();
    const pending = stopped.trainer.run();
    stopped.trainer.stop(); // a paused run ends at once on stop()
    await pending;
    expect(stopped.steps).toHaveLength(0);
    [unbroken, paused, stopped].forEach((r) => r.done());
  });

  it('a checkpoint asked for mid-run holds the run at the next step boundary and resumes bit for bit', async () => {
    const config = { steps: 10, seed: 3 };
    const unbroken = setup(config);
    await unbroken.trainer.run();
    const running = setup(config);
    let pending: Promise<Uint8Array> | null = null;
    running.trainer.on('step', (e) => {
      if (e.step === 4) pending = running.trainer.checkpoint(); // the loop has not reached its boundary yet
    });
    await running.trainer.run();
    expect(running.steps).toHaveLength(10); // it went on after the reads
    const bytes = await pending!;
    expect(readCheckpoint(bytes).header.step).toBe(4);
    const resumed = setup(config);
    resumed.trainer.restore(bytes);
    await resumed.trainer.run();
    expect(resumed.steps.map((e) => e.loss)).toEqual(unbroken.steps.slice(4).map((e) => e.loss));
    [unbroken, running, resumed].forEach((r) => r.done());
  });

  it('stops with an error event on a non-finite loss and puts back the last weights with a finite loss', async () => {
    const run = setup({ steps: 20, learningRate: 1e30, warmupSteps: 0, gradClip: 0 });
    const initial = await weightValues(run.model);
    await run.trainer.run();
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]!.message).toMatch(/non-finite at step 2 .*the weights are back to those before step 1, the last with a finite loss/);
    // Step 1 had a finite loss and applied a 1e30-sized update; step 2's loss overflowed. The weights are the
    // ones step 1 started from, exactly.
    expect(run.errors[0]!.step).toBe(1);
    expect(await weightValues(run.model)).toEqual(initial);
    run.done();
  });

  it('a throw mid-step (the MoE input check) also ends in an error event and the last good weights', async () => {
    const run = setup({ steps: 5 });
    const initial = await weightValues(run.model);
    run.trainer.on('step', (e) => {
      // Poison a dense FFN after step 1: step 2's MoE block then receives NaN and its finite check throws.
      if (e.step === 1) run.model.weights['blocks.0.ffn.w2']!.assign(tf.fill(run.model.weights['blocks.0.ffn.w2']!.shape, NaN));
    });
    await run.trainer.run();
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]!.message).toMatch(/expected finite values.*weights are back to those before step 1/);
    expect(await weightValues(run.model)).toEqual(initial);
    run.done();
  });

  it('refuses a corrupt or mismatched checkpoint and changes nothing', async () => {
    const run = setup({ steps: 2 });
    await run.trainer.run();
    const bytes = await run.trainer.checkpoint();
    const before = await weightValues(run.model);
    const damaged = bytes.slice();
    damaged[damaged.length - 5]! ^= 0xff;
    expect(() => run.trainer.restore(damaged)).toThrow(/checksum mismatch/);
    expect(() => run.trainer.restore(bytes.slice(0, bytes.length - 4))).toThrow(/expected \d+ bytes of tensor data, but got \d+/);
    expect(() => run.trainer.restore(new Uint8Array([1, 2, 3]))).toThrow(/missing the magic bytes/);
    const other = setup({ steps: 1 }, { ...tiny, nHeads: 4 });
    expect(() => other.trainer.restore(bytes)).toThrow(/expected a checkpoint of model config .*"nHeads":4.* but got one of .*"nHeads":2/);
    other.done();
    expect(await weightValues(run.model)).toEqual(before);
    expect(run.trainer.step).toBe(2);
    expect(readCheckpoint(bytes).header.step).toBe(2);
    run.done();
  });

  it('samples text from a prompt, the same for the same seed', async () => {
    const run = setup({ steps: 1 });
    const a = await run.trainer.sample('The ', { maxNewTokens: 12, temperature: 1, topK: 10, rng: 3 });
    const b = await run.trainer.sample('The ', { maxNewTokens: 12, temperature: 1, topK: 10, rng: 3 });
    expect(a).toBe(b);
    expect(new TextEncoder().encode(a).length).toBeGreaterThan(0);
    const greedy = await run.trainer.sample('The ', { maxNewTokens: 40, temperature: 0 }); // runs past maxSeqLen 32: the cache restarts
    expect(greedy.length).toBeGreaterThan(0);
    run.done();
  });

  it('reports where each domain is routed', async () => {
    const run = setup({ steps: 1 });
    const report = await run.trainer.specialisation(2);
    expect(report).toHaveLength(1);
    expect(report[0]!.domains).toEqual(['english', 'chinese', 'code', 'arithmetic']);
    for (const shares of report[0]!.shares) expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    run.done();
  });
});

describe('train config', () => {
  it.each([
    [{ steps: 0 }, /expected steps to be an integer >= 1, but got 0/],
    [{ learningRate: -1 }, /expected learningRate to be a number in \(0/],
    [{ beta2: 1 }, /expected beta2 to be a number in \[0, 0.999999\], but got 1/],
    [{ epochs: 3 } as TrainConfigInput, /unknown field 'epochs'/],
  ])('rejects %j', (input, message) => {
    expect(() => resolveTrainConfig(input)).toThrow(message);
  });

  it('warms up linearly, then decays along a cosine to the floor', () => {
    const c = resolveTrainConfig({ steps: 110, warmupSteps: 10, learningRate: 1, minLearningRateRatio: 0.1 });
    expect(learningRateAt(0, c)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(9, c)).toBeCloseTo(1, 12);
    expect(learningRateAt(60, c)).toBeCloseTo(0.55, 12); // halfway: floor + (1 - floor) / 2
    expect(learningRateAt(110, c)).toBeCloseTo(0.1, 12);
  });

  it('rejects a seqLen longer than the model', () => {
    const model = new DeepSeekLM(tiny);
    expect(() => new Trainer(model, dataset, { seqLen: 64 })).toThrow(/seqLen to be at most the model's maxSeqLen \(32\), but got 64/);
    model.dispose();
  });
});

describe('TextDataset', () => {
  it('holds out the tail of each domain and draws the same batches from the same seed', async () => {
    const { Rng } = await import('deepseek-moe-tfjs');
    const ds = new TextDataset({ a: 'x'.repeat(1000), b: 'y'.repeat(2000) }, { seqLen: 8, valFraction: 0.1 });
    expect(ds.sizes).toEqual([{ domain: 'a', train: 900, val: 100 }, { domain: 'b', train: 1800, val: 200 }]);
    const [p, q] = [ds.sampleBatch(4, 8, new Rng(1)), ds.sampleBatch(4, 8, new Rng(1))];
    expect(p).toEqual(q);
    const v = ds.validationBatch(1, 3, 8);
    expect(Array.from(v.ids).every((t) => t === 'y'.charCodeAt(0))).toBe(true);
  });

  it.each([
    [{}, /expected a corpus object mapping domain names to text, but got an empty object/],
    [{ a: 'short' }, /expected domain 'a' to hold at least 180 bytes .* but got 5/],
  ])('rejects %j', (corpusInput, message) => {
    expect(() => new TextDataset(corpusInput, { seqLen: 8 })).toThrow(message);
  });
});

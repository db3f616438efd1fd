import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, preset, type ModelConfigInput } from 'deepseek-moe-tfjs/model';
import {
  TextDataset, Trainer, learningRateAt, loadModel, readCheckpoint, readModelCheckpoint, resolveTrainConfig,
  writeCheckpoint, type ErrorEvent, type EvalEvent, type StepEvent, type TrainConfigInput,
} from 'deepseek-moe-tfjs/train';
import { bundledCorpus } from '../../tools/corpus.js';
import { nodeBackends } from '../helpers.js';

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

/** The checkpoint file with its header replaced (checksum kept): what an edited or damaged header looks like. */
function withHeader(bytes: Uint8Array, header: object): Uint8Array {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const start = Math.ceil((12 + length) / 4) * 4;
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = Math.ceil((12 + json.length) / 4) * 4;
  const out = new Uint8Array(head + bytes.length - start);
  out.set(bytes.subarray(0, 8));
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(bytes.subarray(start), head);
  return out;
}

async function weightValues(model: DeepSeekLM): Promise<Float32Array[]> {
  return Promise.all(model.weightNames.map((n) => model.weights[n]!.data() as Promise<Float32Array>));
}

describe.each(nodeBackends)('Trainer on %s', (backend) => {
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

  it('resuming from a checkpoint continues bit for bit as if never stopped (router jitter on)', async () => {
    const config = { steps: 10, seed: 7 };
    const jittery: ModelConfigInput = { ...tiny, moe: { ...tiny.moe, routerJitter: 0.3 } };
    const unbroken = setup(config, jittery);
    await unbroken.trainer.run();
    const again = setup(config, jittery);
    await again.trainer.run();
    expect(again.steps.map((e) => e.loss)).toEqual(unbroken.steps.map((e) => e.loss)); // the jitter repeats
    again.done();
    const first = setup(config, jittery);
    first.trainer.on('step', (e) => {
      if (e.step === 4) first.trainer.stop();
    });
    await first.trainer.run();
    expect(first.trainer.step).toBe(4);
    const bytes = await first.trainer.checkpoint();
    first.done();
    const resumed = setup(config, { ...jittery, seed: 99 }); // different initial weights, overwritten by the checkpoint
    resumed.trainer.restore(bytes);
    await resumed.trainer.run();
    expect(resumed.steps.map((e) => e.loss)).toEqual(unbroken.steps.slice(4).map((e) => e.loss));
    expect(resumed.steps.map((e) => e.layers[0]!.bias)).toEqual(unbroken.steps.slice(4).map((e) => e.layers[0]!.bias));
    expect(await weightValues(resumed.model)).toEqual(await weightValues(unbroken.model));
    unbroken.done();
    resumed.done();
  });

  it('reads back once per step, awaited, with the MoE finite check on (the default): no synchronous read', async () => {
    const run = setup({ steps: 4 });
    // Reads a caller makes (a backend's own kernels read their inputs in place on cpu and wasm: not counted).
    const proto = tf.Tensor.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
    const methods = { data: 'async', array: 'async', dataSync: 'sync', arraySync: 'sync', bufferSync: 'sync' } as const;
    const originals = Object.fromEntries(Object.keys(methods).map((m) => [m, proto[m]!]));
    const reads = { async: 0, sync: 0 };
    for (const [m, kind] of Object.entries(methods)) {
      proto[m] = function (this: unknown, ...a: unknown[]) {
        reads[kind]++;
        return originals[m]!.apply(this, a);
      };
    }
    const perStep: (typeof reads)[] = [];
    run.trainer.on('step', () => {
      perStep.push({ ...reads });
      reads.async = reads.sync = 0;
    });
    try {
      await run.trainer.run();
    } finally {
      Object.assign(proto, originals);
    }
    expect(run.model.config.moeConfig.checkFinite).toBe(true);
    expect(perStep.slice(1)).toEqual([{ async: 1, sync: 0 }, { async: 1, sync: 0 }, { async: 1, sync: 0 }]);
    run.done();
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

  it('stops with an error event on a non-finite loss and puts back the whole state of the last finite step', async () => {
    const run = setup({ steps: 20, learningRate: 1e30, warmupSteps: 0, gradClip: 0 });
    const initial = await run.trainer.checkpoint();
    await run.trainer.run();
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]!.message).toMatch(
      /non-finite at step 2 .*the trainer is back to its state before step 1 \(weights, optimizer moments, step count and sampler\)/,
    );
    // Step 1 had a finite loss and applied a 1e30-sized update; step 2's loss overflowed. Weights, AdamW's moments
    // and step, the step count and the sampler are those step 1 started from: a checkpoint now is the same file.
    expect(run.errors[0]!.step).toBe(0);
    expect(run.trainer.step).toBe(0);
    expect(await run.trainer.checkpoint()).toEqual(initial);
    run.done();
    // A first step that fails has nothing to put back, but its batch was drawn: the sampler goes back too.
    const first = setup({ steps: 5 });
    first.model.weights.head!.assign(tf.fill(first.model.weights.head!.shape, NaN));
    const atStart = await first.trainer.checkpoint();
    await first.trainer.run();
    expect(first.errors[0]!.message).toMatch(/non-finite at step 1 .*training stopped before any update/);
    expect(await first.trainer.checkpoint()).toEqual(atStart);
    first.done();
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
    expect(run.errors[0]!.message).toMatch(
      /DeepSeekMoE input of block 1: expected finite values, but got \d+ NaN or infinite.*back to its state before step 1/,
    );
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
    // An edited header (the step, which the sampler's position goes with) no longer matches its checksum.
    const { header, tensors } = readCheckpoint(bytes);
    const edited = withHeader(bytes, { ...header, step: 9 });
    expect(() => run.trainer.restore(edited)).toThrow(/checksum mismatch: the header or the tensor data is damaged/);
    expect(() => run.trainer.restore(withHeader(bytes, { ...header, step: '2' })))
      .toThrow(/expected step to be a non-negative integer, but got "2"/);
    expect(() => run.trainer.restore(withHeader(bytes, { ...header, rngState: -1 })))
      .toThrow(/expected rngState to be a uint32, but got -1/);
    // Every tensor's shape is checked, not only its size: a transposed [d, V] head is refused.
    const list = header.tensors.map((t) => ({ ...t, values: tensors.get(t.name)! }));
    const head = list.find((t) => t.name === 'head')!;
    head.shape = [...head.shape].reverse();
    const transposed = writeCheckpoint({
      modelConfig: header.modelConfig, trainConfig: header.trainConfig, step: 2, rngState: header.rngState,
    }, list);
    expect(() => run.trainer.restore(transposed)).toThrow(/expected 'head' to have shape \[32,256\], but got \[256,32\]/);
    const other = setup({ steps: 1 }, { ...tiny, nHeads: 4 });
    // The message names the field that differs, not two whole configs.
    expect(() => other.trainer.restore(bytes)).toThrow(/its config differs \(this model against the checkpoint's\): nHeads: 4 against 2\.$/);
    other.done();
    expect(await weightValues(run.model)).toEqual(before);
    expect(run.trainer.step).toBe(2);
    expect(readCheckpoint(bytes).header.step).toBe(2);
    // A checkpoint written before the MTP fields existed (no mtpDepth, mtpLambda) restores: its defaults keep its model.
    const { mtpDepth: _d, mtpLambda: _l, ...older } = header.modelConfig;
    const written = list.map((t) => (t.name === 'head' ? { ...t, shape: [...t.shape].reverse() } : t));
    const old = writeCheckpoint({
      modelConfig: older as typeof header.modelConfig, trainConfig: header.trainConfig, step: 2,
      rngState: header.rngState,
    }, written);
    run.trainer.restore(old);
    expect(await weightValues(run.model)).toEqual(before);
    run.done();
  });

  it('one reader for every use of a checkpoint: non-finite weights, repeated or unknown tensors are refused', async () => {
    const run = setup({ steps: 1 });
    const bytes = await run.trainer.checkpoint();
    run.done();
    const { header, tensors } = readCheckpoint(bytes);
    const rewrite = (list: { name: string; shape: number[]; values: Float32Array }[]) => writeCheckpoint({
      modelConfig: header.modelConfig, trainConfig: header.trainConfig, step: header.step, rngState: header.rngState,
    }, list);
    const list = () => header.tensors.map((t) => ({ ...t, values: tensors.get(t.name)!.slice() }));
    expect(readModelCheckpoint(bytes).modelConfig.nLayers).toBe(tiny.nLayers);
    const nan = list();
    nan.find((t) => t.name === 'head')!.values[5] = NaN;
    for (const read of [readModelCheckpoint, loadModel]) {
      expect(() => read(rewrite(nan))).toThrow(/checkpoint: weight 'head' holds NaN at index 5; a model with non-finite/);
    }
    const repeated = list();
    repeated.push({ ...repeated[0]! });
    expect(() => readCheckpoint(rewrite(repeated))).toThrow(/tensors\[\d+\] repeats the name 'embed'/);
    const unknown = [...list(), { name: 'extra', shape: [1], values: new Float32Array(1) }];
    expect(() => readModelCheckpoint(rewrite(unknown))).toThrow(/expected only the model's weights and their AdamW state, but got 'extra'/);
    const adam = list();
    const m = adam.find((t) => t.name === 'adam.m/head')!;
    m.shape = [...m.shape].reverse();
    expect(() => readModelCheckpoint(rewrite(adam))).toThrow(/expected 'adam.m\/head' to have shape \[32,256\], but got \[256,32\]/);
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
    [{ steps: 0 }, /expected steps to be a positive integer, but got 0/],
    [{ learningRate: -1 }, /expected learningRate to be a number in \(0/],
    [{ beta2: 1 }, /expected beta2 to be a number in \[0, 0.999999\], but got 1/],
    [{ epochs: 3 } as TrainConfigInput, /unknown field 'epochs'/],
    [{ gradAccumSteps: 0 }, /expected gradAccumSteps to be a positive integer, but got 0/],
    [{ batchSize: 8, gradAccumSteps: 3 }, /expected gradAccumSteps to divide batchSize \(8\), but got 3/],
  ])('rejects %j', (input, message) => {
    expect(() => resolveTrainConfig(input)).toThrow(message);
  });

  it('warms up linearly, then decays along a cosine to the floor, reached on the last step', () => {
    const c = resolveTrainConfig({ steps: 111, warmupSteps: 10, learningRate: 1, minLearningRateRatio: 0.1 });
    expect(learningRateAt(0, c)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(9, c)).toBeCloseTo(1, 12);
    expect(learningRateAt(10, c)).toBeCloseTo(1, 12);
    expect(learningRateAt(60, c)).toBeCloseTo(0.55, 12); // halfway: floor + (1 - floor) / 2
    expect(learningRateAt(110, c)).toBeCloseTo(0.1, 12); // the last step (0-based)
    const short = resolveTrainConfig({ steps: 3, warmupSteps: 2, learningRate: 1, minLearningRateRatio: 0.1 });
    expect([0, 1, 2, 3].map((s) => learningRateAt(s, short))).toEqual([0.5, 1, 1, 1]); // no step to decay over
    const two = resolveTrainConfig({ steps: 2, warmupSteps: 0, learningRate: 1, minLearningRateRatio: 0.1 });
    expect([0, 1].map((s) => learningRateAt(s, two))).toEqual([1, expect.closeTo(0.1, 12)]);
  });

  it('rejects a seqLen longer than the model or the dataset', () => {
    const model = new DeepSeekLM(tiny);
    expect(() => new Trainer(model, dataset, { seqLen: 64 })).toThrow(/seqLen to be at most the model's maxSeqLen \(32\), but got 64/);
    const short = new TextDataset(corpus, { seqLen: 16 });
    expect(() => new Trainer(model, short, { seqLen: 32 })).toThrow(/seqLen to be at most the dataset's seqLen \(16\), but got 32/);
    model.dispose();
  });
});

describe('TextDataset', () => {
  it('holds out the tail of each domain and draws the same batches from the same seed', async () => {
    const { Rng } = await import('deepseek-moe-tfjs/train');
    const ds = new TextDataset({ a: 'x'.repeat(1000), b: 'y'.repeat(2000) }, { seqLen: 8, valFraction: 0.1 });
    expect(ds.sizes).toEqual([{ domain: 'a', train: 900, val: 100 }, { domain: 'b', train: 1800, val: 200 }]);
    const [p, q] = [ds.sampleBatch(4, 8, new Rng(1)), ds.sampleBatch(4, 8, new Rng(1))];
    expect(p).toEqual(q);
    const v = ds.validationBatch(1, 3, 8);
    expect(Array.from(v.ids).every((t) => t === 'y'.charCodeAt(0))).toBe(true);
  });

  it('refuses windows longer than it was built for, and bad counts, with a clear error', async () => {
    const { Rng } = await import('deepseek-moe-tfjs/train');
    const ds = new TextDataset({ a: 'x'.repeat(1000) }, { seqLen: 8, valFraction: 0.1 });
    expect(() => ds.sampleBatch(2, 16, new Rng(1))).toThrow(/sampleBatch: expected seqLen to be an integer from 1 to 8 .* but got 16/);
    expect(() => ds.validationBatch(0, 2, 9)).toThrow(/validationBatch: expected seqLen to be an integer from 1 to 8 .* but got 9/);
    expect(() => ds.sampleBatch(0, 8, new Rng(1))).toThrow(/expected batchSize to be a positive integer, but got 0/);
    expect(() => ds.validationBatch(1, 2, 8)).toThrow(/expected domain to be an index below 1, but got 1/);
    expect(ds.sampleBatch(3, 4, new Rng(2)).ids).toHaveLength(12); // shorter windows are fine
  });

  it.each([
    [{}, /expected a corpus object mapping domain names to text, but got an empty object/],
    [{ a: 'short' }, /expected domain 'a' to hold at least 180 bytes .* but got 5/],
  ])('rejects %j', (corpusInput, message) => {
    expect(() => new TextDataset(corpusInput, { seqLen: 8 })).toThrow(message);
  });
});

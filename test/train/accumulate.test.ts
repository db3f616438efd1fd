/**
 * Gradient accumulation and balanceScope: one batch split into 1, 2 or 4 micro-batches gives the same gradients
 * (Megatron's global_aux_loss had them 1 / dp too small, PR #3769), the scope matters when it should, and an
 * accumulated trainer step equals one step on the whole batch (AdamW update, bias, reported figures).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import { DeepSeekLM, modelWeightSpecs, preset, type ModelConfigInput } from 'deepseek-moe-tfjs/model';
import { accumulatedStep, Rng, TextDataset, Trainer, type StepEvent } from 'deepseek-moe-tfjs/train';
import { bundledCorpus } from '../../tools/corpus.js';
import { relDiff, nodeBackends } from '../helpers.js';

const tiny = preset('tiny');
const S = 16;
const dataset = new TextDataset(bundledCorpus(), { seqLen: S });
/** Every balance loss on, strongly enough that a wrong f_i shows in the router's gradient. */
const balanced = (scope: 'microBatch' | 'globalBatch', extra: Partial<ModelConfigInput> = {}): ModelConfigInput => ({
  ...tiny, ...extra,
  moe: {
    ...tiny.moe, alpha1: 0.1, alpha2: 0.05, nExpertGroups: 2, topKGroups: 2, seqAlpha: 0.01, zLossCoef: 0.001,
    balanceScope: scope,
  },
});

/** The gradients and summed expert counts of one step on `batch`, split into `n` micro-batches. */
async function gradients(model: DeepSeekLM, batch: { ids: Int32Array; targets: Int32Array }, n: number) {
  const names = modelWeightSpecs(model.config).filter((s) => s.trainable).map((s) => s.name);
  const trainable = Object.fromEntries(names.map((name) => [name, model.weights[name]!]));
  const step = accumulatedStep(
    model, trainable, batch, S, { microBatches: n }, (l) => ({ loss: l.lmLoss, total: l.total }),
  );
  const values = await step.read();
  const counts = Object.fromEntries(await Promise.all(
    Object.entries(step.kept).map(async ([block, t]) => [block, Array.from(await t.data())] as const),
  ));
  return {
    grads: step.grads, counts, values,
    dispose: () => tf.dispose([...Object.values(step.grads), ...Object.values(step.kept)]),
  };
}

describe.each(nodeBackends)('gradient accumulation on %s', (backend) => {
  beforeAll(() => initBackend(backend));
  const batch = dataset.sampleBatch(4, S, new Rng(3));

  it.each([
    ['balanceScope globalBatch', balanced('globalBatch')],
    ['globalBatch with an MTP module', balanced('globalBatch', { mtpDepth: 1 })],
  ])('splitting one batch into 1, 2 or 4 micro-batches gives the same gradients (%s)', async (_name, config) => {
    const model = new DeepSeekLM(config);
    const whole = await gradients(model, batch, 1);
    for (const n of [2, 4]) {
      const split = await gradients(model, batch, n);
      for (const [name, g] of Object.entries(whole.grads)) {
        expect.soft(await relDiff(split.grads[name]!, g), `${name}, ${n} micro-batches`).toBeLessThan(2e-5);
      }
      expect(split.counts).toEqual(whole.counts); // the global batch's load, summed
      expect(split.values.gradNorm![0]).toBeCloseTo(whole.values.gradNorm![0]!, 5);
      expect(split.values.total![0]).toBeCloseTo(whole.values.total![0]!, 5); // the mean of equal shares
      split.dispose();
    }
    whole.dispose();
    model.dispose();
  });

  it("with balanceScope microBatch a split changes the balance loss's gradient " +
    '(each micro-batch counts its own f_i); over the global batch it does not', async () => {
    const router = 'blocks.1.moe.routerKernel';
    const splitChange = async (scope: 'microBatch' | 'globalBatch') => {
      const model = new DeepSeekLM(balanced(scope));
      const [whole, split] = [await gradients(model, batch, 1), await gradients(model, batch, 2)];
      const change = await relDiff(split.grads[router]!, whole.grads[router]!);
      [whole, split].forEach((g) => g.dispose());
      model.dispose();
      return change;
    };
    const [micro, global] = [await splitChange('microBatch'), await splitChange('globalBatch')];
    expect(global).toBeLessThan(1e-5); // float rounding only: the same loss, summed in another order
    expect(micro).toBeGreaterThan(20 * Math.max(global, 1e-6));
  });

  it('an accumulated trainer step equals one step on the whole batch: ' +
    'weights, bias, loss, gradient norm, load', async () => {
    const run = async (gradAccumSteps: number) => {
      const model = new DeepSeekLM(balanced('globalBatch'));
      const trainer = new Trainer(model, dataset, {
        batchSize: 4, seqLen: S, gradAccumSteps, steps: 2, warmupSteps: 1, evalEvery: 0, evalWindows: 1, gradClip: 0,
      });
      const steps: StepEvent[] = [];
      trainer.on('step', (e) => steps.push(e));
      await trainer.run();
      return { model, trainer, steps };
    };
    const one = await run(1);
    const two = await run(2);
    for (const name of one.model.weightNames) {
      expect.soft(await relDiff(two.model.weights[name]!, one.model.weights[name]!), name).toBeLessThan(1e-4);
    }
    for (let i = 0; i < 2; i++) {
      const [a, b] = [one.steps[i]!, two.steps[i]!];
      expect(b.loss).toBeCloseTo(a.loss, 5);
      expect(b.gradNorm).toBeCloseTo(a.gradNorm, 4);
      expect(b.layers[0]!.maxViolation).toBeCloseTo(a.layers[0]!.maxViolation, 5);
      b.layers[0]!.expertLoad.forEach((l, e) => expect(l).toBeCloseTo(a.layers[0]!.expertLoad[e]!, 6));
    }
    for (const r of [one, two]) {
      r.trainer.dispose();
      r.model.dispose();
    }
  });
});

/**
 * Multi-token prediction (DeepSeek-V3): the training loss against the cached module, self-speculative decoding
 * against plain greedy decoding, the parameter accounting, the trainer's MTP and MaxVio_global reports; and the
 * capacity rule (drops in training only) that keeps the full and the KV-cached forward in agreement.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from 'deepseek-moe-tfjs';
import {
  countModelParams, crossEntropy, DeepSeekLM, forwardCached, generate, generateWithStats, modelWeightSpecs, mtpCached,
  mtpForward, preset, type ModelConfigInput,
} from 'deepseek-moe-tfjs/model';
import { maxViolation, Rng, TextDataset, Trainer, type EvalEvent, type StepEvent } from 'deepseek-moe-tfjs/train';
import { bundledCorpus } from '../../tools/corpus.js';
import { maxAbsDiff, nodeBackends } from '../helpers.js';

const tiny = preset('tiny');
const withMtp = (depth: number): ModelConfigInput => ({ ...tiny, mtpDepth: depth, mtpLambda: 0.3 });
const dataset = new TextDataset(bundledCorpus(), { seqLen: 32 });

describe.each(nodeBackends)('multi-token prediction on %s', (backend) => {
  beforeAll(() => initBackend(backend));

  it('the training loss of depth 1 equals the cached module run over the same sequence', async () => {
    const model = new DeepSeekLM(withMtp(2));
    const S = 20;
    const batch = dataset.sampleBatch(1, S, new Rng(5));
    const ids = tf.tensor2d(batch.ids, [1, S], 'int32');
    const targets = tf.tensor2d(batch.targets, [1, S], 'int32');
    const out = model.forward(ids);
    const mtp = mtpForward(model.view, model.config, out.hidden, targets);
    // Depth 1 at position i: the state at i and the embedding of t_(i+1) = targets[i] predict t_(i+2) = targets[i + 1].
    const cached = mtpCached(model.view, model.config, tf.slice(out.hidden, 0, S - 1),
      tf.tensor1d(batch.targets.slice(0, S - 1), 'int32'), null);
    const expected = crossEntropy(cached.logits, tf.tensor1d(batch.targets.slice(1), 'int32'));
    const [depth1, depth2, want, loss] = await Promise.all(
      [mtp.depthLosses[0]!, mtp.depthLosses[1]!, expected, mtp.loss].map((t) => t.data()),
    );
    expect(depth1![0]).toBeCloseTo(want![0]!, 4);
    expect(depth2![0]).toBeGreaterThan(4); // an untrained module: about ln 256
    expect(loss![0]).toBeCloseTo((0.3 / 2) * (depth1![0]! + depth2![0]!), 5); // lambda / D * sum_k L^k
    expect(mtp.moe.map((r) => r.block)).toEqual([2, 3]); // the modules' blocks follow the main model's
    model.dispose();
  });

  it('counts the MTP modules apart, as their weights are', () => {
    const c = new DeepSeekLM(withMtp(2));
    const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
    const mtpWeights = modelWeightSpecs(c.config)
      .filter((s) => Number(/^blocks\.(\d+)\./.exec(s.name)?.[1] ?? -1) >= 2);
    const count = countModelParams(withMtp(2));
    expect(count.mtp!.modules).toBe(2);
    expect(count.mtp!.total).toBe(mtpWeights.reduce((n, s) => n + size(s.shape), 0));
    expect(count.total).toBe(countModelParams(tiny).total); // the main model's count is unchanged
    c.dispose();
  });

  it('trains with MTP: the depth losses fall, every figure is reported, no tensor leaks; ' +
    'eval reports MaxVio_global', async () => {
    const model = new DeepSeekLM(withMtp(1));
    const trainer = new Trainer(model, dataset, {
      batchSize: 4, seqLen: 32, steps: 40, evalEvery: 0, evalWindows: 2, warmupSteps: 3,
    });
    const steps: StepEvent[] = [];
    const evals: EvalEvent[] = [];
    const counts: number[] = [];
    trainer.on('step', (e) => (steps.push(e), counts.push(tf.memory().numTensors)));
    trainer.on('eval', (e) => evals.push(e));
    await trainer.run();
    expect(steps).toHaveLength(40);
    expect(steps[0]!.mtpLosses).toHaveLength(1);
    expect(steps[39]!.mtpLosses[0]!).toBeLessThan(steps[0]!.mtpLosses[0]! - 0.5);
    expect(steps[0]!.layers.map((l) => l.block)).toEqual([1, 2]); // the main MoE block, then the module's
    expect(new Set(counts.slice(2)).size).toBe(1);
    // MaxVio_global: the load over every validation window, by a forward of our own.
    const final = evals[evals.length - 1]!;
    const load = tf.tidy(() => {
      let sum: tf.Tensor = tf.zeros([8]);
      dataset.domains.forEach((_d, i) => {
        const b = dataset.validationBatch(i, 2, 32);
        sum = tf.add(sum, model.forward(tf.tensor2d(b.ids, [b.batchSize, 32], 'int32')).moe[0]!.expertCounts);
      });
      return tf.div(sum, tf.sum(sum));
    });
    expect(final.layers[0]!.maxVioGlobal).toBeCloseTo(maxViolation(await load.data()), 5);
    expect(final.maxVioGlobal).toBeCloseTo((final.layers[0]!.maxVioGlobal + final.layers[1]!.maxVioGlobal) / 2, 6);
    // The same load with each domain's windows weighed by its share of the training bytes (the training mix).
    const train = dataset.sizes.map((z) => z.train);
    const mixed = tf.tidy(() => {
      let sum: tf.Tensor = tf.zeros([8]);
      dataset.domains.forEach((_d, i) => {
        const b = dataset.validationBatch(i, 2, 32);
        const counts = model.forward(tf.tensor2d(b.ids, [b.batchSize, 32], 'int32')).moe[0]!.expertCounts;
        sum = tf.add(sum, tf.mul(counts, train[i]!));
      });
      return tf.div(sum, tf.sum(sum));
    });
    expect(final.layers[0]!.maxVioGlobalTrainingMix).toBeCloseTo(maxViolation(await mixed.data()), 5);
    expect(final.layers[0]!.maxVioGlobalTrainingMix).not.toBeCloseTo(final.layers[0]!.maxVioGlobal, 6);
    tf.dispose([load, mixed]);
    trainer.dispose();

    // Self-speculative decoding gives plain greedy decoding's tokens, across cache resets (maxSeqLen 32): on the
    // trained model, whose module mostly agrees with the main model, and on an untrained one, whose module mostly
    // does not, so that both branches run (drafts kept, and drafts cut from the cache).
    let [accepted, rejected] = [0, 0];
    const untrained = new DeepSeekLM({ ...withMtp(1), seed: 5 });
    const cases = ['The ', 'def f(x):\n    return', '', 'Über'].flatMap((p) => [[model, p], [untrained, p]] as const);
    for (const [m, prompt] of cases) {
      const ids = Array.from(new TextEncoder().encode(prompt));
      const greedy = await generate(m, ids, { maxNewTokens: 90, temperature: 0 });
      const { tokens, stats } = await generateWithStats(m, ids, {
        maxNewTokens: 90, temperature: 0, speculative: true,
      });
      expect(tokens, JSON.stringify(prompt)).toEqual(greedy);
      expect(stats!.drafted).toBeGreaterThan(20);
      expect(stats!.acceptanceRate).toBeCloseTo(stats!.accepted / stats!.drafted, 9);
      expect(stats!.tokensPerStep).toBeCloseTo(90 / stats!.mainSteps, 9);
      expect(stats!.mainSteps).toBe(90 - stats!.accepted);
      // Each draft where it fell: accepted exactly when it is the token decoding emitted there.
      expect(stats!.drafts).toHaveLength(stats!.drafted);
      expect(stats!.drafts.filter((d) => d.accepted)).toHaveLength(stats!.accepted);
      for (const [i, d] of stats!.drafts.entries()) {
        expect(d.accepted).toBe(tokens[d.position] === d.token);
        if (i > 0) expect(d.position).toBeGreaterThan(stats!.drafts[i - 1]!.position);
      }
      accepted += stats!.accepted;
      rejected += stats!.drafted - stats!.accepted;
    }
    expect(accepted).toBeGreaterThan(0); // both branches ran: drafts kept, and drafts cut from the cache
    expect(rejected).toBeGreaterThan(0);
    model.dispose();
    untrained.dispose();
  }, 120_000);

  it('refuses speculation without MTP modules or with sampling', async () => {
    const plain = new DeepSeekLM(tiny);
    await expect(generate(plain, [1], { maxNewTokens: 2, temperature: 0, speculative: true }))
      .rejects.toThrow(/mtpDepth >= 1/);
    const mtp = new DeepSeekLM(withMtp(1));
    await expect(generate(mtp, [1], { maxNewTokens: 2, temperature: 1, speculative: true }))
      .rejects.toThrow(/temperature 0/);
    plain.dispose();
    mtp.dispose();
  });

  it('capacity drops apply in training only: the full and the KV-cached forward agree with ' +
    'capacity factor 1', async () => {
    const model = new DeepSeekLM({ ...tiny, moe: { ...tiny.moe, dispatch: 'capacity', capacityFactor: 1 } });
    const text = Array.from(new TextEncoder().encode('Capacity is a training device; the cache never drops.'))
      .slice(0, 32);
    const full = model.forward(tf.tensor2d(text, [1, text.length], 'int32'));
    const cached = forwardCached(model.view, model.config, tf.tensor1d(text.slice(0, 10), 'int32'), null);
    const rest = forwardCached(model.view, model.config, tf.tensor1d(text.slice(10), 'int32'), cached.cache);
    const both = tf.concat([cached.logits, rest.logits]);
    expect(await maxAbsDiff(full.logits, both)).toBeLessThan(1e-4);
    // In training the same config drops tokens.
    const training = model.forward(tf.tensor2d(text, [1, text.length], 'int32'), { training: true });
    expect((await training.moe[0]!.stats.droppedFraction.data())[0]).toBeGreaterThan(0);
    model.dispose();
  });
});

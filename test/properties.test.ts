/**
 * Bad input, tried at scale: thousands of random config objects and worker commands (wrong types, extreme
 * numbers, unknown keys, missing fields). Every invalid one must throw an Error naming the field, in the
 * "scope: expected X, but got Y." form, before any state changes; every valid one must build and run a step.
 */
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMoEWeights, disposeMoEWeights, initBackend, moeForward, resolveMoEConfig, type MoEConfigInput } from 'deepseek-moe-tfjs';
import {
  moeConfigDefaults, modelConfigDefaults, preset, resolveModelConfig, resolveTrainConfig, trainConfigDefaults,
} from 'deepseek-moe-tfjs/config';
import { DeepSeekLM } from 'deepseek-moe-tfjs/model';
import { TextDataset, Trainer } from 'deepseek-moe-tfjs/train';
import { planeClassifierDefaults, resolvePlaneClassifierConfig } from '../workers/playground/classifier.js';
import type { Job, TrainingWorkerApi } from '../workers/protocol.js';
import { createTrainingWorker } from '../workers/training.js';

/** Cases run per property (the closing note reports the total), from a fixed seed so CI runs the same cases. */
const runs = { invalid: 2000, valid: 60, commands: 500 };
fc.configureGlobal({ seed: 20261129 });

/** Values of every kind a caller might pass by mistake. */
const anything = fc.oneof(
  fc.constantFrom(undefined, null, true, false, NaN, Infinity, -Infinity, 0, -0, -1, 0.5, 1e308, -1e308, 2 ** 31, 2 ** 53, 1e-320),
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.constantFrom('softmax', 'sigmoid', 'mla', 'mha', 'moe', 'dense', 'dropless', 'capacity', 'grouped', 'max', ''),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);

/** A base config with one field set to anything, or one unknown field added (a few prototype names among them). */
function mutations(base: Record<string, unknown>, fields: string[]) {
  const key = fc.oneof(fc.constantFrom(...fields), fc.constantFrom('topk', 'colour', 'constructor', 'toString', 'hasOwnProperty'));
  return fc.tuple(key, anything).map(([k, v]) => ({ key: k, value: v, config: { ...base, [k]: v } as Record<string, unknown> }));
}

/** The outcome of `f`: its value, or the Error it threw (anything else thrown fails the test). */
function attempt<T>(f: () => T): { value: T } | { error: Error } {
  try {
    return { value: f() };
  } catch (e) {
    if (!(e instanceof Error) || e.constructor !== Error) {
      throw new Error(`threw ${String(e)} (${(e as object)?.constructor?.name}), not an Error`);
    }
    return { error: e };
  }
}

/** An error in the library's form, naming `key` (or the field a relation names alongside it). */
function expectNamed(error: Error, scope: RegExp, key: string): void {
  expect(error.message).toMatch(scope);
  expect(error.message).toMatch(/(expected|unknown field) .*[.]$/s);
  expect(error.message).toContain(key);
}

const smallMoE: MoEConfigInput = { dModel: 8, nRoutedExperts: 8, topK: 2, expertHiddenDim: 4, nSharedExperts: 1 };

/** Small valid layer configs, built to be valid: groups dividing E, topK reachable, any scoring and dispatch. */
const validMoE = fc
  .record({
    groups: fc.constantFrom(1, 2, 4), perGroup: fc.integer({ min: 1, max: 4 }), topKGroupsShare: fc.double({ min: 0, max: 1, noNaN: true }),
    topKShare: fc.double({ min: 0, max: 1, noNaN: true }), dModel: fc.integer({ min: 1, max: 12 }), h: fc.integer({ min: 1, max: 8 }),
    shared: fc.integer({ min: 0, max: 2 }), scoreFunc: fc.constantFrom('softmax', 'sigmoid'), normTopK: fc.boolean(),
    dispatch: fc.constantFrom('dropless', 'capacity'),
    auxFreeBias: fc.boolean(), alpha1: fc.double({ min: 0, max: 1, noNaN: true }), seqAlpha: fc.double({ min: 0, max: 1, noNaN: true }),
    zLossCoef: fc.constantFrom(0, 0.001), capacityFactor: fc.double({ min: 0.1, max: 4, noNaN: true }),
    routerJitter: fc.constantFrom(0, 0.1), groupScoreFunc: fc.constantFrom('max', 'sumTop2'),
  })
  .map((r): MoEConfigInput => {
    const E = r.groups * Math.max(r.perGroup, r.groupScoreFunc === 'sumTop2' ? 2 : 1);
    const topKGroups = Math.max(1, Math.ceil(r.topKGroupsShare * r.groups));
    const reachable = topKGroups * (E / r.groups);
    return {
      dModel: r.dModel, nRoutedExperts: E, topK: Math.max(1, Math.ceil(r.topKShare * reachable)), expertHiddenDim: r.h,
      nSharedExperts: r.shared, scoreFunc: r.scoreFunc as 'softmax', normTopK: r.normTopK, nExpertGroups: r.groups, topKGroups,
      groupScoreFunc: r.groupScoreFunc as 'max', dispatch: r.dispatch as 'dropless',
      auxFreeBias: r.auxFreeBias, alpha1: r.alpha1, seqAlpha: r.seqAlpha, zLossCoef: r.zLossCoef,
      capacityFactor: r.capacityFactor, routerJitter: r.routerJitter,
    };
  });

describe('every public config, at random', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('the layer config: an invalid field is named, a valid config runs a forward and backward step', () => {
    const fields = [...Object.keys(smallMoE), ...Object.keys(moeConfigDefaults)];
    fc.assert(fc.property(mutations(smallMoE as Record<string, unknown>, fields), ({ key, config }) => {
      const r = attempt(() => resolveMoEConfig(config as MoEConfigInput));
      if ('error' in r) expectNamed(r.error, /^DeepSeekMoE config: /, key);
      else if (small(r.value)) runLayerStep(r.value); // valid and huge (dModel 2^30) is checked at allocation below
    }), { numRuns: runs.invalid });
    fc.assert(fc.property(validMoE, (config) => runLayerStep(resolveMoEConfig(config))), { numRuns: runs.valid });
    const huge = resolveMoEConfig({ ...smallMoE, dModel: 2 ** 20, nRoutedExperts: 256 });
    expect(() => createMoEWeights(huge)).toThrow(/DeepSeekMoE config: expected every weight to hold at most \d+ numbers .* 'expertW1'/);
  });

  it('the model config: an invalid field is named (inside moe too), a valid one builds', () => {
    const base = preset('tiny') as unknown as Record<string, unknown>;
    const fields = [...Object.keys(base), ...Object.keys(modelConfigDefaults)];
    fc.assert(fc.property(mutations(base, fields), ({ key, config }) => {
      const r = attempt(() => resolveModelConfig(config as never));
      if ('error' in r) expectNamed(r.error, /^model config: /, key);
    }), { numRuns: runs.invalid });
    const moeFields = [...Object.keys(moeConfigDefaults), 'nRoutedExperts', 'topK', 'expertHiddenDim'];
    fc.assert(fc.property(mutations(base.moe as Record<string, unknown>, moeFields), ({ key, config }) => {
      const r = attempt(() => resolveModelConfig({ ...base, moe: config } as never));
      if ('error' in r) expectNamed(r.error, /^model config: moe: /, key);
    }), { numRuns: runs.invalid });
  });

  it('the trainer config: an invalid field is named, a valid one resolves', () => {
    const base = { steps: 10, batchSize: 2, seqLen: 16 };
    fc.assert(fc.property(mutations(base, Object.keys(trainConfigDefaults)), ({ key, config }) => {
      const r = attempt(() => resolveTrainConfig(config));
      if ('error' in r) expectNamed(r.error, /^train config: /, key);
    }), { numRuns: runs.invalid });
  });

  it("the playground's classifier config: an invalid field is named", () => {
    const base = { ...planeClassifierDefaults } as Record<string, unknown>;
    fc.assert(fc.property(mutations(base, Object.keys(base)), ({ key, config }) => {
      const r = attempt(() => resolvePlaneClassifierConfig(config));
      if ('error' in r) expect(r.error.message).toMatch(new RegExp(`^(plane classifier config|DeepSeekMoE config): ` +
        `.*(${key}|topK|experts)`));
    }), { numRuns: runs.invalid });
  });
});

type Resolved = ReturnType<typeof resolveMoEConfig>;
const small = (c: Resolved) => c.dModel <= 64 && c.nRoutedExperts <= 64 && c.expertHiddenDim <= 64 && c.nSharedExperts <= 8;

/**
 * One forward and backward through the layer on 6 tokens, then the weights freed: no tensor outlives it. A huge
 * valid config is refused at allocation with a named error instead (createMoEWeights checks sizes first).
 */
function runLayerStep(config: Resolved): void {
  const before = tf.memory().numTensors;
  const weights = createMoEWeights(config);
  tf.tidy(() => {
    const x = tf.randomNormal([2, 3, config.dModel], 0, 1, 'float32', 1);
    const loss = () => {
      const out = moeForward(x, weights, config, { training: true, jitterSeed: 1 });
      return tf.add(tf.sum(tf.square(out.output)), out.losses.total) as tf.Scalar;
    };
    const { value, grads } = tf.variableGrads(loss);
    value.dataSync(); // the step ran (a 1e300 balance coefficient may make it infinite: valid, but not finite)
    expect(Object.keys(grads).length).toBeGreaterThan(0);
  });
  disposeMoEWeights(weights);
  expect(tf.memory().numTensors).toBe(before);
}

describe("the training worker's commands, at random", () => {
  let api: TrainingWorkerApi;
  const corpus = { a: 'abcdefgh '.repeat(40), b: 'the cat sat '.repeat(40) };
  const job = (): Job => ({ kind: 'lab', model: preset('tiny'), train: { steps: 2, batchSize: 2, seqLen: 16, evalWindows: 1 }, corpus });

  beforeAll(async () => {
    api = createTrainingWorker();
    await api.setBackend('cpu');
  });
  afterAll(async () => {
    if ((await api.state()) !== 'idle') await api.stop();
  });

  it('start: a bad job is refused with a named field, and nothing starts or leaks', async () => {
    const fields = ['kind', 'model', 'train', 'corpus'];
    const base = job() as unknown as Record<string, unknown>;
    const trainFields = Object.keys(trainConfigDefaults);
    const cases = fc.oneof(
      mutations(base, fields),
      mutations(base.train as Record<string, unknown>, trainFields).map((m) => ({ ...m, config: { ...base, train: m.config } })),
      mutations(base.model as Record<string, unknown>, Object.keys(modelConfigDefaults))
        .map((m) => ({ ...m, config: { ...base, model: m.config } })),
      anything.map((v) => ({ key: 'job', value: v, config: v as Record<string, unknown> })),
    );
    const tensors = (await api.numTensors());
    await fc.assert(fc.asyncProperty(cases, async ({ config }) => {
      const r = await api.start(config as unknown as Job, () => {}).then(() => null, (e: unknown) => e);
      if (r === null) {
        await api.stop(); // a valid job: it started; end it
        while ((await api.state()) === 'running') await new Promise((resolve) => setTimeout(resolve, 5));
        return;
      }
      expect(r).toBeInstanceOf(Error);
      expect((r as Error).message).toMatch(/expected|unknown field/);
      expect(await api.state()).toMatch(/idle|finished/);
    }), { numRuns: runs.commands });
    await api.setBackend('cpu'); // ends the last job and frees it
    expect(await api.numTensors()).toBe(tensors);
  });

  it('sample, load, setBackend and bench: bad arguments are refused before anything changes', async () => {
    await api.start(job(), () => {});
    await api.pause();
    const before = await api.save();
    const calls = fc.oneof(
      fc.tuple(fc.constant('sample'), anything, anything),
      fc.tuple(
        fc.constant('sampleOptions'), fc.record({ maxNewTokens: anything, temperature: anything, topK: anything }),
        fc.constant(null),
      ),
      fc.tuple(fc.constant('load'), anything, fc.constant(null)),
      fc.tuple(fc.constant('loadBytes'), fc.uint8Array({ maxLength: 64 }), fc.constant(null)),
      fc.tuple(fc.constant('setBackend'), anything, fc.constant(null)),
      fc.tuple(fc.constant('bench'), anything, fc.constant(null)),
    );
    await fc.assert(fc.asyncProperty(calls, async ([command, a, b]) => {
      const call = command === 'sample' ? api.sample(a as string, b as never)
        : command === 'sampleOptions' ? api.sample('the ', a as never)
          : command === 'load' || command === 'loadBytes' ? api.load(a as Uint8Array)
            : command === 'setBackend' ? (a === 'cpu' || a === 'wasm' ? Promise.resolve() : api.setBackend(a as never))
              : api.bench(a as never, () => {});
      const r = await call.then((v) => ({ v }), (e: unknown) => ({ e }));
      if ('e' in r) {
        expect(r.e).toBeInstanceOf(Error);
        expect((r.e as Error).message).toMatch(/expected|not available|not a valid checkpoint/);
      }
    }), { numRuns: runs.commands });
    expect(await api.save()).toEqual(before); // the job's state is untouched
  });
});

describe('a valid model and trainer config, at random, trains a step', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('runs', async () => {
    const corpus = { a: 'abcdefgh '.repeat(60), b: 'the cat sat '.repeat(60) };
    const dataset = new TextDataset(corpus, { seqLen: 16 });
    await fc.assert(fc.asyncProperty(
      fc.record({
        moe: validMoE, attention: fc.constantFrom('mla', 'mha'), nLayers: fc.integer({ min: 1, max: 2 }),
        dense: fc.integer({ min: 0, max: 1 }),
      }),
      async (r) => {
        const { dModel: _d, ...moe } = r.moe;
        const model = new DeepSeekLM({
          dModel: 16, nLayers: r.nLayers, nDenseLayers: Math.min(r.dense, r.nLayers), nHeads: 2, interDim: 16, maxSeqLen: 16,
          attention: r.attention as 'mla', headDim: 8, kvLoraRank: 8, qkNopeHeadDim: 8, qkRopeHeadDim: 4, vHeadDim: 8, moe,
        });
        const trainer = new Trainer(model, dataset, { steps: 1, batchSize: 2, seqLen: 16, evalWindows: 1, evalEvery: 0 });
        const errors: string[] = [];
        trainer.on('error', (e) => errors.push(e.message));
        await trainer.run();
        expect(errors).toEqual([]);
        expect(trainer.step).toBe(1);
        trainer.dispose();
        model.dispose();
      },
    ), { numRuns: runs.valid });
  });
});

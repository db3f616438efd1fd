/**
 * The grouped kernels' contract: on every backend, each kernel equals the reference loops of loops.ts on the same
 * inputs (the plan exactly, floats to 1e-4 relative). Cases cover drops, empty experts, E = 1, K = E, E = 256
 * with group-limited selection, ties in the scores, and sizes that are no multiple of any tile.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  kernelNames, nativeKernels, referenceLoops, wasmSimdKernelsActive, type Arr, type KernelAttrs, type KernelKey, type Out,
} from '../../src/moe/kernels/index.js';
import { Rng } from 'deepseek-moe-tfjs/train';
import { backendsUnderTest, useBackend } from '../helpers.js';

interface KernelCase {
  name: string;
  T: number;
  K: number;
  E: number;
  d: number;
  h: number;
  capacity: number;
  /** Experts tokens may pick from (skewed routing, empty experts); all E when absent. */
  pool?: number[];
  nGroups?: number;
  topKGroups?: number;
  groupScore?: 'max' | 'sumTop2';
}

const cases: KernelCase[] = [
  { name: 'small', T: 12, K: 2, E: 4, d: 8, h: 6, capacity: 0 },
  { name: 'capacity drops', T: 20, K: 2, E: 6, d: 8, h: 4, capacity: 3, pool: [0, 1, 2] },
  { name: 'empty experts', T: 16, K: 2, E: 8, d: 5, h: 3, capacity: 0, pool: [0, 3, 7] },
  { name: 'E = 1', T: 9, K: 1, E: 1, d: 4, h: 4, capacity: 0 },
  { name: 'K = E', T: 10, K: 4, E: 4, d: 6, h: 5, capacity: 0 },
  { name: 'E = 256, 8 groups', T: 40, K: 8, E: 256, d: 16, h: 8, capacity: 0, nGroups: 8, topKGroups: 4, groupScore: 'sumTop2' },
  { name: 'odd sizes', T: 75, K: 6, E: 24, d: 36, h: 20, capacity: 0, nGroups: 4, topKGroups: 2, groupScore: 'max' },
  { name: 'odd sizes with drops', T: 75, K: 6, E: 24, d: 36, h: 20, capacity: 13 },
  // T E >= 32768: tfjs-node computes the routing kernels as TF ops from this size on (loops below it).
  { name: 'a layer of scores', T: 520, K: 4, E: 64, d: 8, h: 4, capacity: 0 },
  { name: 'a layer of scores in 3 sequences', T: 522, K: 6, E: 64, d: 8, h: 4, capacity: 0 },
];

/** Distinct experts per token from the pool (top-K never repeats an expert). */
function drawIds(rng: Rng, c: KernelCase): Int32Array {
  const pool = c.pool ?? Array.from({ length: c.E }, (_, e) => e);
  const ids = new Int32Array(c.T * c.K);
  for (let t = 0; t < c.T; t++) {
    const left = [...pool];
    for (let k = 0; k < c.K; k++) {
      // Pools smaller than K fall back to any unused expert.
      const taken = ids.subarray(t * c.K, t * c.K + k);
      if (left.length === 0) left.push(...Array.from({ length: c.E }, (_, e) => e).filter((e) => !taken.includes(e)));
      ids[t * c.K + k] = left.splice(rng.int(left.length), 1)[0]!;
    }
  }
  return ids;
}

const normal = (rng: Rng, n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);

/** Every input any kernel takes, for one case, as plain arrays. */
function inputsFor(c: KernelCase): Record<string, Arr> {
  const rng = new Rng(c.T * 1000 + c.E);
  const { T, K, E, d, h } = c;
  const A = T * K;
  const ids: Arr = { shape: [T, K], values: drawIds(rng, c) };
  const plan = referenceLoops.routingPlan({ ids }, { nExperts: E, capacity: c.capacity });
  // Scores on a coarse grid, so equal values (ties) occur; positive, so every row has a sum to normalise by.
  const scores = Float32Array.from({ length: T * E }, () => (Math.round(rng.next() * 16) + 0.5) / 16);
  const B = T % 3 === 0 ? 3 : 1;
  return {
    ids,
    plan: plan as Arr,
    scores: { shape: [T, E], values: scores },
    bias: { shape: [E], values: Float32Array.from({ length: E }, () => Math.round(rng.next() * 4) / 32) },
    dGates: { shape: [T, K], values: normal(rng, A) },
    x: { shape: [T, d], values: normal(rng, T * d) },
    w1: { shape: [E, d, h], values: normal(rng, E * d * h, 0.5) },
    w3: { shape: [E, d, h], values: normal(rng, E * d * h, 0.5) },
    w2: { shape: [E, h, d], values: normal(rng, E * h * d, 0.5) },
    h13: { shape: [2, A, h], values: normal(rng, 2 * A * h, 2) },
    dH13: { shape: [2, A, h], values: normal(rng, 2 * A * h) },
    dYRows: { shape: [A, d], values: normal(rng, A * d) },
    rows: { shape: [A, d], values: normal(rng, A * d) },
    gates: { shape: [T, K], values: normal(rng, A) },
    dy: { shape: [T, d], values: normal(rng, T * d) },
    weights: { shape: [B, E], values: normal(rng, B * E) },
    dLoss: { shape: [], values: normal(rng, 1) },
  };
}

/** The inputs and attributes of each kernel for a case. */
function callFor(key: KernelKey, c: KernelCase, variant: boolean): { inputs: string[]; attrs: KernelAttrs[KernelKey] } {
  const withBias = variant;
  const normalise = variant;
  const gate = { normTopK: true, routeScale: 2.5 };
  const table: { [K in KernelKey]: { inputs: string[]; attrs: KernelAttrs[K] } } = {
    selectExperts: {
      inputs: withBias ? ['scores', 'bias'] : ['scores'],
      attrs: { topK: c.K, nGroups: c.nGroups ?? 1, topKGroups: c.topKGroups ?? 1, groupScore: c.groupScore ?? 'max' },
    },
    countExperts: { inputs: ['ids'], attrs: { nExperts: c.E, nBlocks: c.T % 3 === 0 ? 3 : 1 } },
    routingPlan: { inputs: ['ids'], attrs: { nExperts: c.E, capacity: c.capacity } },
    gateWeights: { inputs: ['scores', 'ids'], attrs: gate },
    gateWeightsGrad: { inputs: ['dGates', 'scores', 'ids'], attrs: gate },
    expertsUp: { inputs: ['x', 'w1', 'w3', 'ids', 'plan'], attrs: {} },
    expertsUpGradX: { inputs: ['dH13', 'w1', 'w3', 'ids', 'plan'], attrs: {} },
    expertsUpGradW: { inputs: ['x', 'dH13', 'plan'], attrs: { nExperts: c.E, topK: c.K, half: 1 } },
    expertsDown: { inputs: ['h13', 'w2', 'ids', 'plan'], attrs: {} },
    expertsDownGradH: { inputs: ['dYRows', 'h13', 'w2', 'ids', 'plan'], attrs: {} },
    expertsDownGradW: { inputs: ['h13', 'dYRows', 'plan'], attrs: { nExperts: c.E } },
    combine: { inputs: ['rows', 'gates', 'plan'], attrs: {} },
    combineGrad: { inputs: ['dy', 'gates', 'plan'], attrs: {} },
    combineGradGates: { inputs: ['rows', 'dy', 'plan'], attrs: {} },
    routerEntropy: { inputs: ['scores'], attrs: { normalise } },
    affinityBalance: { inputs: ['scores', 'weights'], attrs: { normalise, scale: 0.375 } },
    affinityBalanceGrad: { inputs: ['dLoss', 'scores', 'weights'], attrs: { normalise, scale: 0.375 } },
  };
  return table[key];
}

/** The kernel's name for a test input: the balance gradient's scalar dy is held as dLoss beside the [T, d] dy. */
const kernelInput = (name: string) => (name === 'dLoss' ? 'dy' : name);

/** Runs one kernel on the active backend and reads the result back. */
async function runOnBackend(key: KernelKey, inputs: Record<string, Arr>, names: string[], attrs: object): Promise<Out> {
  const tensors: Record<string, tf.Tensor> = {};
  for (const n of names) {
    const a = inputs[n]!;
    tensors[kernelInput(n)] = tf.tensor(a.values, a.shape, a.values instanceof Int32Array ? 'int32' : 'float32');
  }
  const result = tf.engine().runKernel(kernelNames[key], tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
  const values = (await result.data()) as Float32Array | Int32Array;
  const out: Out = { shape: result.shape, dtype: result.dtype as 'float32' | 'int32', values };
  tf.dispose([result, ...Object.values(tensors)]);
  return out;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1;
  let diff = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i]!), Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  return diff / scale;
}

const keys = Object.keys(kernelNames) as KernelKey[];

describe.each(backendsUnderTest)('grouped kernels on %s', (backend) => {
  it('are all registered, the expected ones native', async () => {
    await useBackend(backend);
    for (const name of Object.values(kernelNames)) expect(tf.getKernel(name, backend)).toBeDefined();
    const experts = ['expertsUp', 'expertsUpGradX', 'expertsUpGradW', 'expertsDown', 'expertsDownGradH', 'expertsDownGradW'];
    const native: Record<string, string[]> = {
      cpu: [], wasm: experts, webgl: keys, webgpu: keys,
      tensorflow: [
        ...experts, 'combine', 'combineGrad', 'combineGradGates',
        'selectExperts', 'gateWeightsGrad', 'routerEntropy', 'affinityBalance', 'affinityBalanceGrad',
      ],
    };
    expect([...nativeKernels(backend)].sort()).toEqual([...native[backend]!].sort());
  });

  it('refuse an input of the wrong dtype by name', async () => {
    await useBackend(backend);
    const scores = tf.ones([2, 4], 'int32');
    expect(() => tf.engine().runKernel(kernelNames.routerEntropy, { scores }, { normalise: true } as never))
      .toThrow(/DeepSeekMoERouterEntropy: expected 'scores' of dtype float32, but got int32/);
    scores.dispose();
  });

  it.runIf(backend === 'wasm')('run our SIMD matmuls on wasm, not the reference loops', async () => {
    await useBackend(backend);
    expect(wasmSimdKernelsActive()).toBe(true);
  });

  describe.each(cases)('$name (T $T, K $K, E $E, d $d, h $h, capacity $capacity)', (c) => {
    const inputs = inputsFor(c);
    it.each(keys)('%s equals the reference loops', async (key) => {
      await useBackend(backend);
      // With and without the bias (selectExperts), normalising or not (the score reductions).
      const twoWays = ['selectExperts', 'routerEntropy', 'affinityBalance', 'affinityBalanceGrad'];
      const variants = twoWays.includes(key) ? [true, false] : [true];
      for (const variant of variants) {
        const { inputs: names, attrs } = callFor(key, c, variant);
        const args = Object.fromEntries(names.map((n) => [kernelInput(n), inputs[n]!]));
        const expected = (referenceLoops[key] as (i: typeof args, a: unknown) => Out)(args, attrs);
        const got = await runOnBackend(key, inputs, names, attrs);
        expect(got.shape).toEqual(expected.shape);
        expect(got.dtype).toBe(expected.dtype);
        if (expected.dtype === 'int32') expect(Array.from(got.values)).toEqual(Array.from(expected.values));
        else expect(maxRelDiff(got.values, expected.values)).toBeLessThan(1e-4);
      }
    });
  });

  it('the reference plan is a stable sort by expert, with drops past capacity', () => {
    // 4 tokens, K 2, E 3; capacity 2 drops the third assignment of experts 0 and 2 (token 3's two choices).
    const ids: Arr = { shape: [4, 2], values: Int32Array.from([0, 1, 2, 0, 1, 2, 0, 2]) };
    const plan = referenceLoops.routingPlan({ ids }, { nExperts: 3, capacity: 2 }).values;
    const A = 8;
    // Sorted rows: expert 0 holds a = 0, 3, 6; expert 1 holds 1, 4; expert 2 holds 2, 5, 7.
    expect(Array.from(plan.subarray(2 * A))).toEqual([0, 3, 5, 8]);
    expect(Array.from(plan.subarray(A, 2 * A))).toEqual([0, 3, A, 1, 4, 2, 5, A]);
    expect(Array.from(plan.subarray(0, A))).toEqual([0, 3, 5, 1, 4, 6, A, A]);
  });
});

import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { checkInputFinite, initBackend, swiGLU, type MoEConfigInput } from 'deepseek-moe-tfjs';
import { silu } from '../../src/ops.js';
import { backendsUnderTest, config, inBrowser, probeLoss, relDiff, seededWeights, useBackend } from '../helpers.js';

describe('initBackend', () => {
  it.runIf(!inBrowser)('picks tensorflow (tfjs-node) or else wasm in Node', async () => {
    expect(['tensorflow', 'wasm']).toContain(await initBackend());
  });

  it.runIf(!inBrowser)('an unavailable explicit choice names the backend and what is available', async () => {
    await expect(initBackend('webgl')).rejects.toThrow(/backend 'webgl' is not available here.*available: .*wasm, cpu/);
  });

  it('rejects an unknown backend name', async () => {
    await expect(initBackend('metal' as never)).rejects.toThrow(/expected one of .*but got 'metal'/);
  });

  it.runIf(inBrowser)('webgl keeps TopK on the GPU', async () => {
    await initBackend('webgl');
    expect(tf.env().getNumber('TOPK_LAST_DIM_CPU_HANDOFF_SIZE_THRESHOLD')).toBe(0);
    expect(tf.env().getNumber('TOPK_K_CPU_HANDOFF_THRESHOLD')).toBeGreaterThan(4096);
  });
});

describe.each(backendsUnderTest)('on %s', (backend) => {
  it('swiGLU: the hand-written backward equals TF.js autodiff', async () => {
    await useBackend(backend);
    const x = tf.randomNormal([12, 6], 0, 1, 'float32', 1);
    const w = [
      tf.randomNormal([6, 5], 0, 0.5, 'float32', 2), tf.randomNormal([6, 5], 0, 0.5, 'float32', 3),
      tf.randomNormal([5, 6], 0, 0.5, 'float32', 4),
    ];
    const probe = tf.randomNormal([12, 6], 0, 1, 'float32', 5);
    const autodiff = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, e: tf.Tensor) =>
      tf.matMul(tf.mul(silu(tf.matMul(a, b)), tf.matMul(a, c)), e) as tf.Tensor2D;
    const ours = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, e: tf.Tensor) =>
      swiGLU(a as tf.Tensor2D, b as tf.Tensor2D, c as tf.Tensor2D, e as tf.Tensor2D);
    const loss = (f: typeof ours) => (...t: tf.Tensor[]) => tf.sum(tf.mul(f(t[0]!, t[1]!, t[2]!, t[3]!), probe)) as tf.Scalar;
    expect(await relDiff(ours(x, w[0]!, w[1]!, w[2]!), autodiff(x, w[0]!, w[1]!, w[2]!))).toBeLessThan(1e-5);
    const [g1, g2] = [tf.grads(loss(ours))([x, ...w]), tf.grads(loss(autodiff))([x, ...w])];
    for (let i = 0; i < 4; i++) expect(await relDiff(g1[i]!, g2[i]!)).toBeLessThan(1e-5);
  });

  // Counts the GPU backend's synchronous reads (TopK's CPU handoff on webgl is one) during a training step. On
  // cpu and wasm readSync is plain memory access that kernels use internally, so there is nothing to count.
  const input: MoEConfigInput = {
    dModel: 16, nRoutedExperts: 8, topK: 2, expertHiddenDim: 8, nSharedExperts: 1, scoreFunc: 'sigmoid',
    auxFreeBias: true, seqAlpha: 0.01,
  };
  const steps = [
    ['capacity, checkFinite off', { dispatch: 'capacity', checkFinite: false }, false, 0],
    ['the input checked ahead (checkInputFinite)', { dispatch: 'dropless' }, true, 0],
    // Nothing is sized: dropless reads only for the finite check.
    ['dropless, checkFinite off', { dispatch: 'dropless', checkFinite: false }, false, 0],
    ['dropless', { dispatch: 'dropless' }, false, 1],
  ] as const;
  const isGpu = backend === 'webgl' || backend === 'webgpu';
  // A sync read loses the SwiftShader webgpu device, so there only the sync-free steps are counted.
  const stepsHere = steps.filter(([, , , reads]) => backend !== 'webgpu' || reads === 0);
  it.runIf(isGpu).each(stepsHere)('a training step with %s makes the documented number of ' +
    'GPU-to-CPU reads', async (_, extra, checkedAhead, expected) => {
    await useBackend(backend);
    const c = config({ ...input, ...extra });
    const w = seededWeights(c, 2);
    const x = tf.randomNormal([4, 64, 16], 0, 1, 'float32', 3);
    if (checkedAhead) await checkInputFinite(x, c);
    const options = checkedAhead ? { inputChecked: true } : {};
    const { f, inputs } = probeLoss(w, c, options, tf.ones(x.shape));
    const kernelBackend = tf.backend() as unknown as { readSync: (...a: unknown[]) => unknown };
    const readSync = kernelBackend.readSync;
    let reads = 0;
    kernelBackend.readSync = (...a: unknown[]) => {
      reads++;
      return readSync.apply(kernelBackend, a);
    };
    try {
      tf.tidy(() => {
        tf.grads(f)(inputs(x));
      });
    } finally {
      kernelBackend.readSync = readSync;
    }
    expect(reads).toBe(expected);
  });
});

// TF.js re-lays out (packs) an input for every packed program that reads it in the other layout: the plan, which
// every expert and combine program reads packed, is written packed once by the routing kernel.
it.runIf(inBrowser)('webgl: a layer step never re-lays out the routing plan', async () => {
  await useBackend('webgl');
  const c = config({ dModel: 16, nRoutedExperts: 8, topK: 2, expertHiddenDim: 8, nSharedExperts: 1 });
  const w = seededWeights(c, 2);
  const x = tf.randomNormal([2, 32, 16], 0, 1, 'float32', 3);
  const planSize = 2 * (64 * 2) + 8 + 1; // [2A + E + 1], A = T K
  const { f, inputs } = probeLoss(w, c, {}, tf.ones(x.shape));
  type Run = (program: { outputShape: number[] }, ...a: unknown[]) => unknown;
  const backend = tf.backend() as unknown as { runWebGLProgram: Run };
  const run = backend.runWebGLProgram;
  const relayouts: string[] = [];
  let programs = 0;
  backend.runWebGLProgram = function (this: unknown, program, ...a) {
    programs++;
    const name = program.constructor.name;
    if (/^(Pack|Unpack)Program$/.test(name) && program.outputShape.join() === `${planSize}`) relayouts.push(name);
    return run.call(this, program, ...a);
  };
  try {
    tf.tidy(() => {
      tf.grads(f)(inputs(x));
    });
  } finally {
    backend.runWebGLProgram = run;
  }
  expect(programs).toBeGreaterThan(20);
  expect(relayouts).toEqual([]);
});

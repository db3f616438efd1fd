/**
 * How many GPU programs (webgpu, webgl), libtensorflow ops (tensorflow) or TF.js kernels (cpu, wasm) one step runs. On a GPU every
 * program is a dispatch that costs 5 to 30 us of JS and driver time whatever its size, which at browser batch
 * sizes can outweigh the arithmetic. Counted by wrapping the backend's one entry point for programs
 * (runWebGPUProgram, runWebGLProgram), on tensorflow its binding's executeOp (our kernels there run several TF
 * ops each, which tf.profile would count as one); on the others from tf.profile's kernel list.
 */
import * as tf from '@tensorflow/tfjs';

export type ProgramUnit = 'programs' | 'ops' | 'kernels';

const entryPoints: Record<string, string> = { webgpu: 'runWebGPUProgram', webgl: 'runWebGLProgram' };

/** What `count` reports on the active backend. */
export const programUnit = (): ProgramUnit =>
  tf.getBackend() in entryPoints ? 'programs' : tf.getBackend() === 'tensorflow' ? 'ops' : 'kernels';

/** The programs or kernels one call of `run` starts (awaiting it). */
export async function countPrograms(run: () => Promise<void>): Promise<number> {
  const method = entryPoints[tf.getBackend()];
  if (tf.getBackend() === 'tensorflow') return countTensorflowOps(run);
  if (method === undefined) {
    const info = await tf.profile(run); // tf.profile returns one shared object: read it before the next call
    return info.kernels.length;
  }
  const backend = tf.backend() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = backend[method]!;
  let count = 0;
  backend[method] = function (this: unknown, ...args: unknown[]) {
    count++;
    return original.apply(this, args);
  };
  try {
    await run();
  } finally {
    backend[method] = original;
  }
  return count;
}

/** The libtensorflow ops `run` executes: tfjs-node's binding is frozen, so a wrapper stands in for it meanwhile. */
async function countTensorflowOps(run: () => Promise<void>): Promise<number> {
  const backend = tf.backend() as unknown as { binding: { executeOp: (...args: unknown[]) => unknown } };
  const binding = backend.binding;
  let count = 0;
  const executeOp = (...args: unknown[]) => (count++, binding.executeOp(...args));
  backend.binding = Object.create(binding, { executeOp: { value: executeOp } }) as typeof binding;
  try {
    await run();
  } finally {
    backend.binding = binding;
  }
  return count;
}

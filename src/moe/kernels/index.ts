/**
 * The grouped expert kernels for every backend that has them, registered on import, and `hasGroupedKernels` to
 * ask whether the active backend does (others run the reference path). These modules are side effects only:
 * package.json's `sideEffects` must list them, or a bundler drops them and the library quietly runs the
 * reference path (the demos' production build did).
 */
import * as tf from '@tensorflow/tfjs';
import './register-js.js';
import './wasm.js';
import './webgpu.js';
import './webgl.js';
import { kernelNames } from './spec.js';

export { kernelNames, kernelInputs, type KernelAttrs, type KernelKey } from './spec.js';
export { wasmSimdKernelsActive } from './wasm.js';

/** True when every grouped kernel is registered for the active backend. */
export function hasGroupedKernels(backendName = tf.getBackend()): boolean {
  return Object.values(kernelNames).every((name) => tf.getKernel(name, backendName) !== undefined);
}

/**
 * The kernel contract on every backend: the one list of adapters, registered on import. A backend that is not in
 * the list gets the reference loops through host memory on its first call (adapter.ts `ensureKernels`). This module
 * is a side effect: package.json's `sideEffects` must list it, or a bundler drops the registrations.
 */
import { hostAdapter, registerAdapter, type BackendAdapter } from './adapter.js';
import { tensorflowAdapter } from './tensorflow.js';
import { wasmAdapter } from './wasm.js';
import { webglAdapter } from './webgl.js';
import { webgpuAdapter } from './webgpu.js';

/** The backends with an adapter; adding one is a file that exports its adapter and a line here. */
export const adapters: readonly BackendAdapter<never>[] = [
  hostAdapter('cpu'), wasmAdapter, webglAdapter, webgpuAdapter, tensorflowAdapter,
];
for (const adapter of adapters) registerAdapter(adapter);

export { ensureKernels, nativeKernels, runLoop, type BackendAdapter, type NativeKernel } from './adapter.js';
export { kernelNames, kernelInputs, type KernelAttrs, type KernelKey } from './contract.js';
export { referenceLoops, type Arr, type Out } from './loops.js';
export { wasmSimdKernelsActive } from './wasm.js';

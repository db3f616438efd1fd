/**
 * Registers the reference loops (js.ts) as the grouped kernels of the cpu backend, and of wasm for the kernels
 * that wasm.ts does not replace. Both keep tensors in CPU memory, so a kernel reads its inputs in place.
 */
import * as tf from '@tensorflow/tfjs';
import { jsKernels, type Arr, type Out } from './js.js';
import { kernelNames, type KernelKey } from './spec.js';

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The slice of the cpu backend's API its own kernels use. */
interface CpuBackend {
  data: { get(dataId: tf.DataId): { values: Float32Array | Int32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array | Int32Array): tf.TensorInfo;
}
/** The slice of the wasm backend's API its own JS kernels use. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

const cpuRead = (backend: unknown, t: tf.TensorInfo): Arr => ({
  shape: t.shape, values: (backend as CpuBackend).data.get(t.dataId).values,
});
const cpuWrite = (backend: unknown, out: Out): tf.TensorInfo => (backend as CpuBackend).makeTensorInfo(out.shape, out.dtype, out.values);

const wasmRead = (backend: unknown, t: tf.TensorInfo): Arr => ({
  shape: t.shape, values: (backend as WasmBackend).typedArrayFromHeap(t) as Float32Array | Int32Array,
});
/** Copies a result onto the wasm heap. Views of inputs are taken after the kernel ran: allocating may move the heap. */
function wasmWrite(backend: unknown, out: Out): tf.TensorInfo {
  const info = (backend as WasmBackend).makeOutput(out.shape, out.dtype);
  (backend as WasmBackend).typedArrayFromHeap(info).set(out.values);
  return info;
}

/** Runs the reference loop of `key` on the tensors of a cpu or wasm kernel call. */
function runLoop(key: KernelKey, backendName: 'cpu' | 'wasm', { inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const [read, write] = backendName === 'cpu' ? [cpuRead, cpuWrite] : [wasmRead, wasmWrite];
  const arrs: Record<string, Arr | undefined> = {};
  for (const [name, t] of Object.entries(inputs)) if (t) arrs[name] = read(backend, t);
  return write(backend, (jsKernels[key] as (i: typeof arrs, a: unknown) => Out)(arrs, attrs));
}

function register(key: KernelKey, backendName: 'cpu' | 'wasm'): void {
  tf.registerKernel({ kernelName: kernelNames[key], backendName, kernelFunc: (args: KernelArgs) => runLoop(key, backendName, args) });
}

for (const key of Object.keys(kernelNames) as KernelKey[]) register(key, 'cpu');

/** Registers the reference loop of `key` on wasm (wasm.ts calls this for the kernels it keeps as loops). */
export const registerWasmLoop = (key: KernelKey) => register(key, 'wasm');
/** The reference loop of `key` on wasm, for a kernel call that cannot take its fast path. */
export const runWasmLoop = (key: KernelKey, args: KernelArgs) => runLoop(key, 'wasm', args);

/**
 * One way to put the kernel contract (contract.ts) on a backend: an adapter lists the kernels it has a native version
 * of and says how to read and write the backend's tensors in host memory; `registerAdapter` registers all
 * seventeen kernels, each checking its inputs first, the native ones as they are and every other one as its
 * reference loop (loops.ts) over the adapter's host reads and writes. Adding a backend is one file that exports an
 * adapter and one line in the list (index.ts). A backend with no adapter at all gets the host adapter on its
 * first call (`ensureKernels`), so the routed path runs everywhere.
 */
import * as tf from '@tensorflow/tfjs';
import { referenceLoops, type Arr, type Loop, type Out } from './loops.js';
import { kernelInputs, kernelNames, type KernelAttrs, type KernelKey } from './contract.js';

/** A kernel's inputs by the names contract.ts gives them; optional ones may be absent. */
export type KernelInputs = Record<string, tf.TensorInfo | undefined>;

/** A backend's own version of kernel K. `B` is the slice of the backend's API it uses. */
export type NativeKernel<K extends KernelKey, B> = (inputs: KernelInputs, attrs: KernelAttrs[K], backend: B) => tf.TensorInfo;

/** How one backend runs the kernel contract. */
export interface BackendAdapter<B = unknown> {
  /** The name the backend is registered under in TF.js. */
  backendName: string;
  /** The kernels with a native version; the rest run their reference loop through `read` and `write`. */
  kernels: Partial<{ [K in KernelKey]: NativeKernel<K, B> }>;
  /** A tensor's values in host memory: a view where the backend keeps them there, else a copy. */
  read(backend: B, info: tf.TensorInfo): Float32Array | Int32Array;
  /** A new tensor of the backend holding `out`. */
  write(backend: B, out: Out): tf.TensorInfo;
}

/** The slice of TF.js's KernelBackend that every backend has: a synchronous read and a write. */
interface AnyBackend {
  readSync(dataId: tf.DataId): unknown;
  write(values: Float32Array | Int32Array, shape: number[], dtype: tf.DataType): tf.DataId;
}

/** Host reads and writes through the KernelBackend interface: no copy on cpu, a memcpy on tensorflow. */
export const hostAccess = {
  read: (backend: unknown, info: tf.TensorInfo) => (backend as AnyBackend).readSync(info.dataId) as Float32Array | Int32Array,
  write: (backend: unknown, out: Out): tf.TensorInfo => ({
    dataId: (backend as AnyBackend).write(out.values, out.shape, out.dtype), shape: out.shape, dtype: out.dtype,
  }),
};

/** The adapter of a backend with no native kernel: every kernel is its reference loop through host memory. */
export const hostAdapter = (backendName: string): BackendAdapter => ({ backendName, kernels: {}, ...hostAccess });

const intInputs = new Set(['ids', 'plan']);

/** Throws unless every required input of `key` is there with its dtype (ids and plan int32, the rest float32). */
function checkInputs(key: KernelKey, inputs: KernelInputs): void {
  for (const spec of kernelInputs[key]) {
    const name = spec.replace('?', '');
    const t = inputs[name];
    if (t === undefined || t === null) {
      if (spec.endsWith('?')) continue;
      throw new Error(`${kernelNames[key]}: expected input '${name}', but got none.`);
    }
    const dtype = intInputs.has(name) ? 'int32' : 'float32';
    if (t.dtype !== dtype) throw new Error(`${kernelNames[key]}: expected '${name}' of dtype ${dtype}, but got ${t.dtype}.`);
  }
}

/** Runs the reference loop of `key` on a backend's tensors through its adapter's host reads and writes. */
export function runLoop<K extends KernelKey, B>(
  adapter: BackendAdapter<B>, key: K, inputs: KernelInputs, attrs: KernelAttrs[K], backend: B,
): tf.TensorInfo {
  const arrs: Record<string, Arr | undefined> = {};
  for (const [name, t] of Object.entries(inputs)) if (t) arrs[name] = { shape: t.shape, values: adapter.read(backend, t) };
  return adapter.write(backend, (referenceLoops[key] as Loop<K>)(arrs, attrs));
}

const registered = new Map<string, BackendAdapter<never>>();

/** Registers every kernel of the contract for the adapter's backend: its native version, or its reference loop. */
export function registerAdapter<B>(adapter: BackendAdapter<B>): void {
  if (registered.has(adapter.backendName)) {
    throw new Error(`registerAdapter: expected one adapter per backend, but '${adapter.backendName}' has one already.`);
  }
  registered.set(adapter.backendName, adapter as BackendAdapter<never>);
  for (const key of Object.keys(kernelNames) as KernelKey[]) {
    const native = adapter.kernels[key] as NativeKernel<KernelKey, B> | undefined;
    tf.registerKernel({
      kernelName: kernelNames[key],
      backendName: adapter.backendName,
      kernelFunc: ({ inputs, attrs, backend }) => {
        checkInputs(key, inputs);
        const a = attrs as unknown as KernelAttrs[KernelKey];
        return native ? native(inputs, a, backend as B) : runLoop(adapter, key, inputs, a, backend as B);
      },
    });
  }
}

/** Makes sure the active backend has the kernels: one with no adapter gets the host adapter, once. */
export function ensureKernels(backendName = tf.getBackend()): void {
  if (!registered.has(backendName)) registerAdapter(hostAdapter(backendName));
}

/** The kernels `backendName` runs natively (the rest are reference loops); empty for a backend with no adapter. */
export function nativeKernels(backendName: string): KernelKey[] {
  const adapter = registered.get(backendName);
  return adapter ? (Object.keys(adapter.kernels) as KernelKey[]) : [];
}

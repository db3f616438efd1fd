/**
 * The grouped kernels on wasm. TF.js's wasm backend pays tens of microseconds of bookkeeping per kernel, and its
 * XNNPACK matmul packs the weights into a fresh operator on every call (~150 us each, measured): a loop over
 * experts of either spent more time in overhead than in arithmetic. Here each matmul-heavy kernel is one TF.js
 * kernel that calls our own SIMD matmuls (simd/grouped.ts, compiled to WebAssembly) once per expert, directly on
 * TF.js's heap: tokens gathered inside the matmul, weights read in place, weight gradients as X^T dY without
 * transposing X. TF.js's C++ kernels serve the rest (the vectorised sigmoid, one transpose of the weights). The
 * routing kernels are the reference loops (loops.ts) on the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import { runLoop, type BackendAdapter, type NativeKernel } from './adapter.js';
import { simdModuleBase64 } from './simd-module.js';
import type { KernelAttrs, KernelKey } from './contract.js';

/** The parts of TF.js's wasm backend and module these kernels use (backend_wasm.ts). */
interface WasmModule {
  asm: { memory?: WebAssembly.Memory };
  cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
  tfjs: { registerTensor(id: number, size: number, memoryOffset: number): void; disposeData(id: number): void };
  HEAPF32: Float32Array;
}
interface WasmBackend {
  wasm: WasmModule;
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: tf.DataId): boolean;
}


const shapeBytes = (shape: number[]) => new Uint8Array(new Int32Array(shape).buffer);
/** TF.js's own C++ entry points (the ones its wasm kernels call), looked up once per module. */
const entryPoints = new WeakMap<WasmModule, Record<'transpose' | 'sigmoid', (...args: unknown[]) => void>>();
const float32 = 0; // CppDType.float32

/** Float offsets into the heap of tensors and scratch buffers, and TF.js's C++ kernels run between them. */
class Heap {
  private scratch: tf.TensorInfo[] = [];
  constructor(private readonly backend: WasmBackend) {}

  /** Index of the first float of `info` in HEAPF32. */
  at(info: tf.TensorInfo): number {
    return this.backend.dataIdMap.get(info.dataId).memoryOffset / 4;
  }
  /** The heap as floats: take it again after every C++ call (growing the heap replaces the buffer). */
  get f32(): Float32Array {
    return this.backend.wasm.HEAPF32;
  }
  output(shape: number[], dtype: tf.DataType = 'float32'): tf.TensorInfo {
    return this.backend.makeOutput(shape, dtype);
  }
  /** A buffer freed by `release`. */
  temp(size: number): tf.TensorInfo {
    const info = this.output([size]);
    this.scratch.push(info);
    return info;
  }
  release(): void {
    for (const info of this.scratch) this.backend.disposeData(info.dataId);
    this.scratch = [];
  }

  /** out[batch, cols, rows] = the transpose of each [rows, cols] block of x[batch, rows, cols]. */
  transpose(x: number, batch: number, rows: number, cols: number, out: number): void {
    this.withViews([[x, batch * rows * cols], [out, batch * rows * cols]], ([xId, outId]) => {
      this.cpp.transpose(xId, shapeBytes([batch, rows, cols]), 3, float32, outId, shapeBytes([0, 2, 1]), 3);
    });
  }
  /** out[i] = sigmoid(x[i]) for n floats: XNNPACK's vectorised sigmoid (a JS Math.exp loop was 10x slower). */
  sigmoid(x: number, n: number, out: number): void {
    this.withViews([[x, n], [out, n]], ([xId, outId]) => this.cpp.sigmoid(xId, outId));
  }

  private get cpp() {
    const { wasm } = this.backend;
    let fns = entryPoints.get(wasm);
    if (fns === undefined) {
      const n = 'number';
      fns = {
        transpose: wasm.cwrap('Transpose', null, [n, 'array', n, n, n, 'array', n]),
        sigmoid: wasm.cwrap('Sigmoid', null, [n, n]),
      };
      entryPoints.set(wasm, fns);
    }
    return fns;
  }
  /** Registers each [offset, size] block under a fresh tensor id for the call: the C++ kernels address tensors by id. */
  private withViews(blocks: [number, number][], f: (ids: number[]) => void): void {
    const { wasm } = this.backend;
    const ids = blocks.map(([offset, size]) => {
      const id = this.backend.dataIdNextNumber++;
      wasm.tfjs.registerTensor(id, size, offset * 4);
      return id;
    });
    try {
      f(ids);
    } finally {
      for (const id of ids) wasm.tfjs.disposeData(id);
    }
  }
}

/** The exports of simd/grouped.ts; every pointer is a byte address on TF.js's heap, strides in floats. */
interface SimdKernels {
  matMulRows(
    a: number, rows: number, aStride: number, b: number, k: number, n: number, out: number, outStride: number, m: number,
    accumulate: number,
  ): void;
  matMulTN(a: number, rows: number, aStride: number, width: number, b: number, bStride: number, n: number, out: number, m: number): void;
  addRowsTo(src: number, index: number, m: number, width: number, out: number): void;
}

let simdModule: WebAssembly.Module | null | undefined;
const simdInstances = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

/**
 * Our SIMD kernels bound to this backend's heap, or null where they cannot be (a shared-memory build of TF.js's
 * wasm, or no WebAssembly SIMD): the kernels then run the reference loops.
 */
function simdFor(backend: WasmBackend): SimdKernels | null {
  const memory = backend.wasm.asm.memory;
  if (memory === undefined) return null;
  if (!simdInstances.has(memory)) {
    try {
      simdModule ??= new WebAssembly.Module(Uint8Array.from(atob(simdModuleBase64), (c) => c.charCodeAt(0)));
      simdInstances.set(memory, new WebAssembly.Instance(simdModule, { env: { memory } }).exports as unknown as SimdKernels);
    } catch {
      simdModule = simdModule ?? null;
      simdInstances.set(memory, null);
    }
  }
  return simdInstances.get(memory)!;
}

/**
 * The plan copied off the heap (XNNPACK allocates while it packs weights, which can grow the heap and detach every
 * view): row r holds assignment rows[r] (A when dropped); expert e's kept rows are [start[e], start[e] + kept[e]).
 */
function segments(f32: Float32Array, planAt: number, A: number, E: number) {
  const plan = new Int32Array(f32.buffer, planAt * 4, 2 * A + E + 1).slice();
  const rows = plan.subarray(A, 2 * A);
  const start = Array.from({ length: E }, (_, e) => plan[2 * A + e]!);
  const kept = start.map((s, e) => {
    let r = s;
    while (r < plan[2 * A + e + 1]! && rows[r] !== A) r++;
    return r - s;
  });
  return { rows, start, kept };
}

type WasmKernel<K extends KernelKey> = (
  heap: Heap, simd: SimdKernels, inputs: Record<string, tf.TensorInfo>, attrs: KernelAttrs[K],
) => tf.TensorInfo;

/** Byte address of float index i. */
const bytes = (i: number) => i * 4;

/** The token of each row as int32 on the heap (-1 for a dropped row), for the matmuls' fused gathers. */
function tokenOfEachRow(heap: Heap, rows: Int32Array, A: number, K: number): number {
  const info = heap.temp(A);
  const at = heap.at(info);
  const tokens = new Int32Array(heap.f32.buffer, bytes(at), A);
  for (let r = 0; r < A; r++) tokens[r] = rows[r]! < A ? Math.floor(rows[r]! / K) : -1;
  return at;
}

/** h13[half, r] = x[t(r)] w[e]: two matmuls per expert, gathering the tokens as they go. */
const expertsUp: WasmKernel<'expertsUp'> = (heap, simd, { x, w1, w3, ids, plan }) => {
  const [T, K] = ids!.shape as [number, number];
  const [E, d, h] = w1!.shape as [number, number, number];
  const A = T * K;
  const out = heap.output([2, A, h]);
  const { rows, start, kept } = segments(heap.f32, heap.at(plan!), A, E);
  const tokensAt = tokenOfEachRow(heap, rows, A, K);
  const [xAt, outAt] = [heap.at(x!), heap.at(out)];
  heap.f32.fill(0, outAt, outAt + 2 * A * h);
  for (let e = 0; e < E; e++) {
    if (kept[e] === 0) continue;
    for (const [half, w] of [[0, w1!], [1, w3!]] as const) {
      const outRows = outAt + (half * A + start[e]!) * h;
      simd.matMulRows(bytes(xAt), bytes(tokensAt + start[e]!), d, bytes(heap.at(w) + e * d * h), d, h, bytes(outRows), h, kept[e]!, 0);
    }
  }
  heap.release();
  return out;
};

/** act = silu(h1) * h3 = h1 sigmoid(h1) h3 over the [2, A, h] block at hAt, into [A, h] at actAt. */
function swiGLUProduct(heap: Heap, hAt: number, A: number, h: number, actAt: number): void {
  heap.sigmoid(hAt, A * h, actAt);
  const f32 = heap.f32;
  for (let i = 0; i < A * h; i++) f32[actAt + i] = f32[actAt + i]! * f32[hAt + i]! * f32[hAt + A * h + i]!;
}

/** yRows = (silu(h1) * h3) w2[e]: the SwiGLU product in one pass, then one matmul per expert. */
const expertsDown: WasmKernel<'expertsDown'> = (heap, simd, { h13, w2, ids, plan }) => {
  const [T, K] = ids!.shape as [number, number];
  const [E, h, d] = w2!.shape as [number, number, number];
  const A = T * K;
  const out = heap.output([A, d]);
  const act = heap.temp(A * h);
  const { start, kept } = segments(heap.f32, heap.at(plan!), A, E);
  const [actAt, outAt] = [heap.at(act), heap.at(out)];
  heap.f32.fill(0, outAt, outAt + A * d);
  swiGLUProduct(heap, heap.at(h13!), A, h, actAt);
  for (let e = 0; e < E; e++) {
    if (kept[e] === 0) continue;
    const [rows, w, out] = [actAt + start[e]! * h, heap.at(w2!) + e * h * d, outAt + start[e]! * d];
    simd.matMulRows(bytes(rows), 0, h, bytes(w), h, d, bytes(out), d, kept[e]!, 0);
  }
  heap.release();
  return out;
};

/** u = dYRows w2[e]^T per expert (w2 transposed once), then the SwiGLU backward in one pass. */
const expertsDownGradH: WasmKernel<'expertsDownGradH'> = (heap, simd, { dYRows, h13, w2, ids, plan }) => {
  const [T, K] = ids!.shape as [number, number];
  const [E, h, d] = w2!.shape as [number, number, number];
  const A = T * K;
  const out = heap.output([2, A, h]);
  const [w2T, u, sig] = [heap.temp(E * d * h), heap.temp(A * h), heap.temp(A * h)];
  const { start, kept } = segments(heap.f32, heap.at(plan!), A, E);
  const [hAt, uAt, sigAt, outAt] = [heap.at(h13!), heap.at(u), heap.at(sig), heap.at(out)];
  heap.f32.fill(0, uAt, uAt + A * h);
  heap.transpose(heap.at(w2!), E, h, d, heap.at(w2T));
  for (let e = 0; e < E; e++) {
    if (kept[e] === 0) continue;
    const dY = heap.at(dYRows!) + start[e]! * d;
    simd.matMulRows(bytes(dY), 0, d, bytes(heap.at(w2T) + e * d * h), d, h, bytes(uAt + start[e]! * h), h, kept[e]!, 0);
  }
  heap.sigmoid(hAt, A * h, sigAt);
  const f32 = heap.f32;
  for (let i = 0; i < A * h; i++) {
    const g = f32[uAt + i]!; // plain locals: destructuring an array literal allocates in a hot loop
    const h1 = f32[hAt + i]!;
    const s = f32[sigAt + i]!;
    f32[outAt + i] = g * f32[hAt + A * h + i]! * s * (1 + h1 * (1 - s));
    f32[outAt + A * h + i] = g * h1 * s;
  }
  heap.release();
  return out;
};

/** dx[t] = sum over its rows of dh1 w1[e]^T + dh3 w3[e]^T: both into each row (weights transposed once), then summed by token. */
const expertsUpGradX: WasmKernel<'expertsUpGradX'> = (heap, simd, { dH13, w1, w3, ids, plan }) => {
  const [T, K] = ids!.shape as [number, number];
  const [E, d, h] = w1!.shape as [number, number, number];
  const A = T * K;
  const out = heap.output([T, d]);
  const [wT, rowOut] = [heap.temp(2 * E * h * d), heap.temp(A * d)];
  const { rows, start, kept } = segments(heap.f32, heap.at(plan!), A, E);
  const tokensAt = tokenOfEachRow(heap, rows, A, K);
  const [wTAt, rowsAt, outAt, dAt] = [heap.at(wT), heap.at(rowOut), heap.at(out), heap.at(dH13!)];
  heap.transpose(heap.at(w1!), E, d, h, wTAt);
  heap.transpose(heap.at(w3!), E, d, h, wTAt + E * h * d);
  for (let e = 0; e < E; e++) {
    if (kept[e] === 0) continue;
    for (const half of [0, 1]) {
      const dH = dAt + (half * A + start[e]!) * h;
      simd.matMulRows(bytes(dH), 0, h, bytes(wTAt + (half * E + e) * h * d), h, d, bytes(rowsAt + start[e]! * d), d, kept[e]!, half);
    }
  }
  heap.f32.fill(0, outAt, outAt + T * d);
  simd.addRowsTo(bytes(rowsAt), bytes(tokensAt), A, d, bytes(outAt));
  heap.release();
  return out;
};

/** dW[e] = X_e^T dH[half]_e, X's rows gathered by token inside the matmul. */
const expertsUpGradW: WasmKernel<'expertsUpGradW'> = (heap, simd, { x, dH13, plan }, { nExperts: E, topK: K, half }) => {
  const d = x!.shape[1]!;
  const [, A, h] = dH13!.shape as [number, number, number];
  const out = heap.output([E, d, h]);
  const { rows, start, kept } = segments(heap.f32, heap.at(plan!), A, E);
  const tokensAt = tokenOfEachRow(heap, rows, A, K);
  const [xAt, outAt] = [heap.at(x!), heap.at(out)];
  for (let e = 0; e < E; e++) {
    if (kept[e] === 0) {
      heap.f32.fill(0, outAt + e * d * h, outAt + (e + 1) * d * h);
      continue;
    }
    const dH = heap.at(dH13!) + (half * A + start[e]!) * h;
    simd.matMulTN(bytes(xAt), bytes(tokensAt + start[e]!), d, d, bytes(dH), h, h, bytes(outAt + e * d * h), kept[e]!);
  }
  heap.release();
  return out;
};

/** dW2[e] = act_e^T dYRows_e: the SwiGLU product in one pass, then one matmul per expert. */
const expertsDownGradW: WasmKernel<'expertsDownGradW'> = (heap, simd, { h13, dYRows, plan }, { nExperts: E }) => {
  const [, A, h] = h13!.shape as [number, number, number];
  const d = dYRows!.shape[1]!;
  const out = heap.output([E, h, d]);
  const act = heap.temp(A * h);
  const { start, kept } = segments(heap.f32, heap.at(plan!), A, E);
  const [actAt, outAt] = [heap.at(act), heap.at(out)];
  swiGLUProduct(heap, heap.at(h13!), A, h, actAt);
  for (let e = 0; e < E; e++) {
    if (kept[e] === 0) {
      heap.f32.fill(0, outAt + e * h * d, outAt + (e + 1) * h * d);
      continue;
    }
    const dY = heap.at(dYRows!) + start[e]! * d;
    simd.matMulTN(bytes(actAt + start[e]! * h), 0, h, h, bytes(dY), d, d, bytes(outAt + e * h * d), kept[e]!);
  }
  heap.release();
  return out;
};

const simdKernels: Partial<{ [K in KernelKey]: WasmKernel<K> }> = {
  expertsUp, expertsDown, expertsDownGradH, expertsUpGradX, expertsUpGradW, expertsDownGradW,
};

/** One native kernel: our SIMD matmuls when the module instantiates, else the reference loop on the heap. */
function native<K extends KernelKey>(key: K, kernel: WasmKernel<K>): NativeKernel<K, WasmBackend> {
  return (inputs, attrs, backend) => {
    const simd = simdFor(backend);
    if (simd === null) return runLoop(wasmAdapter, key, inputs, attrs, backend);
    return kernel(new Heap(backend), simd, inputs as Record<string, tf.TensorInfo>, attrs);
  };
}

/** Reads views of the heap in place; a result is copied onto the heap (views of inputs taken after the loop ran:
 * allocating may move the heap). */
export const wasmAdapter: BackendAdapter<WasmBackend> = {
  backendName: 'wasm',
  kernels: Object.fromEntries(
    Object.entries(simdKernels).map(([key, kernel]) => [key, native(key as KernelKey, kernel as WasmKernel<KernelKey>)]),
  ),
  read: (backend, info) => backend.typedArrayFromHeap(info) as Float32Array | Int32Array,
  write: (backend, out) => {
    const info = backend.makeOutput(out.shape, out.dtype);
    backend.typedArrayFromHeap(info).set(out.values);
    return info;
  },
};

/** True when the active backend is wasm and its grouped matmuls run our SIMD kernels (not the reference loops). */
export function wasmSimdKernelsActive(): boolean {
  return tf.getBackend() === 'wasm' && simdFor(tf.backend() as unknown as WasmBackend) !== null;
}

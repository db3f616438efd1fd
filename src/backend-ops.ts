import * as tf from '@tensorflow/tfjs';
import { customOp } from './ops.js';

/**
 * A few ops in the form that is fast (and right) on the current backend; the maths is the same everywhere.
 *
 * The wasm backend (TF.js 4.22) runs GatherV2 at about 25 ns per element and Slice by first copying its whole
 * input, and only a single 2-D matmul without transpose flags reaches XNNPACK: batched or transposed ones take a
 * naive loop 10-20x slower. So on wasm: two row-copy kernels registered here (typed-array copies on the wasm
 * heap), and explicit transposes before 2-D matmuls. On webgl and webgpu, sums over a small middle axis are
 * unrolled. Every other case uses the stock ops. gatherRows and takeRows have no gradient: they are used inside
 * tf.customGrad ops, whose backward passes are written out.
 */

const gatherRowsKernel = 'DeepSeekMoEGatherRows';
const takeRowsKernel = 'DeepSeekMoETakeRows';

/** The slice of the wasm backend's API that its own JS kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

tf.registerKernel({
  kernelName: gatherRowsKernel,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend }: KernelArgs) => {
    const { x, indices } = inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const wasm = backend as unknown as WasmBackend;
    const [N, d] = x.shape as [number, number];
    const M = indices.shape[0]!;
    const out = wasm.makeOutput([M, d], 'float32');
    // Views only after makeOutput: allocating may grow the heap and detach earlier views.
    const outValues = wasm.typedArrayFromHeap(out);
    const xValues = wasm.typedArrayFromHeap(x);
    const rows = wasm.typedArrayFromHeap(indices);
    for (let m = 0; m < M; m++) {
      const r = rows[m]!;
      if (r >= 0 && r < N) outValues.set(xValues.subarray(r * d, (r + 1) * d), m * d);
      else outValues.fill(0, m * d, (m + 1) * d);
    }
    return out;
  },
});

tf.registerKernel({
  kernelName: takeRowsKernel,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }: KernelArgs) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const { start, count } = attrs as unknown as { start: number; count: number };
    const wasm = backend as unknown as WasmBackend;
    const d = x.shape[1]!;
    const out = wasm.makeOutput([count, d], x.dtype);
    wasm.typedArrayFromHeap(out).set(wasm.typedArrayFromHeap(x).subarray(start * d, (start + count) * d));
    return out;
  },
});

const onWasm = () => tf.getBackend() === 'wasm';

/** Rows of x [N, d] at `indices` [M] (int32); index N (the plan's sentinel) reads a row of zeros: -> [M, d]. */
export function gatherRows(x: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  if (onWasm()) return tf.engine().runKernel(gatherRowsKernel, { x, indices }) as tf.Tensor2D;
  // Elsewhere: a zero row appended at index N serves the only out-of-range index the plan uses.
  return tf.gather(tf.concat([x, tf.zeros([1, x.shape[1]])], 0), indices) as tf.Tensor2D;
}

/** Rows [start, start + count) of x [N, d]: -> [count, d]. */
export function takeRows(x: tf.Tensor2D, start: number, count: number): tf.Tensor2D {
  if (onWasm()) return tf.engine().runKernel(takeRowsKernel, { x }, { start, count } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  return tf.slice(x, [start, 0], [count, x.shape[1]]);
}

/** 2-D matMul(a, b, transposeA, transposeB); on wasm the transposes are materialised so XNNPACK runs it. */
export function matMulT(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (!onWasm()) return tf.matMul(a, b, transposeA, transposeB);
  return tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b);
}

/** a [N, k] x b [k, m] with a gradient whose matmuls go through matMulT (TF.js's own uses transpose flags). */
export function linear(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (!onWasm()) return tf.matMul(a, b);
  const op = customOp(([aIn, bIn], save) => {
    save([aIn!, bIn!]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [a0, b0] = saved as tf.Tensor2D[];
      return [matMulT(dy as tf.Tensor2D, b0!, false, true), matMulT(a0!, dy as tf.Tensor2D, true)];
    };
    return { value: tf.matMul(aIn!, bIn!), gradFunc };
  });
  return op(a, b) as tf.Tensor2D;
}

/**
 * Sum over the choices axis: x [T, K, n] -> [T, n]. On webgpu, TF.js reduces with a workgroup per output, which
 * for K = 6 and T n = 262144 outputs took 9 s of a 21 s step on SwiftShader; there (and on webgl) the K slices
 * are added instead. On cpu and wasm tf.sum is the fast form (wasm's Slice copies its whole input).
 */
export function sumOverChoices(x: tf.Tensor3D): tf.Tensor2D {
  const backend = tf.getBackend();
  if (backend !== 'webgpu' && backend !== 'webgl') return tf.sum(x, 1);
  const [T, K, n] = x.shape;
  let total = tf.reshape(tf.slice(x, [0, 0, 0], [T, 1, n]), [T, n]) as tf.Tensor2D;
  for (let k = 1; k < K; k++) total = tf.add(total, tf.reshape(tf.slice(x, [0, k, 0], [T, 1, n]), [T, n]));
  return total;
}

/** a [G, n, k] x b [G, k, m] with transpose flags, as G 2-D matmuls through matMulT (wasm's fast form). */
function loopedBatchMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeA: boolean, transposeB: boolean): tf.Tensor3D {
  const [G, ra, ca] = a.shape;
  const [, rb, cb] = b.shape;
  const a2 = tf.reshape(a, [G * ra, ca]) as tf.Tensor2D;
  const b2 = tf.reshape(b, [G * rb, cb]) as tf.Tensor2D;
  const out = Array.from({ length: G }, (_, g) => matMulT(takeRows(a2, g * ra, ra), takeRows(b2, g * rb, rb), transposeA, transposeB));
  return tf.stack(out) as tf.Tensor3D;
}

/**
 * Batched matmul with equal batch dims, a [G, ., .] x b [G, ., .]. On wasm TF.js runs BatchMatMul as a naive
 * loop (an attention step spent 550 ms there); this runs G 2-D XNNPACK matmuls instead, forward and backward.
 * Elsewhere it is tf.matMul.
 */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeA = false, transposeB = false): tf.Tensor3D {
  if (!onWasm()) return tf.matMul(a, b, transposeA, transposeB);
  const bmm = loopedBatchMatMul;
  const op = customOp(([aIn, bIn], save) => {
    save([aIn!, bIn!]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [A, B] = saved as tf.Tensor3D[];
      const dC = dy as tf.Tensor3D;
      if (!transposeA && !transposeB) return [bmm(dC, B!, false, true), bmm(A!, dC, true, false)];
      if (!transposeA && transposeB) return [bmm(dC, B!, false, false), bmm(dC, A!, true, false)];
      if (transposeA && !transposeB) return [bmm(B!, dC, false, true), bmm(A!, dC, false, false)];
      return [bmm(B!, dC, true, true), bmm(dC, A!, true, true)];
    };
    return { value: bmm(aIn as tf.Tensor3D, bIn as tf.Tensor3D, transposeA, transposeB), gradFunc };
  });
  return op(a, b) as tf.Tensor3D;
}

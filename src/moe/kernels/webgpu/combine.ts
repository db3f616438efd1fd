/**
 * The combine kernels on webgpu: rows back to tokens and their gradients, one thread per output item, reading
 * rows through the plan (no gather or scatter tensors).
 */
import type * as tf from '@tensorflow/tfjs';
import { i32, runFlat, type GpuKernel, type WebGPUBackend } from './program.js';

/**
 * y [T, d]: y[t, i] = sum over t's kept assignments a = t K + k of gates[a] rows[plan[a], i]; one thread per
 * (t, i). Without gates it sums the rows (expertsUpGradX gathers its per-row products this way).
 */
export function sumTokenRows(backend: WebGPUBackend, rows: tf.TensorInfo, plan: tf.TensorInfo, T: number, K: number,
  gates?: tf.TensorInfo): tf.TensorInfo {
  const d = rows.shape[1]!;
  return runFlat(backend, {
    key: `combine_${gates ? 'gated' : 'sum'}`,
    inputs: gates ? [rows, plan, gates] : [rows, plan], names: gates ? ['rows', 'plan', 'gates'] : ['rows', 'plan'],
    outputShape: [T, d], dtype: 'float32', n: T * d, uniforms: [i32('topK', K)],
    body: `
      let A = uniforms.rowsShape.x;
      let d = uniforms.rowsShape.y;
      let t = index / d;
      let i = index % d;
      var acc = 0.0;
      for (var a = t * uniforms.topK; a < (t + 1) * uniforms.topK; a++) {
        let r = plan[a];
        if (r < A) { acc += ${gates ? 'gates[a] * ' : ''}rows[r * d + i]; }
      }
      result[index] = acc;`,
  });
}

const combine: GpuKernel<'combine'> = ({ rows, gates, plan }, _attrs, backend) => {
  const [T, K] = gates!.shape as [number, number];
  return sumTokenRows(backend, rows!, plan!, T, K, gates!);
};

/** dRows [A, d]: row r of kept assignment a = plan[A + r] is gates[a] dy[floor(a / K)]; dropped rows are 0. */
const combineGrad: GpuKernel<'combineGrad'> = ({ dy, gates, plan }, _attrs, backend) => {
  const [T, K] = gates!.shape as [number, number];
  const d = dy!.shape[1]!;
  return runFlat(backend, {
    key: 'combineGrad', inputs: [dy!, gates!, plan!], names: ['dy', 'gates', 'plan'], outputShape: [T * K, d],
    dtype: 'float32', n: T * K * d, uniforms: [i32('topK', K)],
    body: `
      let d = uniforms.dyShape.y;
      let A = uniforms.dyShape.x * uniforms.topK;
      let a = plan[A + index / d];
      var g = 0.0;
      if (a < A) { g = gates[a] * dy[(a / uniforms.topK) * d + index % d]; }
      result[index] = g;`,
  });
};

/** dGates [T, K]: <rows[plan[a]], dy[t]> for kept a = t K + k, else 0; one thread per assignment. */
const combineGradGates: GpuKernel<'combineGradGates'> = ({ rows, dy, plan }, _attrs, backend) => {
  const [A] = rows!.shape as [number, number];
  const T = dy!.shape[0]!;
  return runFlat(backend, {
    key: 'combineGradGates', inputs: [rows!, dy!, plan!], names: ['rows', 'dy', 'plan'], outputShape: [T, A / T],
    dtype: 'float32', n: A, uniforms: [i32('topK', A / T)],
    body: `
      let A = uniforms.rowsShape.x;
      let d = uniforms.rowsShape.y;
      let r = plan[index];
      var acc = 0.0;
      if (r < A) {
        let t = index / uniforms.topK;
        for (var i = 0; i < d; i++) { acc += rows[r * d + i] * dy[t * d + i]; }
      }
      result[index] = acc;`,
  });
};

export const combineKernels = { combine, combineGrad, combineGradGates };

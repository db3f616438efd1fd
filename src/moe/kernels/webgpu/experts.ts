/**
 * The expert kernels on webgpu: SwiGLU experts over the plan's rows, as tiled matmuls (grouped.ts) that read x,
 * h13 and the weights in place. Gathers, activations and the activation's derivative are fused into the tile loads
 * and stores, so no [A, d] copy of x, no activation tensor and no per-expert slices exist.
 */
import { sumTokenRows } from './combine.js';
import { expertReduce, rowsMatmul } from './grouped.js';
import { i32, type GpuKernel } from './program.js';

/** WGSL: the token of row r (the row's assignment over K), or -1 when the row was dropped. */
const tokenOfRow = `
  fn rowSource(r : i32) -> i32 {
    let a = plan[uniforms.nRows + r];
    return select(a / uniforms.topK, -1, a == uniforms.nRows);
  }`;
/** WGSL: row r itself, or -1 when it was dropped. */
const keptRow = `
  fn rowSource(r : i32) -> i32 {
    return select(r, -1, plan[uniforms.nRows + r] == uniforms.nRows);
  }`;
/** WGSL: silu(h1) h3 at row r, column c of h13 [2, A, h]. */
const swiglu = `
  fn swiglu(r : i32, c : i32) -> f32 {
    let h1 = h13[r * uniforms.h + c];
    return h1 / (1.0 + exp(-h1)) * h13[(uniforms.nRows + r) * uniforms.h + c];
  }`;

/** h13 [2, A, h]: row r of expert e is x[t] [w1[e] | w3[e]], one matmul with both halves as 2 h columns. */
const expertsUp: GpuKernel<'expertsUp'> = ({ x, w1, w3, ids, plan }, _attrs, backend) => {
  const [E, d, h] = w1!.shape as [number, number, number];
  const [T, K] = ids!.shape as [number, number];
  const A = T * K;
  return rowsMatmul(backend, {
    key: 'expertsUp', inputs: [x!, w1!, w3!, plan!], names: ['x', 'w1', 'w3', 'plan'], outputShape: [2, A, h],
    A, E, inner: d, cols: 2 * h, uniforms: [i32('topK', K), i32('h', h)],
    helpers: `${tokenOfRow}
      fn loadA(t : i32, k : i32) -> f32 { return x[t * uniforms.nInner + k]; }
      fn loadB(e : i32, k : i32, n : i32) -> f32 {
        let h = uniforms.h;
        let at = (e * uniforms.nInner + k) * h;
        if (n < h) { return w1[at + n]; }
        return w3[at + n - h];
      }
      fn store(r : i32, n : i32, v : f32) {
        let h = uniforms.h;
        if (n < h) { result[r * h + n] = v; } else { result[(uniforms.nRows + r) * h + n - h] = v; }
      }`,
  });
};

/**
 * dx [T, d] in two programs: per row, [dH1 | dH3][r] [w1[e] | w3[e]]^T [A, d] (a row-grouped matmul over 2 h),
 * then each token sums its K rows. Rows of one token belong to different experts, so no tile can do both.
 */
const expertsUpGradX: GpuKernel<'expertsUpGradX'> = ({ dH13, w1, w3, ids, plan }, _attrs, backend) => {
  const [E, d, h] = w1!.shape as [number, number, number];
  const [T, K] = ids!.shape as [number, number];
  const A = T * K;
  const rows = rowsMatmul(backend, {
    key: 'expertsUpGradX', inputs: [dH13!, w1!, w3!, plan!], names: ['dH13', 'w1', 'w3', 'plan'],
    outputShape: [A, d], A, E, inner: 2 * h, cols: d, uniforms: [i32('h', h)],
    helpers: `${keptRow}
      fn loadA(r : i32, k : i32) -> f32 {
        let h = uniforms.h;
        if (k < h) { return dH13[r * h + k]; }
        return dH13[(uniforms.nRows + r) * h + k - h];
      }
      fn loadB(e : i32, k : i32, n : i32) -> f32 {
        let h = uniforms.h;
        let at = (e * uniforms.nCols + n) * h;
        if (k < h) { return w1[at + k]; }
        return w3[at + k - h];
      }
      fn store(r : i32, n : i32, v : f32) { result[r * uniforms.nCols + n] = v; }`,
  });
  const dx = sumTokenRows(backend, rows, plan!, T, K);
  backend.disposeData(rows.dataId);
  return dx;
};

/** dW1 or dW3 [E, d, h]: per expert, x[t]^T dH13[half, r] summed over its kept rows. */
const expertsUpGradW: GpuKernel<'expertsUpGradW'> = ({ x, dH13, plan }, { nExperts: E, topK: K, half }, backend) => {
  const d = x!.shape[1]!;
  const [, A, h] = dH13!.shape as [number, number, number];
  return expertReduce(backend, {
    key: 'expertsUpGradW', inputs: [x!, dH13!, plan!], names: ['x', 'dH13', 'plan'], outputShape: [E, d, h],
    A, E, M: d, N: h, uniforms: [i32('topK', K), i32('half', half)],
    helpers: `${tokenOfRow}
      fn loadL(t : i32, r : i32, m : i32) -> f32 { return x[t * uniforms.nM + m]; }
      fn loadR(t : i32, r : i32, n : i32) -> f32 {
        return dH13[(uniforms.half * uniforms.nRows + r) * uniforms.nN + n];
      }`,
  });
};

/** yRows [A, d]: silu(h1) h3 of row r times w2[e], the activation applied as the tile is loaded. */
const expertsDown: GpuKernel<'expertsDown'> = ({ h13, w2, ids, plan }, _attrs, backend) => {
  const [E, h, d] = w2!.shape as [number, number, number];
  const A = ids!.shape[0]! * ids!.shape[1]!;
  return rowsMatmul(backend, {
    key: 'expertsDown', inputs: [h13!, w2!, plan!], names: ['h13', 'w2', 'plan'], outputShape: [A, d],
    A, E, inner: h, cols: d, uniforms: [i32('h', h)],
    helpers: `${keptRow}${swiglu}
      fn loadA(r : i32, k : i32) -> f32 { return swiglu(r, k); }
      fn loadB(e : i32, k : i32, n : i32) -> f32 { return w2[(e * uniforms.h + k) * uniforms.nCols + n]; }
      fn store(r : i32, n : i32, v : f32) { result[r * uniforms.nCols + n] = v; }`,
  });
};

/**
 * dH13 [2, A, h]: u = dYRows[r] w2[e]^T, then the SwiGLU derivative in the store (s = sigmoid(h1)):
 * dH1 = u h3 s (1 + h1 (1 - s)), dH3 = u h1 s. Dropped rows have u = 0, so they write zeros.
 */
const expertsDownGradH: GpuKernel<'expertsDownGradH'> = ({ dYRows, h13, w2, ids, plan }, _attrs, backend) => {
  const [E, h, d] = w2!.shape as [number, number, number];
  const A = ids!.shape[0]! * ids!.shape[1]!;
  return rowsMatmul(backend, {
    key: 'expertsDownGradH', inputs: [dYRows!, h13!, w2!, plan!], names: ['dYRows', 'h13', 'w2', 'plan'],
    outputShape: [2, A, h], A, E, inner: d, cols: h, uniforms: [],
    helpers: `${keptRow}
      fn loadA(r : i32, k : i32) -> f32 { return dYRows[r * uniforms.nInner + k]; }
      fn loadB(e : i32, k : i32, n : i32) -> f32 { return w2[(e * uniforms.nCols + n) * uniforms.nInner + k]; }
      fn store(r : i32, n : i32, u : f32) {
        let at1 = r * uniforms.nCols + n;
        let at3 = (uniforms.nRows + r) * uniforms.nCols + n;
        let h1 = h13[at1];
        let s = 1.0 / (1.0 + exp(-h1));
        result[at1] = u * h13[at3] * s * (1.0 + h1 * (1.0 - s));
        result[at3] = u * h1 * s;
      }`,
  });
};

/** dW2 [E, h, d]: per expert, (silu(h1) h3)[r]^T dYRows[r] summed over its kept rows. */
const expertsDownGradW: GpuKernel<'expertsDownGradW'> = ({ h13, dYRows, plan }, { nExperts: E }, backend) => {
  const [, A, h] = h13!.shape as [number, number, number];
  const d = dYRows!.shape[1]!;
  return expertReduce(backend, {
    key: 'expertsDownGradW', inputs: [h13!, dYRows!, plan!], names: ['h13', 'dYRows', 'plan'], outputShape: [E, h, d],
    A, E, M: h, N: d, uniforms: [i32('h', h)],
    helpers: `${keptRow}${swiglu}
      fn loadL(src : i32, r : i32, m : i32) -> f32 { return swiglu(r, m); }
      fn loadR(src : i32, r : i32, n : i32) -> f32 { return dYRows[r * uniforms.nN + n]; }`,
  });
};

export const expertKernels = {
  expertsUp, expertsUpGradX, expertsUpGradW, expertsDown, expertsDownGradH, expertsDownGradW,
};

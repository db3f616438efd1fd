// The grouped expert matmuls for the wasm backend, in AssemblyScript: `npm run build:simd` (run by `npm install`)
// compiles it into src/moe/kernels/simd-module.ts (generated, not committed).
//
// The module imports TF.js's own wasm memory and keeps no data of its own: every argument is a byte address of a
// tensor on that heap, so it reads the experts' weights and the tokens in place. One call covers one expert's
// segment of rows; a JS loop over experts costs ~0.1 us a call, where TF.js's XNNPACK path paid ~150 us to pack
// each expert's weights into a fresh operator. Micro-kernels keep a 4 x 8 block of the output in v128 registers.

/** Address of row `j` of A: rows[j] when gathering (rows != 0), else j; `stride` in floats. */
@inline function rowAt(a: usize, rows: usize, j: i32, stride: i32): usize {
  const r = rows != 0 ? load<i32>(rows + (<usize>j << 2)) : j;
  return a + ((<usize>r * <usize>stride) << 2);
}

/**
 * out[j, 0..n) (+)= A[row j, 0..k) B[k, n] for j < m. A's rows are gathered through `rows` (int32 indices) when it
 * is non-zero; B is row-major [k, n]; out rows are `outStride` floats apart; `accumulate` adds to out.
 */
export function matMulRows(
  a: usize, rows: usize, aStride: i32, b: usize, k: i32, n: i32, out: usize, outStride: i32, m: i32, accumulate: i32,
): void {
  const n8 = n & ~7;
  for (let j = 0; j < m; j += 4) {
    const live = min(4, m - j);
    // Missing rows of the last block read row j again and are not stored.
    const a0 = rowAt(a, rows, j, aStride);
    const a1 = live > 1 ? rowAt(a, rows, j + 1, aStride) : a0;
    const a2 = live > 2 ? rowAt(a, rows, j + 2, aStride) : a0;
    const a3 = live > 3 ? rowAt(a, rows, j + 3, aStride) : a0;
    const o = out + ((<usize>j * <usize>outStride) << 2);
    const os = <usize>outStride << 2;
    for (let c = 0; c < n8; c += 8) {
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0), s21 = f32x4.splat(0), s30 = f32x4.splat(0), s31 = f32x4.splat(0);
      let bp = b + (<usize>c << 2);
      const bs = <usize>n << 2;
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        const q = <usize>p << 2;
        const x0 = f32x4.splat(load<f32>(a0 + q));
        const x1 = f32x4.splat(load<f32>(a1 + q));
        const x2 = f32x4.splat(load<f32>(a2 + q));
        const x3 = f32x4.splat(load<f32>(a3 + q));
        s00 = f32x4.add(s00, f32x4.mul(x0, b0)); s01 = f32x4.add(s01, f32x4.mul(x0, b1));
        s10 = f32x4.add(s10, f32x4.mul(x1, b0)); s11 = f32x4.add(s11, f32x4.mul(x1, b1));
        s20 = f32x4.add(s20, f32x4.mul(x2, b0)); s21 = f32x4.add(s21, f32x4.mul(x2, b1));
        s30 = f32x4.add(s30, f32x4.mul(x3, b0)); s31 = f32x4.add(s31, f32x4.mul(x3, b1));
        bp += bs;
      }
      const oc = o + (<usize>c << 2);
      storeRow8(oc, s00, s01, accumulate);
      if (live > 1) storeRow8(oc + os, s10, s11, accumulate);
      if (live > 2) storeRow8(oc + 2 * os, s20, s21, accumulate);
      if (live > 3) storeRow8(oc + 3 * os, s30, s31, accumulate);
    }
    for (let c = n8; c < n; c++) {
      for (let q = 0; q < live; q++) {
        const ar = q == 0 ? a0 : q == 1 ? a1 : q == 2 ? a2 : a3;
        let acc: f32 = 0;
        for (let p = 0; p < k; p++) acc += load<f32>(ar + (<usize>p << 2)) * load<f32>(b + ((<usize>p * <usize>n + <usize>c) << 2));
        const at = o + <usize>q * os + (<usize>c << 2);
        store<f32>(at, accumulate ? load<f32>(at) + acc : acc);
      }
    }
  }
}

@inline function storeRow8(at: usize, v0: v128, v1: v128, accumulate: i32): void {
  if (accumulate) {
    v0 = f32x4.add(v0, v128.load(at));
    v1 = f32x4.add(v1, v128.load(at, 16));
  }
  v128.store(at, v0);
  v128.store(at, v1, 16);
}

/**
 * out[i, 0..n) = sum over j < m of A[row j, i] B[j, 0..n), for i < width: the weight gradient X^T dY of one
 * expert's rows, with X's rows gathered through `rows` when non-zero. B's rows are `bStride` floats apart; out is
 * [width, n] row-major and is overwritten.
 */
export function matMulTN(a: usize, rows: usize, aStride: i32, width: i32, b: usize, bStride: i32, n: i32, out: usize, m: i32): void {
  const n8 = n & ~7;
  const bs = <usize>bStride << 2;
  for (let i = 0; i < width; i += 4) {
    const live = min(4, width - i);
    const i1 = live > 1 ? i + 1 : i, i2 = live > 2 ? i + 2 : i, i3 = live > 3 ? i + 3 : i;
    const o = out + ((<usize>i * <usize>n) << 2);
    const os = <usize>n << 2;
    for (let c = 0; c < n8; c += 8) {
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0), s21 = f32x4.splat(0), s30 = f32x4.splat(0), s31 = f32x4.splat(0);
      let bp = b + (<usize>c << 2);
      for (let j = 0; j < m; j++) {
        const ar = rowAt(a, rows, j, aStride);
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        const x0 = f32x4.splat(load<f32>(ar + (<usize>i << 2)));
        const x1 = f32x4.splat(load<f32>(ar + (<usize>i1 << 2)));
        const x2 = f32x4.splat(load<f32>(ar + (<usize>i2 << 2)));
        const x3 = f32x4.splat(load<f32>(ar + (<usize>i3 << 2)));
        s00 = f32x4.add(s00, f32x4.mul(x0, b0)); s01 = f32x4.add(s01, f32x4.mul(x0, b1));
        s10 = f32x4.add(s10, f32x4.mul(x1, b0)); s11 = f32x4.add(s11, f32x4.mul(x1, b1));
        s20 = f32x4.add(s20, f32x4.mul(x2, b0)); s21 = f32x4.add(s21, f32x4.mul(x2, b1));
        s30 = f32x4.add(s30, f32x4.mul(x3, b0)); s31 = f32x4.add(s31, f32x4.mul(x3, b1));
        bp += bs;
      }
      const oc = o + (<usize>c << 2);
      storeRow8(oc, s00, s01, 0);
      if (live > 1) storeRow8(oc + os, s10, s11, 0);
      if (live > 2) storeRow8(oc + 2 * os, s20, s21, 0);
      if (live > 3) storeRow8(oc + 3 * os, s30, s31, 0);
    }
    for (let c = n8; c < n; c++) {
      for (let q = 0; q < live; q++) {
        let acc: f32 = 0;
        for (let j = 0; j < m; j++) {
          const x = load<f32>(rowAt(a, rows, j, aStride) + (<usize>(i + q) << 2));
          acc += x * load<f32>(b + ((<usize>j * <usize>bStride + <usize>c) << 2));
        }
        store<f32>(o + <usize>q * os + (<usize>c << 2), acc);
      }
    }
  }
}

/** out[index[j]] += src[j] for j < m, rows of `width` floats (summing each token's rows back into the token). */
export function addRowsTo(src: usize, index: usize, m: i32, width: i32, out: usize): void {
  const w4 = width & ~3;
  const rowBytes = <usize>width << 2;
  for (let j = 0; j < m; j++) {
    const r = load<i32>(index + (<usize>j << 2));
    if (r < 0) continue;
    const s = src + <usize>j * rowBytes;
    const o = out + <usize>r * rowBytes;
    for (let c = 0; c < w4; c += 4) {
      const at = <usize>c << 2;
      v128.store(o + at, f32x4.add(v128.load(o + at), v128.load(s + at)));
    }
    for (let c = w4; c < width; c++) store<f32>(o + (<usize>c << 2), load<f32>(o + (<usize>c << 2)) + load<f32>(s + (<usize>c << 2)));
  }
}
